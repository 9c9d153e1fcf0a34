package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// credentialProcess: wall time of the credential-process command, process start to JSON on stdout, with
// key files and with the Workload API as the source, and the process's peak RSS. The targets apply to
// spiffe-aws-credential-process, the lean binary made for credential_process; `spiffe-aws-bridge
// credential-process` (the same code in the all-in-one binary) is measured beside it, interleaved run by
// run so that both see the same machine, for comparison.
func (b *bench) credentialProcess() error {
	bin, err := b.buildBinary()
	if err != nil {
		return err
	}
	w, err := testworld.Start(testworld.Options{QuotaPerSecond: -1})
	if err != nil {
		return err
	}
	defer w.Close()
	certs, key, err := w.Agent.Current()[0].Marshal()
	if err != nil {
		return err
	}
	certFile, keyFile := filepath.Join(b.dir, "cert.pem"), filepath.Join(b.dir, "key.pem")
	if err := os.WriteFile(certFile, certs, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return err
	}
	common := []string{"--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN, "--role-arn", testworld.RoleARN, "--endpoint", w.Emulator.URL}
	programs := []struct {
		name   string
		argv   []string
		target bool // the start-up targets of docs/benchmarks.md apply
	}{
		{"spiffe-aws-credential-process", []string{filepath.Join(filepath.Dir(bin), "spiffe-aws-credential-process")}, true},
		{"spiffe-aws-bridge credential-process", []string{bin, "credential-process"}, false},
	}
	n := 100
	if b.quick {
		n = 30
	}
	for _, src := range []struct {
		name   string
		args   []string
		target time.Duration
	}{
		{"key files", []string{"--certificate", certFile, "--private-key", keyFile}, 6 * time.Millisecond},
		{"Workload API", []string{"--workload-socket", w.Agent.Addr()}, 8 * time.Millisecond},
	} {
		lat := make([][]time.Duration, len(programs))
		exit := make([][]time.Duration, len(programs))
		for i := 0; i < n; i++ {
			for j, p := range programs {
				argv := append(append(append([]string(nil), p.argv...), common...), src.args...)
				toJSON, toExit, err := timeOneShot(argv)
				if err != nil {
					return fmt.Errorf("%s (%s): %w", p.name, src.name, err)
				}
				lat[j] = append(lat[j], toJSON)
				exit[j] = append(exit[j], toExit)
			}
		}
		for j, p := range programs {
			argv := append(append(append([]string(nil), p.argv...), common...), src.args...)
			peak, err := peakRSS(argv[0], argv[1:])
			if err != nil {
				return fmt.Errorf("%s (%s) peak RSS: %w", p.name, src.name, err)
			}
			med := percentile(lat[j], 0.5)
			timeTarget, rssTarget, timeOK, rssOK := "≤ "+ms(src.target), "≤ 15 MB", pass(med <= src.target), pass(peak <= 15*1024)
			if !p.target {
				timeTarget, rssTarget, timeOK, rssOK = "(comparison)", "(comparison)", nil, nil
			}
			b.add(fmt.Sprintf("%s (%s), median of %d", p.name, src.name, n),
				fmt.Sprintf("%s (exited: %s)", ms(med), ms(percentile(exit[j], 0.5))), timeTarget, timeOK)
			if peak < 0 {
				b.add(fmt.Sprintf("%s (%s), peak RSS", p.name, src.name), "not measured: needs GNU time (/usr/bin/time)", rssTarget, nil)
			} else {
				b.add(fmt.Sprintf("%s (%s), peak RSS", p.name, src.name), fmt.Sprintf("%.1f MB", float64(peak)/1024), rssTarget, rssOK)
			}
		}
	}
	return nil
}

// timeOneShot runs argv once and returns the time from starting the process to the credential_process
// JSON complete on its stdout (what an SDK waits for), and to the process's exit, which AWS SDKs also
// wait for. The difference is the process tearing down its address space.
func timeOneShot(argv []string) (toJSON, toExit time.Duration, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	r, w, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	cmd.Stdout = w
	start := time.Now()
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, 0, err
	}
	w.Close()
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, rerr := r.Read(buf)
		out = append(out, buf[:n]...)
		if toJSON == 0 && bytes.HasSuffix(out, []byte("}\n")) {
			toJSON = time.Since(start)
		}
		if rerr != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		return 0, 0, err
	}
	toExit = time.Since(start)
	if toJSON == 0 || !bytes.Contains(out, []byte(`"SecretAccessKey"`)) {
		return 0, 0, fmt.Errorf("no credential_process JSON on stdout: %q", out)
	}
	return toJSON, toExit, nil
}

// peakRSS runs bin once under GNU time and returns its peak resident set in KB (-1 without GNU time).
// The child's own rusage cannot be used: Go starts children with vfork semantics (CLONE_VM), and Linux
// carries the parent's RSS high-water mark into the child's ru_maxrss across exec. GNU time fork()s.
func peakRSS(bin string, args []string) (int64, error) {
	gt, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		return -1, nil
	}
	out, err := exec.Command(gt, append([]string{"-f", "maxrss=%M", bin}, args...)...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	i := bytes.LastIndex(out, []byte("maxrss="))
	if i < 0 {
		return 0, fmt.Errorf("no maxrss in %q", out)
	}
	return strconv.ParseInt(strings.TrimSpace(string(out[i+len("maxrss="):])), 10, 64)
}
