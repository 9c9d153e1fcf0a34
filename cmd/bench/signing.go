package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// signing: the cost of signing one CreateSession per key type, and of a whole refresh (sign + HTTP
// round trip + parse) in allocations.
func (b *bench) signing() error {
	ca, err := svidtest.NewCA(svidtest.CAOptions{})
	if err != nil {
		return err
	}
	id := spiffeid.RequireFromString(testworld.SPIFFEID)
	for _, kt := range []svidtest.KeyType{svidtest.KeyTypeRSA2048, svidtest.KeyTypeEC256, svidtest.KeyTypeEC384} {
		s, err := ca.MintX509SVID(id, svidtest.MintOptions{KeyType: kt})
		if err != nil {
			return err
		}
		ident := signer.Identity{Leaf: s.Certificates[0], Key: s.PrivateKey}
		body := []byte(`{"durationSeconds":3600}`)
		var signErr error
		r := testing.Benchmark(func(tb *testing.B) {
			tb.ReportAllocs()
			for i := 0; i < tb.N; i++ {
				req, _ := http.NewRequest("POST", "https://rolesanywhere.us-east-1.amazonaws.com/sessions?profileArn=p&roleArn=r&trustAnchorArn=t", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				if err := signer.Sign(req, body, ident, "us-east-1", time.Now()); err != nil {
					signErr = err
					tb.FailNow()
				}
			}
		})
		if signErr != nil {
			return signErr
		}
		b.add("sign CreateSession, "+kt.String(), fmt.Sprintf("%.0f µs, %d allocs, %d B", float64(r.NsPerOp())/1e3, r.AllocsPerOp(), r.AllocedBytesPerOp()), "", nil)
	}

	w, err := testworld.Start(testworld.Options{QuotaPerSecond: -1})
	if err != nil {
		return err
	}
	defer w.Close()
	s := w.Agent.Current()[0]
	in := signer.CreateSessionInput{Identity: signer.Identity{Leaf: s.Certificates[0], Key: s.PrivateKey},
		TrustAnchorARN: testworld.TrustAnchorARN, ProfileARN: testworld.ProfileARN, RoleARN: testworld.RoleARN, Endpoint: w.Emulator.URL, AllowHTTP: true}
	client := signer.New(signer.Options{Retry: signer.RetryPolicy{MaxAttempts: 1}})
	var refreshErr error
	r := testing.Benchmark(func(tb *testing.B) {
		tb.ReportAllocs()
		for i := 0; i < tb.N; i++ {
			if _, err := client.CreateSession(context.Background(), in); err != nil {
				refreshErr = err
				tb.FailNow()
			}
		}
	})
	if refreshErr != nil {
		return refreshErr
	}
	b.add("one refresh: sign + CreateSession on loopback (client side, ec-p256)",
		fmt.Sprintf("%.2f ms, %d allocs, %d KB", float64(r.NsPerOp())/1e6, r.AllocsPerOp(), r.AllocedBytesPerOp()/1024), "", nil)
	return nil
}
