package emulator_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

// TestWorkloadAPIToCallerIdentity is the whole exchange on loopback: an X.509-SVID streamed by the fake
// agent over the real Workload API, signed into CreateSession, verified by the emulator (trusting the
// agent CA's exported bundle), and the credentials used by aws-sdk-go-v2's STS client — across a rotation.
func TestWorkloadAPIToCallerIdentity(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, svidtest.CAOptions{Intermediate: true})
	agent := svidtest.NewServer(t, svidtest.ServerOptions{CA: w.ca, Entries: []svidtest.Entry{{ID: appID}}})
	src, err := svid.New(ctx, svid.Options{Address: agent.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sub := src.Subscribe(svid.Selector{ID: appID.String()})
	defer sub.Close()
	for i := 0; i < 2; i++ {
		var s *svid.SVID
		select {
		case s = <-sub.C():
		case <-time.After(10 * time.Second):
			t.Fatal("no SVID")
		}
		c, err := client().CreateSession(ctx, w.input(signer.Identity{Leaf: s.Leaf(), Intermediates: s.Intermediates(), Key: s.PrivateKey}))
		if err != nil {
			t.Fatalf("SVID %d: %v", i, err)
		}
		out, err := w.callerIdentity(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := aws.ToString(out.Arn), "arn:aws:sts::123456789012:assumed-role/app/"+s.Leaf().SerialNumber.Text(16); got != want {
			t.Fatalf("arn %s, want %s", got, want)
		}
		if err := agent.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
}
