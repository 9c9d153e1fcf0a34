package svidtest

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Entry is one identity the fake agent issues to its caller, like a SPIRE registration entry.
type Entry struct {
	ID   spiffeid.ID
	Hint string
	// Mint shapes the entry's X.509-SVIDs (zero value: SPIRE-like).
	Mint MintOptions
}

// ServerOptions configures a Server.
type ServerOptions struct {
	// SocketPath is where the Workload API listens; default a fresh short temporary path.
	SocketPath string
	// CA issues the SVIDs; default NewCA(CAOptions{}).
	CA *CA
	// Entries are the identities served, first = default; default one entry spiffe://<td>/workload.
	Entries []Entry
	// RotateEvery, when set, re-issues every SVID on that period (SPIRE rotates at half the TTL).
	RotateEvery time.Duration
	// Logger receives one line per call; default discard.
	Logger hclog.Logger
}

// Server is a fake SPIRE agent: a real SpiffeWorkloadAPI gRPC server on a unix socket. Like SPIRE it
// requires the `workload.spiffe.io: true` metadata and streams a new X.509-SVID response on every
// rotation.
type Server struct {
	workload.UnimplementedSpiffeWorkloadAPIServer

	opts ServerOptions
	ca   *CA
	log  hclog.Logger
	dir  string // temporary directory we created, removed on Close

	mu      sync.Mutex
	entries []Entry
	svids   []*x509svid.SVID
	denied  bool
	changed chan struct{} // closed and replaced on every change
	sock    unixGRPC

	stopRotate chan struct{}
	wg         sync.WaitGroup
}

// Start mints the SVIDs and starts serving.
func Start(o ServerOptions) (*Server, error) {
	s := &Server{opts: o, ca: o.CA, log: o.Logger, changed: make(chan struct{}), stopRotate: make(chan struct{})}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.ca == nil {
		ca, err := NewCA(CAOptions{})
		if err != nil {
			return nil, err
		}
		s.ca = ca
	}
	if s.opts.SocketPath == "" {
		// t.TempDir paths can exceed the 108-byte unix socket limit; keep this one short.
		dir, err := os.MkdirTemp("", "svidtest")
		if err != nil {
			return nil, err
		}
		s.dir = dir
		s.opts.SocketPath = filepath.Join(dir, "agent.sock")
	}
	s.sock = unixGRPC{name: "server", path: s.opts.SocketPath, newServer: func() *grpc.Server {
		g := grpc.NewServer()
		workload.RegisterSpiffeWorkloadAPIServer(g, s)
		return g
	}}
	entries := o.Entries
	if len(entries) == 0 {
		entries = []Entry{{ID: spiffeid.RequireFromPath(s.ca.td, "/workload")}}
	}
	if err := s.SetEntries(entries); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.Restart(); err != nil {
		s.cleanup()
		return nil, err
	}
	if o.RotateEvery > 0 {
		s.wg.Add(1)
		go s.rotateLoop(o.RotateEvery)
	}
	return s, nil
}

// NewServer starts a Server for a test and closes it when the test ends.
func NewServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatalf("svidtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Addr is the Workload API address in go-spiffe form: unix:///path/to/socket.
func (s *Server) Addr() string { return "unix://" + s.opts.SocketPath }

// SocketPath is the unix socket's file path.
func (s *Server) SocketPath() string { return s.opts.SocketPath }

// CA is the authority issuing this server's SVIDs.
func (s *Server) CA() *CA { return s.ca }

// Current returns the SVIDs being served now, in entry order.
func (s *Server) Current() []*x509svid.SVID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*x509svid.SVID(nil), s.svids...)
}

// Rotate re-issues every SVID now and pushes them to every open stream.
func (s *Server) Rotate() error {
	s.mu.Lock()
	entries := s.entries
	s.mu.Unlock()
	return s.SetEntries(entries)
}

// SetEntries replaces the identities served (fresh SVIDs for each) and pushes them to open streams.
func (s *Server) SetEntries(entries []Entry) error {
	svids := make([]*x509svid.SVID, 0, len(entries))
	for _, e := range entries {
		sv, err := s.ca.MintX509SVID(e.ID, e.Mint)
		if err != nil {
			return fmt.Errorf("svidtest: mint %s: %w", e.ID, err)
		}
		sv.Hint = e.Hint
		svids = append(svids, sv)
	}
	s.mu.Lock()
	s.entries = append([]Entry(nil), entries...)
	s.svids = svids
	s.notifyLocked()
	s.mu.Unlock()
	for _, sv := range svids {
		s.log.Info("issued X.509-SVID", "spiffe_id", sv.ID.String(), "serial", fmt.Sprintf("%x", sv.Certificates[0].SerialNumber),
			"expires", sv.Certificates[0].NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Entries returns the identities being served, in order.
func (s *Server) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Entry(nil), s.entries...)
}

// DeleteEntry stops issuing the identity id, as when its SPIRE registration entry is deleted: open
// streams get the remaining SVIDs, or, when none is left, end with PermissionDenied "no identity issued"
// exactly as SPIRE's agent answers a workload that no entry matches. It reports whether id was served.
func (s *Server) DeleteEntry(id spiffeid.ID) (bool, error) {
	var kept []Entry
	found := false
	for _, e := range s.Entries() {
		if e.ID == id {
			found = true
			continue
		}
		kept = append(kept, e)
	}
	if !found {
		return false, nil
	}
	return true, s.SetEntries(kept)
}

// AddEntry issues the identity e (again) after the entries already served, as when a registration entry
// is created: every SVID is re-issued and pushed to open streams (a stream that ended with
// PermissionDenied gets them when the client reconnects).
func (s *Server) AddEntry(e Entry) error { return s.SetEntries(append(s.Entries(), e)) }

// SetPermissionDenied makes the server answer as SPIRE does for a workload with no registration entry:
// PermissionDenied "no identity issued". Open streams end with that error.
func (s *Server) SetPermissionDenied(denied bool) {
	s.mu.Lock()
	s.denied = denied
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Stop stops serving, as when the SPIRE agent goes down: open streams break and the socket is removed.
func (s *Server) Stop() {
	if s.sock.stop() {
		s.log.Debug("stopped")
	}
}

// Restart serves again on the same socket after Stop (an agent restart). It is a no-op while serving.
func (s *Server) Restart() error {
	if err := s.sock.restart(); err != nil {
		return err
	}
	s.log.Debug("serving", "socket", s.opts.SocketPath)
	return nil
}

// Close stops the server for good and removes what it created.
func (s *Server) Close() {
	if !s.sock.markClosed() {
		return
	}
	close(s.stopRotate)
	s.wg.Wait()
	s.Stop()
	s.cleanup()
}

func (s *Server) cleanup() {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

func (s *Server) rotateLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopRotate:
			return
		case <-t.C:
			if err := s.Rotate(); err != nil {
				s.log.Error("rotation failed", "error", err)
			}
		}
	}
}

// snapshot returns the current state and the channel closed on the next change.
func (s *Server) snapshot() ([]*x509svid.SVID, bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svids, s.denied, s.changed
}

func checkHeader(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	return nil
}

var errNoIdentity = status.Error(codes.PermissionDenied, "no identity issued")

// FetchX509SVID implements the Workload API: the current SVIDs, then a new response on every change.
func (s *Server) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	if err := checkHeader(stream.Context()); err != nil {
		return err
	}
	return s.follow(stream.Context(), func(svids []*x509svid.SVID) error {
		if len(svids) == 0 {
			return errNoIdentity
		}
		resp, err := s.x509Response(svids)
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		s.log.Debug("FetchX509SVID: sent", "svids", len(svids))
		return nil
	})
}

// follow calls send with the current SVIDs, then again after every change, until the stream's context
// ends; while the workload is denied it ends the stream with PermissionDenied, as SPIRE does.
func (s *Server) follow(ctx context.Context, send func([]*x509svid.SVID) error) error {
	for {
		svids, denied, changed := s.snapshot()
		if denied {
			s.log.Debug("no identity issued")
			return errNoIdentity
		}
		if err := send(svids); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *Server) x509Response(svids []*x509svid.SVID) (*workload.X509SVIDResponse, error) {
	bundle := s.ca.root.Raw
	resp := &workload.X509SVIDResponse{}
	for _, sv := range svids {
		var chain []byte
		for _, c := range sv.Certificates {
			chain = append(chain, c.Raw...)
		}
		key, err := x509.MarshalPKCS8PrivateKey(sv.PrivateKey)
		if err != nil {
			return nil, err
		}
		resp.Svids = append(resp.Svids, &workload.X509SVID{
			SpiffeId: sv.ID.String(), X509Svid: chain, X509SvidKey: key, Bundle: bundle, Hint: sv.Hint,
		})
	}
	return resp, nil
}

// FetchX509Bundles implements the Workload API's bundle stream.
func (s *Server) FetchX509Bundles(_ *workload.X509BundlesRequest, stream grpc.ServerStreamingServer[workload.X509BundlesResponse]) error {
	if err := checkHeader(stream.Context()); err != nil {
		return err
	}
	return s.follow(stream.Context(), func([]*x509svid.SVID) error {
		return stream.Send(&workload.X509BundlesResponse{Bundles: map[string][]byte{s.ca.td.IDString(): s.ca.root.Raw}})
	})
}

// FetchJWTSVID implements the Workload API: a JWT-SVID per entry (or for the requested SPIFFE ID).
func (s *Server) FetchJWTSVID(ctx context.Context, req *workload.JWTSVIDRequest) (*workload.JWTSVIDResponse, error) {
	if err := checkHeader(ctx); err != nil {
		return nil, err
	}
	if len(req.Audience) == 0 {
		return nil, status.Error(codes.InvalidArgument, "audience must be specified")
	}
	s.mu.Lock()
	entries, denied := s.entries, s.denied
	s.mu.Unlock()
	if denied {
		return nil, errNoIdentity
	}
	resp := &workload.JWTSVIDResponse{}
	for _, e := range entries {
		if req.SpiffeId != "" && e.ID.String() != req.SpiffeId {
			continue
		}
		tok, err := s.ca.MintJWTSVID(e.ID, req.Audience, 0)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		resp.Svids = append(resp.Svids, &workload.JWTSVID{SpiffeId: e.ID.String(), Svid: tok, Hint: e.Hint})
	}
	if len(resp.Svids) == 0 {
		return nil, errNoIdentity
	}
	s.log.Debug("FetchJWTSVID: issued", "svids", len(resp.Svids), "audience", req.Audience)
	return resp, nil
}

// FetchJWTBundles implements the Workload API's JWKS stream.
func (s *Server) FetchJWTBundles(_ *workload.JWTBundlesRequest, stream grpc.ServerStreamingServer[workload.JWTBundlesResponse]) error {
	if err := checkHeader(stream.Context()); err != nil {
		return err
	}
	return s.follow(stream.Context(), func([]*x509svid.SVID) error {
		return stream.Send(&workload.JWTBundlesResponse{Bundles: map[string][]byte{s.ca.td.IDString(): s.ca.JWKS()}})
	})
}

// ValidateJWTSVID implements the Workload API: verifies the token against the served JWT bundle.
func (s *Server) ValidateJWTSVID(ctx context.Context, req *workload.ValidateJWTSVIDRequest) (*workload.ValidateJWTSVIDResponse, error) {
	if err := checkHeader(ctx); err != nil {
		return nil, err
	}
	if req.Audience == "" {
		return nil, status.Error(codes.InvalidArgument, "audience must be specified")
	}
	sv, err := jwtsvid.ParseAndValidate(req.Svid, jwtbundle.NewSet(s.ca.JWTBundle()), []string{req.Audience})
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	claims, err := structpb.NewStruct(jsonSafe(sv.Claims))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &workload.ValidateJWTSVIDResponse{SpiffeId: sv.ID.String(), Claims: claims}, nil
}

// jsonSafe converts claim values structpb cannot take (e.g. []string) into []any.
func jsonSafe(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		switch t := v.(type) {
		case []string:
			l := make([]any, len(t))
			for i, s := range t {
				l[i] = s
			}
			out[k] = l
		default:
			out[k] = v
		}
	}
	return out
}
