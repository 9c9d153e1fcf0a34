package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	devmode "github.com/spiffe-aws-bridge/spiffe-aws-bridge/dev"
)

// readmeSection returns the README's text from the line starting with heading up to the next heading of
// the same or a higher level.
func readmeSection(t *testing.T, readme, heading string) string {
	t.Helper()
	i := strings.Index(readme, "\n"+heading)
	if i < 0 {
		t.Fatalf("the README has no %q", heading)
	}
	rest := readme[i+1:]
	level := strings.Count(strings.Fields(heading)[0], "#")
	lines := strings.SplitAfter(rest, "\n")
	n, inFence := len(lines[0]), false
	for _, line := range lines[1:] {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if h := strings.Fields(line); !inFence && len(h) > 0 && strings.Trim(h[0], "#") == "" && len(h[0]) <= level {
			break
		}
		n += len(line)
	}
	return rest[:n]
}

// shCommands returns the command lines of the ```sh blocks of md: comments and blank lines dropped,
// trailing comments cut, continuation lines joined.
func shCommands(md string) []string {
	var out []string
	for _, m := range shBlock.FindAllStringSubmatch(md, -1) {
		cur := ""
		for _, line := range strings.Split(m[1], "\n") {
			if i := strings.Index(line, "   #"); i >= 0 {
				line = line[:i]
			}
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if strings.HasSuffix(line, "\\") {
				cur += strings.TrimSuffix(line, "\\")
				continue
			}
			out = append(out, strings.TrimSpace(cur+line))
			cur = ""
		}
	}
	return out
}

// commandStarting returns the one command of cmds that starts with prefix.
func commandStarting(t *testing.T, cmds []string, prefix string) string {
	t.Helper()
	for _, c := range cmds {
		if strings.HasPrefix(c, prefix) {
			return c
		}
	}
	t.Fatalf("no README command starts with %q among %q", prefix, cmds)
	return ""
}

// userShell runs a command line with bash as a user with the binaries on PATH and no AWS_* settings
// would; it returns the process, started, with its stdout as a reader.
func userShell(t *testing.T, line string) (*exec.Cmd, *bufio.Reader, *strings.Builder) {
	t.Helper()
	c := exec.Command("bash", "-c", "exec "+line)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "PATH=") {
			c.Env = append(c.Env, kv)
		}
	}
	c.Env = append(c.Env, "PATH="+filepath.Dir(binPath)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	return c, bufio.NewReader(out), &stderr
}

// devBanner reads dev's banner up to its "Stop with Ctrl-C." line, and drains the rest.
func devBanner(t *testing.T, out *bufio.Reader, stderr *strings.Builder) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := out.ReadString('\n')
		b.WriteString(line)
		if strings.HasPrefix(line, "Stop with Ctrl-C.") {
			break
		}
		if err != nil {
			t.Fatalf("dev printed no banner: %v\n%s\n%s", err, b.String(), stderr.String())
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return b.String()
}

// stopDev interrupts dev as Ctrl-C would and waits for it.
func stopDev(t *testing.T, c *exec.Cmd) {
	t.Helper()
	_ = c.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev exited with %v after SIGINT, want 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dev did not stop on SIGINT")
	}
}

// TestANewUsersFirstHour follows the README as a new user would, with the commands taken from the README's
// own text (so that the test fails when the README drifts): install from the clone, `dev` and the aws CLI
// command it prints, the emulator walkthrough without SPIRE (init, the emulator, credential-process and
// the aws CLI), `dev --chain` and the `check` line its banner prints, and `dev --dir` again without
// --chain.
func TestANewUsersFirstHour(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: dev three times, the emulator walkthrough and the aws CLI (a Python start-up per call); the full run covers it")
	}
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	binDir := filepath.Dir(binPath)
	clis := awsCLIs()
	if len(clis) == 0 {
		t.Fatal("the aws CLI is not installed (CI installs it: .ci/run)")
	}

	// 1. Install from the clone: the quick start's first command is scripts/build.sh into dist/, which is
	// how TestMain built every binary these steps run (into binDir, which stands for dist/ below).
	quick := shCommands(readmeSection(t, readme, "## Quick start"))
	if len(quick) == 0 || quick[0] != "scripts/build.sh dist/" {
		t.Fatalf("the quick start does not begin with building from the clone: %q", quick)
	}
	for _, want := range []string{"go test -short ./...", "go test -race ./..."} {
		if !strings.Contains(strings.Join(quick, "\n"), want) {
			t.Errorf("the quick start does not name %q", want)
		}
	}
	install := shCommands(readmeSection(t, readme, "## Install"))
	if !strings.Contains(install[0], "scripts/build.sh dist/") || !strings.HasPrefix(install[len(install)-1], "go install") {
		t.Errorf("Install does not lead with the build from the clone, then go install: %q", install)
	}
	dist := func(line string) string { return strings.ReplaceAll(line, "dist/", binDir+"/") }

	// 2. dev, and the aws CLI command its banner prints (through the credentials file).
	devDir := t.TempDir()
	dev, out, stderr := userShell(t, dist(commandStarting(t, quick, "dist/spiffe-aws-bridge dev"))+" --dir "+devDir+" --duration 2m")
	banner := devBanner(t, out, stderr)
	eventually(t, "dev's credentials", func() bool {
		return profileKeys(filepath.Join(devDir, "credentials"), "dev")["aws_access_key_id"] != ""
	})
	blocks := bannerCommands(banner)
	if len(blocks) == 0 || !strings.Contains(blocks[0], "aws sts get-caller-identity") {
		t.Fatalf("dev's banner has no aws CLI command:\n%s", banner)
	}
	for _, aws := range clis {
		got, err := runAsAUserWould(t, filepath.Dir(aws), blocks[0])
		if err != nil || !strings.Contains(string(got), `"arn:aws:sts::123456789012:assumed-role/dev-workload/`) {
			t.Fatalf("dev's aws CLI command with %s: %v\n%s\n%s", aws, err, blocks[0], got)
		}
	}
	stopDev(t, dev)
	cfg, _ := os.ReadFile(filepath.Join(devDir, "bridge.hcl"))
	if strings.Contains(string(cfg), "insecure_endpoint") {
		t.Errorf("dev's bridge.hcl sets insecure_endpoint for the loopback emulator:\n%s", cfg)
	}

	// 3. The emulator without SPIRE: init, then the commands the README gives, which init also prints.
	emuSection := readmeSection(t, readme, "## The local Roles Anywhere emulator")
	i := strings.Index(emuSection, "**Without SPIRE**")
	if i < 0 {
		t.Fatal("the emulator section has no walkthrough without SPIRE")
	}
	walk := shCommands(emuSection[i:])[:4]
	port := freeTCPPort(t)
	emuDir := filepath.Join(t.TempDir(), "sab-emu")
	local := func(line string) string {
		line = strings.ReplaceAll(line, "/tmp/sab-emu", emuDir)
		return strings.ReplaceAll(line, "127.0.0.1:8443", fmt.Sprintf("127.0.0.1:%d", port))
	}
	initLine := commandStarting(t, walk, "rolesanywhere-emulator init ")
	r := runArgv(t, nil, "bash", "-c", "PATH="+binDir+":$PATH "+local(initLine)+" --listen "+fmt.Sprintf("127.0.0.1:%d", port))
	if r.code != 0 {
		t.Fatalf("%s: exit %d\n%s", initLine, r.code, r.stderr)
	}
	for _, line := range walk[1:] {
		if !strings.Contains(r.stdout, local(strings.SplitN(line, "   #", 2)[0])) {
			t.Errorf("init does not print the README's command\n%s\nit prints:\n%s", local(line), r.stdout)
		}
	}
	_, emuOut, emuErr := userShell(t, local(commandStarting(t, walk, "rolesanywhere-emulator --config")))
	if url, err := emuOut.ReadString('\n'); err != nil || strings.TrimSpace(url) != fmt.Sprintf("http://127.0.0.1:%d", port) {
		t.Fatalf("the emulator printed %q, %v\n%s", url, err, emuErr.String())
	}
	cp := runArgv(t, nil, "bash", "-c", "PATH="+binDir+":$PATH "+local(commandStarting(t, walk, "spiffe-aws-credential-process ")))
	parseProcessJSON(t, cp)
	for _, aws := range clis {
		got, err := runAsAUserWould(t, binDir+string(os.PathListSeparator)+filepath.Dir(aws), local(commandStarting(t, walk, "AWS_CONFIG_FILE=")))
		if err != nil || !strings.Contains(string(got), `"arn:aws:sts::123456789012:assumed-role/app/`) {
			t.Fatalf("the walkthrough's aws CLI command with %s: %v\n%s", aws, err, got)
		}
	}

	// 4. dev --chain, and the check line its banner prints, as the README shows it.
	chainCmds := shCommands(readmeSection(t, readme, "## Cross-account roles"))
	chainDir := filepath.Join(t.TempDir(), "sab-dev")
	sub := func(line string) string { return strings.ReplaceAll(line, "/tmp/sab-dev", chainDir) }
	checkLine := sub(commandStarting(t, chainCmds, "spiffe-aws-bridge check --config"))
	dev, out, stderr = userShell(t, sub(commandStarting(t, chainCmds, "spiffe-aws-bridge dev --chain"))+" --duration 2m")
	banner = devBanner(t, out, stderr)
	if !strings.Contains(banner, checkLine) {
		t.Fatalf("dev --chain's banner lacks the README's line %q:\n%s", checkLine, banner)
	}
	eventually(t, "the cross-account profile", func() bool {
		return profileKeys(filepath.Join(chainDir, "credentials"), devmode.ChainProfile)["aws_access_key_id"] != ""
	})
	r = runArgv(t, nil, "bash", "-c", "PATH="+binDir+":$PATH "+checkLine)
	if r.code != 0 || !strings.Contains(r.stdout, devmode.RoleB) || !strings.Contains(r.stdout, "All checks passed.") {
		t.Fatalf("%s: exit %d\n%s\n%s", checkLine, r.code, r.stdout, r.stderr)
	}
	line := regexp.MustCompile(`AWS_SHARED_CREDENTIALS_FILE=\S+ AWS_PROFILE=dev-cross-account aws sts get-caller-identity .*`).FindString(banner)
	got, err := runAsAUserWould(t, filepath.Dir(clis[0]), line)
	var id struct{ Account string }
	if err != nil || json.Unmarshal(got, &id) != nil || id.Account != devmode.AccountB {
		t.Fatalf("%s: %v\n%s", line, err, got)
	}
	stopDev(t, dev)

	// 5. dev --dir again, without --chain: no section of the earlier run is left behind.
	dev, out, stderr = userShell(t, dist(commandStarting(t, quick, "dist/spiffe-aws-bridge dev"))+" --dir "+chainDir+" --duration 2m")
	devBanner(t, out, stderr)
	creds := filepath.Join(chainDir, "credentials")
	eventually(t, "dev's credentials", func() bool { return profileKeys(creds, "dev")["aws_access_key_id"] != "" })
	if content, _ := os.ReadFile(creds); strings.Contains(string(content), "["+devmode.ChainProfile+"]") {
		// The sections only: the file holds secrets, which a test log must not.
		t.Errorf("dev --dir left the [%s] section of the --chain run: sections %q", devmode.ChainProfile,
			regexp.MustCompile(`(?m)^\[[^\]]+\]`).FindAllString(string(content), -1))
	}
	stopDev(t, dev)
}
