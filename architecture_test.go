// Package spiffeawsbridge_test holds the repository's architecture test: the dependency rules of
// docs/architecture.md, checked on the real import graph. It has no code of its own.
package spiffeawsbridge_test

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// module is the project's module path; rules name project packages relative to it.
const module = "github.com/spiffe-aws-bridge/spiffe-aws-bridge"

// graph maps each package (project packages relative to the module, others by import path) to its
// direct non-test imports. Standard-library packages are left out.
type graph map[string][]string

// rule is one dependency rule: no package that from matches may import a package that forbid matches,
// directly (or, when transitive, through any chain of imports).
type rule struct {
	// name identifies the rule in messages and in tests.
	name string
	// from says which importers the rule governs.
	from func(pkg string) bool
	// forbid says which imports break it; importer is passed for rules relative to it.
	forbid func(importer, imported string) bool
	// transitive checks everything from links, not only what it imports itself.
	transitive bool
	// exempt are importers allowed to break the rule for now, each with why (and until when).
	exempt map[string]string
	// reason is why the rule exists, printed with every violation.
	reason string
}

// under reports whether pkg is pattern or inside it ("bridge" matches "bridge" and "bridge/credfile").
func under(pkg string, patterns ...string) bool {
	for _, p := range patterns {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// project reports whether pkg is one of the module's packages (they are named relative to it).
func project(pkg string) bool { return !strings.Contains(strings.SplitN(pkg, "/", 2)[0], ".") }

// engine are the runtime packages beneath the daemon, in data-flow order.
var engine = []string{"svid", "signer", "chain", "creds", "bridge"}

// above are the packages that sit above the engine: the configuration, its wiring, the daemon, the
// features a user names, the emulator and the test world. A package that does not exist yet matches
// nothing.
var above = []string{"config", "wiring", "daemon", "credentialprocess", "assumerole", "check", "dev", "plan",
	"podidentity", "emulator", "testworld", "cmd"}

// rules are the dependency rules of docs/architecture.md ("Dependency rules").
var rules = []rule{
	{
		name:   "engine-points-down",
		from:   func(p string) bool { return under(p, engine...) },
		forbid: func(_, imp string) bool { return under(imp, above...) },
		reason: "svid, signer, chain, creds and bridge/... are the engine beneath the daemon: dependencies point down the data flow, so the engine knows neither the config file format (conversions live in wiring) nor the daemon, the features, the emulator or the test world",
	},
	{
		name:   "config-is-a-leaf",
		from:   func(p string) bool { return p == "config" },
		forbid: func(_, imp string) bool { return project(imp) && !under(imp, "internal") },
		reason: "config turns the HCL file into typed, validated data and imports only internal/ leaves; rules it shares with the runtime (agent addresses, selectors, ARNs) live in internal/ packages both import",
	},
	{
		name:   "internal-is-leaves",
		from:   func(p string) bool { return under(p, "internal") },
		forbid: func(_, imp string) bool { return project(imp) && !under(imp, "internal") },
		reason: "internal/ holds leaf utilities only; a package that imports the project's features is a feature and belongs at the top level, where a reader of the package list finds it",
	},
	{
		name:       "emulator-verifies-independently",
		from:       func(p string) bool { return under(p, "emulator") },
		forbid:     func(_, imp string) bool { return under(imp, "signer") },
		transitive: true,
		reason:     "the emulator verifies SigV4-X509 signatures as AWS does; linking the signer would let a signing bug verify itself",
	},
	{
		name:   "testworld-only-in-tests",
		from:   func(p string) bool { return project(p) && !under(p, "cmd/bench", "testworld") },
		forbid: func(_, imp string) bool { return under(imp, "testworld") },
		reason: "the test world (fake agent, emulator, config builder) is for tests and cmd/bench only; a shipped binary must not link it",
	},
	{
		name: "lean-credential-process",
		from: func(p string) bool { return p == "cmd/spiffe-aws-credential-process" },
		forbid: func(_, imp string) bool {
			if imp == "bridge/hook" { // config validates on_refresh commands with it; no initialisation
				return false
			}
			return under(imp, "daemon", "bridge", "emulator", "podidentity", "testworld") ||
				under(imp, "k8s.io", "sigs.k8s.io", "github.com/prometheus")
		},
		transitive: true,
		reason:     "spiffe-aws-credential-process runs once per AWS SDK credential fetch: every package it links is initialised at each start, so it links nothing of the daemon, the refresher and sinks, the emulator, pod identity, client-go or Prometheus",
	},
	{
		name: "bridge-binary-without-kubernetes",
		from: func(p string) bool { return p == "cmd/spiffe-aws-bridge" },
		forbid: func(_, imp string) bool {
			return under(imp, "podidentity/kube", "podidentity/webhook", "k8s.io", "sigs.k8s.io")
		},
		transitive: true,
		reason:     "spiffe-aws-bridge runs on every VM and host, where Kubernetes is never used: client-go and the API types more than double the binary and add about 14 MB to every daemon's memory, so pod identity's Kubernetes parts (podidentity/kube, podidentity/webhook) live in spiffe-aws-bridge-k8s; the pod identity engine (podidentity) has no Kubernetes dependency and may be linked",
	},
	{
		name: "cmd-is-imported-by-nothing",
		from: project,
		forbid: func(from, imp string) bool {
			return under(imp, "cmd") && !(under(from, "cmd") && under(imp, "cmd/internal"))
		},
		reason: "cmd/ holds flag parsing and wiring only; code another package needs belongs in a package of its own (cmd/internal/... is shared by the commands alone)",
	},
}

// violation is one broken rule.
type violation struct {
	rule, importer, imported, via string
}

// reasonOf is the reason of the rule named name.
func reasonOf(name string) string {
	for _, r := range rules {
		if r.name == name {
			return r.reason
		}
	}
	return ""
}

func (v violation) String() string {
	via := ""
	if v.via != "" {
		via = " (through " + v.via + ")"
	}
	return fmt.Sprintf("%s imports %s%s: breaks rule %s: %s", v.importer, v.imported, via, v.rule, reasonOf(v.rule))
}

// check returns every violation of rs in g, sorted, and the exemptions no longer needed.
func check(g graph, rs []rule) (vs []violation, stale []string) {
	for _, r := range rs {
		offends := map[string]bool{}
		for _, from := range slices.Sorted(maps.Keys(g)) {
			if !project(from) || !r.from(from) {
				continue
			}
			var found []violation
			if r.transitive {
				for imp, via := range reach(g, from) {
					if r.forbid(from, imp) {
						found = append(found, violation{r.name, from, imp, via})
					}
				}
			} else {
				for _, imp := range g[from] {
					if r.forbid(from, imp) {
						found = append(found, violation{r.name, from, imp, ""})
					}
				}
			}
			if len(found) > 0 {
				offends[from] = true
			}
			if _, ok := r.exempt[from]; !ok {
				vs = append(vs, found...)
			}
		}
		for _, p := range slices.Sorted(maps.Keys(r.exempt)) {
			if !offends[p] {
				stale = append(stale, fmt.Sprintf("rule %s exempts %s (%s), which no longer breaks it (or is gone): drop the exemption", r.name, p, r.exempt[p]))
			}
		}
	}
	slices.SortFunc(vs, func(a, b violation) int { return strings.Compare(a.String(), b.String()) })
	return vs, stale
}

// reach returns every package from links, each with the first package through which it is reached
// ("" for direct imports).
func reach(g graph, from string) map[string]string {
	out := map[string]string{}
	type item struct{ pkg, via string }
	queue := []item{}
	for _, imp := range g[from] {
		queue = append(queue, item{imp, ""})
	}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if _, seen := out[it.pkg]; seen || it.pkg == from {
			continue
		}
		out[it.pkg] = it.via
		via := it.via
		if via == "" {
			via = it.pkg
		}
		for _, imp := range g[it.pkg] {
			queue = append(queue, item{imp, via})
		}
	}
	return out
}

// loadGraph is the module's real import graph (read once per test binary: go list takes seconds).
func loadGraph(t *testing.T) graph {
	t.Helper()
	g, err := realGraph()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// realGraph runs go list once: non-test imports of every dependency, so that transitive rules see
// external packages too.
var realGraph = sync.OnceValues(func() (graph, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{end}}", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps ./...: %w\n%s", err, stderr.String())
	}
	rel := func(p string) string {
		if p == module {
			return "."
		}
		return strings.TrimPrefix(p, module+"/")
	}
	g := graph{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var imps []string
		for _, imp := range f[1:] {
			if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") { // not the standard library
				imps = append(imps, rel(imp))
			}
		}
		g[rel(f[0])] = imps
	}
	if len(g["chain"]) == 0 || len(g["daemon"]) == 0 {
		return nil, fmt.Errorf("go list gave no import graph of the project: %q", out)
	}
	return g, nil
})

// TestDependencyRules fails when a package imports what docs/architecture.md forbids, naming the
// importer, the import and the rule's reason.
func TestDependencyRules(t *testing.T) {
	vs, stale := check(loadGraph(t), rules)
	for _, v := range vs {
		t.Error(v)
	}
	for _, s := range stale {
		t.Error(s)
	}
}

// TestDependencyRulesCatchForbiddenEdges shows that each rule can fail: the real graph plus one
// synthetic forbidden edge (the first: chain importing config, the engine knowing the file format) gives
// exactly the violation of that rule, with the importer, the import and the reason in the message.
func TestDependencyRulesCatchForbiddenEdges(t *testing.T) {
	real := loadGraph(t)
	base, _ := check(real, rules)
	for _, tc := range []struct {
		from, to string
		rule     string
		// importer and imported as the violation names them (the lean binary's rules are transitive).
		importer, imported string
	}{
		{"chain", "config", "engine-points-down", "chain", "config"},
		{"bridge/credfile", "daemon", "engine-points-down", "bridge/credfile", "daemon"},
		{"svid/delegated", "podidentity", "engine-points-down", "svid/delegated", "podidentity"},
		{"config", "svid", "config-is-a-leaf", "config", "svid"},
		{"internal/awsarn", "signer", "internal-is-leaves", "internal/awsarn", "signer"},
		{"emulator", "internal/awsarn", "", "", ""}, // allowed: the edge breaks nothing
		{"internal/x509tags", "signer", "emulator-verifies-independently", "emulator", "signer"},
		{"daemon", "testworld", "testworld-only-in-tests", "daemon", "testworld"},
		{"config", "k8s.io/client-go/kubernetes", "lean-credential-process", "cmd/spiffe-aws-credential-process", "k8s.io/client-go/kubernetes"},
		{"daemon", "cmd/spiffe-aws-bridge", "cmd-is-imported-by-nothing", "daemon", "cmd/spiffe-aws-bridge"},
		{"daemon", "podidentity/kube", "bridge-binary-without-kubernetes", "cmd/spiffe-aws-bridge", "podidentity/kube"},
		{"cmd/internal/runcmd", "podidentity/webhook", "bridge-binary-without-kubernetes", "cmd/spiffe-aws-bridge", "podidentity/webhook"},
		{"podidentity", "k8s.io/api/core/v1", "bridge-binary-without-kubernetes", "cmd/spiffe-aws-bridge", "k8s.io/api/core/v1"},
	} {
		t.Run(tc.from+"→"+tc.to, func(t *testing.T) {
			g := graph{}
			for k, v := range real {
				g[k] = slices.Clone(v)
			}
			if _, ok := g[tc.from]; !ok {
				t.Fatalf("%s is not in the real graph: the case tests nothing", tc.from)
			}
			g[tc.from] = append(g[tc.from], tc.to)
			vs, _ := check(g, rules)
			var added []violation
			for _, v := range vs {
				if !slices.Contains(base, v) {
					added = append(added, v)
				}
			}
			if tc.rule == "" {
				if len(added) != 0 {
					t.Fatalf("an allowed edge is reported: %v", added)
				}
				return
			}
			var got *violation
			for i, v := range added {
				if v.rule == tc.rule && v.importer == tc.importer && v.imported == tc.imported {
					got = &added[i]
				}
			}
			if got == nil {
				t.Fatalf("the edge %s → %s: got %v, want a violation of %s by %s importing %s", tc.from, tc.to, added, tc.rule, tc.importer, tc.imported)
			}
			msg := got.String()
			for _, want := range []string{tc.importer + " imports " + tc.imported, "rule " + tc.rule, reasonOf(tc.rule)} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
}

// TestArchitectureDocNamesEveryPackage keeps docs/architecture.md true: every top-level package, and
// every command under cmd/, appears in it (as `name`).
func TestArchitectureDocNamesEveryPackage(t *testing.T) {
	doc, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z0-9/._-]+)`").FindAllSubmatch(doc, -1) {
		named[string(m[1])] = true
	}
	want := map[string]bool{}
	for p := range loadGraph(t) {
		if !project(p) || p == "." {
			continue
		}
		parts := strings.Split(p, "/")
		switch {
		case parts[0] == "cmd" && len(parts) > 2 && parts[1] == "internal":
			want[strings.Join(parts[:3], "/")] = true
		case parts[0] == "cmd" && len(parts) > 1:
			want[parts[0]+"/"+parts[1]] = true
		case parts[0] != "cmd":
			want[parts[0]] = true
		}
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if !named[p] && !named[p+"/"] {
			t.Errorf("docs/architecture.md does not name package %s (write it as `%s` where it belongs)", p, p)
		}
	}
}
