package daemon

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
)

// SinkSummary describes where a profile delivers its credentials, one entry per sink, with the paths and
// ports from its config: what the start-up log says about each profile.
func SinkSummary(pc config.Profile) []string {
	var out []string
	if f := pc.CredentialsFile; f != nil {
		out = append(out, fmt.Sprintf("credentials_file %s [%s]", f.Path, f.ProfileName))
	}
	if m := pc.IMDS; m != nil {
		out = append(out, "imds http://"+net.JoinHostPort(m.BindAddress, strconv.Itoa(m.BindPort))+"/")
	}
	if c := pc.ContainerEndpoint; c != nil {
		out = append(out, "container_endpoint http://"+net.JoinHostPort(c.BindAddress, strconv.Itoa(c.BindPort))+c.Path+" (token "+c.AuthTokenFile+")")
	}
	if h := pc.OnRefresh; h != nil {
		out = append(out, "on_refresh "+h.Command[0])
	}
	if s := pc.Signal; s != nil {
		out = append(out, fmt.Sprintf("signal %v to the process in %s", s.Signal, s.PIDFile))
	}
	return out
}

// StopSummary is what the stop log line says about a profile, as key-value pairs: its refreshes, the
// refresh failures since the last success (consecutive_failures), every failed sink write since it
// started (sink_failures) and the sinks failing at the stop, when its credentials expire and its last
// error type.
func StopSummary(st bridge.ProfileState) []any {
	args := []any{"profile", st.Profile, "refreshes", st.Refreshes, "consecutive_failures", st.ConsecutiveFailures,
		"sink_failures", st.SinkFailures}
	var failing []string
	for _, s := range st.Sinks {
		if !s.OK && s.Failures > 0 {
			failing = append(failing, s.Name)
		}
	}
	if len(failing) > 0 {
		args = append(args, "failing_sinks", failing)
	}
	if !st.Expiration.IsZero() {
		args = append(args, "credentials_expire", st.Expiration.UTC().Format(time.RFC3339))
	}
	if st.LastErrorType != "" {
		args = append(args, "last_error_type", st.LastErrorType)
	}
	return args
}
