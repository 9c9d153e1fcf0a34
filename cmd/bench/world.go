package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

const (
	trustAnchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
	profileARN  = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
	roleARN     = "arn:aws:iam::123456789012:role/app"
	spiffeID    = "spiffe://example.org/ns/prod/app"
)

// world is a fake SPIRE agent and an emulator (no quota) trusting its CA.
type world struct {
	agent *svidtest.Server
	emu   *emulator.Server
}

func newWorld(dir string) (*world, error) {
	agent, err := svidtest.Start(svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: spiffeid.RequireFromString(spiffeID)}}})
	if err != nil {
		return nil, err
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, agent.CA().BundlePEM(), 0o600); err != nil {
		return nil, err
	}
	cfg, err := emulator.ParseConfig([]byte(fmt.Sprintf(`
account_id       = "123456789012"
quota_per_second = -1
trust_anchor %q {
  ca_bundle_file = %q
}
profile %q {
  role_arns = [%q]
}
role %q {
  condition {
    tag    = "x509SAN/URI"
    values = ["spiffe://example.org/ns/prod/*"]
  }
}
`, trustAnchor, ca, profileARN, roleARN, roleARN)), filepath.Join(dir, "emulator.hcl"))
	if err != nil {
		agent.Close()
		return nil, err
	}
	emu, err := emulator.NewServer(emulator.Options{Config: cfg})
	if err != nil {
		agent.Close()
		return nil, err
	}
	return &world{agent: agent, emu: emu}, nil
}

func (w *world) close() {
	w.emu.Close()
	w.agent.Close()
}

// bridgeProfile is one profile block writing section name of credsPath.
func (w *world) bridgeProfile(name, credsPath string) string {
	return fmt.Sprintf(`
profile %q {
  spiffe_id         = %q
  trust_anchor_arn  = %q
  profile_arn       = %q
  role_arn          = %q
  endpoint          = %q
  insecure_endpoint = true
  refresh {
    rotation_spread = "0s"
  }
  credentials_file {
    path = %q
  }
}
`, name, spiffeID, trustAnchor, profileARN, roleARN, w.emu.URL, credsPath)
}

// buildBinary builds the release binaries once, with scripts/build.sh (what users run), and returns the
// path of spiffe-aws-bridge; spiffe-aws-credential-process is in the same directory.
func (b *bench) buildBinary() (string, error) {
	if b.bin != "" {
		return b.bin, nil
	}
	out, err := exec.Command("bash", "scripts/build.sh", b.dir).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("scripts/build.sh (run bench from the repository root): %v\n%s", err, out)
	}
	bin := filepath.Join(b.dir, "spiffe-aws-bridge")
	b.bin = bin
	return bin, nil
}

// percentile of sorted durations, p in [0,1].
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
