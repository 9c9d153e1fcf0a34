package testworld

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Refresh is a profile's refresh block that refreshes at once on rotation (no spread), as tests want.
const Refresh = "  refresh {\n    rotation_spread = \"0s\"\n  }\n"

// ProfileBlock is a bridge profile block that signs for roleARN with the world's trust anchor, Roles
// Anywhere profile and emulator (over plain HTTP on loopback); body adds settings (lines ending in a
// newline): the identity, sinks, assume_role hops.
func (w *World) ProfileBlock(name, roleARN, body string) string {
	if body != "" && !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return fmt.Sprintf(`
profile %q {
  trust_anchor_arn  = %q
  profile_arn       = %q
  role_arn          = %q
  endpoint          = %q
  insecure_endpoint = true
%s}
`, name, w.TrustAnchorARN, w.ProfileARN, roleARN, w.Emulator.URL, body)
}

// Profile is the daemon's usual profile: the world's role with the SVID of the world's SPIFFE ID,
// refreshing at once on rotation; body adds settings (sinks, hops), each part on lines of its own.
func (w *World) Profile(name string, body ...string) string {
	text := fmt.Sprintf("  spiffe_id = %q\n", w.ID) + Refresh
	for _, part := range body {
		text += part
		if part != "" && !strings.HasSuffix(part, "\n") {
			text += "\n"
		}
	}
	return w.ProfileBlock(name, RoleARN, text)
}

// CredentialsFile is a credentials_file sink block writing path.
func CredentialsFile(path string) string {
	return fmt.Sprintf("  credentials_file {\n    path = %q\n  }\n", path)
}

// AssumeRole is an assume_role hop into roleARN through the emulator's STS; body adds settings.
func (w *World) AssumeRole(roleARN, body string) string {
	return fmt.Sprintf("  assume_role {\n    role_arn     = %q\n    sts_endpoint = %q\n%s  }\n", roleARN, w.Emulator.URL, body)
}

// ChainHops are the hops of the chain world (Options.Chain): into RoleB with externalID, then into RoleC
// with bodyC added to its block.
func (w *World) ChainHops(externalID, bodyC string) string {
	return w.AssumeRole(RoleB, fmt.Sprintf("    external_id  = %q\n", externalID)) + w.AssumeRole(RoleC, bodyC)
}

// Config is a bridge config's text: agent_address (the world's agent), then parts.
func (w *World) Config(parts ...string) string {
	return fmt.Sprintf("agent_address = %q\n", w.Agent.Addr()) + strings.Join(parts, "")
}

// WriteConfig writes Config(parts...) to name in the world's directory and returns its path.
func (w *World) WriteConfig(t testing.TB, name string, parts ...string) string {
	t.Helper()
	return w.WriteFile(t, name, []byte(w.Config(parts...)))
}

// WriteFile writes data to name in the world's directory and returns its path.
func (w *World) WriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(w.Dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// HealthChecks is a health_checks block on 127.0.0.1:port.
func HealthChecks(port int) string {
	return fmt.Sprintf("health_checks {\n  bind_address = \"127.0.0.1\"\n  bind_port    = %d\n}\n", port)
}

// Telemetry is a telemetry block serving Prometheus metrics on 127.0.0.1:port.
func Telemetry(port int) string {
	return fmt.Sprintf("telemetry {\n  prometheus {\n    host = \"127.0.0.1\"\n    port = %d\n  }\n}\n", port)
}
