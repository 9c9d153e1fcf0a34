// Package daemon wires a validated config into running parts: one SPIFFE Workload API source, one
// CreateSession client, and per profile a bridge.Refresher with its sinks (credentials file, IMDSv2 and
// container endpoints, hooks); plus the daemon-wide health and metrics servers. It also applies a new
// config on SIGHUP, keeping the credentials of profiles whose session did not change.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

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
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
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
}

// Daemon runs the profiles of one config.
type Daemon struct {
	opts   Options
	log    hclog.Logger
	client *signer.Client
	tel    *telemetry

	mu        sync.Mutex
	cfg       *config.Config
	source    *svid.Source
	profiles  map[string]*profile
	startErrs map[string]error // profiles of cfg that could not start after a reload, and why
}

// profile is one running refresher with its sinks and servers.
type profile struct {
	cfg       config.Profile
	refresher *bridge.Refresher
	sub       *svid.Subscription
	closers   []func()
	cancel    context.CancelFunc
	done      chan struct{}
}

// New starts the Workload API source and every profile of cfg. It fails, starting nothing, when a sink
// cannot be set up (a port in use, an unwritable token file).
func New(ctx context.Context, cfg *config.Config, opts Options) (*Daemon, error) {
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
	d := &Daemon{
		opts:     opts,
		log:      opts.Logger,
		client:   signer.New(opts.Signer),
		profiles: map[string]*profile{},
	}
	src, err := svid.New(ctx, svid.Options{Address: cfg.AgentAddress, Logger: opts.Logger.Named("workloadapi")})
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.source = src
	tel, err := startTelemetry(cfg, d, opts.Logger)
	if err != nil {
		src.Close()
		return nil, err
	}
	d.tel = tel
	if err := d.apply(ctx, cfg, nil); err != nil {
		d.Close()
		return nil, err
	}
	d.cfg = cfg
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
			out = append(out, p.refresher.State())
		} else if err := d.startErrs[pc.Name]; err != nil {
			// Configured but not running: reported, and never ready.
			out = append(out, bridge.ProfileState{Profile: pc.Name, RoleARN: pc.RoleARN,
				LastErrorType: "start_failed", LastError: err.Error()})
		}
	}
	return out
}

// WorkloadAPIState is the Workload API connection's state.
func (d *Daemon) WorkloadAPIState() svid.State { return d.source.State() }

// Reload applies a new config: profiles whose config is unchanged keep running untouched; changed
// profiles restart, keeping their credentials when the session they ask for is the same; removed
// profiles stop (their files are left as they are: the credentials in them stay valid until they
// expire). A profile that cannot start (a port in use, say) is reported in the returned error and in
// States as not ready, while the others run; a change of agent_address is refused as a whole.
func (d *Daemon) Reload(ctx context.Context, cfg *config.Config) error {
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	if old.AgentAddress != cfg.AgentAddress {
		return errors.New("daemon: agent_address changed; restart the bridge to connect to a new Workload API")
	}
	if !equalTelemetry(old, cfg) {
		d.log.Warn("health_checks and telemetry changes take effect on restart; keeping the current servers")
	}
	err := d.apply(ctx, cfg, old)
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	return err
}

// apply starts the profiles of cfg that are not running as configured, and stops the others.
func (d *Daemon) apply(ctx context.Context, cfg *config.Config, old *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := map[string]config.Profile{}
	for _, p := range cfg.Profiles {
		want[p.Name] = p
	}
	// Stop removed and changed profiles first: a changed profile may reuse its own port.
	carried := map[string]carry{}
	for name, p := range d.profiles {
		np, keep := want[name]
		if keep && np.Equal(p.cfg) {
			continue
		}
		if keep && sameSession(np, p.cfg) {
			if c, issued, ok := p.refresher.Credentials(); ok {
				carried[name] = carry{c, issued}
			}
		}
		p.stop()
		delete(d.profiles, name)
		if keep {
			d.log.Info("profile changed; restarting it", "profile", name)
		} else {
			d.log.Info("profile removed; stopped it", "profile", name)
		}
	}
	var errs []error
	d.startErrs = map[string]error{}
	for _, pc := range cfg.Profiles {
		if _, running := d.profiles[pc.Name]; running {
			continue
		}
		p, err := d.start(ctx, pc, carried[pc.Name])
		if err != nil {
			d.startErrs[pc.Name] = err
			errs = append(errs, fmt.Errorf("profile %q: %w", pc.Name, err))
			continue
		}
		d.profiles[pc.Name] = p
	}
	return errors.Join(errs...)
}

type carry struct {
	c      creds.Credentials
	issued time.Time
}

func sameSession(a, b config.Profile) bool {
	return a.SpiffeID == b.SpiffeID && a.Hint == b.Hint && a.TrustAnchorARN == b.TrustAnchorARN &&
		a.ProfileARN == b.ProfileARN && a.RoleARN == b.RoleARN && a.Region == b.Region &&
		a.SessionDuration == b.SessionDuration && a.RoleSessionName == b.RoleSessionName &&
		a.Endpoint == b.Endpoint && a.InsecureEndpoint == b.InsecureEndpoint
}

func (d *Daemon) start(ctx context.Context, pc config.Profile, carried carry) (*profile, error) {
	log := d.log.With("profile", pc.Name)
	sinks, closers, err := d.sinks(pc, log)
	if err != nil {
		for _, c := range closers {
			c()
		}
		return nil, err
	}
	sub := d.source.Subscribe(svid.Selector{ID: pc.SpiffeID, Hint: pc.Hint})
	var observer bridge.Observer = d.tel
	if d.opts.Observer != nil {
		observer = multiObserver{d.tel, d.opts.Observer}
	}
	r, err := bridge.NewRefresher(bridge.RefresherOptions{
		Profile: pc.Name,
		Session: signer.CreateSessionInput{
			TrustAnchorARN:  pc.TrustAnchorARN,
			ProfileARN:      pc.ProfileARN,
			RoleARN:         pc.RoleARN,
			Region:          pc.Region,
			Endpoint:        pc.Endpoint,
			AllowHTTP:       pc.InsecureEndpoint,
			DurationSeconds: int(pc.SessionDuration / time.Second),
			RoleSessionName: pc.RoleSessionName,
		},
		SVIDs:          sub.C(),
		Client:         d.creator(pc),
		AssumeRoleARNs: assumeRoleARNs(pc),
		Sinks:          sinks,
		Policy:         d.policy(pc),
		Initial:        carried.c,
		InitialIssued:  carried.issued,
		Clock:          d.opts.Clock,
		Logger:         d.log,
		Observer:       observer,
	})
	if err != nil {
		sub.Close()
		for _, c := range closers {
			c()
		}
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &profile{cfg: pc, refresher: r, sub: sub, closers: closers, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_ = r.Run(rctx)
	}()
	log.Info("profile started", "selector", svid.Selector{ID: pc.SpiffeID, Hint: pc.Hint}.String(), "role", pc.RoleARN, "sinks", SinkSummary(pc))
	return p, nil
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
	return p
}

// sinks builds the profile's delivery methods; closers stop the servers among them.
func (d *Daemon) sinks(pc config.Profile, log hclog.Logger) ([]bridge.Sink, []func(), error) {
	var sinks []bridge.Sink
	var closers []func()
	if f := pc.CredentialsFile; f != nil {
		owner, group, err := fileOwner("credentials_file.owner", f.Owner, "credentials_file.group", f.Group)
		if err != nil {
			return nil, closers, err
		}
		s, err := credfile.New(credfile.Options{Path: f.Path, Profile: f.ProfileName, Logger: log.Named("credentials_file"),
			Owner: owner, Group: group, Mode: f.Mode, FollowSymlinks: f.FollowSymlinks, AllowSharedDirectory: f.AllowSharedDirectory})
		if err != nil {
			return nil, closers, err
		}
		sinks = append(sinks, s)
	}
	if m := pc.IMDS; m != nil {
		s, err := endpoint.NewIMDS(endpoint.IMDSOptions{
			Addr: hostPort(m.BindAddress, m.BindPort), AllowRemote: m.AllowRemote, AllowedHosts: m.AllowedHosts, RoleName: pc.Name,
			Logger: log.Named("imds"), Clock: d.opts.Clock.Now, OnRequest: d.tel.endpointObserver("imds", pc.Name),
		})
		if err != nil {
			return nil, closers, err
		}
		if err := s.Start(); err != nil {
			return nil, closers, fmt.Errorf("imds: %w", err)
		}
		closers = append(closers, func() { s.Close() })
		log.Info("IMDSv2 endpoint listening", "address", s.Addr())
		sinks = append(sinks, s)
	}
	if c := pc.ContainerEndpoint; c != nil {
		owner, group, err := fileOwner("container_endpoint.auth_token_owner", c.AuthTokenOwner, "container_endpoint.auth_token_group", c.AuthTokenGroup)
		if err != nil {
			return nil, closers, err
		}
		s, err := endpoint.NewContainer(endpoint.ContainerOptions{
			Addr: hostPort(c.BindAddress, c.BindPort), Path: c.Path, AuthTokenFile: c.AuthTokenFile,
			AllowRemote: c.AllowRemote, AllowedHosts: c.AllowedHosts, Logger: log.Named("container_endpoint"), Clock: d.opts.Clock.Now,
			OnRequest: d.tel.endpointObserver("container", pc.Name),

			TokenOwner: owner, TokenGroup: group, TokenMode: c.AuthTokenMode,
			FollowSymlinks: c.FollowSymlinks, AllowSharedDirectory: c.AllowSharedDirectory,
		})
		if err != nil {
			return nil, closers, err
		}
		if err := s.Start(); err != nil {
			return nil, closers, fmt.Errorf("container_endpoint: %w", err)
		}
		closers = append(closers, func() { s.Close() })
		log.Info("container credentials endpoint listening", "url", s.URL())
		sinks = append(sinks, s)
	}
	if h := pc.OnRefresh; h != nil {
		s, err := hook.NewCommand(hook.CommandOptions{Profile: pc.Name, Command: h.Command, Timeout: h.Timeout, Logger: log.Named("on_refresh")})
		if err != nil {
			return nil, closers, err
		}
		sinks = append(sinks, s)
	}
	if sg := pc.Signal; sg != nil {
		s, err := hook.NewSignal(hook.SignalOptions{PIDFile: sg.PIDFile, Signal: sg.Signal, Logger: log.Named("signal")})
		if err != nil {
			return nil, closers, err
		}
		sinks = append(sinks, s)
	}
	return sinks, closers, nil
}

func (p *profile) stop() {
	p.cancel()
	<-p.done
	p.sub.Close()
	for _, c := range p.closers {
		c()
	}
}

// Close stops every profile, the servers and the Workload API source.
func (d *Daemon) Close() {
	d.mu.Lock()
	for name, p := range d.profiles {
		p.stop()
		delete(d.profiles, name)
	}
	d.mu.Unlock()
	if d.tel != nil {
		d.tel.close()
	}
	if d.source != nil {
		d.source.Close()
	}
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// creator is the profile's session creator: CreateSession, then its assume_role hops when it has any.
func (d *Daemon) creator(pc config.Profile) bridge.SessionCreator {
	if len(pc.AssumeRole) == 0 {
		return d.client
	}
	return &chain.Creator{RolesAnywhere: d.client, Chain: &chain.Chain{
		Hops: chain.FromConfig(pc.AssumeRole), STS: d.opts.STS, Region: pc.Region, AllowHTTP: pc.InsecureEndpoint,
	}}
}

func assumeRoleARNs(pc config.Profile) []string {
	var out []string
	for _, a := range pc.AssumeRole {
		out = append(out, a.RoleARN)
	}
	return out
}
