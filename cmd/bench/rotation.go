package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// sinkEvents reports each successful sink write.
type sinkEvents chan string

func (s sinkEvents) ObserveAttempt(bridge.Attempt) {}
func (s sinkEvents) ObserveSink(profile, sink string, err error) {
	if err == nil {
		s <- sink
	}
}

// rotation: time from the agent issuing a new SVID to the credentials file renamed into place, through
// the Workload API stream, the refresher, signing, CreateSession on the emulator, and the atomic write.
func (b *bench) rotation() error {
	n := 1000
	if b.quick {
		n = 200
	}
	w, err := testworld.Start(testworld.Options{QuotaPerSecond: -1})
	if err != nil {
		return err
	}
	defer w.Close()
	creds := filepath.Join(b.dir, "rotation", "credentials")
	cfg, err := config.Parse([]byte(w.Config(w.Profile("app", testworld.CredentialsFile(creds)))), "bench.hcl")
	if err != nil {
		return err
	}
	events := make(sinkEvents, 16)
	d, err := daemon.New(context.Background(), cfg, daemon.Options{Observer: events})
	if err != nil {
		return err
	}
	defer d.Close()
	wait := func() error {
		select {
		case <-events:
			return nil
		case <-time.After(10 * time.Second):
			return fmt.Errorf("no credentials file write within 10s")
		}
	}
	if err := wait(); err != nil { // the first SVID
		return err
	}
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := w.Agent.Rotate(); err != nil {
			return err
		}
		if err := wait(); err != nil {
			return err
		}
		lat = append(lat, time.Since(start))
	}
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	b.add(fmt.Sprintf("rotation → credentials file renamed, p50 (%d rotations)", n), ms(p50), "≤ 5 ms", pass(p50 <= 5*time.Millisecond))
	b.add(fmt.Sprintf("rotation → credentials file renamed, p99 (%d rotations)", n), ms(p99), "≤ 20 ms", pass(p99 <= 20*time.Millisecond))
	return nil
}
