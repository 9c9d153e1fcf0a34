package daemon

import (
	"fmt"
	"reflect"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/health"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/metrics"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/buildinfo"
)

// telemetry holds the daemon-wide health and metrics servers. A nil *metrics.Metrics (no telemetry
// block) turns every observation into a no-op.
type telemetry struct {
	metrics    *metrics.Metrics
	healthAddr string
	closers    []func()
}

func startTelemetry(cfg *config.Config, d *Daemon, log hclog.Logger) (*telemetry, error) {
	t := &telemetry{}
	profiles := d.States
	workloadAPI := func() (string, string) {
		s := d.WorkloadAPIState()
		return s.Status.String(), s.Reason
	}
	reload := func() health.ReloadReport {
		r := d.ReloadStatus()
		if r.Err != "" {
			return health.ReloadReport{Status: "failed", Error: r.Err, At: r.At}
		}
		return health.ReloadReport{Status: "ok", At: r.At}
	}
	if p := cfgPrometheus(cfg); p != nil {
		t.metrics = metrics.New(metrics.Options{
			Version:     buildinfo.Version(),
			Profiles:    profiles,
			WorkloadAPI: func() string { s, _ := workloadAPI(); return s },
			Reload:      func() bool { return d.ReloadStatus().Err == "" },
			Clock:       d.opts.Clock.Now,
		})
		srv, err := metrics.NewServer(t.metrics, metrics.ServerOptions{
			Addr: hostPort(p.Host, p.Port), AllowRemote: p.AllowRemote, AllowedHosts: p.AllowedHosts, Logger: log.Named("metrics"),
			Conns: d.opts.Conns,
		})
		if err != nil {
			return nil, fmt.Errorf("telemetry: %w", err)
		}
		if err := srv.Start(); err != nil {
			return nil, fmt.Errorf("telemetry: prometheus: %w", err)
		}
		t.closers = append(t.closers, func() { srv.Close() })
		log.Info("Prometheus metrics listening", "address", "http://"+srv.Addr()+"/metrics")
	}
	if h := cfg.HealthChecks; h != nil {
		srv, err := health.New(health.Options{
			Addr:         hostPort(h.BindAddress, h.BindPort),
			LivePath:     h.LivePath,
			ReadyPath:    h.ReadyPath,
			Profiles:     profiles,
			WorkloadAPI:  workloadAPI,
			Reload:       reload,
			Logger:       log.Named("health"),
			Clock:        d.opts.Clock.Now,
			AllowRemote:  h.AllowRemote,
			AllowedHosts: h.AllowedHosts,
			Conns:        d.opts.Conns,
		})
		if err != nil {
			t.close()
			return nil, fmt.Errorf("health_checks: %w", err)
		}
		if err := srv.Start(); err != nil {
			t.close()
			return nil, fmt.Errorf("health_checks: %w", err)
		}
		t.closers = append(t.closers, func() { srv.Close() })
		t.healthAddr = srv.Addr()
		log.Info("health checks listening", "address", srv.Addr(), "live", h.LivePath, "ready", h.ReadyPath)
	}
	return t, nil
}

func cfgPrometheus(cfg *config.Config) *config.Prometheus {
	if cfg.Telemetry == nil {
		return nil
	}
	return cfg.Telemetry.Prometheus
}

func equalTelemetry(a, b *config.Config) bool {
	return reflect.DeepEqual(a.HealthChecks, b.HealthChecks) && reflect.DeepEqual(a.Telemetry, b.Telemetry)
}

// ObserveAttempt implements bridge.Observer.
func (t *telemetry) ObserveAttempt(a bridge.Attempt) {
	if t.metrics != nil {
		t.metrics.ObserveAttempt(metrics.Attempt{Profile: a.Profile, Result: a.Result, ErrorType: a.ErrorType, Hop: a.Hop, Latency: a.Latency})
	}
}

// ObserveSink implements bridge.Observer.
func (t *telemetry) ObserveSink(profile, sink string, err error) {
	if t.metrics != nil {
		t.metrics.ObserveSink(profile, sink, err)
	}
}

func (t *telemetry) endpointObserver(endpoint, profile string) func(int) {
	if t.metrics == nil {
		return nil
	}
	return func(status int) { t.metrics.ObserveEndpointRequest(endpoint, profile, status) }
}

func (t *telemetry) close() {
	for _, c := range t.closers {
		c()
	}
	t.closers = nil
}

type multiObserver []bridge.Observer

func (m multiObserver) ObserveAttempt(a bridge.Attempt) {
	for _, o := range m {
		o.ObserveAttempt(a)
	}
}

func (m multiObserver) ObserveSink(profile, sink string, err error) {
	for _, o := range m {
		o.ObserveSink(profile, sink, err)
	}
}
