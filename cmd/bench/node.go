package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// node: one `spiffe-aws-bridge run` in node mode serving many workloads (1,000; 100 with -quick), each a
// profile with its own selector on svidtest's fake Delegated Identity API and its own credentials file,
// against the emulator with its quota off. Measured: resident memory once every profile holds
// credentials, CPU while idle, and a mass rotation (every workload's SVID re-issued at once, as after a
// SPIRE CA rotation) with spread 0: every file rewritten, and the time from the agent's push of the new
// SVIDs to each file's rename (seen by inotify); then the same with the fake agent's minting in the window.
func (b *bench) node() error {
	n, idle := 1000, 60*time.Second
	if b.quick {
		n, idle = 100, 10*time.Second
	}
	bin, err := b.buildBinary()
	if err != nil {
		return err
	}
	w, err := testworld.Start(testworld.Options{QuotaPerSecond: -1})
	if err != nil {
		return err
	}
	defer w.Close()
	entries := make([]svidtest.WorkloadEntry, n)
	for i := range entries {
		entries[i] = svidtest.WorkloadEntry{
			ID:        spiffeid.RequireFromString(fmt.Sprintf("spiffe://example.org/ns/prod/w%d", i)),
			Selectors: []string{fmt.Sprintf("bench:workload:%d", i)},
		}
	}
	admin, err := svidtest.StartDelegated(svidtest.DelegatedOptions{CA: w.Agent.CA(), Entries: entries})
	if err != nil {
		return err
	}
	defer admin.Close()

	var cfg strings.Builder
	cfg.WriteString(w.Config(fmt.Sprintf("log_level = \"warn\"\ndelegated_identity {\n  admin_address = %q\n}\n", admin.Addr())))
	// The files go where examples/node puts them: tmpfs (/run there, /dev/shm here when it exists). On a
	// disk every write's two fsyncs queue behind the journal, and a mass rotation measures the disk.
	filesDir, where := b.dir, "files on "+b.dir
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "sab-node"); err == nil {
			defer os.RemoveAll(d)
			filesDir, where = d, "files on tmpfs"
		}
	}
	files := make([]string, n)
	for i := range files {
		files[i] = filepath.Join(filesDir, fmt.Sprintf("w%d", i), "credentials")
		// Every workload is played by the bench's own user, so that it runs unprivileged; on a host each
		// file would belong to its workload's uid.
		cfg.WriteString(w.ProfileBlock(fmt.Sprintf("w%d", i), testworld.RoleARN, fmt.Sprintf("  workload_selectors = [\"bench:workload:%d\"]\n", i)+
			testworld.Refresh+fmt.Sprintf("  credentials_file {\n    path  = %q\n    owner = %d\n  }\n", files[i], os.Getuid())))
	}
	cfgPath := filepath.Join(b.dir, "node.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgPath)
	cmd.Stderr = os.Stderr
	if e := os.Getenv("SAB_DAEMON_ENV"); e != "" { // e.g. GOGC=100, to compare with the node-mode default
		cmd.Env = append(os.Environ(), strings.Fields(e)...)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()

	start := time.Now()
	inodes := make([]uint64, n)
	if err := waitAll(files, inodes, 120*time.Second); err != nil {
		return fmt.Errorf("first credentials: %w", err)
	}
	first := time.Since(start)
	b.add(fmt.Sprintf("node mode, %d delegated profiles: start to every file written", n), first.Round(time.Millisecond).String(), "(reported)", nil)

	time.Sleep(2 * time.Second) // settle
	cpu0, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return err
	}
	time.Sleep(idle)
	cpu1, _ := cpuTime(cmd.Process.Pid)
	rss, err := procStatusKB(cmd.Process.Pid, "VmRSS")
	if err != nil {
		return err
	}
	b.add(fmt.Sprintf("node mode, %d delegated profiles: resident memory", n), fmt.Sprintf("%.1f MB", float64(rss)/1024), "≤ 64 MB", pass(rss <= 64*1024))
	used := cpu1 - cpu0
	b.add(fmt.Sprintf("node mode, %d delegated profiles: CPU while idle for %s", n, idle), fmt.Sprintf("%.2f s", used.Seconds()),
		"≈ 0 (≤ 0.05 s)", pass(used <= 50*time.Millisecond))

	// The mass rotation: every workload's SVID re-issued at once; each file must be replaced. The fake
	// agent mints the 1,000 SVIDs first and pushes them together, so the clock runs from the push, as the
	// bridge sees a rotation; a second rotation is timed from the call that mints them, on the same CPUs.
	push, err := admin.PrepareRotation()
	if err != nil {
		return err
	}
	lat, err := massRotation(files, inodes, func() error { push(); return nil })
	if err != nil {
		return fmt.Errorf("mass rotation: %w", err)
	}
	p50, p99, worst := percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1)
	b.add(fmt.Sprintf("node mode, mass rotation of %d: files rewritten", n), fmt.Sprintf("%d of %d", n, n), "all", pass(true))
	b.add(fmt.Sprintf("node mode, mass rotation of %d: agent pushes the new SVIDs → file renamed, p50", n), ms(p50), "(reported)", nil)
	b.add(fmt.Sprintf("node mode, mass rotation of %d: agent pushes the new SVIDs → file renamed, p99 (max %s; %s)", n, ms(worst), where), ms(p99), "≤ 1 s", pass(p99 <= time.Second))
	lat, err = massRotation(files, inodes, admin.Rotate)
	if err != nil {
		return fmt.Errorf("mass rotation with minting: %w", err)
	}
	b.add(fmt.Sprintf("node mode, mass rotation of %d, the fake agent minting the %d SVIDs on the same CPUs: p50 / p99", n, n),
		ms(percentile(lat, 0.5))+" / "+ms(percentile(lat, 0.99)), "(reported)", nil)
	time.Sleep(5 * time.Second)
	if rss, err = procStatusKB(cmd.Process.Pid, "VmRSS"); err != nil {
		return err
	}
	b.add(fmt.Sprintf("node mode, %d delegated profiles: resident memory after the two mass rotations", n), fmt.Sprintf("%.1f MB", float64(rss)/1024), "≤ 64 MB", pass(rss <= 64*1024))
	return nil
}

// massRotation runs rotate and returns, for each file, the time from the call to the file's replacement
// (a rename into place, seen by inotify); every file must then hold credentials in a new inode.
func massRotation(files []string, inodes []uint64, rotate func() error) ([]time.Duration, error) {
	rw, err := watchRenames(files)
	if err != nil {
		return nil, err
	}
	defer rw.close()
	t0 := time.Now()
	if err := rotate(); err != nil {
		return nil, err
	}
	at, err := rw.wait(len(files), 120*time.Second)
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, len(files))
	for i := range files {
		lat[i] = at[i].Sub(t0)
	}
	if err := waitAll(files, inodes, 10*time.Second); err != nil {
		return nil, fmt.Errorf("after the renames: %w", err)
	}
	return lat, nil
}

// waitAll waits until every file holds credentials in a new inode (the bridge renames a new file into
// place); inodes holds the last inode seen and is updated.
func waitAll(files []string, inodes []uint64, timeout time.Duration) error {
	pending := make(map[int]bool, len(files))
	for i := range files {
		pending[i] = true
	}
	deadline := time.Now().Add(timeout)
	for len(pending) > 0 {
		for i := range pending {
			var st syscall.Stat_t
			if err := syscall.Stat(files[i], &st); err != nil || st.Ino == inodes[i] {
				continue
			}
			data, err := os.ReadFile(files[i])
			if err != nil || !strings.Contains(string(data), "aws_session_token") {
				continue
			}
			inodes[i] = st.Ino
			delete(pending, i)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d files not written within %s", len(pending), len(files), timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}
