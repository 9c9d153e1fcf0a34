package emulator_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
)

// TestSecurityEmulatorRefusesACABundleAnotherUserCanWrite: an emulator running as root refuses a CA
// bundle owned by uid 65534, who could otherwise make it trust their own CA and issue them credentials.
func TestSecurityEmulatorRefusesACABundleAnotherUserCanWrite(t *testing.T) {
	safefstest.NeedRoot(t, "gives the CA bundle to another user (uid 65534)")
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(bundle, []byte("not checked before the owner"), 0o644); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, bundle, safefstest.Nobody, safefstest.Nobody)
	cfg := filepath.Join(dir, "emulator.hcl")
	if err := os.WriteFile(cfg, []byte(`account_id = "123456789012"
trust_anchor "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201" {
  ca_bundle_file = "bundle.pem"
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := emulator.LoadConfig(cfg)
	if !errors.Is(err, trusted.ErrUntrusted) || !strings.Contains(err.Error(), "CA bundle file "+bundle+" is owned by uid 65534") {
		t.Fatalf("LoadConfig = %v; want the CA bundle refused", err)
	}
}
