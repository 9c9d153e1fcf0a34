package main

// Adversarial end-to-end tests of design.md §7's "local user who wants the others to go without": the
// daemon binary, run as a process, attacked over real loopback connections; its memory and descriptors
// read from /proc.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// procStatusKB reads a "Name:   123 kB" field of /proc/<pid>/status, in KiB.
func procStatusKB(t *testing.T, pid int, field string) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("%s: %q", field, v)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// openDescriptors counts the descriptors pid holds.
func openDescriptors(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// headerFlood opens conns connections to addr at once, each sending a request to path whose header never
// ends, up to size bytes, and gives up on a connection after limit; it returns when every one is done.
func headerFlood(addr, path string, conns, size int, limit time.Duration) (sent int64) {
	var total atomic.Int64
	var wg sync.WaitGroup
	line := []byte("X-Filler: " + strings.Repeat("a", 1014) + "\r\n") // 1 KiB per header line
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(limit))
			if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, addr); err != nil {
				return
			}
			for n := 0; n < size; n += len(line) {
				if _, err := c.Write(line); err != nil {
					return
				}
				total.Add(int64(len(line)))
			}
			// The header is never finished: hold on until the server gives up or the limit passes.
			_, _ = c.Read(make([]byte, 1))
		}()
	}
	wg.Wait()
	return total.Load()
}

// TestSecurityHeaderFloodKeepsTheDaemonsMemoryBounded: 400 connections each sending an unfinished 1 MiB
// header to /live, twice (the attacker reconnects), grow the daemon's resident memory by at most 32 MiB
// over its idle size, and the daemon keeps serving. Before MaxHeaderBytes, net/http buffered up to 1 MiB
// per connection: the daemon grew from about 21 MiB to about 750 MiB.
func TestSecurityHeaderFloodKeepsTheDaemonsMemoryBounded(t *testing.T) {
	w := newWorld(t)
	healthPort, _ := freePort()
	credsPath := filepath.Join(w.Dir, "credentials")
	d := startDaemon(t, w.bridgeConfig(t, "bridge.hcl", credsPath, testworld.HealthChecks(healthPort)))
	pid := d.cmd.Process.Pid
	health := fmt.Sprintf("127.0.0.1:%d", healthPort)
	eventually(t, "ready", func() bool { return httpStatus("http://"+health+"/ready") == 200 })
	time.Sleep(time.Second) // let the start settle
	idle := procStatusKB(t, pid, "VmRSS")
	// Reset the peak (VmHWM) to the current size, so that it measures the flood alone.
	hwmReset := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // sample too, where the peak cannot be reset
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if rss := procStatusKB(t, pid, "VmRSS"); int64(rss) > peak.Load() {
				peak.Store(int64(rss))
			}
		}
	}()
	start := time.Now()
	var sent int64
	for range 2 {
		sent += headerFlood(health, "/live", 400, 1<<20, 12*time.Second)
	}
	close(stop)
	<-sampled
	if hwmReset {
		peak.Store(max(peak.Load(), int64(procStatusKB(t, pid, "VmHWM"))))
	}
	growth := int(peak.Load()) - idle
	t.Logf("idle VmRSS %d KiB; peak under 2×400 unfinished 1 MiB headers %d KiB (+%.1f MiB; %.1f MiB sent in %v; peak from VmHWM: %v)",
		idle, peak.Load(), float64(growth)/1024, float64(sent)/(1<<20), time.Since(start).Round(time.Millisecond), hwmReset)
	if growth > 32<<10 {
		t.Errorf("resident memory grew by %.1f MiB under the header flood, more than 32 MiB", float64(growth)/1024)
	}
	if code := httpStatus("http://" + health + "/live"); code != 200 {
		t.Errorf("/live after the flood: %d", code)
	}
}

// TestSecurityHeldConnectionsDoNotStopRefreshesOrFileWrites: with a descriptor limit of 1024, a local user
// holds 1,100 idle connections to the daemon's health and IMDS ports (reconnecting whenever one is
// closed). The daemon stays under its limit, the profile still refreshes on an SVID rotation and writes its
// credentials file, and a legitimate IMDS client is still served. Before the connection budget, the
// connections took every descriptor and the write failed with "too many open files".
func TestSecurityHeldConnectionsDoNotStopRefreshesOrFileWrites(t *testing.T) {
	const nofile, held = 1024, 1100
	w := newWorld(t)
	healthPort, _ := freePort()
	imdsPort, _ := freePort()
	credsPath := filepath.Join(w.Dir, "credentials")
	cfg := w.bridgeConfig(t, "bridge.hcl", credsPath, testworld.HealthChecks(healthPort))
	// The imds block goes into profile "app": rewrite the file with it before the closing brace.
	b, _ := os.ReadFile(cfg)
	src := strings.Replace(string(b), "  credentials_file {", fmt.Sprintf("  imds {\n    bind_port = %d\n  }\n  credentials_file {", imdsPort), 1)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemonCmd(t, exec.Command("/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile), binPath, "run", "--config", cfg))
	pid := d.cmd.Process.Pid
	eventually(t, "the first credentials", func() bool { return profileKeys(credsPath, "app")["aws_access_key_id"] != "" })
	first := profileKeys(credsPath, "app")["aws_access_key_id"]

	// The attacker: held connections, each re-opened a second after the daemon closes it.
	done := make(chan struct{})
	var wg sync.WaitGroup
	var opened atomic.Int64
	for i := range held {
		addr := fmt.Sprintf("127.0.0.1:%d", healthPort)
		if i%2 == 1 {
			addr = fmt.Sprintf("127.0.0.1:%d", imdsPort)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err == nil {
					opened.Add(1)
					go func() { <-done; c.Close() }()
					_, _ = c.Read(make([]byte, 1)) // until the daemon closes it
					c.Close()
				}
				select {
				case <-done:
					return
				case <-time.After(time.Second):
				}
			}
		}()
	}
	t.Cleanup(func() { close(done); wg.Wait() })
	eventually(t, "the attacker's connections", func() bool { return opened.Load() >= held })
	time.Sleep(time.Second)
	fds := openDescriptors(pid)
	t.Logf("attacker opened %d connections; the daemon holds %d descriptors (limit %d)", opened.Load(), fds, nofile)
	if fds >= nofile-64 {
		t.Errorf("the daemon holds %d descriptors, at its limit of %d", fds, nofile)
	}

	// A refresh is due (the SVID rotates, rotation_spread 0s): it must reach the file.
	if err := w.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the credentials file rewritten while every connection slot is held", func() bool {
		k := profileKeys(credsPath, "app")["aws_access_key_id"]
		return k != "" && k != first
	})
	if got := callerARN(t, w, credsPath, "app"); !strings.HasPrefix(got, "arn:aws:sts::123456789012:assumed-role/app/") {
		t.Errorf("the rewritten credentials: caller %q", got)
	}
	// A legitimate client takes the slot of the longest idle connection.
	eventually(t, "a legitimate IMDS client served", func() bool {
		return imdsKey(imdsPort, "app") == profileKeys(credsPath, "app")["aws_access_key_id"]
	})
	if logs := d.Logs(); strings.Contains(logs, "too many open files") {
		t.Errorf("the daemon ran out of descriptors:\n%s", logs)
	}
	if logs := d.Logs(); !strings.Contains(logs, "connection limit reached") {
		t.Errorf("no warning about the connection limit in the logs")
	}
}
