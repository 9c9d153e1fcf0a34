package signer_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
)

// nxdomainServer is a DNS server on loopback UDP answering NXDOMAIN to every query, as a resolver does
// for a host name that does not exist.
func nxdomainServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if len(q) < 12 {
				continue
			}
			end := 12 // the question: labels up to the root, then type and class
			for end < len(q) && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if end > len(q) {
				continue
			}
			resp := append([]byte(nil), q[:end]...)
			binary.BigEndian.PutUint16(resp[2:], 0x8183)                              // response, RD, RA, NXDOMAIN
			binary.BigEndian.PutUint16(resp[4:], 1)                                   // one question
			resp[6], resp[7], resp[8], resp[9], resp[10], resp[11] = 0, 0, 0, 0, 0, 0 // no records
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String()
}

// resetServer accepts connections and resets them at once.
func resetServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
		}
	}()
	return l.Addr().String()
}

// Each failure is classified by what a retry can do about it, and labelled from the fixed set: a
// server's own error type string never becomes a label unless AWS documents it.
func TestClassifyTellsConfigurationProblemsFromTransientFailures(t *testing.T) {
	dnsAddr := nxdomainServer(t)
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", dnsAddr)
	}}
	dialer := &net.Dialer{Resolver: resolver, Timeout: 5 * time.Second}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}, Timeout: 10 * time.Second}

	tlsServer := httptest.NewTLSServer(http.NotFoundHandler()) // a certificate no system root trusts
	t.Cleanup(tlsServer.Close)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // runs before slow.Close

	tests := []struct {
		name      string
		endpoint  string
		script    []func(http.ResponseWriter)
		timeout   time.Duration
		wantClass signer.Class
		wantLabel string
	}{
		{name: "a certificate that fails verification is a configuration problem", endpoint: tlsServer.URL, wantClass: signer.Permanent, wantLabel: "tls"},
		{name: "an unknown host (NXDOMAIN) is a configuration problem", endpoint: "https://rolesanywhere.nonexistent.example:443", wantClass: signer.Permanent, wantLabel: "dns"},
		{name: "a reset connection is transient", endpoint: "http://" + resetServer(t), wantClass: signer.Transient, wantLabel: "network"},
		{name: "a timeout is transient", endpoint: slow.URL, timeout: 200 * time.Millisecond, wantClass: signer.Transient, wantLabel: "network"},
		{name: "403 AccessDenied is a configuration problem", script: []func(http.ResponseWriter){awsError(403, "AccessDeniedException", "no")}, wantClass: signer.Permanent, wantLabel: "AccessDeniedException"},
		{name: "400 Validation is a configuration problem", script: []func(http.ResponseWriter){awsError(400, "ValidationException", "bad")}, wantClass: signer.Permanent, wantLabel: "ValidationException"},
		{name: "429 is transient", script: []func(http.ResponseWriter){awsError(429, "ThrottlingException", "slow down")}, wantClass: signer.Transient, wantLabel: "ThrottlingException"},
		{name: "503 without a type is transient, labelled other", script: []func(http.ResponseWriter){awsError(503, "", "down")}, wantClass: signer.Transient, wantLabel: "other"},
		{name: "an undocumented error type becomes other", script: []func(http.ResponseWriter){awsError(400, `Evil{le="1"}`, "x")}, wantClass: signer.Permanent, wantLabel: "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			endpoint := tt.endpoint
			if tt.script != nil {
				endpoint = newFakeAWS(t, tt.script...).URL
			}
			var rec recorder
			opts := rec.options(nil)
			opts.HTTPClient = client
			opts.Retry.MaxAttempts = 1
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			_, err := signer.New(opts).CreateSession(ctx, testInput(t, endpoint))
			if err == nil {
				t.Fatal("CreateSession succeeded")
			}
			class, label := signer.Classify(err)
			if class != tt.wantClass || label != tt.wantLabel {
				t.Fatalf("Classify(%v) = %s, %q; want %s, %q", err, class, label, tt.wantClass, tt.wantLabel)
			}
			if got := signer.Retryable(err); got != (tt.wantClass == signer.Transient) {
				t.Errorf("Retryable = %v, disagrees with the class %s", got, class)
			}
		})
	}
	if class, label := signer.Classify(errors.New("something else")); class != signer.Permanent || label != "other" {
		t.Errorf("an unknown error = %s, %q; want permanent, other", class, label)
	}
}
