package emulator_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

// TestSecurityEmulatorLogsNoSecretOnSignatureMismatch drives the emulator down every path that logs a
// canonical request, at trace level: a CreateSession signed with the wrong key, and STS calls carrying a
// real session token but signed with a wrong secret. The session token, the secret access key and the
// wrong secret must not appear in any log line, while the mismatch is still logged (with the token's
// header shown as redacted) so that the log stays useful.
func TestSecurityEmulatorLogsNoSecretOnSignatureMismatch(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, svidtest.CAOptions{})

	// CreateSession whose signature does not verify: the query is changed after signing.
	a := w.mint(t, appID, svidtest.MintOptions{})
	tamper := signer.New(signer.Options{Retry: signer.RetryPolicy{MaxAttempts: 1}, HTTPClient: &http.Client{
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r.URL.RawQuery += "&durationSeconds=900"
			return http.DefaultTransport.RoundTrip(r)
		}),
	}})
	if _, err := tamper.CreateSession(ctx, w.input(a)); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("tampered query: err = %v, want a signature error", err)
	}

	good, err := client().CreateSession(ctx, w.input(a))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.callerIdentity(ctx, good); err != nil {
		t.Fatalf("GetCallerIdentity with the issued credentials: %v", err)
	}
	const wrongSecret = "WRONG-secret-0123456789abcdefghijklmnopqrst"
	bad := creds.Credentials{AccessKeyID: good.AccessKeyID, SecretAccessKey: wrongSecret, SessionToken: good.SessionToken}
	if _, err := w.callerIdentity(ctx, bad); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: err = %v, want SignatureDoesNotMatch", err)
	}

	logs := w.logs()
	for _, mismatch := range []string{"signature mismatch", "SigV4 mismatch"} {
		if !strings.Contains(logs, mismatch) {
			t.Errorf("the log has no %q line; the test did not reach the path it guards:\n%s", mismatch, logs)
		}
	}
	if !strings.Contains(logs, "x-amz-security-token:<redacted>") {
		t.Errorf("the STS mismatch line does not show the session token's header as redacted:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"session token":     good.SessionToken,
		"secret access key": good.SecretAccessKey,
		"wrong secret":      wrongSecret,
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the emulator's log", name)
		}
	}
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip implements http.RoundTripper.
func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
