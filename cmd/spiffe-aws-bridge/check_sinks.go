package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/sinkcheck"
)

// checkSinks proves each profile's sinks as the daemon would use them (package sinkcheck), printing one
// line per probe, and returns the number that cannot work. Without a config there is nothing to probe.
func checkSinks(ctx context.Context, out io.Writer, cfg *config.Config) int {
	if cfg == nil {
		return 0
	}
	failures := 0
	for _, p := range cfg.Profiles {
		results := sinkcheck.Profile(ctx, p, sinkcheck.Options{})
		if len(results) == 0 {
			continue
		}
		fmt.Fprintf(out, "\nSinks of profile %q\n", p.Name)
		for _, r := range results {
			verdict := "ok  "
			switch r.Status {
			case sinkcheck.Warn:
				verdict = "warn"
			case sinkcheck.Fail:
				verdict = "FAIL"
				failures++
			}
			fmt.Fprintf(out, "  %s %s: %s\n", verdict, r.Sink, strings.ReplaceAll(r.Detail, "\n", "\n       "))
		}
	}
	return failures
}
