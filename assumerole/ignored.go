package assumerole

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"
)

// IgnoredFlags are spiffe-aws-assume-role's telemetry and Sentry flags, accepted so that no existing
// config breaks, and ignored.
type IgnoredFlags struct {
	telemetrySocket, telemetryName, sentryDSN string
	flags                                     *pflag.FlagSet
}

// AddFlags registers --telemetry-socket, --telemetry-name and --sentry-dsn on f.
func (i *IgnoredFlags) AddFlags(f *pflag.FlagSet) {
	i.flags = f
	f.StringVar(&i.telemetrySocket, "telemetry-socket", "", "accepted for spiffe-aws-assume-role compatibility; ignored")
	f.StringVar(&i.telemetryName, "telemetry-name", "", "accepted for spiffe-aws-assume-role compatibility; ignored")
	f.StringVar(&i.sentryDSN, "sentry-dsn", "", "accepted for spiffe-aws-assume-role compatibility; ignored")
}

// Warn prints one warning to stderr when any ignored flag was given.
func (i *IgnoredFlags) Warn(stderr io.Writer) {
	var set []string
	for _, n := range []string{"telemetry-socket", "telemetry-name", "sentry-dsn"} {
		if i.flags.Changed(n) {
			set = append(set, "--"+n)
		}
	}
	if len(set) > 0 {
		fmt.Fprintf(stderr, "spiffe-aws-bridge: warning: %v accepted for compatibility and ignored (use the daemon's Prometheus metrics)\n", set)
	}
}
