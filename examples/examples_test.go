// Package examples holds deployment examples (docker compose with SPIRE, Kubernetes, systemd) and, in this
// test, the checks that keep them runnable where they cannot be run: no Docker engine, cluster or systemd
// is needed. The compose file is loaded with the Compose Specification's own loader, every configuration
// with the loader its program uses, and the values that must agree across files (SPIFFE IDs, ARNs, socket
// paths, volumes, users) are compared.
package examples

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
)

// repoRoot is the repository, relative to this package's directory (where `go test` runs).
const repoRoot = ".."

// absRepo is the repository's absolute path.
func absRepo(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// inRepo reports whether the absolute path p is inside the repository and exists.
func inRepo(t *testing.T, p string) error {
	t.Helper()
	rel, err := filepath.Rel(absRepo(t), p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s is outside the repository", p)
	}
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("%s does not exist in the repository", rel)
	}
	return nil
}

// pinnedImage reports why ref is not pinned to a version: it needs a digest, or a tag other than latest.
func pinnedImage(ref string) error {
	if strings.Contains(ref, "$") {
		return fmt.Errorf("image %q is built from a variable", ref)
	}
	if strings.Contains(ref, "@sha256:") {
		return nil
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 || i == len(name)-1 {
		return fmt.Errorf("image %q has no tag (that means latest); pin a version", ref)
	}
	if tag := name[i+1:]; tag == "latest" {
		return fmt.Errorf("image %q uses the latest tag; pin a version", ref)
	}
	return nil
}

// dockerfileFroms returns the images of a Dockerfile's FROM lines, skipping references to earlier stages,
// and the stage names.
func dockerfileFroms(src string) (images []string) {
	stages := map[string]bool{}
	for _, line := range strings.Split(src, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.EqualFold(f[0], "FROM") {
			continue
		}
		args := f[1:]
		for len(args) > 0 && strings.HasPrefix(args[0], "--") { // --platform=…
			args = args[1:]
		}
		if len(args) == 0 {
			continue
		}
		if !stages[strings.ToLower(args[0])] {
			images = append(images, args[0])
		}
		if len(args) == 3 && strings.EqualFold(args[1], "AS") {
			stages[strings.ToLower(args[2])] = true
		}
	}
	return images
}

// checkDockerfile checks that every base image of the Dockerfile at p is pinned.
func checkDockerfile(t *testing.T, p string) string {
	t.Helper()
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	froms := dockerfileFroms(string(src))
	if len(froms) == 0 {
		t.Errorf("%s: no FROM line", p)
	}
	for _, img := range froms {
		if err := pinnedImage(img); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	return string(src)
}

// likeMatch is IAM's StringLike: `*` matches any run of characters (slashes included), `?` one character.
func likeMatch(pattern, s string) bool {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String()).MatchString(s)
}

func TestLikeMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"spiffe://example.org/ns/demo/*", "spiffe://example.org/ns/demo/bridge", true},
		{"spiffe://example.org/ns/demo/*", "spiffe://example.org/ns/demo/a/b", true},
		{"spiffe://example.org/ns/demo/*", "spiffe://example.org/ns/prod/bridge", false},
		{"spiffe://example.org/ns/demo/?", "spiffe://example.org/ns/demo/ab", false},
		{"spiffe://example.org/x.y", "spiffe://example.org/xzy", false},
	} {
		if got := likeMatch(c.pattern, c.s); got != c.want {
			t.Errorf("likeMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

// ---- docker compose -------------------------------------------------------------------------------

const composeDir = "spire"

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	dir, err := filepath.Abs(composeDir)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "docker-compose.yaml")
	opts, err := cli.NewProjectOptions([]string{file}, cli.WithWorkingDirectory(dir), cli.WithName("demo"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s does not load: %v", file, err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("the compose file has no %q service", name)
	}
	return s
}

// argv is a service's entrypoint followed by its command.
func argv(s types.ServiceConfig) []string {
	return append(slices.Clone([]string(s.Entrypoint)), s.Command...)
}

// flagValue returns the value of flag (as "--flag value" or "--flag=value") in args.
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// flagValues returns every value of a repeatable flag.
func flagValues(args []string, flag string) []string {
	var vals []string
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			vals = append(vals, args[i+1])
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

// mountFor returns the volume of s that holds the container path p (the longest target prefix) and p's
// path relative to that target.
func mountFor(s types.ServiceConfig, p string) (types.ServiceVolumeConfig, string, bool) {
	var best types.ServiceVolumeConfig
	bestRel, found := "", false
	for _, v := range s.Volumes {
		rel, err := filepath.Rel(v.Target, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		if !found || len(v.Target) > len(best.Target) {
			best, bestRel, found = v, rel, true
		}
	}
	return best, bestRel, found
}

// hostFile returns the host path of the bind-mounted container file p of service s.
func hostFile(t *testing.T, s types.ServiceConfig, p string) string {
	t.Helper()
	v, rel, ok := mountFor(s, p)
	if !ok || v.Type != types.VolumeTypeBind {
		t.Fatalf("service %s: %s is not bind-mounted from the repository", s.Name, p)
	}
	return filepath.Join(v.Source, rel)
}

// sharedVolume checks that container path a of service sa and container path b of service sb are the same
// file or directory of one named volume.
func sharedVolume(t *testing.T, sa types.ServiceConfig, a string, sb types.ServiceConfig, b string) {
	t.Helper()
	va, ra, okA := mountFor(sa, a)
	vb, rb, okB := mountFor(sb, b)
	switch {
	case !okA:
		t.Errorf("service %s has no volume holding %s", sa.Name, a)
	case !okB:
		t.Errorf("service %s has no volume holding %s", sb.Name, b)
	case va.Type != types.VolumeTypeVolume || vb.Type != types.VolumeTypeVolume || va.Source != vb.Source || ra != rb:
		t.Errorf("%s:%s (volume %q, %s) and %s:%s (volume %q, %s) are not the same file of one named volume",
			sa.Name, a, va.Source, ra, sb.Name, b, vb.Source, rb)
	}
}

// builtFromRepoDockerfile reports whether s is built from the repository's own Dockerfile.
func builtFromRepoDockerfile(t *testing.T, s types.ServiceConfig) bool {
	return s.Build != nil && filepath.Clean(s.Build.Context) == absRepo(t) &&
		(s.Build.Dockerfile == "" || filepath.Clean(s.Build.Dockerfile) == "Dockerfile" ||
			filepath.Clean(s.Build.Dockerfile) == filepath.Join(absRepo(t), "Dockerfile"))
}

// spireFile parses a SPIRE HCL configuration and returns its body.
func spireFile(t *testing.T, p string) *hclsyntax.Body {
	t.Helper()
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, p)
	if diags.HasErrors() {
		t.Fatalf("%s does not parse: %v", p, diags)
	}
	return f.Body.(*hclsyntax.Body)
}

// spireSetting returns the string value of attribute name in block typ ("server" or "agent").
func spireSetting(t *testing.T, body *hclsyntax.Body, typ, name string) string {
	t.Helper()
	for _, b := range body.Blocks {
		if b.Type != typ {
			continue
		}
		a, ok := b.Body.Attributes[name]
		if !ok {
			break
		}
		v, diags := a.Expr.Value(&hcl.EvalContext{})
		if diags.HasErrors() || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
			t.Fatalf("%s.%s is not a string literal: %v", typ, name, diags)
		}
		return v.AsString()
	}
	t.Fatalf("no %s.%s setting", typ, name)
	return ""
}

// spirePlugins returns the "Type/name" of every plugin declared in the plugins block.
func spirePlugins(body *hclsyntax.Body) []string {
	var out []string
	for _, b := range body.Blocks {
		if b.Type != "plugins" {
			continue
		}
		for _, p := range b.Body.Blocks {
			if len(p.Labels) == 1 {
				out = append(out, p.Type+"/"+p.Labels[0])
			}
		}
	}
	return out
}

func TestComposeExample(t *testing.T) {
	p := loadCompose(t)

	for _, name := range []string{"spire-server", "register", "spire-agent", "emulator", "bridge", "workload"} {
		service(t, p, name)
	}

	// Images: pinned, or built from a Dockerfile of the repository whose own base images are pinned.
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.Build == nil {
			if err := pinnedImage(s.Image); err != nil {
				t.Errorf("service %s: %v", name, err)
			}
			continue
		}
		if s.Build.DockerfileInline != "" {
			t.Errorf("service %s: use a Dockerfile in the repository, not dockerfile_inline", name)
			continue
		}
		if err := inRepo(t, s.Build.Context); err != nil {
			t.Errorf("service %s: build context: %v", name, err)
			continue
		}
		df := s.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if !filepath.IsAbs(df) {
			df = filepath.Join(s.Build.Context, df)
		}
		if err := inRepo(t, df); err != nil {
			t.Errorf("service %s: dockerfile: %v", name, err)
			continue
		}
		checkDockerfile(t, df)
	}
	for _, name := range []string{"emulator", "bridge"} {
		if !builtFromRepoDockerfile(t, service(t, p, name)) {
			t.Errorf("service %s must be built from the repository's Dockerfile (context ../.., dockerfile Dockerfile)", name)
		}
	}
	for name, want := range map[string]string{"spire-server": "ghcr.io/spiffe/spire-server:1.13.3", "workload": "amazon/aws-cli:2.17.0"} {
		if got := service(t, p, name).Image; got != want {
			t.Errorf("service %s: image %q, want %q", name, got, want)
		}
	}
	tools := service(t, p, "spire-agent")
	if tools.Build == nil {
		t.Fatal("service spire-agent: want the SPIRE tools image build")
	}
	toolsDockerfile := checkDockerfile(t, filepath.Join(tools.Build.Context, "Dockerfile"))
	for _, img := range []string{"ghcr.io/spiffe/spire-server:1.13.3", "ghcr.io/spiffe/spire-agent:1.13.3"} {
		if !slices.Contains(dockerfileFroms(toolsDockerfile), img) {
			t.Errorf("the SPIRE tools Dockerfile does not take its binaries from %s", img)
		}
	}

	// Bind mounts: every host path exists in the repository; named volumes are declared.
	for _, name := range p.ServiceNames() {
		for _, v := range p.Services[name].Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if err := inRepo(t, v.Source); err != nil {
					t.Errorf("service %s: bind mount of %s: %v", name, v.Target, err)
				}
				if !v.ReadOnly {
					t.Errorf("service %s: bind mount %s should be read-only", name, v.Target)
				}
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("service %s: volume %q is not declared", name, v.Source)
				}
			}
		}
	}

	// depends_on: conditions that can be met.
	for _, name := range p.ServiceNames() {
		for dep, d := range p.Services[name].DependsOn {
			ds := service(t, p, dep)
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if ds.HealthCheck == nil || len(ds.HealthCheck.Test) == 0 || ds.HealthCheck.Disable {
					t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				if ds.Restart != "" && ds.Restart != types.RestartPolicyNo {
					t.Errorf("service %s waits for %s to complete, which restarts (%s)", name, dep, ds.Restart)
				}
			}
		}
	}
	wantDeps := map[string]map[string]string{
		"register":    {"spire-server": types.ServiceConditionHealthy},
		"spire-agent": {"register": types.ServiceConditionCompletedSuccessfully},
		"emulator":    {"register": types.ServiceConditionCompletedSuccessfully},
		"bridge": {
			"register":    types.ServiceConditionCompletedSuccessfully,
			"spire-agent": types.ServiceConditionHealthy,
			"emulator":    types.ServiceConditionStarted,
		},
		"workload": {"bridge": types.ServiceConditionStarted},
	}
	for name, deps := range wantDeps {
		for dep, cond := range deps {
			if got := service(t, p, name).DependsOn[dep].Condition; got != cond {
				t.Errorf("service %s: depends_on %s condition %q, want %q", name, dep, got, cond)
			}
		}
	}

	// SPIRE: server.conf and agent.conf parse, and agree with each other.
	server := service(t, p, "spire-server")
	agent := service(t, p, "spire-agent")
	serverConf := hostFile(t, server, flagValue(argv(server), "-config"))
	serverBody := spireFile(t, serverConf)
	agentConf := hostFile(t, agent, "/etc/spire/agent/agent.conf")
	agentBody := spireFile(t, agentConf)
	trustDomain := spireSetting(t, serverBody, "server", "trust_domain")
	if got := spireSetting(t, agentBody, "agent", "trust_domain"); got != trustDomain {
		t.Errorf("agent trust_domain %q, server %q", got, trustDomain)
	}
	for _, want := range []string{"DataStore/sql", "KeyManager/disk", "NodeAttestor/join_token"} {
		if !slices.Contains(spirePlugins(serverBody), want) {
			t.Errorf("%s: no %s plugin", serverConf, want)
		}
	}
	for _, want := range []string{"NodeAttestor/join_token", "WorkloadAttestor/unix"} {
		if !slices.Contains(spirePlugins(agentBody), want) {
			t.Errorf("%s: no %s plugin", agentConf, want)
		}
	}
	if agent.Pid != "host" {
		t.Errorf("spire-agent: pid %q; the unix workload attestor needs pid: host to see the bridge's process", agent.Pid)
	}

	// The scripts the services run exist and mention what they must.
	register := service(t, p, "register")
	registerScript := readFile(t, hostFile(t, register, argv(register)[len(argv(register))-1]))
	agentScript := readFile(t, hostFile(t, agent, argv(agent)[len(argv(agent))-1]))
	if !strings.Contains(agentScript, "-config "+"/etc/spire/agent/agent.conf") || !strings.Contains(agentScript, "-joinToken") {
		t.Errorf("the agent's entrypoint does not run spire-agent with agent.conf and -joinToken")
	}
	serverSocket := spireSetting(t, serverBody, "server", "socket_path")
	if v, ok := register.Environment["SOCKET"]; !ok || v == nil || *v != serverSocket {
		t.Errorf("register: SOCKET is not the server's socket_path %q", serverSocket)
	}
	sharedVolume(t, server, serverSocket, register, serverSocket)

	// The bridge's configuration.
	bridge := service(t, p, "bridge")
	bridgeArgs := argv(bridge)
	if len(bridgeArgs) == 0 || bridgeArgs[0] != "run" {
		t.Errorf("bridge: command %q, want run --config …", bridgeArgs)
	}
	bridgeConfPath := flagValue(bridgeArgs, "--config")
	// Parsed rather than Loaded: the bridge container runs as a non-root user, and a test run as root
	// from a checkout another user owns would hold the repository's file to a root bridge's ownership rule.
	bridgeHostPath := hostFile(t, bridge, bridgeConfPath)
	bridgeCfg, err := config.Parse([]byte(readFile(t, bridgeHostPath)), bridgeHostPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(bridgeCfg.Profiles) != 1 {
		t.Fatalf("bridge.hcl: %d profiles, want 1", len(bridgeCfg.Profiles))
	}
	prof := bridgeCfg.Profiles[0]

	// The emulator's configuration (its CA bundle only exists at run time).
	emu := service(t, p, "emulator")
	emuArgs := argv(emu)
	if len(emuArgs) == 0 || path.Base(emuArgs[0]) != "rolesanywhere-emulator" {
		t.Fatalf("emulator: entrypoint %q, want rolesanywhere-emulator …", emuArgs)
	}
	if !slices.Contains(emuArgs, "--allow-remote") {
		t.Errorf("emulator: listens on %s without --allow-remote", flagValue(emuArgs, "--listen"))
	}
	emuConfPath := hostFile(t, emu, flagValue(emuArgs, "--config"))
	emuCfg, err := emulator.DecodeConfig([]byte(readFile(t, emuConfPath)), emuConfPath)
	if err != nil {
		t.Fatal(err)
	}

	// The registration entry is the bridge's SPIFFE ID, for the uid the bridge runs as, under the agent
	// the join token attests.
	env := func(s types.ServiceConfig, k string) string {
		v, ok := s.Environment[k]
		if !ok || v == nil {
			t.Fatalf("service %s: no %s in its environment", s.Name, k)
		}
		return *v
	}
	entryID, entryUID, agentID := env(register, "BRIDGE_SPIFFE_ID"), env(register, "BRIDGE_UID"), env(register, "AGENT_SPIFFE_ID")
	if entryID != prof.SpiffeID {
		t.Errorf("the registration entry is %s, the bridge's spiffe_id %s", entryID, prof.SpiffeID)
	}
	if !strings.HasPrefix(entryID, "spiffe://"+trustDomain+"/") || !strings.HasPrefix(agentID, "spiffe://"+trustDomain+"/") {
		t.Errorf("%s or %s is outside the trust domain %s", entryID, agentID, trustDomain)
	}
	for _, want := range []string{
		`token generate -socketPath "$SOCKET" -spiffeID "$AGENT_SPIFFE_ID"`,
		`entry create -socketPath "$SOCKET"`,
		`-parentID "$AGENT_SPIFFE_ID"`,
		`-spiffeID "$BRIDGE_SPIFFE_ID"`,
		`-selector "unix:uid:$BRIDGE_UID"`,
		`bundle show -socketPath "$SOCKET" -format pem`,
	} {
		if !strings.Contains(registerScript, want) {
			t.Errorf("register.sh does not run %q", want)
		}
	}
	if uid, _, _ := strings.Cut(bridge.User, ":"); uid != entryUID {
		t.Errorf("the bridge runs as user %q, the entry selects unix:uid:%s", bridge.User, entryUID)
	}

	// The emulator admits the bridge: trust anchor, profile listing the role, role whose condition
	// matches the SPIFFE ID.
	var anchorOK, profileOK bool
	for _, ta := range emuCfg.TrustAnchors {
		if ta.ARN == prof.TrustAnchorARN {
			anchorOK = true
			// The bundle register.sh exports is the file the trust anchor reads.
			sharedVolume(t, emu, ta.CABundleFile, register, "/shared/bundle.pem")
			sharedVolume(t, agent, spireSetting(t, agentBody, "agent", "trust_bundle_path"), register, "/shared/bundle.pem")
			if !strings.Contains(registerScript, "> /shared/bundle.pem") && !strings.Contains(registerScript, "/shared/bundle.pem.tmp") {
				t.Errorf("register.sh does not write /shared/bundle.pem")
			}
		}
	}
	for _, ep := range emuCfg.Profiles {
		if ep.ARN == prof.ProfileARN {
			profileOK = true
			if !slices.Contains(ep.RoleARNs, prof.RoleARN) {
				t.Errorf("emulator profile %s does not list the bridge's role %s", ep.ARN, prof.RoleARN)
			}
			if int(prof.SessionDuration.Seconds()) > ep.DurationSeconds {
				t.Errorf("the bridge asks for %s sessions; the emulator profile allows %ds", prof.SessionDuration, ep.DurationSeconds)
			}
		}
	}
	if !anchorOK {
		t.Errorf("the emulator has no trust anchor %s", prof.TrustAnchorARN)
	}
	if !profileOK {
		t.Errorf("the emulator has no profile %s", prof.ProfileARN)
	}
	var role *emulator.Role
	for _, r := range emuCfg.Roles {
		if r.ARN == prof.RoleARN {
			role = r
		}
	}
	if role == nil {
		t.Errorf("the emulator has no role %s", prof.RoleARN)
	} else {
		matched := false
		for _, c := range role.Conditions {
			if c.Tag != "x509SAN/URI" {
				t.Errorf("role %s: condition on %s; the demo's SVIDs are matched by x509SAN/URI", role.ARN, c.Tag)
				continue
			}
			for _, v := range c.Values {
				matched = matched || likeMatch(v, prof.SpiffeID)
			}
		}
		if !matched {
			t.Errorf("role %s: no x509SAN/URI condition matches %s", role.ARN, prof.SpiffeID)
		}
	}

	// The bridge reaches the emulator, and the agent through the shared socket.
	u, err := url.Parse(prof.Endpoint)
	if err != nil || u.Hostname() != "emulator" {
		t.Errorf("the bridge's endpoint %q is not the emulator service", prof.Endpoint)
	} else {
		_, listenPort, _ := strings.Cut(flagValue(emuArgs, "--listen"), ":")
		if u.Port() != listenPort {
			t.Errorf("the bridge's endpoint %q: the emulator listens on port %q", prof.Endpoint, listenPort)
		}
		// The emulator's guard accepts the Host the bridge sends (a DNS name, so only through
		// --allowed-hosts).
		allowed := flagValues(emuArgs, "--allowed-hosts")
		if !slices.Contains(allowed, "emulator") {
			t.Errorf("emulator: no --allowed-hosts emulator (got %q): it would refuse the bridge's Host %q", allowed, u.Host)
		}
		g, err := netutil.Guard(http.NotFoundHandler(), netutil.GuardOptions{Addr: flagValue(emuArgs, "--listen"), AllowedHosts: allowed})
		if err != nil {
			t.Fatalf("emulator --listen/--allowed-hosts: %v", err)
		}
		req := httptest.NewRequest(http.MethodPost, prof.Endpoint+"/sessions", nil)
		w := httptest.NewRecorder()
		if g.ServeHTTP(w, req); w.Code == http.StatusForbidden {
			t.Errorf("the emulator refuses the bridge's request to %s: %s", prof.Endpoint, w.Body)
		}
	}
	socketPath := spireSetting(t, agentBody, "agent", "socket_path")
	if bridgeCfg.AgentAddress != "unix://"+socketPath {
		t.Errorf("the bridge's agent_address %q is not the agent's socket_path %q", bridgeCfg.AgentAddress, socketPath)
	}
	sharedVolume(t, agent, path.Dir(socketPath), bridge, path.Dir(socketPath))
	if v := agent.HealthCheck; v == nil || !slices.Contains(v.Test, socketPath) {
		t.Errorf("spire-agent: the healthcheck does not probe %s", socketPath)
	}
	if server.HealthCheck == nil || !slices.Contains(server.HealthCheck.Test, serverSocket) {
		t.Errorf("spire-server: the healthcheck does not probe %s", serverSocket)
	}

	// The workload reads what the bridge writes.
	workload := service(t, p, "workload")
	if prof.CredentialsFile == nil || prof.ContainerEndpoint == nil {
		t.Fatal("bridge.hcl: the demo needs credentials_file and container_endpoint")
	}
	sharedVolume(t, bridge, prof.CredentialsFile.Path, workload, "/aws/credentials")
	sharedVolume(t, bridge, prof.ContainerEndpoint.AuthTokenFile, workload, "/aws/container.token")
	sharedVolume(t, bridge, prof.CredentialsFile.Path, register, "/aws/credentials") // register.sh chowns /aws
	if !strings.Contains(registerScript, `chown "$BRIDGE_UID:$BRIDGE_UID" /aws`) {
		t.Errorf("register.sh does not give /aws to the bridge's uid")
	}
	workloadScript := readFile(t, hostFile(t, workload, argv(workload)[len(argv(workload))-1]))
	endpointURL := fmt.Sprintf("http://%s:%d%s", prof.ContainerEndpoint.BindAddress, prof.ContainerEndpoint.BindPort, prof.ContainerEndpoint.Path)
	for _, want := range []string{
		"/aws/credentials", "/aws/container.token", endpointURL, "http://emulator:" + u.Port(),
		"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"sts get-caller-identity", "--region us-east-1", "sleep 20",
	} {
		if !strings.Contains(workloadScript, want) {
			t.Errorf("workload.sh does not mention %q", want)
		}
	}
	// SDKs use plain http for the container endpoint on loopback only: the workload must share the
	// bridge's network namespace to reach a loopback endpoint.
	if prof.ContainerEndpoint.BindAddress == "127.0.0.1" && workload.NetworkMode != "service:bridge" {
		t.Errorf("workload: network_mode %q; the container endpoint listens on the bridge's loopback", workload.NetworkMode)
	}
	if hc := bridgeCfg.HealthChecks; hc == nil {
		t.Errorf("bridge.hcl: no health_checks")
	} else if !slices.ContainsFunc(bridge.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == uint32(hc.BindPort) }) {
		t.Errorf("bridge: the health_checks port %d is not published", hc.BindPort)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ---- Dockerfile and build script ------------------------------------------------------------------

// releaseBinaries are what scripts/build.sh builds and the image ships.
var releaseBinaries = []string{"spiffe-aws-bridge", "spiffe-aws-bridge-k8s", "spiffe-aws-credential-process", "rolesanywhere-emulator"}

func TestDockerfile(t *testing.T) {
	src := checkDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	froms := dockerfileFroms(src)
	for _, want := range []string{"golang:1.26.8-bookworm", "gcr.io/distroless/static-debian12:nonroot"} {
		if !slices.Contains(froms, want) {
			t.Errorf("Dockerfile: no FROM %s (have %q)", want, froms)
		}
	}
	var runsBuild bool
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "RUN ") && strings.Contains(line, "scripts/build.sh") {
			runsBuild = true
		}
	}
	if !runsBuild {
		t.Error("Dockerfile: no RUN step calls scripts/build.sh")
	}
	for _, want := range []string{
		"ARG VERSION=dev", "ARG COMMIT=unknown", "COPY go.mod go.sum ./", "RUN go mod download",
		"USER nonroot:nonroot",
		`ENTRYPOINT ["/usr/local/bin/spiffe-aws-bridge"]`,
		`CMD ["run", "--config", "/etc/spiffe-aws-bridge/bridge.hcl"]`,
		"org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.source",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("Dockerfile: no %q", want)
		}
	}
	if strings.Index(src, "RUN go mod download") > strings.Index(src, "COPY . .") {
		t.Error("Dockerfile: download the modules before copying the source, for the layer cache")
	}
	for _, bin := range releaseBinaries {
		if !regexp.MustCompile(`(?m)^COPY --from=\S+ .*/out/` + bin + `\b.* /usr/local/bin/`).MatchString(src) {
			t.Errorf("Dockerfile: %s is not copied to /usr/local/bin", bin)
		}
	}

	ignore := readFile(t, filepath.Join(repoRoot, ".dockerignore"))
	lines := strings.Fields(ignore)
	if !slices.Contains(lines, ".git") {
		t.Error(".dockerignore does not exclude .git")
	}
	for _, needed := range []string{"go.mod", "go.sum", "scripts", "scripts/build.sh", "cmd", "internal"} {
		for _, l := range lines {
			if ok, _ := filepath.Match(l, needed); ok && !strings.HasPrefix(l, "!") {
				t.Errorf(".dockerignore excludes %s, which the build needs (pattern %q)", needed, l)
			}
		}
	}
}

func TestDockerBuildScript(t *testing.T) {
	script := filepath.Join(repoRoot, "scripts", "build.sh")
	src := readFile(t, script)
	if !strings.HasPrefix(src, "#!/usr/bin/env bash\n") || !strings.Contains(src, "set -euo pipefail") {
		t.Error("scripts/build.sh: want a bash script with set -euo pipefail")
	}
	for _, want := range []string{"CGO_ENABLED=0 go build -tags grpcnotrace -trimpath", `-ldflags "-s -w -X $pkg.version=${VERSION:-dev} -X $pkg.commit=${COMMIT:-unknown}"`,
		"pkg=github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/buildinfo", "for cmd in " + strings.Join(releaseBinaries, " ") + "; do"} {
		if !strings.Contains(src, want) {
			t.Errorf("scripts/build.sh does not contain\n%s", want)
		}
	}
	if fi, err := os.Stat(script); err != nil || fi.Mode()&0o111 == 0 {
		t.Error("scripts/build.sh is not executable")
	}
	if testing.Short() {
		t.Skip("builds the release binaries")
	}
	out := t.TempDir()
	cmd := exec.Command("bash", script, out)
	cmd.Env = append(os.Environ(), "VERSION=v0.0.0-examples-test", "COMMIT=0123abc")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build.sh: %v\n%s", err, b)
	}
	b, err := exec.Command(filepath.Join(out, "spiffe-aws-bridge"), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("spiffe-aws-bridge version: %v\n%s", err, b)
	}
	if !strings.HasPrefix(string(b), "spiffe-aws-bridge v0.0.0-examples-test (commit 0123abc,") {
		t.Errorf("spiffe-aws-bridge version: %q: the ldflags did not stamp VERSION and COMMIT", b)
	}
	for _, bin := range releaseBinaries[1:] {
		b, err = exec.Command(filepath.Join(out, bin), "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(b), "v0.0.0-examples-test") {
			t.Errorf("%s --version: %q, %v", bin, b, err)
		}
	}
}

// ---- systemd --------------------------------------------------------------------------------------

// unitSettings parses a systemd unit into section → key → values (a key may repeat).
func unitSettings(src string) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	section := ""
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, _ := strings.Cut(line, "=")
			out[section][strings.TrimSpace(k)] = append(out[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return out
}

// listeners counts the listening sockets cfg opens: health checks, metrics, each profile's endpoints.
func listeners(cfg *config.Config) int {
	n := 0
	if cfg.HealthChecks != nil {
		n++
	}
	if cfg.Telemetry != nil && cfg.Telemetry.Prometheus != nil {
		n++
	}
	for _, p := range cfg.Profiles {
		if p.IMDS != nil {
			n++
		}
		if p.ContainerEndpoint != nil {
			n++
		}
	}
	return n
}

// unitBytes parses a systemd size (MemoryMax=): bytes, or with a K, M, G or T suffix (powers of 1024).
func unitBytes(s string) (int64, error) {
	mult := int64(1)
	if i := strings.IndexAny(s, "KMGT"); i == len(s)-1 && i > 0 {
		mult = int64(1) << (10 * (strings.IndexByte("KMGT", s[i]) + 1))
		s = s[:i]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

// checkStarvationBounds: a unit runs the bridge with bounds a local user cannot push it past. LimitNOFILE
// leaves the full connection budget (netutil.MaxConnections) beside the reserve for files and cfg's
// listeners, so connections held open cannot starve the credentials-file writes and legitimate clients
// still get a slot; MemoryMax is set, above what the bridge needs with every connection held (it turns a
// runaway into a restart); the file system is read-only except the runtime directory and ReadWritePaths.
func checkStarvationBounds(t *testing.T, unitName string, svc map[string][]string, cfg *config.Config) {
	t.Helper()
	nofile, err := strconv.Atoi(strings.Join(svc["LimitNOFILE"], ""))
	if err != nil {
		t.Errorf("%s: LimitNOFILE=%q, want a number", unitName, svc["LimitNOFILE"])
	} else if need := netutil.ReservedDescriptors + listeners(cfg) + netutil.MaxConnections; nofile < need {
		t.Errorf("%s: LimitNOFILE=%d leaves fewer than %d connections beside the %d reserved descriptors and %d listeners; want at least %d",
			unitName, nofile, netutil.MaxConnections, netutil.ReservedDescriptors, listeners(cfg), need)
	}
	mem, err := unitBytes(strings.Join(svc["MemoryMax"], ""))
	if err != nil {
		t.Errorf("%s: MemoryMax=%q, want a size such as 256M", unitName, svc["MemoryMax"])
	} else if mem < 128<<20 {
		t.Errorf("%s: MemoryMax=%d bytes: the bridge with every connection held needs more than 128 MiB of room", unitName, mem)
	}
	if !slices.Contains(svc["ProtectSystem"], "strict") {
		t.Errorf("%s: ProtectSystem=%q, want strict", unitName, svc["ProtectSystem"])
	}
	if rd := strings.Join(svc["RuntimeDirectory"], ""); rd == "" {
		t.Errorf("%s: no RuntimeDirectory= (the credentials' tmpfs directory, removed on stop)", unitName)
	} else if !slices.ContainsFunc(svc["ReadWritePaths"], func(p string) bool { return strings.Contains(p, "/run/"+rd) }) {
		t.Errorf("%s: ReadWritePaths=%q should name /run/%s", unitName, svc["ReadWritePaths"], rd)
	}
}

func TestSystemdExample(t *testing.T) {
	dir := filepath.Join("systemd")
	cfgPath := filepath.Join(dir, "bridge.hcl")
	cfg, err := config.Parse([]byte(readFile(t, cfgPath)), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := unitSettings(readFile(t, filepath.Join(dir, "spiffe-aws-bridge.service")))
	svc := unit["Service"]
	if svc == nil {
		t.Fatal("spiffe-aws-bridge.service: no [Service] section")
	}
	want := map[string]string{
		"Type":                     "simple",
		"ExecStart":                "/usr/local/bin/spiffe-aws-bridge run --config /etc/spiffe-aws-bridge/bridge.hcl",
		"ExecReload":               "/bin/kill -HUP $MAINPID",
		"Restart":                  "on-failure",
		"RestartPreventExitStatus": "2",
		"NoNewPrivileges":          "yes",
		"ProtectSystem":            "strict",
		"PrivateTmp":               "yes",
		"ProtectKernelTunables":    "yes",
		"ProtectKernelModules":     "yes",
		"ProtectControlGroups":     "yes",
		"RestrictAddressFamilies":  "AF_UNIX AF_INET AF_INET6",
		"LockPersonality":          "yes",
		"MemoryDenyWriteExecute":   "yes",
		"SystemCallFilter":         "@system-service",
		"CapabilityBoundingSet":    "",
	}
	for k, v := range want {
		if !slices.Contains(svc[k], v) {
			t.Errorf("spiffe-aws-bridge.service: %s=%q, want %q", k, svc[k], v)
		}
	}
	if h := svc["ProtectHome"]; !slices.Contains(h, "read-only") && !slices.Contains(h, "tmpfs") && !slices.Contains(h, "yes") {
		t.Errorf("spiffe-aws-bridge.service: ProtectHome=%q", h)
	}
	if len(svc["User"]) == 0 && !slices.Contains(svc["DynamicUser"], "yes") {
		t.Error("spiffe-aws-bridge.service: no User= or DynamicUser=yes")
	}
	// Everything the bridge writes is in a writable path despite ProtectSystem=strict.
	var writable []string
	for _, p := range svc["ReadWritePaths"] {
		for _, f := range strings.Fields(p) {
			writable = append(writable, strings.TrimPrefix(f, "-"))
		}
	}
	for _, d := range svc["RuntimeDirectory"] {
		writable = append(writable, "/run/"+d)
	}
	for _, d := range svc["StateDirectory"] {
		writable = append(writable, "/var/lib/"+d)
	}
	under := func(p string) bool {
		return slices.ContainsFunc(writable, func(w string) bool { return p == w || strings.HasPrefix(p, w+"/") })
	}
	for _, prof := range cfg.Profiles {
		if c := prof.CredentialsFile; c != nil && !under(path.Dir(c.Path)) {
			t.Errorf("profile %s: %s is not under a writable path (%q)", prof.Name, c.Path, writable)
		}
		if c := prof.ContainerEndpoint; c != nil && !under(path.Dir(c.AuthTokenFile)) {
			t.Errorf("profile %s: %s is not under a writable path (%q)", prof.Name, c.AuthTokenFile, writable)
		}
	}
	if cfg.AgentAddress == "" || !strings.HasPrefix(cfg.AgentAddress, "unix:///") {
		t.Errorf("bridge.hcl: agent_address %q, want the local agent's unix socket", cfg.AgentAddress)
	}
	checkStarvationBounds(t, "systemd/spiffe-aws-bridge.service", svc, cfg)
}

// ---- Node mode ------------------------------------------------------------------------------------

// TestNodeExample: the node-mode example is consistent end to end — the bridge config parses, every
// profile is delegated by a uid selector that entries.sh registers, files land under the unit's writable
// path owned by that uid, the admin socket the bridge dials is the agent's admin_socket_path (not in
// socket_path's directory), and the agent authorises exactly the SPIFFE ID entries.sh gives the uid the
// unit runs as.
func TestNodeExample(t *testing.T) {
	cfg, err := config.Parse([]byte(readFile(t, "node/bridge.hcl")), "node/bridge.hcl")
	if err != nil {
		t.Fatal(err)
	}
	agent := spireFile(t, "node/agent.conf")
	adminPath := spireSetting(t, agent, "agent", "admin_socket_path")
	socketPath := spireSetting(t, agent, "agent", "socket_path")
	if adminPath == "" || path.Dir(adminPath) == path.Dir(socketPath) {
		t.Errorf("agent.conf: admin_socket_path %q must be set, outside socket_path's directory %q", adminPath, path.Dir(socketPath))
	}
	if cfg.DelegatedIdentity == nil || cfg.DelegatedIdentity.AdminAddress != "unix://"+adminPath {
		t.Errorf("bridge.hcl: delegated_identity %+v, want admin_address unix://%s", cfg.DelegatedIdentity, adminPath)
	}
	if cfg.AgentAddress != "unix://"+socketPath {
		t.Errorf("bridge.hcl: agent_address %q, want unix://%s", cfg.AgentAddress, socketPath)
	}
	delegates := spireList(t, agent, "agent", "authorized_delegates")

	// entries.sh: -spiffeID X -selector S per line.
	entries := map[string]string{} // selector -> SPIFFE ID
	re := regexp.MustCompile(`entry create .*-spiffeID (\S+) -selector (\S+)`)
	for _, m := range re.FindAllStringSubmatch(readFile(t, "node/entries.sh"), -1) {
		entries[m[2]] = m[1]
	}
	unit := unitSettings(readFile(t, "node/spiffe-aws-bridge.service"))["Service"]
	uid := "0"
	if u := unit["User"]; len(u) > 0 && u[0] != "root" {
		t.Fatalf("the unit runs as %q: the bridge must be root to give each service its files", u)
	}
	bridgeID := entries["unix:uid:"+uid]
	if bridgeID == "" || !slices.Equal(delegates, []string{bridgeID}) {
		t.Errorf("authorized_delegates %q, want exactly the bridge's entry %q (unix:uid:%s)", delegates, bridgeID, uid)
	}
	for _, c := range []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"} {
		if !strings.Contains(strings.Join(unit["CapabilityBoundingSet"], " "), c) {
			t.Errorf("unit lacks %s in CapabilityBoundingSet", c)
		}
	}
	writable := "/run/" + strings.Join(unit["RuntimeDirectory"], "")
	seen := map[string]bool{}
	for _, p := range cfg.Profiles {
		if !p.Delegated() || len(p.WorkloadSelectors) != 1 {
			t.Errorf("profile %s: selectors %q, want one unix:uid selector", p.Name, p.WorkloadSelectors)
			continue
		}
		sel := p.WorkloadSelectors[0]
		id := entries[sel]
		if id == "" {
			t.Errorf("profile %s: no entry in entries.sh for %s", p.Name, sel)
		}
		if p.SpiffeID != "" && p.SpiffeID != id {
			t.Errorf("profile %s: spiffe_id %s, but the entry for %s is %s", p.Name, p.SpiffeID, sel, id)
		}
		if seen[sel] {
			t.Errorf("profile %s: selector %s used twice", p.Name, sel)
		}
		seen[sel] = true
		uid := strings.TrimPrefix(sel, "unix:uid:")
		if f := p.CredentialsFile; f != nil && (f.Owner != uid || !strings.HasPrefix(f.Path, writable+"/"+p.Name+"/")) {
			t.Errorf("profile %s: credentials file %s owner %q, want owner %s under %s/%s/", p.Name, f.Path, f.Owner, uid, writable, p.Name)
		}
		if c := p.ContainerEndpoint; c != nil && (c.AuthTokenOwner != uid || !strings.HasPrefix(c.AuthTokenFile, writable+"/"+p.Name+"/")) {
			t.Errorf("profile %s: token %s owner %q, want owner %s under %s/%s/", p.Name, c.AuthTokenFile, c.AuthTokenOwner, uid, writable, p.Name)
		}
		if p.IMDS != nil {
			t.Errorf("profile %s: imds in node mode", p.Name)
		}
	}
	if len(cfg.Profiles) < 2 {
		t.Error("the node example should serve several services")
	}
	checkStarvationBounds(t, "node/spiffe-aws-bridge.service", unit, cfg)
}

// spireList reads a list of strings setting of a block of a SPIRE HCL file.
func spireList(t *testing.T, body *hclsyntax.Body, typ, name string) []string {
	t.Helper()
	for _, b := range body.Blocks {
		if b.Type != typ {
			continue
		}
		a, ok := b.Body.Attributes[name]
		if !ok {
			break
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, e.AsString())
		}
		return out
	}
	return nil
}

// ---- Kubernetes -----------------------------------------------------------------------------------

// yamlBlockScalar returns the block scalar (`key: |`) value of key from a YAML document, dedented.
func yamlBlockScalar(t *testing.T, src, key string) string {
	t.Helper()
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		trimmed := strings.TrimLeft(l, " ")
		if trimmed != key+": |" && trimmed != key+": |-" {
			continue
		}
		keyIndent := len(l) - len(trimmed)
		var out []string
		indent := -1
		for _, b := range lines[i+1:] {
			body := strings.TrimLeft(b, " ")
			if body == "" {
				out = append(out, "")
				continue
			}
			ind := len(b) - len(body)
			if ind <= keyIndent {
				break
			}
			if indent < 0 {
				indent = ind
			}
			if ind < indent {
				t.Fatalf("%s: the block is indented inconsistently", key)
			}
			out = append(out, b[indent:])
		}
		return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
	}
	t.Fatalf("no %q block scalar", key)
	return ""
}

// yamlValues returns every scalar value of key (as `key: value`) in a YAML document.
func yamlValues(src, key string) []string {
	var out []string
	re := regexp.MustCompile(`(?m)^\s*(?:-\s+)?` + regexp.QuoteMeta(key) + `:\s*(\S.*?)\s*$`)
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		out = append(out, strings.Trim(m[1], `"'`))
	}
	return out
}

func TestKubernetesExample(t *testing.T) {
	dir := "kubernetes"
	cm := readFile(t, filepath.Join(dir, "configmap.yaml"))
	cfg, err := config.Parse([]byte(yamlBlockScalar(t, cm, "bridge.hcl")), "configmap.yaml#bridge.hcl")
	if err != nil {
		t.Fatal(err)
	}
	prof := cfg.Profiles[0]
	dep := readFile(t, filepath.Join(dir, "deployment.yaml"))

	for _, img := range yamlValues(dep, "image") {
		if err := pinnedImage(img); err != nil {
			t.Errorf("deployment.yaml: %v", err)
		}
	}
	for _, want := range []string{
		"driver: csi.spiffe.io", "mountPath: /spiffe-workload-api", "restartPolicy: Always",
		"readOnlyRootFilesystem: true", "runAsNonRoot: true", `drop: ["ALL"]`,
		"path: /ready", "path: /live", "emptyDir:",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_SHARED_CREDENTIALS_FILE",
		`args: ["run", "--config", "/etc/spiffe-aws-bridge/bridge.hcl"]`,
		"mountPath: /etc/spiffe-aws-bridge",
		"name: " + yamlValues(cm, "name")[0],
	} {
		if !strings.Contains(dep, want) {
			t.Errorf("deployment.yaml: no %q", want)
		}
	}
	if !strings.HasPrefix(cfg.AgentAddress, "unix:///spiffe-workload-api/") {
		t.Errorf("bridge.hcl: agent_address %q is not in the CSI volume /spiffe-workload-api", cfg.AgentAddress)
	}
	if prof.CredentialsFile == nil || !strings.HasPrefix(prof.CredentialsFile.Path, "/aws/") {
		t.Error("bridge.hcl: the credentials file is not in the shared /aws emptyDir")
	}
	if c := prof.ContainerEndpoint; c == nil || c.BindAddress != "127.0.0.1" || !strings.HasPrefix(c.AuthTokenFile, "/aws/") {
		t.Error("bridge.hcl: want a loopback container endpoint with its token in /aws")
	} else if uri := fmt.Sprintf("http://127.0.0.1:%d%s", c.BindPort, c.Path); !strings.Contains(dep, uri) {
		t.Errorf("deployment.yaml: the app does not use the container endpoint %s", uri)
	}
	hc := cfg.HealthChecks
	if hc == nil || !hc.AllowRemote || !strings.Contains(dep, "containerPort: "+strconv.Itoa(hc.BindPort)) {
		t.Error("bridge.hcl: health_checks must listen on the pod IP, on the port the probes use")
	}

	// The ClusterSPIFFEID issues the pod the bridge's spiffe_id.
	cs := readFile(t, filepath.Join(dir, "clusterspiffeid.yaml"))
	tmplText := yamlValues(cs, "spiffeIDTemplate")
	if len(tmplText) != 1 {
		t.Fatal("clusterspiffeid.yaml: no spiffeIDTemplate")
	}
	tmpl, err := template.New("id").Parse(tmplText[0])
	if err != nil {
		t.Fatal(err)
	}
	var id strings.Builder
	err = tmpl.Execute(&id, map[string]any{
		"TrustDomain": "example.org",
		"PodMeta":     map[string]string{"Namespace": yamlValues(dep, "namespace")[0]},
		"PodSpec":     map[string]string{"ServiceAccountName": yamlValues(dep, "serviceAccountName")[0]},
	})
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != prof.SpiffeID {
		t.Errorf("the ClusterSPIFFEID issues %s, the bridge wants %s", id.String(), prof.SpiffeID)
	}
	if !strings.Contains(cs, "k8s:container-name:spiffe-aws-bridge") || !strings.Contains(dep, "- name: spiffe-aws-bridge") {
		t.Error("the ClusterSPIFFEID should select the bridge container, named spiffe-aws-bridge")
	}
	// Under the hardened SPIRE charts (watchClassless: false) a ClusterSPIFFEID without the controller
	// manager's class makes no entries at all.
	if cls := yamlValues(cs, "className"); len(cls) != 1 || cls[0] != "spire-server-spire" {
		t.Errorf("clusterspiffeid.yaml: className %q, want the hardened charts' spire-server-spire", cls)
	}
	// /aws is a memory-backed emptyDir, sticky (1777, 3777 with fsGroup): accepted as it is, so the
	// example does not ask for allow_shared_directory.
	if !strings.Contains(dep, "medium: Memory") {
		t.Error("deployment.yaml: the aws emptyDir must be memory-backed (sticky, and never on the node's disk)")
	}
	if prof.CredentialsFile != nil && prof.CredentialsFile.AllowSharedDirectory ||
		prof.ContainerEndpoint != nil && prof.ContainerEndpoint.AllowSharedDirectory {
		t.Error("bridge.hcl: allow_shared_directory is not needed for a memory-backed emptyDir; leave it off")
	}
}

// ---- READMEs ----------------------------------------------------------------------------------------

// readmeSnippets returns the fenced blocks of a Markdown file whose info string is info ("hcl",
// "hcl emulator", "hcl spire").
func readmeSnippets(t *testing.T, p, info string) []string {
	t.Helper()
	var out []string
	re := regexp.MustCompile("(?ms)^```" + regexp.QuoteMeta(info) + "[ \t]*\n(.*?)^```")
	for _, m := range re.FindAllStringSubmatch(readFile(t, p), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestExampleREADMEsShowTheirFiles keeps each README's copy of a configuration the same, comments aside,
// as the file the example runs.
func TestExampleREADMEsShowTheirFiles(t *testing.T) {
	bridgeConfig := func(name, src string) *config.Config {
		c, err := config.Parse([]byte(src), name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, c := range []struct{ readme, file string }{
		{"spire/README.md", "spire/bridge/bridge.hcl"},
		{"systemd/README.md", "systemd/bridge.hcl"},
		{"kubernetes/README.md", "kubernetes/configmap.yaml"},
		{"node/README.md", "node/bridge.hcl"},
	} {
		snippets := readmeSnippets(t, c.readme, "hcl")
		if len(snippets) == 0 {
			t.Errorf("%s: no hcl snippet", c.readme)
			continue
		}
		src := readFile(t, c.file)
		if strings.HasSuffix(c.file, ".yaml") {
			src = yamlBlockScalar(t, src, "bridge.hcl")
		}
		want, got := bridgeConfig(c.file, src), bridgeConfig(c.readme, snippets[0])
		if !got.Equal(want) {
			t.Errorf("%s: the first hcl snippet is not %s:\n got %+v\nwant %+v", c.readme, c.file, got, want)
		}
	}

	snippets := readmeSnippets(t, "spire/README.md", "hcl emulator")
	if len(snippets) != 1 {
		t.Fatalf("spire/README.md: %d emulator snippets, want 1", len(snippets))
	}
	got, err := emulator.DecodeConfig([]byte(snippets[0]), "README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := emulator.DecodeConfig([]byte(readFile(t, "spire/emulator/emulator.hcl")), "emulator.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spire/README.md: the emulator snippet is not emulator/emulator.hcl")
	}

	// The BundlePublisher snippet names the plugin and the keys SPIRE's plugin reads.
	spire := readmeSnippets(t, "spire/README.md", "hcl spire")
	if len(spire) == 0 || !strings.Contains(spire[0], `BundlePublisher "aws_rolesanywhere_trustanchor"`) ||
		!strings.Contains(spire[0], "trust_anchor_id") || !strings.Contains(spire[0], "region") {
		t.Errorf("spire/README.md: no aws_rolesanywhere_trustanchor BundlePublisher snippet")
	}
}

// The pod identity example: the demo namespace opts in to the webhook, the ClusterSPIFFEID names the
// hardened charts' class and matches the bridge's requests (the pod's selectors, no container), the rules
// cover the demo's service accounts, and the webhook-less Deployment carries what the webhook would add.
func TestKubernetesPodIdentityExample(t *testing.T) {
	dir := filepath.Join("kubernetes", "pod-identity")
	uncommented := func(src string) string {
		return regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(src, "")
	}
	demo := uncommented(readFile(t, filepath.Join(dir, "demo.yaml")))
	if !strings.Contains(demo, "spiffe-aws-bridge.io/pod-identity: enabled") {
		t.Error("demo.yaml: the namespace does not opt in to injection")
	}
	for _, img := range append(yamlValues(demo, "image"), yamlValues(readFile(t, filepath.Join(dir, "without-webhook.yaml")), "image")...) {
		if err := pinnedImage(img); err != nil {
			t.Errorf("%v", err)
		}
	}
	if strings.Contains(demo, "AWS_CONTAINER_") || strings.Contains(demo, "spiffe-aws-bridge:") {
		t.Error("demo.yaml: the pods must carry no bridge and no credential setting (the webhook adds them)")
	}
	cs := uncommented(readFile(t, filepath.Join(dir, "clusterspiffeid.yaml")))
	if cls := yamlValues(cs, "className"); len(cls) != 1 || cls[0] != "spire-server-spire" {
		t.Errorf("clusterspiffeid.yaml: className %q, want spire-server-spire", cls)
	}
	if strings.Contains(cs, "k8s:container-name") {
		t.Error("clusterspiffeid.yaml: a container-name selector matches no Delegated Identity request for a pod")
	}
	values := readFile(t, filepath.Join(dir, "values.yaml"))
	for _, sa := range yamlValues(demo, "serviceAccountName") {
		if !strings.Contains(values, "spiffe://example.org/ns/shop/sa/"+sa+`"`) && !strings.Contains(values, `spiffe://example.org/ns/shop/sa/{sa}"`) {
			t.Errorf("values.yaml: no rule for service account %s", sa)
		}
	}
	delegate := "spiffe://example.org/ns/spiffe-aws-bridge/sa/spiffe-aws-bridge-node"
	if !strings.Contains(readFile(t, filepath.Join(dir, "spire-values.yaml")), delegate) || !strings.Contains(values, delegate) {
		t.Errorf("spire-values.yaml and values.yaml must agree on the delegate %s", delegate)
	}
	plain := readFile(t, filepath.Join(dir, "without-webhook.yaml"))
	for _, want := range []string{
		"value: http://169.254.170.23/v1/credentials",
		"value: /var/run/secrets/spiffe-aws-bridge/serviceaccount/token",
		"mountPath: /var/run/secrets/spiffe-aws-bridge/serviceaccount",
		"audience: spiffe-aws-bridge", "expirationSeconds: 86400", "path: token",
		"spiffe-aws-bridge.io/pod-identity: disabled",
	} {
		if !strings.Contains(plain, want) {
			t.Errorf("without-webhook.yaml: no %q", want)
		}
	}
}
