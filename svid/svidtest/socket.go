package svidtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"google.golang.org/grpc"
)

// unixGRPC is the lifecycle Server and DelegatedServer share: one gRPC server on a unix socket, stopped
// and served again on the same path as an agent restart does, then closed for good.
type unixGRPC struct {
	name string      // for errors: "server", "delegated server"
	path string      // the socket file
	mode os.FileMode // applied to the socket after listening; 0 keeps the umask's
	// newServer returns a gRPC server with the services registered.
	newServer func() *grpc.Server

	mu      sync.Mutex
	closed  bool
	grpc    *grpc.Server
	serving chan struct{}
}

// stop stops serving (open streams break) and removes the socket file. It reports whether it was serving.
func (u *unixGRPC) stop() bool {
	u.mu.Lock()
	g, serving := u.grpc, u.serving
	u.grpc = nil
	u.mu.Unlock()
	if g == nil {
		return false
	}
	g.Stop()
	<-serving
	_ = os.Remove(u.path)
	return true
}

// restart serves again on the same socket after stop; it is a no-op while serving.
func (u *unixGRPC) restart() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return fmt.Errorf("svidtest: %s closed", u.name)
	}
	if u.grpc != nil {
		return nil
	}
	_ = os.Remove(u.path)
	l, err := net.Listen("unix", u.path)
	if err != nil {
		return fmt.Errorf("svidtest: listen on %s: %w", u.path, err)
	}
	if u.mode != 0 {
		if err := os.Chmod(u.path, u.mode); err != nil {
			l.Close()
			return errors.Join(fmt.Errorf("svidtest: chmod %s", u.path), err)
		}
	}
	g := u.newServer()
	serving := make(chan struct{})
	go func() {
		defer close(serving)
		_ = g.Serve(l)
	}()
	u.grpc, u.serving = g, serving
	return nil
}

// markClosed makes every later restart fail; it reports false when it was closed already. The caller
// then stops it.
func (u *unixGRPC) markClosed() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	already := u.closed
	u.closed = true
	return !already
}
