// Package daemon wires a validated config into running parts: one SPIFFE Workload API source, one
// CreateSession client, and per profile a bridge.Refresher with its sinks (credentials file, IMDSv2 and
// container endpoints, hooks); plus the daemon-wide health and metrics servers. It also applies a new
// config on SIGHUP, transactionally: the new version of each changed profile is built and started before
// the old one stops, and a reload that fails anywhere leaves every profile running as it was.
package daemon

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/credfile"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/endpoint"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/hook"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain/sdksts"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/delegated"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/wiring"
)

// Options are the daemon's injectable dependencies; all are optional.
type Options struct {
	// Logger receives every log line; default: discard.
	Logger hclog.Logger
	// Clock drives refresh timing; default the wall clock.
	Clock clock.Clock
	// Signer configures the CreateSession client (HTTP client, retries).
	Signer signer.Options
	// Policy overrides fields of every profile's refresh policy when non-zero (tests and benchmarks);
	// normally each profile's refresh block decides.
	Policy schedule.Policy
	// Observer receives refresh events in addition to the metrics server (tests).
	Observer bridge.Observer
	// STS makes the assume_role hops of profiles that have them; default aws-sdk-go-v2's STS client
	// (chain/sdksts) with Signer.HTTPClient.
	STS chain.STS
	// WorkloadAPIBackoff bounds the reconnections to the Workload API; zero fields take svid's defaults.
	WorkloadAPIBackoff svid.Backoff
	// LookupOwner resolves the user names of credentials_file owners (also node mode's unix:user
	// selectors) before every write; default the system's user database (safefs.LookupOwner). Tests
	// inject one to re-create an account with another uid.
	LookupOwner func(name string) (safefs.ID, error)
	// Conns is the connection budget every server of the daemon (health, metrics, each profile's IMDS
	// and container endpoints) shares; default: netutil.NewConnLimit with the process's descriptor
	// limit, so that clients holding connections cannot use up the descriptors the credentials files
	// need.
	Conns *netutil.ConnLimit
	// PodAuthenticator builds pod identity's token authenticator for a config with a pod_identity block:
	// podidentity/kube.NewAuthenticatorFactory (TokenReview and this node's pod informer) in
	// spiffe-aws-bridge-k8s. Without one, a pod_identity block is a *ConfigError at start and a refused
	// reload, naming the block and the binary to run instead.
	PodAuthenticator podidentity.AuthenticatorFactory
	// Getenv reads the environment (pod identity's $NODE_NAME); default os.Getenv.
	Getenv func(string) string
}

// ConcurrentRefreshes is how many refreshes (CreateSession with any assume_role hops, then the delivery to
// the sinks) of a daemon's profiles that call one Roles Anywhere endpoint run at once: as many as the
// connections the signer keeps per endpoint. Sixteen keep a 2-CPU host busy, far exceed what a Roles
// Anywhere quota (10 calls a second per account and region) admits, and bound the memory a mass rotation
// of 1,000 node-mode profiles takes (docs/benchmarks.md "Node mode"). Profiles of other endpoints (another
// region, an emulator) have slots of their own, so an endpoint that hangs delays only its own profiles.
const ConcurrentRefreshes = signer.MaxConnsPerHost

// Daemon runs the profiles of one config.
type Daemon struct {
	opts   Options
	log    hclog.Logger
	client *signer.Client
	tel    *telemetry
	// wall tells every refresher when the wall clock jumped: one goroutine re-reads the clock for all.
	wall *clock.Watch
	// imdsKey authenticates the IMDS session tokens of every profile, so tokens outlive a reload.
	imdsKey []byte
	// limiters let ConcurrentRefreshes refreshes per Roles Anywhere endpoint run at once; by limiterKey,
	// under limMu (pod identity builds sessions without d.mu).
	limMu     sync.Mutex
	limiters  map[string]*bridge.Limiter
	stopWatch context.CancelFunc
	watching  chan struct{}

	mu       sync.Mutex
	cfg      *config.Config
	profiles map[string]*profile
	reload   ReloadStatus
	// delegated is node mode's Delegated Identity API source; nil until a profile with
	// workload_selectors starts.
	delegated *delegated.Source
	// pendingAdmin is the admin address of the config being applied (d.cfg is set after apply).
	pendingAdmin string
	// agentAddress is the config's agent_address at start; source (the bridge's own Workload API source)
	// is started from it by the first profile that needs it.
	agentAddress string
	source       atomic.Pointer[svid.Source]
	// startupGrace is the config's startup_grace at start (read once): how long "no identity issued" is
	// the normal wait for SPIRE's entry, for the bridge's own SVID and for each delegated workload's.
	startupGrace time.Duration
	// pod is the running pod_identity block; nil without one.
	pod *podIdentity
}

// ReloadStatus is the outcome of the last config reload.
type ReloadStatus struct {
	// At is when the last reload was asked for; zero before any.
	At time.Time
	// Err says why it was refused, naming the file:line and what failed; empty when it was applied.
	// After a refused reload every profile runs as before it.
	Err string
}

// profile is one refresher with its sinks and servers.
type profile struct {
	cfg       config.Profile
	refresher *bridge.Refresher
	sub       subscription
	servers   map[string]*endpoint.Server // endpoint servers by configured address, to hand over on reload
	closers   []func()
	cancel    context.CancelFunc
	done      chan struct{}
	log       hclog.Logger
}

// subscription is a profile's SVID feed: svid.Subscription (the bridge's own identity) or
// delegated.Subscription (node mode). Both deliver nil when the identity is withdrawn.
type subscription interface {
	C() <-chan *svid.SVID
	Close()
}

// New starts the Workload API source and every profile of cfg. It fails, starting nothing, when a sink
// cannot be set up (a port in use, an unwritable token file).
func New(ctx context.Context, cfg *config.Config, opts Options) (*Daemon, error) {
	if cfg.PodIdentity != nil && opts.PodAuthenticator == nil {
		return nil, noPodAuthenticator(cfg.PodIdentity) // before anything starts: no server, no call to AWS
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Signer.Logger == nil {
		opts.Signer.Logger = opts.Logger.Named("signer")
	}
	if opts.Signer.Retry.MaxAttempts == 0 {
		// One call per attempt: every retry goes through the refresher's backoff, which spreads a
		// throttled fleet (docs/fleet-simulation.md models exactly this).
		opts.Signer.Retry.MaxAttempts = 1
	}
	if opts.STS == nil {
		opts.STS = &sdksts.Client{HTTPClient: opts.Signer.HTTPClient}
	}
	if opts.Conns == nil {
		opts.Conns = netutil.NewConnLimit(netutil.ConnLimitOptions{Logger: opts.Logger.Named("connections")})
		opts.Logger.Info("connection budget shared by the daemon's servers (less one per listening socket); at the budget the longest idle connection is closed to serve a new one",
			"max_connections", opts.Conns.Cap(), "descriptor_limit", opts.Conns.Descriptors(), "reserved_descriptors", opts.Conns.Reserved())
	}
	imdsKey, err := endpoint.NewTokenKey()
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d := &Daemon{
		imdsKey:  imdsKey,
		opts:     opts,
		log:      opts.Logger,
		client:   signer.New(opts.Signer),
		profiles: map[string]*profile{},
		watching: make(chan struct{}),
		limiters: map[string]*bridge.Limiter{},
	}
	d.wall = clock.NewWatch(clock.WatchOptions{Clock: opts.Clock, OnJump: func(j clock.Jump) {
		d.log.Info("wall clock moved; re-checking every profile's credentials and refresh deadlines against it",
			"timer", j.Timer.Round(time.Millisecond).String(), "wall_clock_moved", j.Moved.Round(time.Second).String(),
			"drift", j.Drift.Round(time.Millisecond).String())
	}})
	wctx, stopWatch := context.WithCancel(context.Background())
	d.stopWatch = stopWatch
	go func() { defer close(d.watching); d.wall.Run(wctx) }()
	// The bridge's own Workload API source starts with the first profile that follows it (ownSource): a
	// daemon of node-mode profiles or pod identity alone never dials an agent socket it does not need. The
	// address is checked now, so that a bad one is still an error at start.
	if _, err := svid.ResolveAddress(cfg.AgentAddress); err != nil {
		d.Close()
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.agentAddress = cfg.AgentAddress
	d.startupGrace = cfg.StartupGrace
	// The health and metrics servers answer from now on, but their reports wait for d.mu until every
	// profile is applied: /ready never reports an empty, and so ready, daemon while it is starting.
	d.mu.Lock()
	tel, err := startTelemetry(cfg, d, opts.Logger)
	if err != nil {
		d.mu.Unlock()
		d.Close()
		return nil, err
	}
	d.tel = tel
	err = d.apply(ctx, cfg)
	if err == nil && cfg.PodIdentity != nil {
		d.pod, err = d.startPodIdentity(ctx, cfg.PodIdentity)
	}
	if err == nil {
		d.cfg = cfg
	}
	d.mu.Unlock()
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// States snapshots every profile's state, in config order.
func (d *Daemon) States() []bridge.ProfileState {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []bridge.ProfileState
	if d.cfg == nil {
		return nil
	}
	for _, pc := range d.cfg.Profiles {
		if p, ok := d.profiles[pc.Name]; ok {
			st := p.refresher.State()
			if ds, ok := p.sub.(*delegated.Subscription); ok {
				st.WorkloadSelectors = pc.WorkloadSelectors
				ss := ds.State()
				st.DelegatedIdentity = string(ss.Status)
				if ss.Err != nil {
					st.DelegatedIdentityError = ss.Err.Error()
				}
			}
			out = append(out, st)
		}
	}
	if d.pod != nil {
		out = append(out, d.pod.srv.States()...)
	}
	return out
}

// HealthAddr is the address the health checks listen on ("" without a health_checks block).
func (d *Daemon) HealthAddr() string { return d.tel.healthAddr }

// WorkloadAPIState is the Workload API connection's state.
func (d *Daemon) WorkloadAPIState() svid.State {
	if src := d.source.Load(); src != nil {
		return src.State()
	}
	return svid.State{Status: svid.StatusUnused}
}

// ownSource is the bridge's own Workload API source, started on first use. The caller holds d.mu.
func (d *Daemon) ownSource() (*svid.Source, error) {
	if src := d.source.Load(); src != nil {
		return src, nil
	}
	src, err := svid.New(context.Background(), svid.Options{
		Address: d.agentAddress, Logger: d.opts.Logger.Named("workloadapi"), Backoff: d.opts.WorkloadAPIBackoff,
		StartupGrace: d.startupGrace,
	})
	if err != nil {
		return nil, err
	}
	d.source.Store(src)
	return src, nil
}

// ReloadStatus is the outcome of the last config reload.
func (d *Daemon) ReloadStatus() ReloadStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reload
}

// ReloadFailed records a reload refused before Reload (the new file did not parse): health and metrics
// report it until a reload succeeds.
func (d *Daemon) ReloadFailed(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reload = ReloadStatus{At: d.opts.Clock.Now(), Err: err.Error()}
}

// Reload applies a new config, transactionally: profiles whose config is unchanged keep running
// untouched; the new version of each changed profile is built and its servers started (taking over the
// listening socket when it keeps its address) before the old version stops, keeping its credentials
// when the session it asks for is the same; removed profiles stop (their files are left as they are:
// the credentials in them stay valid until they expire). If anything fails (a port in use, a path that
// cannot be used, a change of agent_address), nothing changes: every profile keeps running as before, the
// error names the profile's file:line and what failed, and ReloadStatus (so /ready and metrics) reports
// it until a reload succeeds.
func (d *Daemon) Reload(ctx context.Context, cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.reloadLocked(ctx, cfg)
	d.reload = ReloadStatus{At: d.opts.Clock.Now()}
	if err != nil {
		d.reload.Err = err.Error()
	}
	return err
}

func (d *Daemon) reloadLocked(ctx context.Context, cfg *config.Config) error {
	old := d.cfg
	if old.AgentAddress != cfg.AgentAddress {
		return fmt.Errorf("daemon: agent_address changed from %q to %q; restart the bridge to connect to a new Workload API", old.AgentAddress, cfg.AgentAddress)
	}
	if was, now := adminAddress(old), adminAddress(cfg); d.delegated != nil && was != now {
		return fmt.Errorf("daemon: delegated_identity.admin_address changed from %q to %q; restart the bridge to connect to a new SPIRE agent admin API", was, now)
	}
	if !equalTelemetry(old, cfg) {
		d.log.Warn("health_checks and telemetry changes take effect on restart; keeping the current servers")
	}
	d.pendingAdmin = adminAddress(cfg)
	commitPod, undoPod, err := d.reloadPodIdentity(ctx, cfg)
	if err != nil {
		return err
	}
	if err := d.apply(ctx, cfg); err != nil {
		undoPod()
		return err
	}
	commitPod()
	d.cfg = cfg
	return nil
}

// apply makes the running profiles those of cfg, or changes nothing and returns why it could not. The
// caller holds d.mu.
func (d *Daemon) apply(ctx context.Context, cfg *config.Config) error {
	d.pendingAdmin = adminAddress(cfg)
	want := map[string]config.Profile{}
	for _, p := range cfg.Profiles {
		want[p.Name] = p
	}
	// The running profiles that go: removed, or replaced by a new version.
	leaving := map[string]*profile{}
	for name, p := range d.profiles {
		if np, keep := want[name]; !keep || !np.Equal(p.cfg) {
			leaving[name] = p
		}
	}
	// A new server on an address a leaving profile listens on takes over its socket: the port cannot
	// be bound twice, and is never left unbound.
	handover := func(addr string) (net.Listener, error) {
		for _, p := range leaving {
			if s := p.servers[addr]; s != nil {
				return s.Listener()
			}
		}
		return nil, nil
	}
	// Build and start every new version first; on any failure discard them all.
	var built []*profile
	for _, pc := range cfg.Profiles {
		prev := d.profiles[pc.Name]
		if prev != nil && leaving[pc.Name] == nil {
			continue // unchanged
		}
		var carried carry
		if prev != nil && sameSession(pc, prev.cfg) {
			if c, issued, ok := prev.refresher.Credentials(); ok {
				carried = carry{c, issued}
			}
		}
		p, err := d.build(ctx, pc, carried, handover)
		if err != nil {
			for _, b := range built {
				b.stop()
			}
			return fmt.Errorf("profile %q (%s): %w", pc.Name, pc.Pos, err)
		}
		built = append(built, p)
	}
	// Commit: stop what leaves, run what arrives.
	for name, p := range leaving {
		p.stop()
		delete(d.profiles, name)
		if _, keep := want[name]; !keep {
			d.log.Info("profile removed; stopped it", "profile", name)
		}
	}
	for _, p := range built {
		d.profiles[p.cfg.Name] = p
		p.run()
		if _, replaced := leaving[p.cfg.Name]; replaced {
			d.log.Info("profile changed; its new version replaced the old one", "profile", p.cfg.Name)
		}
	}
	return nil
}

type carry struct {
	c      creds.Credentials
	issued time.Time
}

func adminAddress(cfg *config.Config) string {
	if cfg == nil || cfg.DelegatedIdentity == nil {
		return ""
	}
	return cfg.DelegatedIdentity.AdminAddress
}

// sameSession reports whether a and b ask for the same session for the same workload: credentials carry
// over a reload only then (never from one workload's selectors to another's).
func sameSession(a, b config.Profile) bool {
	return slices.Equal(a.WorkloadSelectors, b.WorkloadSelectors) && a.SpiffeID == b.SpiffeID && a.Hint == b.Hint && a.TrustAnchorARN == b.TrustAnchorARN &&
		a.ProfileARN == b.ProfileARN && a.RoleARN == b.RoleARN && a.Region == b.Region &&
		a.SessionDuration == b.SessionDuration && a.RoleSessionName == b.RoleSessionName &&
		a.Endpoint == b.Endpoint && a.InsecureEndpoint == b.InsecureEndpoint &&
		// Credentials of a chained profile are the last hop's: another chain means another role.
		reflect.DeepEqual(a.AssumeRole, b.AssumeRole)
}

// build sets up pc's sinks (its endpoint servers listening, on a socket from handover when one is
// given for their address) and refresher, without running the refresher: run does.
func (d *Daemon) build(ctx context.Context, pc config.Profile, carried carry, handover func(addr string) (net.Listener, error)) (*profile, error) {
	log := d.log.With("profile", pc.Name)
	p := &profile{cfg: pc, servers: map[string]*endpoint.Server{}, done: make(chan struct{}), log: log}
	sinks, err := d.sinks(ctx, p, log, carried, handover)
	if err != nil {
		p.closeSinks()
		return nil, err
	}
	if p.sub, err = d.subscribe(pc); err != nil {
		p.closeSinks()
		return nil, err
	}
	var observer bridge.Observer = d.tel
	if d.opts.Observer != nil {
		observer = multiObserver{d.tel, d.opts.Observer}
	}
	r, err := bridge.NewRefresher(bridge.RefresherOptions{
		Profile:        pc.Name,
		Session:        wiring.Session(pc),
		SVIDs:          p.sub.C(),
		Client:         d.creator(pc),
		AssumeRoleARNs: assumeRoleARNs(pc),
		Sinks:          sinks,
		Policy:         d.policy(pc),
		Initial:        carried.c,
		InitialIssued:  carried.issued,
		OnIdentityLoss: bridge.IdentityLossPolicy(pc.OnIdentityLoss),
		Clock:          d.opts.Clock,
		WallClock:      d.wall,
		Limiter:        d.limiter(pc),
		Logger:         d.log,
		Observer:       observer,
	})
	if err != nil {
		p.sub.Close()
		p.closeSinks()
		return nil, err
	}
	p.refresher = r
	return p, nil
}

// limiter is the refresh limiter of pc's Roles Anywhere endpoint: the configured endpoint, else the
// trust anchor's region (the endpoint derives from it).
func (d *Daemon) limiter(pc config.Profile) *bridge.Limiter {
	d.limMu.Lock()
	defer d.limMu.Unlock()
	key := pc.Endpoint
	if key == "" {
		key = pc.Region
		if a, err := arn.Parse(pc.TrustAnchorARN); err == nil && key == "" {
			key = a.Region
		}
	}
	l := d.limiters[key]
	if l == nil {
		l = bridge.NewLimiter(ConcurrentRefreshes)
		d.limiters[key] = l
	}
	return l
}

// run starts the profile's refresher.
func (p *profile) run() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		defer close(p.done)
		_ = p.refresher.Run(ctx)
	}()
	args := []any{"selector", svid.Selector{ID: p.cfg.SpiffeID, Hint: p.cfg.Hint}.String(), "role", p.cfg.RoleARN, "sinks", SinkSummary(p.cfg)}
	if p.cfg.Delegated() {
		args = append(args, "workload_selectors", p.cfg.WorkloadSelectors)
	}
	p.log.Info("profile started", args...)
}

// subscribe follows the profile's SVID: from the Delegated Identity API by its workload selectors (node
// mode), else from the bridge's own Workload API identity. The caller holds d.mu.
func (d *Daemon) subscribe(pc config.Profile) (subscription, error) {
	sel := svid.Selector{ID: pc.SpiffeID, Hint: pc.Hint}
	if !pc.Delegated() {
		src, err := d.ownSource()
		if err != nil {
			return nil, err
		}
		return src.Subscribe(sel), nil
	}
	src, err := d.delegatedSource()
	if err != nil {
		return nil, err
	}
	return src.Subscribe(pc.WorkloadSelectors, sel)
}

// delegatedSource is the Delegated Identity API source, started on first use (node mode, pod identity).
// The caller holds d.mu.
func (d *Daemon) delegatedSource() (*delegated.Source, error) {
	if d.delegated == nil {
		src, err := delegated.New(delegated.Options{Address: d.pendingAdmin, Logger: d.log.Named("delegated_identity"), Backoff: d.opts.WorkloadAPIBackoff,
			StartupGrace: d.startupGrace})
		if err != nil {
			return nil, err
		}
		d.delegated = src
		d.log.Info("following the SPIRE agent's Delegated Identity API", "address", d.pendingAdmin)
	}
	return d.delegated, nil
}

// policy is the profile's refresh timing: its refresh block, then any override from Options.
func (d *Daemon) policy(pc config.Profile) schedule.Policy {
	p := d.opts.Policy
	if p.RotationSpread == 0 {
		p.RotationSpread = pc.Refresh.RotationSpread
		if p.RotationSpread == 0 {
			p.RotationSpread = -1 // config "0s": refresh at once (schedule's zero means its default)
		}
	}
	if p.JitterFraction == 0 {
		p.JitterFraction = pc.Refresh.JitterFraction
	}
	p.TimerOnly = p.TimerOnly || pc.Refresh.TimerOnly
	return p
}

// sinks builds p's delivery methods; p.closers stop the servers among them. An endpoint server listens
// on the socket handover gives for its address, if any, else binds it; carried credentials are loaded
// into it first, so that it never answers without them while it shares the socket with the server it
// replaces.
func (d *Daemon) sinks(ctx context.Context, p *profile, log hclog.Logger, carried carry, handover func(addr string) (net.Listener, error)) ([]bridge.Sink, error) {
	pc := p.cfg
	var sinks []bridge.Sink
	start := func(s *endpoint.Server, addr string, port int) error {
		if carried.c.ValidAt(d.opts.Clock.Now()) {
			if err := s.Put(ctx, carried.c); err != nil {
				return err
			}
		}
		var ln net.Listener
		if port != 0 && handover != nil {
			var err error
			if ln, err = handover(addr); err != nil {
				return err
			}
		}
		if err := s.StartOn(ln); err != nil {
			return fmt.Errorf("%s: %w", s.Name(), err) // netutil leaves the prefix to the caller
		}
		p.closers = append(p.closers, func() { s.Close() })
		if port != 0 {
			p.servers[addr] = s
		}
		return nil
	}
	if f := pc.CredentialsFile; f != nil {
		owner, group, err := fileOwner(d.opts.LookupOwner, "credentials_file.owner", f.Owner, "credentials_file.group", f.Group)
		if err != nil {
			return nil, err
		}
		s, err := credfile.New(credfile.Options{Path: f.Path, Profile: f.ProfileName, Logger: log.Named("credentials_file"),
			Owner: owner, Group: group, Mode: f.Mode, FollowSymlinks: f.FollowSymlinks, AllowSharedDirectory: f.AllowSharedDirectory,
			OwnerName: ownerUserName(f.Owner), LookupOwner: d.opts.LookupOwner})
		if err != nil {
			return nil, err
		}
		if err := s.Check(); err != nil {
			return nil, err
		}
		sinks = append(sinks, s)
	}
	if m := pc.IMDS; m != nil {
		s, err := endpoint.NewIMDS(endpoint.IMDSOptions{
			Addr: hostPort(m.BindAddress, m.BindPort), AllowRemote: m.AllowRemote, AllowedHosts: m.AllowedHosts, RoleName: pc.Name,
			AllowedClients: m.AllowedClients, TokenKey: d.imdsKey, Conns: d.opts.Conns,
			Logger: log.Named("imds"), Clock: d.opts.Clock.Now, OnRequest: d.tel.endpointObserver("imds", pc.Name),
		})
		if err != nil {
			return nil, err
		}
		if err := start(s, hostPort(m.BindAddress, m.BindPort), m.BindPort); err != nil {
			return nil, err // names the server: "imds: listen on …"
		}
		log.Info("IMDSv2 endpoint listening", "address", s.Addr())
		sinks = append(sinks, s)
	}
	if c := pc.ContainerEndpoint; c != nil {
		owner, group, err := fileOwner(d.opts.LookupOwner, "container_endpoint.auth_token_owner", c.AuthTokenOwner, "container_endpoint.auth_token_group", c.AuthTokenGroup)
		if err != nil {
			return nil, err
		}
		s, err := endpoint.NewContainer(endpoint.ContainerOptions{
			Addr: hostPort(c.BindAddress, c.BindPort), Path: c.Path, AuthTokenFile: c.AuthTokenFile,
			AllowRemote: c.AllowRemote, AllowedHosts: c.AllowedHosts, Logger: log.Named("container_endpoint"), Clock: d.opts.Clock.Now,
			OnRequest: d.tel.endpointObserver("container", pc.Name), Conns: d.opts.Conns,

			TokenOwner: owner, TokenGroup: group, TokenMode: c.AuthTokenMode,
			TokenOwnerName: ownerUserName(c.AuthTokenOwner), LookupOwner: d.opts.LookupOwner,
			FollowSymlinks: c.FollowSymlinks, AllowSharedDirectory: c.AllowSharedDirectory,
		})
		if err != nil {
			return nil, err
		}
		if err := start(s, hostPort(c.BindAddress, c.BindPort), c.BindPort); err != nil {
			return nil, err // names the server
		}
		log.Info("container credentials endpoint listening", "url", s.URL())
		sinks = append(sinks, s)
	}
	if h := pc.OnRefresh; h != nil {
		s, err := newCommand(hook.CommandOptions{Profile: pc.Name, Command: h.Command, Timeout: h.Timeout, Logger: log.Named("on_refresh")}, trusted.Self())
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, s)
	}
	if sg := pc.Signal; sg != nil {
		s, err := hook.NewSignal(hook.SignalOptions{PIDFile: sg.PIDFile, Signal: sg.Signal, Logger: log.Named("signal")})
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, s)
	}
	return sinks, nil
}

// stop stops the profile's refresher (if it runs), subscription and servers.
func (p *profile) stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	if p.sub != nil {
		p.sub.Close()
	}
	p.closeSinks()
}

func (p *profile) closeSinks() {
	for _, c := range p.closers {
		c()
	}
	p.closers = nil
}

// Close stops every profile, the servers and the Workload API source.
func (d *Daemon) Close() {
	d.mu.Lock()
	for name, p := range d.profiles {
		p.stop()
		delete(d.profiles, name)
	}
	pod := d.pod
	d.pod = nil
	d.mu.Unlock()
	pod.stop()
	if d.tel != nil {
		d.tel.close()
	}
	if src := d.source.Load(); src != nil {
		src.Close()
	}
	if d.delegated != nil {
		d.delegated.Close()
	}
	d.stopWatch()
	<-d.watching
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// creator is the profile's session creator: CreateSession, then its assume_role hops when it has any.
func (d *Daemon) creator(pc config.Profile) bridge.SessionCreator {
	return wiring.Creator(d.client, d.opts.STS, pc)
}

func assumeRoleARNs(pc config.Profile) []string {
	var out []string
	for _, a := range pc.AssumeRole {
		out = append(out, a.RoleARN)
	}
	return out
}
