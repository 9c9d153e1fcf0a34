package svidtest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	delegatedv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/agent/delegatedidentity/v1"
	"github.com/spiffe/spire-api-sdk/proto/spire/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// WorkloadEntry is a SPIRE registration entry of another workload on the host, as the Delegated Identity
// API serves it: the SPIFFE ID issued to any workload whose selectors include all of Selectors.
type WorkloadEntry struct {
	ID spiffeid.ID
	// Selectors are "type:value" strings such as "unix:uid:1001"; an entry matches a subscription whose
	// selectors include every one of them (SPIRE's subset rule).
	Selectors []string
	Hint      string
	// Mint shapes the entry's X.509-SVIDs (zero value: SPIRE-like).
	Mint MintOptions
}

// DelegatedOptions configures a DelegatedServer.
type DelegatedOptions struct {
	// SocketPath is where the admin API listens; default a fresh short temporary path.
	SocketPath string
	// CA issues the SVIDs: pass the Workload API Server's CA() to serve both from one trust domain;
	// default NewCA(CAOptions{}).
	CA *CA
	// Entries are the workloads' registration entries.
	Entries []WorkloadEntry
	// Callers maps a connecting process's uid (read from the socket with SO_PEERCRED, as the agent's
	// unix workload attestor does) to the SPIFFE ID the agent would attest it as. A uid absent from the
	// map has no identity at all. Nil: every caller is attested as DelegateID.
	Callers map[uint32]spiffeid.ID
	// DelegateID is the caller identity used when Callers is nil; default spiffe://<td>/spiffe-aws-bridge.
	DelegateID spiffeid.ID
	// AuthorizedDelegates is the agent's authorized_delegates list; nil means [DelegateID] (an empty,
	// non-nil slice authorises no one).
	AuthorizedDelegates []spiffeid.ID
	// Logger receives one line per call; default discard.
	Logger hclog.Logger
}

// DelegatedServer is a fake SPIRE agent admin API serving the Delegated Identity API
// (spire.api.agent.delegatedidentity.v1) over real gRPC on a unix socket, from the same kind of in-memory
// CA as Server.
//
// What it models of SPIRE's agent (pkg/agent/api/delegatedidentity/v1):
//   - The caller is attested from the socket's peer credentials (its uid) and must hold a SPIFFE ID
//     listed in authorized_delegates. A caller with no identity gets PermissionDenied "no identity
//     issued"; one with an identity that is not a delegate gets PermissionDenied "caller not configured
//     as an authorized delegate". Authorisation is checked when a stream opens and again before each
//     update that carries SVIDs, so removing the bridge from authorized_delegates ends its streams.
//   - SubscribeToX509SVIDs streams the SVIDs of every entry whose selectors are a subset of the request's,
//     at once and again on every change (rotation, entry added or deleted). When no entry matches — none
//     ever did, or the last was deleted — SPIRE does not end the stream: it sends a response with no
//     SVIDs, and so does this server; the stream stays open and delivers SVIDs again when an entry is
//     re-added.
//   - A request with neither selectors nor a pid, or with both, is InvalidArgument.
type DelegatedServer struct {
	delegatedv1.UnimplementedDelegatedIdentityServer

	opts DelegatedOptions
	ca   *CA
	log  hclog.Logger
	dir  string

	mu         sync.Mutex
	entries    []WorkloadEntry
	svids      []*x509svid.SVID // per entry
	authorized []spiffeid.ID
	changed    chan struct{}
	streams    int
	sock       unixGRPC
}

// StartDelegated mints the entries' SVIDs and starts serving.
func StartDelegated(o DelegatedOptions) (*DelegatedServer, error) {
	s := &DelegatedServer{opts: o, ca: o.CA, log: o.Logger, changed: make(chan struct{})}
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
	if s.opts.DelegateID.IsZero() {
		s.opts.DelegateID = spiffeid.RequireFromPath(s.ca.td, "/spiffe-aws-bridge")
	}
	s.authorized = o.AuthorizedDelegates
	if s.authorized == nil {
		s.authorized = []spiffeid.ID{s.opts.DelegateID}
	}
	if s.opts.SocketPath == "" {
		dir, err := os.MkdirTemp("", "svidtest")
		if err != nil {
			return nil, err
		}
		s.dir = dir
		s.opts.SocketPath = filepath.Join(dir, "admin.sock")
	}
	// The admin socket is reachable by any local user, as SPIRE's is (0777 in a 0755 directory): the
	// agent authorises callers by attesting them, not by file permissions.
	s.sock = unixGRPC{name: "delegated server", path: s.opts.SocketPath, mode: 0o777, newServer: func() *grpc.Server {
		g := grpc.NewServer(grpc.Creds(peerCredentials{}))
		delegatedv1.RegisterDelegatedIdentityServer(g, s)
		return g
	}}
	if err := s.SetEntries(o.Entries); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.Restart(); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// NewDelegatedServer starts a DelegatedServer for a test and closes it when the test ends.
func NewDelegatedServer(t testing.TB, o DelegatedOptions) *DelegatedServer {
	t.Helper()
	s, err := StartDelegated(o)
	if err != nil {
		t.Fatalf("svidtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Addr is the admin API address: unix:///path/to/admin.sock.
func (s *DelegatedServer) Addr() string { return "unix://" + s.opts.SocketPath }

// SocketPath is the unix socket's file path.
func (s *DelegatedServer) SocketPath() string { return s.opts.SocketPath }

// CA is the authority issuing the SVIDs.
func (s *DelegatedServer) CA() *CA { return s.ca }

// DelegateID is the identity callers are attested as when DelegatedOptions.Callers is nil.
func (s *DelegatedServer) DelegateID() spiffeid.ID { return s.opts.DelegateID }

// SetEntries replaces every entry with fresh SVIDs and pushes the change to open streams.
func (s *DelegatedServer) SetEntries(entries []WorkloadEntry) error {
	for _, e := range entries {
		for _, sel := range e.Selectors {
			if _, err := parseSelector(sel); err != nil {
				return err
			}
		}
	}
	svids, err := s.mint(entries)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.entries = slices.Clone(entries)
	s.svids = svids
	s.notifyLocked()
	s.mu.Unlock()
	return nil
}

func (s *DelegatedServer) mint(entries []WorkloadEntry) ([]*x509svid.SVID, error) {
	out := make([]*x509svid.SVID, 0, len(entries))
	for _, e := range entries {
		sv, err := s.ca.MintX509SVID(e.ID, e.Mint)
		if err != nil {
			return nil, fmt.Errorf("svidtest: mint %s: %w", e.ID, err)
		}
		sv.Hint = e.Hint
		out = append(out, sv)
	}
	return out, nil
}

// Entries returns the entries served, in order.
func (s *DelegatedServer) Entries() []WorkloadEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries)
}

// Current returns the SVID issued now for id, or nil.
func (s *DelegatedServer) Current(id spiffeid.ID) *x509svid.SVID {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.entries {
		if e.ID == id {
			return s.svids[i]
		}
	}
	return nil
}

// Rotate re-issues every entry's SVID and pushes them to every open stream (a mass rotation, as after a
// SPIRE server CA rotation).
func (s *DelegatedServer) Rotate() error {
	push, err := s.PrepareRotation()
	if err != nil {
		return err
	}
	push()
	return nil
}

// PrepareRotation mints a new SVID for every entry and returns push, which hands them all to every open
// stream at once: Rotate in two steps, so that a benchmark can time the bridge from the moment the agent
// pushes a mass rotation, without the fake agent's own minting. Entries changed between the two steps are
// kept; push then re-issues only the entries it minted for.
func (s *DelegatedServer) PrepareRotation() (push func(), err error) {
	entries := s.Entries()
	svids, err := s.mint(entries)
	if err != nil {
		return nil, err
	}
	key := func(e WorkloadEntry) string { return e.ID.String() + "\x00" + strings.Join(e.Selectors, "\x00") }
	minted := make(map[string]*x509svid.SVID, len(entries))
	for i, e := range entries {
		minted[key(e)] = svids[i]
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		next := slices.Clone(s.svids) // streams read the old slice without the lock
		for i, e := range s.entries {
			if sv, ok := minted[key(e)]; ok {
				next[i] = sv
			}
		}
		s.svids = next
		s.notifyLocked()
	}, nil
}

// RotateEntry re-issues the SVID of entry id only.
func (s *DelegatedServer) RotateEntry(id spiffeid.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.entries {
		if e.ID == id {
			sv, err := s.mint([]WorkloadEntry{e})
			if err != nil {
				return err
			}
			s.svids = slices.Clone(s.svids) // streams read the old slice without the lock
			s.svids[i] = sv[0]
			s.notifyLocked()
			return nil
		}
	}
	return fmt.Errorf("svidtest: no entry %s", id)
}

// DeleteEntry removes entry id, as when its registration entry is deleted: streams whose workload it
// matched get an update without its SVID (an empty one if it was the last). It reports whether id existed.
func (s *DelegatedServer) DeleteEntry(id spiffeid.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.entries {
		if e.ID == id {
			s.entries = slices.Delete(slices.Clone(s.entries), i, i+1)
			s.svids = slices.Delete(slices.Clone(s.svids), i, i+1)
			s.notifyLocked()
			return true
		}
	}
	return false
}

// AddEntry adds an entry (with a fresh SVID) and pushes it to matching streams.
func (s *DelegatedServer) AddEntry(e WorkloadEntry) error {
	return s.SetEntries(append(s.Entries(), e))
}

// SetAuthorizedDelegates replaces the agent's authorized_delegates; open streams re-check it before
// their next update with SVIDs.
func (s *DelegatedServer) SetAuthorizedDelegates(ids []spiffeid.ID) {
	s.mu.Lock()
	s.authorized = slices.Clone(ids)
	if s.authorized == nil {
		s.authorized = []spiffeid.ID{}
	}
	s.notifyLocked()
	s.mu.Unlock()
}

// Streams is the number of SubscribeToX509SVIDs streams open now.
func (s *DelegatedServer) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams
}

func (s *DelegatedServer) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Stop stops serving, as when the agent goes down: streams break and the socket is removed.
func (s *DelegatedServer) Stop() { s.sock.stop() }

// Restart serves again on the same socket after Stop. It is a no-op while serving.
func (s *DelegatedServer) Restart() error { return s.sock.restart() }

// Close stops the server for good and removes what it created.
func (s *DelegatedServer) Close() {
	if !s.sock.markClosed() {
		return
	}
	s.Stop()
	s.cleanup()
}

func (s *DelegatedServer) cleanup() {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// authorize is SPIRE's isCallerAuthorized: attest the caller, then look for a delegate identity.
func (s *DelegatedServer) authorize(ctx context.Context) error {
	var uid uint32
	known := false
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(peerInfo); ok {
			uid, known = info.uid, true
		}
	}
	caller := s.opts.DelegateID
	if s.opts.Callers != nil {
		id, ok := s.opts.Callers[uid]
		if !known || !ok {
			s.log.Warn("no identity issued to the caller", "uid", uid)
			return status.Error(codes.PermissionDenied, "no identity issued")
		}
		caller = id
	}
	s.mu.Lock()
	authorized := slices.Contains(s.authorized, caller)
	s.mu.Unlock()
	if !authorized {
		s.log.Warn("Permission denied; caller not configured as an authorized delegate.", "caller", caller.String(), "uid", uid)
		return status.Error(codes.PermissionDenied, "caller not configured as an authorized delegate")
	}
	return nil
}

// SubscribeToX509SVIDs implements the Delegated Identity API.
func (s *DelegatedServer) SubscribeToX509SVIDs(req *delegatedv1.SubscribeToX509SVIDsRequest, stream grpc.ServerStreamingServer[delegatedv1.SubscribeToX509SVIDsResponse]) error {
	ctx := stream.Context()
	if err := s.authorize(ctx); err != nil {
		return err
	}
	switch {
	case len(req.Selectors) > 0 && req.Pid != 0:
		return status.Error(codes.InvalidArgument, "cannot specify both selectors and pid")
	case len(req.Selectors) == 0 && req.Pid == 0:
		return status.Error(codes.InvalidArgument, "could not parse provided selectors")
	case req.Pid != 0:
		return status.Error(codes.Unimplemented, "svidtest: subscribing by pid is not modelled")
	}
	want := map[string]bool{}
	for _, sel := range req.Selectors {
		if sel.Type == "" || sel.Value == "" {
			return status.Error(codes.InvalidArgument, "could not parse provided selectors")
		}
		want[sel.Type+":"+sel.Value] = true
	}
	s.mu.Lock()
	s.streams++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.streams--
		s.mu.Unlock()
	}()
	s.log.Debug("subscribed", "selectors", keys(want))
	var last string
	for {
		s.mu.Lock()
		entries, all, changed := s.entries, s.svids, s.changed // replaced on change, never modified
		s.mu.Unlock()
		var svids []*x509svid.SVID
		for i, e := range entries {
			if matches(e.Selectors, want) {
				svids = append(svids, all[i])
			}
		}
		if len(svids) > 0 {
			if err := s.authorize(ctx); err != nil {
				return err
			}
		}
		if key := fingerprint(svids); key != last || last == "" {
			last = key
			resp, err := delegatedResponse(svids)
			if err != nil {
				return status.Error(codes.Internal, "could not serialize response")
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
			s.log.Debug("sent X.509-SVIDs", "selectors", keys(want), "count", len(svids))
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// SubscribeToX509Bundles implements the Delegated Identity API: the local bundle.
func (s *DelegatedServer) SubscribeToX509Bundles(_ *delegatedv1.SubscribeToX509BundlesRequest, stream grpc.ServerStreamingServer[delegatedv1.SubscribeToX509BundlesResponse]) error {
	if err := s.authorize(stream.Context()); err != nil {
		return err
	}
	if err := stream.Send(&delegatedv1.SubscribeToX509BundlesResponse{CaCertificates: map[string][]byte{s.ca.td.IDString(): s.ca.root.Raw}}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func matches(entry []string, workload map[string]bool) bool {
	if len(entry) == 0 {
		return false
	}
	for _, sel := range entry {
		if !workload[sel] {
			return false
		}
	}
	return true
}

func fingerprint(svids []*x509svid.SVID) string {
	var b strings.Builder
	b.WriteString("n")
	for _, sv := range svids {
		b.WriteString(sv.Certificates[0].SerialNumber.String())
		b.WriteByte(',')
	}
	return b.String()
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func delegatedResponse(svids []*x509svid.SVID) (*delegatedv1.SubscribeToX509SVIDsResponse, error) {
	resp := &delegatedv1.SubscribeToX509SVIDsResponse{}
	for _, sv := range svids {
		key, err := x509.MarshalPKCS8PrivateKey(sv.PrivateKey)
		if err != nil {
			return nil, err
		}
		chain := make([][]byte, 0, len(sv.Certificates))
		for _, c := range sv.Certificates {
			chain = append(chain, c.Raw)
		}
		resp.X509Svids = append(resp.X509Svids, &delegatedv1.X509SVIDWithKey{
			X509Svid: &types.X509SVID{
				Id:        &types.SPIFFEID{TrustDomain: sv.ID.TrustDomain().Name(), Path: sv.ID.Path()},
				CertChain: chain,
				ExpiresAt: sv.Certificates[0].NotAfter.Unix(),
				Hint:      sv.Hint,
			},
			X509SvidKey: key,
		})
	}
	return resp, nil
}

// parseSelector splits "type:value" as SPIRE does (at the first colon).
func parseSelector(s string) (*types.Selector, error) {
	t, v, ok := strings.Cut(s, ":")
	if !ok || t == "" || v == "" {
		return nil, fmt.Errorf("svidtest: selector %q is not type:value", s)
	}
	return &types.Selector{Type: t, Value: v}, nil
}

// peerCredentials is gRPC transport credentials that read the connecting process's uid from the unix
// socket (SO_PEERCRED), as SPIRE's peertracker does; they add no encryption (a local socket).
type peerCredentials struct{}

type peerInfo struct{ uid uint32 }

func (peerInfo) AuthType() string { return "svidtest-peercred" }

func (peerCredentials) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, nil, errors.New("svidtest: peer credentials are server-side only")
}

func (peerCredentials) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return c, nil, errors.New("svidtest: not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return c, nil, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return c, nil, err
	}
	if serr != nil {
		return c, nil, fmt.Errorf("svidtest: SO_PEERCRED: %w", serr)
	}
	return c, peerInfo{uid: cred.Uid}, nil
}

func (peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "svidtest-peercred"}
}

func (p peerCredentials) Clone() credentials.TransportCredentials { return p }

func (peerCredentials) OverrideServerName(string) error { return nil }
