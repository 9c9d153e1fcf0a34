// Package signame holds the one rule for the signal names a profile's signal block accepts. It is a leaf,
// so that the config (which validates) and the signal sink (bridge/hook) share it without config importing
// the sink.
package signame

import (
	"fmt"
	"sort"
	"strings"
	"syscall"
)

// names are the signals Parse accepts, without the SIG prefix.
func names() map[string]syscall.Signal {
	return map[string]syscall.Signal{
		"HUP":  syscall.SIGHUP,
		"USR1": syscall.SIGUSR1,
		"USR2": syscall.SIGUSR2,
		"TERM": syscall.SIGTERM,
		"INT":  syscall.SIGINT,
		"QUIT": syscall.SIGQUIT,
	}
}

// Parse parses a signal name, with or without the SIG prefix and in any case: "SIGHUP", "HUP", "hup";
// accepted are HUP, USR1, USR2, TERM, INT and QUIT.
func Parse(name string) (syscall.Signal, error) {
	all := names()
	n := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "SIG")
	if sig, ok := all[n]; ok {
		return sig, nil
	}
	accepted := make([]string, 0, len(all))
	for k := range all {
		accepted = append(accepted, "SIG"+k)
	}
	sort.Strings(accepted)
	return 0, fmt.Errorf("unknown signal %q: accepted are %s (with or without SIG, any case)", name, strings.Join(accepted, ", "))
}
