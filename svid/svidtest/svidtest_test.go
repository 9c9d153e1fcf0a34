package svidtest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var id = spiffeid.RequireFromString("spiffe://example.org/ns/prod/app")

func TestSVIDShapedLikeSPIRE(t *testing.T) {
	for _, inter := range []bool{false, true} {
		ca, err := svidtest.NewCA(svidtest.CAOptions{Intermediate: inter, TTL: 30 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		s, err := ca.MintX509SVID(id, svidtest.MintOptions{})
		if err != nil {
			t.Fatal(err)
		}
		leaf := s.Certificates[0]
		if got := leaf.Subject.String(); got != "O=SPIRE,C=US" {
			t.Errorf("subject = %q, want O=SPIRE,C=US (no CN)", got)
		}
		if leaf.IsCA || !leaf.BasicConstraintsValid {
			t.Error("leaf must carry CA:false")
		}
		want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement
		if leaf.KeyUsage != want {
			t.Errorf("key usage = %b, want %b", leaf.KeyUsage, want)
		}
		if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String() {
			t.Errorf("URI SANs = %v", leaf.URIs)
		}
		if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 30*time.Minute || d > 31*time.Minute {
			t.Errorf("lifetime = %s, want ~30m", d)
		}
		if _, ok := s.PrivateKey.(*ecdsa.PrivateKey); !ok {
			t.Errorf("default key is %T, want EC", s.PrivateKey)
		}
		if len(s.Certificates) != map[bool]int{false: 1, true: 2}[inter] {
			t.Fatalf("chain length %d with intermediate=%v", len(s.Certificates), inter)
		}
		// The chain verifies to the PEM bundle, as Roles Anywhere will check it.
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(ca.BundlePEM()) {
			t.Fatal("BundlePEM is not PEM")
		}
		inters := x509.NewCertPool()
		for _, c := range s.Certificates[1:] {
			inters.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("intermediate=%v: chain does not verify: %v", inter, err)
		}
		// go-spiffe accepts it as an X.509-SVID.
		certPEM, keyPEM, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x509svid.Parse(certPEM, keyPEM); err != nil {
			t.Fatalf("go-spiffe rejects the SVID: %v", err)
		}
		if b, _ := pem.Decode(ca.BundlePEM()); b == nil || b.Type != "CERTIFICATE" {
			t.Fatal("bad bundle PEM")
		}
	}
}

func TestKeyTypes(t *testing.T) {
	ca, err := svidtest.NewCA(svidtest.CAOptions{KeyType: svidtest.KeyTypeRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	check := map[svidtest.KeyType]func(any) bool{
		svidtest.KeyTypeEC256:   func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == elliptic.P256() },
		svidtest.KeyTypeEC384:   func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == elliptic.P384() },
		svidtest.KeyTypeRSA2048: func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 },
		svidtest.KeyTypeEd25519: func(k any) bool { _, ok := k.(ed25519.PrivateKey); return ok },
	}
	for kt, ok := range check {
		s, err := ca.MintX509SVID(id, svidtest.MintOptions{KeyType: kt})
		if err != nil {
			t.Fatalf("%s: %v", kt, err)
		}
		if !ok(s.PrivateKey) {
			t.Errorf("%s: got key %T", kt, s.PrivateKey)
		}
		if _, isRSA := s.Certificates[0].PublicKey.(*rsa.PublicKey); kt == svidtest.KeyTypeRSA2048 != isRSA {
			t.Errorf("%s: leaf public key %T", kt, s.Certificates[0].PublicKey)
		}
	}
}

func TestBadSVIDOptions(t *testing.T) {
	ca, _ := svidtest.NewCA(svidtest.CAOptions{})
	s, err := ca.MintX509SVID(id, svidtest.MintOptions{IsCA: true})
	if err != nil || !s.Certificates[0].IsCA {
		t.Fatalf("IsCA: %v", err)
	}
	old := time.Now().Add(-time.Hour)
	s, err = ca.MintX509SVID(id, svidtest.MintOptions{NotBefore: old.Add(-time.Hour), NotAfter: old})
	if err != nil || !s.Certificates[0].NotAfter.Equal(old.Truncate(time.Second)) {
		t.Fatalf("NotAfter: %v %v", s.Certificates[0].NotAfter, err)
	}
}

// TestRequiresSecurityHeader checks the server refuses calls without the metadata SPIRE requires.
func TestRequiresSecurityHeader(t *testing.T) {
	srv := svidtest.NewServer(t, svidtest.ServerOptions{})
	conn, err := grpc.NewClient("unix://"+srv.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := workload.NewSpiffeWorkloadAPIClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	stream, err := c.FetchX509SVID(ctx, &workload.X509SVIDRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "security header") {
		t.Fatalf("without header: %v", err)
	}
	stream, err = c.FetchX509SVID(metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true"), &workload.X509SVIDRequest{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil || len(resp.Svids) != 1 || resp.Svids[0].SpiffeId != "spiffe://example.org/workload" {
		t.Fatalf("with header: %v %v", resp, err)
	}
}

func TestRotateEveryAndEntries(t *testing.T) {
	srv := svidtest.NewServer(t, svidtest.ServerOptions{RotateEvery: 50 * time.Millisecond, Entries: []svidtest.Entry{{ID: id, Hint: "a"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := workloadapi.New(ctx, workloadapi.WithAddr(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seen := map[string]bool{}
	w := &collect{ch: make(chan *workloadapi.X509Context, 16)}
	go func() { _ = c.WatchX509Context(ctx, w) }()
	for len(seen) < 3 {
		select {
		case x := <-w.ch:
			seen[x.SVIDs[0].Certificates[0].SerialNumber.String()] = true
			if x.SVIDs[0].Hint != "a" {
				t.Fatalf("hint = %q", x.SVIDs[0].Hint)
			}
		case <-ctx.Done():
			t.Fatalf("only %d distinct SVIDs seen", len(seen))
		}
	}
	cancel()
}

type collect struct{ ch chan *workloadapi.X509Context }

func (c *collect) OnX509ContextUpdate(x *workloadapi.X509Context) {
	select {
	case c.ch <- x:
	default:
	}
}
func (c *collect) OnX509ContextWatchError(error) {}
