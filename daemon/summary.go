package daemon

import (
	"fmt"
	"net"
	"strconv"

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
