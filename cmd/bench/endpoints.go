package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/endpoint"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
)

// endpoints: requests per second and p99 latency of the IMDS and container endpoints with 50 concurrent
// keep-alive clients on loopback.
func (b *bench) endpoints() error {
	const clients = 50
	dur := 5 * time.Second
	if b.quick {
		dur = 2 * time.Second
	}
	c := creds.Credentials{AccessKeyID: "ASIABENCHBENCHBENCH1", SecretAccessKey: strings.Repeat("s", 40),
		SessionToken: strings.Repeat("t", 600), Expiration: time.Now().Add(time.Hour)}

	imds, err := endpoint.NewIMDS(endpoint.IMDSOptions{Addr: "127.0.0.1:0", RoleName: "bench"})
	if err != nil {
		return err
	}
	token := filepath.Join(b.dir, "container.token")
	container, err := endpoint.NewContainer(endpoint.ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: token})
	if err != nil {
		return err
	}
	for _, s := range []*endpoint.Server{imds, container} {
		if err := s.Start(); err != nil {
			return err
		}
		defer s.Close()
		if err := s.Put(context.Background(), c); err != nil {
			return err
		}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	secret, err := os.ReadFile(token)
	if err != nil {
		return err
	}
	containerReq := func() (*http.Request, error) {
		r, err := http.NewRequest("GET", container.URL(), nil)
		if err == nil {
			r.Header.Set("Authorization", strings.TrimSpace(string(secret)))
		}
		return r, err
	}
	put, _ := http.NewRequest("PUT", imds.URL()+"/latest/api/token", nil)
	put.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
	resp, err := client.Do(put)
	if err != nil {
		return err
	}
	imdsToken, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	imdsReq := func() (*http.Request, error) {
		r, err := http.NewRequest("GET", imds.URL()+"/latest/meta-data/iam/security-credentials/bench", nil)
		if err == nil {
			r.Header.Set("X-aws-ec2-metadata-token", string(imdsToken))
		}
		return r, err
	}
	for _, e := range []struct {
		name string
		req  func() (*http.Request, error)
	}{{"IMDSv2 credentials", imdsReq}, {"container endpoint", containerReq}} {
		rate, p99, err := load(client, e.req, clients, dur)
		if err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		b.add(fmt.Sprintf("%s, %d concurrent clients", e.name, clients), fmt.Sprintf("%.0f req/s, p99 %s", rate, ms(p99)), "", nil)
	}
	return nil
}

func load(client *http.Client, newReq func() (*http.Request, error), clients int, dur time.Duration) (float64, time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for time.Now().Before(stop) {
				req, err := newReq()
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				start := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				lat = append(lat, time.Since(start))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, 0, firstErr
	}
	return float64(len(all)) / dur.Seconds(), percentile(all, 0.99), nil
}
