package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// daemon: `spiffe-aws-bridge run` with 10 profiles: resident memory once all hold credentials, and CPU
// time spent while idle (between refreshes nothing should run: no polling). Then the same config under
// `spiffe-aws-bridge-k8s run`, the Kubernetes build, for what linking the Kubernetes client costs (reported).
func (b *bench) daemon() error {
	bin, err := b.buildBinary()
	if err != nil {
		return err
	}
	idle := 60 * time.Second
	if b.quick {
		idle = 10 * time.Second
	}
	rss, used, err := b.tenProfiles(bin, idle)
	if err != nil {
		return err
	}
	b.add("daemon (spiffe-aws-bridge), 10 profiles: resident memory", fmt.Sprintf("%.1f MB", float64(rss)/1024), "≤ 20 MB", pass(rss <= 20*1024))
	b.add(fmt.Sprintf("daemon (spiffe-aws-bridge), 10 profiles: CPU while idle for %s", idle), fmt.Sprintf("%.2f s", used.Seconds()),
		"≈ 0 (≤ 0.05 s)", pass(used <= 50*time.Millisecond))
	rss, _, err = b.tenProfiles(filepath.Join(filepath.Dir(bin), "spiffe-aws-bridge-k8s"), 2*time.Second)
	if err != nil {
		return fmt.Errorf("spiffe-aws-bridge-k8s: %w", err)
	}
	b.add("for comparison: spiffe-aws-bridge-k8s run, the same 10 profiles: resident memory", fmt.Sprintf("%.1f MB", float64(rss)/1024), "", nil)
	return nil
}

// tenProfiles runs `BIN run` with 10 profiles against a test world, waits until all hold credentials,
// and returns its resident memory (kB) after idle and the CPU time it used during idle.
func (b *bench) tenProfiles(bin string, idle time.Duration) (int64, time.Duration, error) {
	w, err := testworld.Start(testworld.Options{QuotaPerSecond: -1})
	if err != nil {
		return 0, 0, err
	}
	defer w.Close()
	dir := filepath.Join(b.dir, "daemon-"+filepath.Base(bin))
	creds := filepath.Join(dir, "credentials")
	cfg := w.Config("log_level = \"warn\"\n")
	for i := 0; i < 10; i++ {
		cfg += w.Profile(fmt.Sprintf("p%d", i), testworld.CredentialsFile(creds))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, 0, err
	}
	cfgPath := filepath.Join(dir, "daemon.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgPath)
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(creds)
		if strings.Count(string(data), "aws_session_token") == 10 {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("the 10 profiles did not all get credentials within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // settle
	cpu0, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(idle)
	cpu1, _ := cpuTime(cmd.Process.Pid)
	rss, err := procStatusKB(cmd.Process.Pid, "VmRSS")
	if err != nil {
		return 0, 0, err
	}
	return rss, cpu1 - cpu0, nil
}

// cpuTime is user+system CPU time of pid from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the ")" closing the command name: state is field 3; utime 14, stime 15.
	rest := string(data[bytes.LastIndexByte(data, ')')+2:])
	f := strings.Fields(rest)
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

func procStatusKB(pid int, key string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}
