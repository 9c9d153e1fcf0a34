// Command bench measures spiffe-aws-bridge against its performance targets on this machine, on loopback,
// against the emulator, and prints a table (docs/benchmarks.md records the figures):
//
//	go run ./cmd/bench            # full run (1000 rotations, 60 s idle window), about 2 minutes
//	go run ./cmd/bench -quick     # CI: fewer iterations, same measurements
//	go run ./cmd/bench -fleet -only fleet  # node-mode fleet capacity and the 200,000-profile day (minutes)
//	go run ./cmd/bench -only podidentity   # spiffe-aws-bridge-k8s, 100 pods, a real kube-apiserver (KUBEBUILDER_ASSETS)
//
// Run it from the repository root: it builds the release binaries with scripts/build.sh and times
// spiffe-aws-credential-process (beside spiffe-aws-bridge credential-process) and the daemon as real
// processes.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the result table.
type row struct {
	what, result, target string
	ok                   *bool // nil: no target
}

type bench struct {
	quick bool
	dir   string // scratch directory
	bin   string // built spiffe-aws-bridge; the other release binaries are beside it
	rows  []row
}

func (b *bench) add(what, result, target string, ok *bool) {
	b.rows = append(b.rows, row{what, result, target, ok})
}

func pass(v bool) *bool { return &v }

func main() {
	quick := flag.Bool("quick", false, "fewer iterations and a shorter idle window (CI)")
	only := flag.String("only", "", "run only the measurements whose name contains this")
	withFleet := flag.Bool("fleet", false, "also run the node-mode fleet capacity search and the 200,000-profile simulation (minutes)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "sab-bench")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	b := &bench{quick: *quick, dir: dir}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"rotation", b.rotation},
		{"signing", b.signing},
		{"credential-process", b.credentialProcess},
		{"daemon", b.daemon},
		{"endpoints", b.endpoints},
		{"node", b.node},
		{"podidentity", b.podIdentity},
	}
	if *withFleet {
		steps = append(steps, struct {
			name string
			fn   func() error
		}{"fleet", b.fleetCapacity})
	}
	for _, s := range steps {
		if *only != "" && !strings.Contains(s.name, *only) {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s…\n", s.name)
		t0 := time.Now()
		if err := s.fn(); err != nil {
			fatal(fmt.Errorf("%s: %w", s.name, err))
		}
		fmt.Fprintf(os.Stderr, "bench: %s took %s\n", s.name, time.Since(t0).Round(100*time.Millisecond))
	}
	fmt.Printf("\n%s\n\n", machine())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\tresult\ttarget\t")
	failed := 0
	for _, r := range b.rows {
		mark := ""
		if r.ok != nil {
			mark = "ok"
			if !*r.ok {
				mark = "MISSED"
				failed++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.what, r.result, r.target, mark)
	}
	tw.Flush()
	if failed > 0 {
		fmt.Printf("\n%d figure(s) missed their target (reported, not enforced: timings depend on the machine)\n", failed)
	}
}

func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("machine: %s/%s, %d CPUs (%s), %s, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model,
		runtime.Version(), time.Now().UTC().Format("2006-01-02"))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
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
