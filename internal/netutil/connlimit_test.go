package netutil

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// dialIdle opens a connection to addr that sends nothing (a client holding a slot).
func dialIdle(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c within d (a read sees EOF or a reset).
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// waitOpen waits until l counts n open connections.
func waitOpen(t *testing.T, l *ConnLimit, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.Open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", l.Open(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConnLimitCapFollowsTheDescriptorLimit(t *testing.T) {
	for _, c := range []struct {
		o    ConnLimitOptions
		want int
	}{
		{ConnLimitOptions{Descriptors: 1024}, 1024 - 512},
		{ConnLimitOptions{Descriptors: 8192}, MaxConnections},
		{ConnLimitOptions{Descriptors: 256}, 128},
		{ConnLimitOptions{Descriptors: 100, Reserve: 95}, MinConnections},
		{ConnLimitOptions{Descriptors: 1 << 20, Max: 10}, 10},
	} {
		if got := NewConnLimit(c.o).Cap(); got != c.want {
			t.Errorf("%+v: Cap = %d, want %d", c.o, got, c.want)
		}
	}
	if got := DescriptorLimit(); got < 64 {
		t.Errorf("DescriptorLimit = %d", got)
	}
	// Every listening socket is a descriptor the connections cannot have.
	l := NewConnLimit(ConnLimitOptions{Descriptors: 1024})
	var servers []*Server
	for range 3 {
		s, _ := startServer(t, ServerOptions{Addr: "127.0.0.1:0", Conns: l})
		servers = append(servers, s)
	}
	if got := l.Cap(); got != 1024-512-3 {
		t.Errorf("with 3 listeners: Cap = %d, want %d", got, 1024-512-3)
	}
	for _, s := range servers {
		s.Close()
	}
	if got := l.Cap(); got != 1024-512 {
		t.Errorf("after closing them: Cap = %d, want %d", got, 1024-512)
	}
}

// TestSecurityConnLimitGivesTheSlotOfTheLongestIdleConnection: a client holding every slot of a shared
// budget (across two servers) does not keep a legitimate client out: its oldest idle connection is closed
// to serve the newcomer, a connection serving a request is never closed, and the count never exceeds the
// cap. Without the limit, the connections would simply pile up (and, at the descriptor limit, make every
// file the process opens fail).
func TestSecurityConnLimitGivesTheSlotOfTheLongestIdleConnection(t *testing.T) {
	l := NewConnLimit(ConnLimitOptions{Descriptors: 1 << 20, Max: 4})
	release := make(chan struct{})
	var entered sync.WaitGroup
	slow, err := NewServer(ServerOptions{Name: "slow", Addr: "127.0.0.1:0", Conns: l,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered.Done()
			<-release
			fmt.Fprint(w, "done")
		})})
	if err != nil {
		t.Fatal(err)
	}
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	_, fastPort := startServer(t, ServerOptions{Addr: "127.0.0.1:0", Conns: l})
	fastAddr := "127.0.0.1:" + fastPort

	// A request in a handler: active, never closed to make room.
	entered.Add(1)
	busy := dialIdle(t, slow.Addr())
	fmt.Fprintf(busy, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", slow.Addr())
	entered.Wait()
	// The attacker fills the rest of the budget, on the other server, oldest first.
	var held []net.Conn
	for range 3 {
		held = append(held, dialIdle(t, fastAddr))
		waitOpen(t, l, len(held)+1)
	}
	// A legitimate client still gets its answer: the attacker's oldest connection made room.
	if code, body := get(t, fastAddr, fastAddr); code != http.StatusOK || body != "the-secret-body" {
		t.Fatalf("legitimate request at the cap: %d %q", code, body)
	}
	if !closedByServer(held[0], 2*time.Second) {
		t.Error("the longest idle connection was not closed to make room")
	}
	for _, c := range held[1:] {
		if closedByServer(c, 50*time.Millisecond) {
			t.Error("a newer idle connection was closed before the oldest")
		}
	}
	if n := l.Open(); n > 4 {
		t.Errorf("%d connections open, cap 4", n)
	}
	// The request in the handler was never cut off.
	close(release)
	_ = busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("the busy connection lost its answer: %v", err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 100))
	resp.Body.Close()
	if string(b) != "done" {
		t.Errorf("busy connection's answer %q", b)
	}
}

// TestSecurityConnLimitRefusesFastWhenEveryConnectionIsBusy: when every slot serves a request, a new
// connection is closed at once (Accept never blocks), and the server accepts again once a slot frees.
func TestSecurityConnLimitRefusesFastWhenEveryConnectionIsBusy(t *testing.T) {
	l := NewConnLimit(ConnLimitOptions{Descriptors: 1 << 20, Max: 2})
	release := make(chan struct{})
	var entered sync.WaitGroup
	s, err := NewServer(ServerOptions{Name: "slow", Addr: "127.0.0.1:0", Conns: l,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/block" {
				entered.Done()
				<-release
			}
			fmt.Fprint(w, "ok")
		})})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var busy []net.Conn
	for range 2 {
		entered.Add(1)
		c := dialIdle(t, s.Addr())
		fmt.Fprintf(c, "GET /block HTTP/1.1\r\nHost: %s\r\n\r\n", s.Addr())
		busy = append(busy, c)
	}
	entered.Wait()
	extra := dialIdle(t, s.Addr())
	start := time.Now()
	if !closedByServer(extra, 2*time.Second) {
		t.Fatal("a connection beyond the cap, with every slot busy, was kept open")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing took %v", d)
	}
	close(release)
	// Both answers read: both handlers have returned, so the two connections idle on keep-alive and
	// the next one may take the place of the older. (Counting open connections cannot tell: they were
	// two while busy too.)
	for _, c := range busy {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("a busy request lost its answer: %v", err)
		}
		resp.Body.Close()
	}
	waitOpen(t, l, 2)
	if code, body := get(t, s.Addr(), s.Addr()); code != http.StatusOK || body != "ok" {
		t.Errorf("after the busy requests: %d %q", code, body)
	}
}

// TestSecurityHeaderSizeIsBounded: a request header beyond MaxHeaderBytes is answered 431 after reading
// about MaxHeaderBytes+4 KiB, not buffered to net/http's default megabyte; SDK-sized headers pass.
func TestSecurityHeaderSizeIsBounded(t *testing.T) {
	s, port := startServer(t, ServerOptions{Addr: "127.0.0.1:0"})
	addr := "127.0.0.1:" + port
	if code, _ := get(t, addr, addr, "X-Big", strings.Repeat("a", 8<<10)); code != http.StatusOK {
		t.Errorf("8 KiB header: %d, want 200", code)
	}
	c := dialIdle(t, s.Addr())
	fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: %s\r\n", addr)
	// An unfinished header of up to 1 MiB: the server must answer long before the end.
	chunk := []byte("X-Filler: " + strings.Repeat("a", 1000) + "\r\n")
	sent := 0
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	for sent < 1<<20 {
		n, err := c.Write(chunk)
		sent += n
		if err != nil {
			break
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to an oversized header (%d bytes sent): %v", sent, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized header: %d, want 431", resp.StatusCode)
	}
}

// TestSecurityConnLimitEvictsConnectionsHeldByAnUnsentBody: a client fills every slot with requests
// that declare a body (Content-Length: 100, or chunked) and never send it. The handler answers at once,
// but net/http then waits (up to ReadTimeout, 30 s) to discard the unread body before reusing the
// connection. Such a connection is not serving a request any more: it must yield its slot to a
// legitimate client, who is served promptly instead of being closed at once until the attacker stops.
func TestSecurityConnLimitEvictsConnectionsHeldByAnUnsentBody(t *testing.T) {
	const capacity = 8
	l := NewConnLimit(ConnLimitOptions{Descriptors: 1 << 20, Max: capacity})
	served := make(chan struct{}, 4*capacity)
	s, err := NewServer(ServerOptions{Name: "imds", Addr: "127.0.0.1:0", Conns: l,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Like the bridge's endpoints: answers without reading the body.
			fmt.Fprint(w, "ok")
			if r.URL.Path == "/attack" {
				served <- struct{}{}
			}
		})})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addr := s.Addr()

	held := make([]net.Conn, 0, capacity)
	for i := range capacity {
		c := dialIdle(t, addr)
		if i%2 == 0 {
			fmt.Fprintf(c, "GET /attack HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\n", addr)
		} else {
			fmt.Fprintf(c, "GET /attack HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n", addr)
		}
		held = append(held, c)
	}
	for range capacity {
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Fatal("the attacker's requests did not all reach the handler")
		}
	}
	waitOpen(t, l, capacity)
	waitHandlersReturned(t, l)

	// Every slot now holds a connection whose handler has returned and whose body never comes. Several
	// legitimate clients in a row, each on a new connection, are all served promptly.
	for i := range 3 {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(c, "GET /legit HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Fatalf("legitimate client %d with every slot held by an unsent body: %v (after %v)", i, err, time.Since(start))
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 100))
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "ok" {
			t.Fatalf("legitimate client %d: %d %q", i, resp.StatusCode, b)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("legitimate client %d served after %v", i, d)
		}
	}
	if n := l.Open(); n > capacity {
		t.Errorf("%d connections open, cap %d", n, capacity)
	}
	// The slots were taken from the attacker's connections (which of them first depends on the order
	// in which their handlers returned; at least the first legitimate client needed one).
	closed := 0
	for _, c := range held {
		if closedByServer(c, 200*time.Millisecond) {
			closed++
		}
	}
	if closed == 0 {
		t.Error("no connection held by an unsent body was closed to make room")
	}
}

// waitHandlersReturned waits until no handler runs for any connection of l (a handler that signalled
// the test has yet to return).
func waitHandlersReturned(t *testing.T, l *ConnLimit) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		running := 0
		l.mu.Lock()
		for e := l.conns.Front(); e != nil; e = e.Next() {
			running += e.Value.(*limitedConn).handlers
		}
		l.mu.Unlock()
		if running == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d handlers still running", running)
		}
		time.Sleep(time.Millisecond)
	}
}
