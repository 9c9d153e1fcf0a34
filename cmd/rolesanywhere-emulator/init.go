package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
)

// The names init writes: an account, a trust anchor, a profile and a role, and the leaf's SPIFFE ID.
const (
	initAccount     = "123456789012"
	initRegion      = "us-east-1"
	initTrustAnchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
	initProfile     = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
	initRole        = "arn:aws:iam::123456789012:role/app"
	initSpiffeID    = "spiffe://example.org/ns/prod/app"
	// initLeafLifetime is how long the leaf init writes is valid; init again for a new one.
	initLeafLifetime = 7 * 24 * time.Hour
)

// newInitCommand is `rolesanywhere-emulator init DIR`: everything the emulator walkthrough needs without
// SPIRE, and the commands that use it.
func newInitCommand() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Write a CA, a leaf certificate and its key, an emulator config and an aws CLI config into DIR",
		Long: `Write what a walkthrough of the emulator needs without SPIRE into DIR (created if missing):

  ca.pem         a self-signed CA (EC P-256), the trust anchor's bundle; its key is not kept
  leaf.pem       a leaf it signed, as SPIRE would issue it: SPIFFE ID ` + initSpiffeID + ` (URI SAN),
                 CA:FALSE, digitalSignature, valid for 7 days
  leaf-key.pem   the leaf's private key (mode 0600)
  emulator.hcl   an emulator config trusting ca.pem: account ` + initAccount + `, one trust anchor, one
                 profile and the role ` + initRole + ` (no jwt_bundle: no JWT is used)
  aws-config     an aws CLI config whose profile "emulator" runs spiffe-aws-credential-process with the leaf

and print the commands that start the emulator and use the leaf with spiffe-aws-credential-process and
the aws CLI. Existing files of these names are replaced.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := net.SplitHostPort(listen); err != nil {
				return cli.Usagef("--listen %q: want host:port, e.g. 127.0.0.1:8443: %w", listen, err)
			}
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return cli.Usage(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			if err := writeInit(dir, "http://"+listen, time.Now()); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			return printInit(cmd.OutOrStdout(), dir, listen)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8443", "the address the emulator will listen on, written into the printed commands and aws-config")
	return cmd
}

// writeInit writes init's files into dir.
func writeInit(dir, endpoint string, now time.Time) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"rolesanywhere-emulator init"}, CommonName: "emulator walkthrough CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(initLeafLifetime + time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	ca, err = x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	id, _ := url.Parse(initSpiffeID)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"SPIRE"}},
		URIs:                  []*url.URL{id},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(initLeafLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}, ca, leafKey.Public(), caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644},
		{"leaf.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o644},
		{"leaf-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		{"emulator.hcl", []byte(initEmulatorConfig()), 0o644},
		{"aws-config", []byte(fmt.Sprintf("# Written by rolesanywhere-emulator init.\n[profile emulator]\nregion = %s\ncredential_process = %s\n", initRegion, credentialProcessLine(dir, endpoint))), 0o644},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		// Replace, never write through: a file of that name (or a link) from before is removed first.
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// credentialProcessLine is the spiffe-aws-credential-process command line for init's leaf.
func credentialProcessLine(dir, endpoint string) string {
	return fmt.Sprintf("spiffe-aws-credential-process --certificate %s --private-key %s --trust-anchor-arn %s --profile-arn %s --role-arn %s --endpoint %s",
		filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf-key.pem"), initTrustAnchor, initProfile, initRole, endpoint)
}

func initEmulatorConfig() string {
	return fmt.Sprintf(`# Written by rolesanywhere-emulator init: a trust anchor for ca.pem, one profile and one role.
account_id = %q

trust_anchor %q {
  ca_bundle_file = "ca.pem" # relative names are resolved from this file's directory
}

profile %q {
  role_arns        = [%q]
  duration_seconds = 43200
}

role %q {
  condition {
    tag    = "x509SAN/URI"
    values = ["spiffe://example.org/ns/prod/*"]
  }
}
`, initAccount, initTrustAnchor, initProfile, initRole, initRole)
}

// printInit prints what init wrote and the commands that use it.
func printInit(w io.Writer, dir, listen string) error {
	endpoint := "http://" + listen
	_, err := fmt.Fprintf(w, `rolesanywhere-emulator init: wrote ca.pem, leaf.pem, leaf-key.pem, emulator.hcl and aws-config into %[1]s
(the leaf is %[2]s, valid for 7 days; run init again for a new one).

Start the emulator:

  rolesanywhere-emulator --config %[1]s/emulator.hcl --listen %[3]s

then, in another terminal, credentials as credential_process JSON:

  %[4]s

and the aws CLI through that credential_process line:

  AWS_CONFIG_FILE=%[1]s/aws-config AWS_PROFILE=emulator aws sts get-caller-identity --endpoint-url %[5]s
`, dir, initSpiffeID, listen, credentialProcessLine(dir, endpoint), endpoint)
	return err
}
