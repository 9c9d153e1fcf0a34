package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

// hclBlock matches a fenced ```hcl block of a Markdown file; the fence's info string may carry a second
// word ("```hcl emulator") naming another loader.
var hclBlock = regexp.MustCompile("(?ms)^```hcl([^\\n]*)\\n(.*?)^```")

// TestEveryConfigSnippetInTheDocsParses keeps the docs honest: every ```hcl block of the README, the
// examples' READMEs and docs/ must load with the real loader: a bridge config (```hcl), an emulator config
// (```hcl emulator, its files not read) or a SPIRE config (```hcl spire, HCL syntax only).
func TestEveryConfigSnippetInTheDocsParses(t *testing.T) {
	docs := []string{"../../README.md"}
	more, _ := filepath.Glob("../../examples/*/README.md")
	docs = append(docs, more...)
	more, _ = filepath.Glob("../../docs/*.md")
	docs = append(docs, more...)
	checked := 0
	for _, doc := range docs {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range hclBlock.FindAllStringSubmatch(string(data), -1) {
			name := fmt.Sprintf("%s#%d", filepath.Base(doc), i+1)
			var err error
			switch kind := strings.TrimSpace(m[1]); kind {
			case "":
				_, err = config.Parse([]byte(m[2]), name)
			case "emulator":
				_, err = emulator.DecodeConfig([]byte(m[2]), name)
			case "spire":
				_, diags := hclparse.NewParser().ParseHCL([]byte(m[2]), name)
				if diags.HasErrors() {
					err = diags
				}
			default:
				t.Errorf("%s: snippet %d: unknown kind %q (want hcl, hcl emulator or hcl spire)", doc, i+1, kind)
				continue
			}
			if err != nil {
				t.Errorf("%s: snippet %d does not parse: %v\n%s", doc, i+1, err, m[2])
			}
			checked++
		}
	}
	if checked < 2 {
		t.Fatalf("found only %d config snippets; the README has more", checked)
	}
}

// shBlock matches a fenced ```sh block of a Markdown file.
var shBlock = regexp.MustCompile("(?ms)^```sh\\n(.*?)^```")

// TestTheEmulatorExampleRunsAsWritten runs the README's emulator example as a user would: its config
// block as emulator.hcl, beside the bundle.pem and jwks.json its first two commands fetch from SPIRE
// (made here by a test CA), and its rolesanywhere-emulator command line with the real binary (on a free
// port instead of 8443). Without jwks.json it fails naming the file and the fix.
func TestTheEmulatorExampleRunsAsWritten(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var config, command string
	for _, m := range hclBlock.FindAllStringSubmatch(string(data), -1) {
		if strings.TrimSpace(m[1]) == "emulator" {
			config = m[2]
		}
	}
	for _, m := range shBlock.FindAllStringSubmatch(string(data), -1) {
		for _, line := range strings.Split(m[1], "\n") {
			if strings.HasPrefix(line, "rolesanywhere-emulator ") {
				command = line
			}
		}
	}
	if config == "" || !strings.Contains(command, "--listen 127.0.0.1:8443") {
		t.Fatalf("the README has no emulator config block (%d bytes) or command line (%q)", len(config), command)
	}
	command = strings.Replace(command, "--listen 127.0.0.1:8443", "--listen 127.0.0.1:0", 1)

	dir := t.TempDir()
	ca, err := svidtest.NewCA(svidtest.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"emulator.hcl": []byte(config), "bundle.pem": ca.BundlePEM()} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func() (*exec.Cmd, *bufio.Reader, *strings.Builder) {
		cmd := exec.Command("bash", "-c", "exec "+command)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binPath)+":"+os.Getenv("PATH"))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, bufio.NewReader(stdout), &stderr
	}

	// Without jwks.json: the error names the file and says what to put there.
	cmd, _, stderr := run()
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 ||
		!strings.Contains(stderr.String(), "emulator.hcl: jwt_bundle: jwks_file: open jwks.json: no such file or directory") ||
		!strings.Contains(stderr.String(), "or drop the jwt_bundle block") {
		t.Fatalf("without jwks.json: %v\n%s", err, stderr.String())
	}

	// As written, with both files.
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), ca.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, out, stderr := run()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	url, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("the emulator printed no URL: %v\n%s", err, stderr.String())
	}
	resp, err := http.Post(strings.TrimSpace(url)+"/sessions", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest { // unsigned: refused as AWS would
		t.Fatalf("unsigned CreateSession: HTTP %d", resp.StatusCode)
	}
}

// TestTheREADMELinksTheCLIReference: the README points at the generated reference and documents shell
// completion and the exit codes.
func TestTheREADMELinksTheCLIReference(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"](docs/cli/spiffe-aws-bridge.md)", "](docs/cli/spiffe-aws-credential-process.md)",
		"](docs/cli/rolesanywhere-emulator.md)", "docs/man", "spiffe-aws-bridge completion bash", "RestartPreventExitStatus=2"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
}
