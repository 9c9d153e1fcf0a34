package testworld

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
)

// startEmulator writes the agent's CA bundle and keys and the emulator's config into the world's
// directory, and starts the emulator on them.
func (w *World) startEmulator(o Options) error {
	for name, data := range map[string][]byte{"ca.pem": w.Agent.CA().BundlePEM(), "jwks.json": w.Agent.CA().JWKS()} {
		if err := os.WriteFile(filepath.Join(w.Dir, name), data, 0o600); err != nil {
			return fmt.Errorf("testworld: %w", err)
		}
	}
	path := filepath.Join(w.Dir, "emulator.hcl")
	if err := os.WriteFile(path, []byte(w.emulatorHCL(o)), 0o600); err != nil {
		return fmt.Errorf("testworld: %w", err)
	}
	cfg, err := emulator.LoadConfig(path)
	if err != nil {
		return fmt.Errorf("testworld: %w", err)
	}
	logger := hclog.NewNullLogger()
	if o.EmulatorLog {
		w.logs = &logtest.Buffer{}
		logger = hclog.New(&hclog.LoggerOptions{Output: w.logs, Level: hclog.Debug})
	}
	if w.Emulator, err = emulator.NewServer(emulator.Options{Config: cfg, Clock: o.Clock, Logger: logger}); err != nil {
		return fmt.Errorf("testworld: emulator: %w", err)
	}
	return nil
}

// emulatorHCL is the emulator's config: the account's trust anchor (the agent's CA), profile and roles,
// the JWT bundle (the agent's keys), and the roles of Options.
func (w *World) emulatorHCL(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "account_id = %q\n", AccountID)
	if o.QuotaPerSecond != 0 {
		fmt.Fprintf(&b, "quota_per_second = %d\n", o.QuotaPerSecond)
	}
	fmt.Fprintf(&b, "trust_anchor %q {\n  ca_bundle_file = \"ca.pem\"\n}\n", w.TrustAnchorARN)
	fmt.Fprintf(&b, "profile %q {\n  role_arns = [%q]\n", w.ProfileARN, RoleARN)
	if o.ProfileDurationSeconds != 0 {
		fmt.Fprintf(&b, "  duration_seconds = %d\n", o.ProfileDurationSeconds)
	}
	fmt.Fprintf(&b, "%s}\n", o.ProfileBody)
	fmt.Fprintf(&b, "role %q {\n  condition {\n    tag    = \"x509SAN/URI\"\n    values = [%q]\n  }\n}\n", RoleARN, WorkloadPattern)
	fmt.Fprintf(&b, "role %q {\n  web_identity {\n    audiences = [%q]\n    subjects  = [%q]\n  }\n}\n", JWTRoleARN, Audience, WorkloadPattern)
	b.WriteString("jwt_bundle {\n  jwks_file = \"jwks.json\"\n}\n")
	roles := o.STSRoles
	if o.Chain {
		roles = append([]STSRole{
			{ARN: RoleB, Principals: []string{RoleARN}, ExternalID: ExternalID},
			{ARN: RoleC, Principals: []string{RoleB}},
		}, roles...)
	}
	for _, r := range roles {
		fmt.Fprintf(&b, "role %q {\n  sts_trust {\n    principals          = %s\n", r.ARN, hclList(r.Principals))
		if r.ExternalID != "" {
			fmt.Fprintf(&b, "    external_id         = %q\n", r.ExternalID)
		}
		b.WriteString("    tag_session         = true\n    set_source_identity = true\n")
		for _, c := range r.Conditions {
			b.WriteString("    condition {\n")
			if c.Test != "" {
				fmt.Fprintf(&b, "      test   = %q\n", c.Test)
			}
			if c.Tag != "" {
				fmt.Fprintf(&b, "      tag    = %q\n", c.Tag)
			} else {
				fmt.Fprintf(&b, "      key    = %q\n", c.Key)
			}
			fmt.Fprintf(&b, "      values = %s\n    }\n", hclList(c.Values))
		}
		b.WriteString("  }\n}\n")
	}
	b.WriteString(o.EmulatorHCL)
	return b.String()
}

// hclList is an HCL list of strings.
func hclList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// EmulatorLogs is what the emulator logged so far (Options.EmulatorLog; empty without it).
func (w *World) EmulatorLogs() string {
	if w.logs == nil {
		return ""
	}
	return w.logs.String()
}
