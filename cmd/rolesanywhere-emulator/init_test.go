package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer/keyfile"
)

// TestInitWritesAWalkthroughTheEmulatorAccepts: what init writes loads as the emulator's config, and its
// leaf and key sign a CreateSession the emulator (verifying as AWS does) answers with credentials for the
// role init names; the key file is private, and init prints the commands that use the files.
func TestInitWritesAWalkthroughTheEmulatorAccepts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "walk")
	var stdout, stderr bytes.Buffer
	root := newCommand()
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	if code := cli.Execute(context.Background(), root, []string{"init", dir, "--listen", "127.0.0.1:9999"}); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, stderr.String())
	}
	for _, want := range []string{
		"rolesanywhere-emulator --config " + dir + "/emulator.hcl --listen 127.0.0.1:9999",
		"spiffe-aws-credential-process --certificate " + dir + "/leaf.pem --private-key " + dir + "/leaf-key.pem",
		"AWS_CONFIG_FILE=" + dir + "/aws-config AWS_PROFILE=emulator aws sts get-caller-identity --endpoint-url http://127.0.0.1:9999",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("init does not print %q:\n%s", want, stdout.String())
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "leaf-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("leaf-key.pem: %v, mode %v; want 0600", err, fi.Mode())
	}
	awsConfig, _ := os.ReadFile(filepath.Join(dir, "aws-config"))
	if !strings.Contains(string(awsConfig), "[profile emulator]") || !strings.Contains(string(awsConfig), "--endpoint http://127.0.0.1:9999") {
		t.Errorf("aws-config:\n%s", awsConfig)
	}

	cfg, err := emulator.LoadConfig(filepath.Join(dir, "emulator.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := emulator.NewServer(emulator.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	id, err := keyfile.Load(filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf-key.pem"), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := signer.New(signer.Options{}).CreateSession(context.Background(), signer.CreateSessionInput{
		Identity: id, TrustAnchorARN: initTrustAnchor, ProfileARN: initProfile, RoleARN: initRole, Endpoint: srv.URL,
	})
	if err != nil {
		t.Fatalf("CreateSession with init's leaf: %v", err)
	}
	if !strings.HasPrefix(c.AssumedRoleARN, "arn:aws:sts::123456789012:assumed-role/app/") {
		t.Errorf("assumed role %q", c.AssumedRoleARN)
	}

	// init DIR again replaces the files (a new leaf), and refuses a missing DIR as a usage error.
	before, _ := os.ReadFile(filepath.Join(dir, "leaf.pem"))
	again := newCommand()
	again.SetOut(io.Discard)
	if code := cli.Execute(context.Background(), again, []string{"init", dir}); code != 0 {
		t.Fatalf("init again: exit %d", code)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "leaf.pem")); bytes.Equal(before, after) {
		t.Error("init again kept the old leaf")
	}
	root = newCommand()
	root.SetErr(&stderr)
	if code := cli.Execute(context.Background(), root, []string{"init"}); code != 2 {
		t.Errorf("init without DIR: exit %d, want 2", code)
	}
}
