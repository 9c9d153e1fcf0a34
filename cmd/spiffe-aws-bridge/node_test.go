package main

// End-to-end tests of node mode: one bridge serving several workloads, each with its own SVID
// from the SPIRE agent's Delegated Identity API (svidtest's fake, real gRPC on a unix socket), its own
// files owned by its own user, over the real binary, the real emulator and aws-sdk-go-v2.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/health"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/dev"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// nodeWorkload is one service on the host: its uid (numeric ids need not exist), its SPIFFE ID, and the
// files and endpoint the bridge serves it.
type nodeWorkload struct {
	name      string
	uid       int
	id        spiffeid.ID
	creds     string
	token     string
	port      int
	selectors []string
}

type nodeWorld struct {
	*world
	admin      *svidtest.DelegatedServer
	workloads  []*nodeWorkload
	healthPort int
	d          *daemonProc
}

// startNodeDaemon runs one bridge for three workloads (uids 1001, 1002, 1003) in node mode, plus one
// profile on the bridge's own Workload API identity, in the same daemon.
func startNodeDaemon(t *testing.T) *nodeWorld {
	t.Helper()
	n := &nodeWorld{world: newWorld(t)}
	bridgeID := spiffeid.RequireFromString("spiffe://example.org/spiffe-aws-bridge")
	home := filepath.Join(n.Dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	safefstest.Traversable(t, home)
	var entries []svidtest.WorkloadEntry
	for i, name := range []string{"billing", "reports", "audit"} {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		uid := 1001 + i
		w := &nodeWorkload{
			name: name, uid: uid, id: spiffeid.RequireFromString("spiffe://example.org/ns/prod/" + name),
			creds:     filepath.Join(home, name, ".aws", "credentials"),
			token:     filepath.Join(home, name, "token"),
			port:      port,
			selectors: []string{"unix:uid:" + strconv.Itoa(uid)},
		}
		n.workloads = append(n.workloads, w)
		entries = append(entries, svidtest.WorkloadEntry{ID: w.id, Selectors: w.selectors})
	}
	// The agent attests the bridge by its uid and lists it in authorized_delegates, as examples/node does.
	n.admin = svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{
		CA: n.Agent.CA(), Entries: entries,
		Callers:             map[uint32]spiffeid.ID{uint32(os.Getuid()): bridgeID},
		AuthorizedDelegates: []spiffeid.ID{bridgeID},
	})
	var err error
	if n.healthPort, err = freePort(); err != nil {
		t.Fatal(err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "agent_address = %q\nlog_level = \"debug\"\n", n.Agent.Addr())
	fmt.Fprintf(&cfg, "delegated_identity {\n  admin_address = %q\n}\n", n.admin.Addr())
	cfg.WriteString(testworld.HealthChecks(n.healthPort))
	for _, w := range n.workloads {
		loss := "keep_until_expiry"
		if w.name == "audit" {
			loss = "withdraw"
		}
		cfg.WriteString(n.ProfileBlock(w.name, testworld.RoleARN, fmt.Sprintf(`  workload_selectors = [%q]
  on_identity_loss   = %q
  refresh {
    rotation_spread = "0s"
  }
  credentials_file {
    path = %q
  }
  container_endpoint {
    bind_port       = %d
    auth_token_file = %q
  }
`, w.selectors[0], loss, w.creds, w.port, w.token)))
	}
	cfg.WriteString(n.ProfileBlock("own", testworld.RoleARN, fmt.Sprintf(`  spiffe_id = %q
  credentials_file {
    path = %q
  }
`, testworld.SPIFFEID, filepath.Join(n.Dir, "own-credentials"))))
	n.d = startDaemon(t, n.WriteFile(t, "bridge.hcl", []byte(cfg.String())))
	eventually(t, "every profile ready", func() bool { return httpStatus(n.readyURL()) == 200 })
	// A profile is ready once it holds credentials, a moment before its sinks have them: wait for the files.
	eventually(t, "every workload's credentials file", func() bool {
		for _, w := range n.workloads {
			if profileKeys(w.creds, w.name)["aws_access_key_id"] == "" {
				return false
			}
		}
		return true
	})
	return n
}

func (n *nodeWorld) readyURL() string { return fmt.Sprintf("http://127.0.0.1:%d/ready", n.healthPort) }

// report is the daemon's /ready document.
func (n *nodeWorld) report(t *testing.T) map[string]health.ProfileReport {
	t.Helper()
	resp, err := http.Get(n.readyURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r health.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	out := map[string]health.ProfileReport{}
	for _, p := range r.Profiles {
		out[p.Profile] = p
	}
	return out
}

// sessionOf is the role session of the credentials in w's file, by GetCallerIdentity on the emulator:
// the default session name is the signing SVID's serial, so it says whose identity signed.
func (n *nodeWorld) sessionOf(t *testing.T, w *nodeWorkload) string {
	t.Helper()
	arn := callerARN(t, n.world, w.creds, w.name)
	return arn[strings.LastIndex(arn, "/")+1:]
}

func (n *nodeWorld) serialOf(w *nodeWorkload) string {
	return n.admin.Current(w.id).Certificates[0].SerialNumber.Text(16)
}

// readAs runs cat path as uid:uid and reports whether it could read it.
func readAs(t *testing.T, uid int, path string) (bool, string) {
	t.Helper()
	cmd := exec.Command("cat", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	return err == nil, string(out)
}

// TestSecurityNodeModeEachWorkloadReadsOnlyItsOwnCredentials: three workloads served by one bridge; each
// credentials file and token file belongs to its workload's user, mode 0600, and no workload's user can
// read another's file or use another's endpoint; each file holds a session signed with its own
// workload's SVID.
func TestSecurityNodeModeEachWorkloadReadsOnlyItsOwnCredentials(t *testing.T) {
	safefstest.NeedRoot(t, "gives each workload's files to its own uid and reads them as the others")
	n := startNodeDaemon(t)
	for _, w := range n.workloads {
		for _, path := range []string{w.creds, w.token} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != w.uid || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: owner %d mode %o, want owner %d (the workload's selector uid) mode 600", path, st.Uid, fi.Mode().Perm(), w.uid)
			}
		}
		if got, want := n.sessionOf(t, w), n.serialOf(w); got != want {
			t.Errorf("%s: credentials signed by SVID serial %s, want its own workload's %s", w.name, got, want)
		}
	}
	for _, reader := range n.workloads {
		for _, owner := range n.workloads {
			for _, path := range []string{owner.creds, owner.token} {
				ok, out := readAs(t, reader.uid, path)
				if reader == owner && !ok {
					t.Errorf("uid %d cannot read its own %s: %s", reader.uid, path, out)
				}
				if reader != owner && ok {
					t.Errorf("uid %d read %s of workload %s (uid %d)", reader.uid, path, owner.name, owner.uid)
				}
				if reader != owner && strings.Contains(out, "aws_secret_access_key") {
					t.Errorf("uid %d got secrets of %s", reader.uid, owner.name)
				}
			}
		}
	}
	// Endpoints: each workload's token opens its own endpoint only.
	tokens := map[*nodeWorkload]string{}
	for _, w := range n.workloads {
		b, err := os.ReadFile(w.token)
		if err != nil {
			t.Fatal(err)
		}
		tokens[w] = strings.TrimSpace(string(b))
	}
	for _, w := range n.workloads {
		for _, other := range n.workloads {
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/v1/credentials", w.port), nil)
			req.Header.Set("Authorization", tokens[other])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := (w == other); (resp.StatusCode == 200) != want {
				t.Errorf("%s's endpoint with %s's token: HTTP %d", w.name, other.name, resp.StatusCode)
			}
		}
	}
	if own := profileKeys(filepath.Join(n.Dir, "own-credentials"), "own"); own["aws_access_key_id"] == "" {
		t.Error("the profile on the bridge's own Workload API identity has no credentials in node mode's daemon")
	}
	logs := n.d.Logs()
	for _, w := range n.workloads {
		if k := profileKeys(w.creds, w.name); k["aws_secret_access_key"] == "" || strings.Contains(logs, k["aws_secret_access_key"]) {
			t.Errorf("%s: secret missing, or logged", w.name)
		}
	}
}

// TestSecurityNodeModeDeletedEntryStopsThatWorkloadOnly: rotations are followed per workload; deleting one
// workload's registration entry stops that profile only (no new session for it, the others go on), and
// re-adding it resumes it.
func TestSecurityNodeModeDeletedEntryStopsThatWorkloadOnly(t *testing.T) {
	safefstest.NeedRoot(t, "gives each workload's files to its own uid")
	n := startNodeDaemon(t)
	billing, reports, audit := n.workloads[0], n.workloads[1], n.workloads[2]

	// A rotation of billing's SVID refreshes billing alone.
	before := map[string]int{}
	for name, p := range n.report(t) {
		before[name] = p.Refreshes
	}
	if err := n.admin.RotateEntry(billing.id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "billing refreshed with its new SVID", func() bool { return n.sessionOf(t, billing) == n.serialOf(billing) })
	r := n.report(t)
	if r["billing"].Refreshes != before["billing"]+1 || r["reports"].Refreshes != before["reports"] || r["audit"].Refreshes != before["audit"] {
		t.Fatalf("after rotating billing only, refreshes went %v → billing %d reports %d audit %d", before, r["billing"].Refreshes, r["reports"].Refreshes, r["audit"].Refreshes)
	}

	// Delete reports' entry: its profile reports it, with the fix, and mints nothing more.
	if !n.admin.DeleteEntry(reports.id) {
		t.Fatal("no reports entry")
	}
	eventually(t, "reports' profile reports the missing entry", func() bool {
		p := n.report(t)["reports"]
		return p.DelegatedIdentity == "no_matching_entry" && strings.Contains(p.DelegatedIdentityError, "-selector unix:uid:1002")
	})
	eventually(t, "reports' identity lost, the others untouched", func() bool {
		r := n.report(t)
		return r["reports"].Identity == "no_identity" && !r["reports"].Ready && r["billing"].Ready && r["audit"].Ready &&
			r["billing"].Identity == "" && r["audit"].Identity == ""
	})
	reportsRefreshes := n.report(t)["reports"].Refreshes
	stale := n.sessionOf(t, reports)
	// A mass rotation: the other workloads refresh, reports does not.
	if err := n.admin.Rotate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "billing and audit refreshed after the mass rotation", func() bool {
		return n.sessionOf(t, billing) == n.serialOf(billing) && n.sessionOf(t, audit) == n.serialOf(audit)
	})
	if got := n.report(t)["reports"]; got.Refreshes != reportsRefreshes || n.sessionOf(t, reports) != stale {
		t.Fatalf("reports refreshed without an entry: refreshes %d → %d", reportsRefreshes, got.Refreshes)
	}
	if !strings.Contains(n.d.Logs(), "no registration entry matches the workload") {
		t.Error("the deleted entry was not logged")
	}

	// Re-adding the entry resumes it with a fresh SVID.
	if err := n.admin.AddEntry(svidtest.WorkloadEntry{ID: reports.id, Selectors: reports.selectors}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reports refreshed after its entry was re-added", func() bool { return n.sessionOf(t, reports) == n.serialOf(reports) })
	if p := n.report(t)["reports"]; p.DelegatedIdentity != "connected" || !p.Ready || p.Identity != "" {
		t.Fatalf("reports after re-adding: %+v", p)
	}

	// on_identity_loss = "withdraw" (audit's): deleting its entry clears its file at once; reports kept
	// its credentials until expiry (keep_until_expiry), and billing is untouched.
	if !n.admin.DeleteEntry(audit.id) {
		t.Fatal("no audit entry")
	}
	eventually(t, "audit's credentials withdrawn", func() bool { return profileKeys(audit.creds, audit.name)["aws_access_key_id"] == "" })
	if profileKeys(billing.creds, billing.name)["aws_access_key_id"] == "" {
		t.Fatal("billing's credentials went with audit's identity")
	}
}

// TestNodeModeRefusalsNameTheAgentConfigToAdd: the three ways node mode fails at the agent — no admin
// socket, the bridge not in authorized_delegates, selectors that match no entry — are each named plainly
// by `check --config` (exit 1) and in `run`'s log, with the agent configuration lines to add.
func TestNodeModeRefusalsNameTheAgentConfigToAdd(t *testing.T) {
	w := newWorld(t)
	bridgeID := spiffeid.RequireFromString("spiffe://example.org/spiffe-aws-bridge")
	entry := svidtest.WorkloadEntry{ID: spiffeid.RequireFromString("spiffe://example.org/ns/prod/billing"), Selectors: []string{"unix:uid:1001"}}
	notDelegate := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: w.Agent.CA(), Entries: []svidtest.WorkloadEntry{entry},
		Callers: map[uint32]spiffeid.ID{uint32(os.Getuid()): bridgeID}, AuthorizedDelegates: []spiffeid.ID{}})
	good := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: w.Agent.CA(), Entries: []svidtest.WorkloadEntry{entry},
		Callers: map[uint32]spiffeid.ID{uint32(os.Getuid()): bridgeID}, AuthorizedDelegates: []spiffeid.ID{bridgeID}})
	for _, tc := range []struct {
		name, admin, selector string
		want                  []string
	}{
		{"no admin socket", "unix://" + filepath.Join(w.Dir, "no-admin.sock"), "unix:uid:1001",
			[]string{"no SPIRE agent admin API (Delegated Identity API) at unix://" + filepath.Join(w.Dir, "no-admin.sock"), "admin_socket_path = ", "authorized_delegates = ["}},
		{"bridge not an authorized delegate", notDelegate.Addr(), "unix:uid:1001",
			[]string{"does not authorise this bridge as a delegate (PermissionDenied: caller not configured as an authorized delegate)", "authorized_delegates = ["}},
		{"selectors match no entry", good.Addr(), "unix:uid:4242",
			[]string{`no SPIRE registration entry matches workload_selectors ["unix:uid:4242"]`, "spire-server entry create", "-selector unix:uid:4242"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := w.WriteFile(t, strings.ReplaceAll(tc.name, " ", "-")+".hcl", []byte(fmt.Sprintf("agent_address = %q\ndelegated_identity {\n  admin_address = %q\n}\n", w.Agent.Addr(), tc.admin)+
				w.ProfileBlock("billing", testworld.RoleARN, fmt.Sprintf("  workload_selectors = [%q]\n  credentials_file {\n    path  = %q\n    owner = %d\n  }\n", tc.selector, filepath.Join(w.Dir, tc.name, "credentials"), os.Getuid()))))
			r := runBin(t, nil, "check", "--config", cfg)
			if r.code != 1 {
				t.Errorf("check exit %d, want 1", r.code)
			}
			for _, want := range tc.want {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("check output lacks %q:\n%s", want, r.stdout)
				}
			}
			d := startDaemon(t, cfg)
			eventually(t, "run's log names the problem and the fix", func() bool {
				logs := d.Logs()
				for _, want := range tc.want {
					if !strings.Contains(logs, want) {
						return false
					}
				}
				return true
			})
		})
	}
	// And the good case passes check, with a CreateSession signed by the workload's SVID.
	cfg := w.WriteFile(t, "good.hcl", []byte(fmt.Sprintf("agent_address = %q\ndelegated_identity {\n  admin_address = %q\n}\n", w.Agent.Addr(), good.Addr())+
		w.ProfileBlock("billing", testworld.RoleARN, fmt.Sprintf("  workload_selectors = [\"unix:uid:1001\"]\n  credentials_file {\n    path  = %q\n    owner = %d\n  }\n", filepath.Join(w.Dir, "good", "credentials"), os.Getuid()))))
	r := runBin(t, nil, "check", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "the agent issues this workload 1 X.509-SVID(s): spiffe://example.org/ns/prod/billing") ||
		!strings.Contains(r.stdout, "CreateSession succeeded") {
		t.Errorf("check of a good node-mode config: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestDevNodeShowsNodeModeWithoutSPIRE: dev --node serves two more workloads through the fake Delegated
// Identity API, each refreshed with its own SVID into its own file, rotations followed.
func TestDevNodeShowsNodeModeWithoutSPIRE(t *testing.T) {
	dir := t.TempDir()
	r := runBin(t, nil, "dev", "--node", "--dir", dir, "--duration", "4s", "--rotate-every", "1s")
	if r.code != 0 {
		t.Fatalf("dev --node: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "Node mode (--node)") || !strings.Contains(r.stdout, "selector dev:service:billing") {
		t.Errorf("banner lacks node mode:\n%s", r.stdout)
	}
	for _, w := range dev.Workloads() {
		if k := profileKeys(filepath.Join(dir, w, "credentials"), w); k["aws_access_key_id"] == "" {
			t.Errorf("%s: no credentials in its file", w)
		}
		// At least two refreshes: the first SVID and a rotation.
		if n := strings.Count(r.stderr, "refreshed credentials: profile="+w+" spiffe_id=spiffe://example.org/dev/"+w); n < 2 {
			t.Errorf("%s refreshed %d times with its own SVID, want at least 2 (rotations followed)", w, n)
		}
	}
}
