package netutil

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCheckBind(t *testing.T) {
	for _, tc := range []struct {
		addr         string
		allow        bool
		remote       bool
		errSubstring string
	}{
		{"127.0.0.1:80", false, false, ""},
		{"127.8.9.10:0", false, false, ""},
		{"[::1]:9911", false, false, ""},
		{"localhost:9911", false, false, ""},
		{"LOCALHOST:1", false, false, ""},
		{"0.0.0.0:9911", false, true, `"0.0.0.0:9911": set allow_remote = true`},
		{":9911", false, true, "non-loopback"},
		{"10.0.0.1:80", true, true, ""},
		{"nonsense", false, false, `invalid listen address "nonsense"`},
	} {
		remote, err := CheckBind(tc.addr, tc.allow)
		if tc.errSubstring == "" && err != nil || tc.errSubstring != "" && (err == nil || !strings.Contains(err.Error(), tc.errSubstring)) {
			t.Errorf("CheckBind(%q, %v) err = %v, want %q", tc.addr, tc.allow, err, tc.errSubstring)
		}
		if err == nil && remote != tc.remote {
			t.Errorf("CheckBind(%q) remote = %v", tc.addr, remote)
		}
	}
}

// TestCloseDoesNotWaitForUnusedConnections opens a connection that never sends a request:
// http.Server.Shutdown alone would wait 5s for it.
func TestCloseDoesNotWaitForUnusedConnections(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := Close(srv); err != nil {
		t.Fatal(err)
	}
	<-done
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %s", d)
	}
}

func TestServerLifecycle(t *testing.T) {
	newServer := func(name, addr string) *Server {
		t.Helper()
		s, err := NewServer(ServerOptions{Name: name, Addr: addr, Handler: http.NotFoundHandler()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := newServer("test", "127.0.0.1:0")
	if err := s.Close(); err != nil {
		t.Fatalf("Close before Start: %v", err)
	}
	s = newServer("test", "127.0.0.1:0")
	if s.Addr() != "127.0.0.1:0" {
		t.Fatalf("Addr before Start = %s", s.Addr())
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("Addr after Start = %s, want the bound port", s.Addr())
	}
	resp, err := http.Get("http://" + s.Addr() + "/x")
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "test: server already started") {
		t.Fatalf("second Start: %v", err)
	}
	busy := newServer("busy", s.Addr())
	if err := busy.Start(); err == nil || !strings.Contains(err.Error(), "listen on "+s.Addr()) {
		t.Fatalf("Start on a used port: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

func TestPlainHTTPAllowedOnlyToLoopbackUnlessInsecure(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		want     bool
	}{
		{"http://127.0.0.1:8443", false, true},
		{"http://localhost:8443/base", false, true},
		{"http://[::1]:8443", false, true},
		{"http://127.9.9.9", false, true},
		{"http://10.0.0.1:8443", false, false},
		{"http://emulator.internal", false, false},
		{"http://localhost.evil.example", false, false},
		{"http://10.0.0.1:8443", true, true},
		{"https://rolesanywhere.us-east-1.amazonaws.com", false, true},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := PlainHTTPAllowed(u, tt.insecure); got != tt.want {
			t.Errorf("PlainHTTPAllowed(%s, insecure=%v) = %v, want %v", tt.url, tt.insecure, got, tt.want)
		}
	}
}
