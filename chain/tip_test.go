package chain_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain/sdksts"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// The tip world's profiles, beside the world's own, in account A and the world's region.
const (
	tipProfile    = "arn:aws:rolesanywhere:" + region + ":" + testworld.AccountID + ":profile/0a0a0a0a-0506-4708-8900-0a0b0c0d0e0f"
	noTIPProfile  = "arn:aws:rolesanywhere:" + region + ":" + testworld.AccountID + ":profile/0b0b0b0b-0506-4708-8900-0a0b0c0d0e0f"
	narrowProfile = "arn:aws:rolesanywhere:" + region + ":" + testworld.AccountID + ":profile/0c0c0c0c-0506-4708-8900-0a0b0c0d0e0f"
	// webB trusts the hub role, but only for sessions whose origin identity is the web workload.
	webB = "arn:aws:iam::222222222222:role/web-only"
	// tagB trusts the hub role for sessions whose request carries spiffe-id = the web workload.
	tagB = "arn:aws:iam::222222222222:role/trusts-the-tag"
)

var (
	webID = spiffeid.RequireFromString("spiffe://example.org/ns/prod/web")
	apiID = spiffeid.RequireFromString("spiffe://example.org/ns/prod/api")
)

// tipWorld is account A's trust anchor with three more profiles for the hub role (the world's
// testworld.RoleARN) — TIP on (subject x509SAN/URI), TIP off, and TIP on with a session policy allowing
// only sts:GetCallerIdentity — and account B's roles webB (trust conditioned on
// aws:OriginIdentity/Subject) and tagB (on the spiffe-id request tag), and C's role trusting both the hub
// role and webB.
func tipWorld(t *testing.T) world {
	t.Helper()
	tip := `
  tip {
    status         = "ENABLED"
    subject_source = "x509SAN/URI"
    subject_type   = "workload"
  }`
	profiles := fmt.Sprintf(`
profile %q {
  role_arns = [%q]%s
}
profile %q {
  role_arns = [%q]
}
profile %q {
  role_arns      = [%q]%s
  session_policy = <<EOT
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}
EOT
}
`, tipProfile, testworld.RoleARN, tip, noTIPProfile, testworld.RoleARN, narrowProfile, testworld.RoleARN, tip)
	on := func(key string) []emulator.Condition {
		return []emulator.Condition{{Test: "StringEquals", Key: key, Values: []string{webID.String()}}}
	}
	return world{testworld.New(t, testworld.Options{Region: region, EmulatorLog: true, EmulatorHCL: profiles, STSRoles: []testworld.STSRole{
		{ARN: webB, Principals: []string{testworld.RoleARN}, Conditions: on("aws:OriginIdentity/Subject")},
		{ARN: tagB, Principals: []string{testworld.RoleARN}, Conditions: on("aws:RequestTag/spiffe-id")},
		{ARN: testworld.RoleC, Principals: []string{testworld.RoleARN, webB}},
	}})}
}

// runChain is what the bridge runs for a profile with assume_role hops: CreateSession with id's SVID
// through prof, then the hops with aws-sdk-go-v2's STS client against the emulator.
func (w world) runChain(t *testing.T, id spiffeid.ID, prof string, hops ...chain.Hop) (creds.Credentials, error) {
	t.Helper()
	s, err := w.Agent.CA().MintX509SVID(id, svidtest.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range hops {
		hops[i].STSEndpoint = w.Emulator.URL
	}
	c := &chain.Creator{
		RolesAnywhere: signer.New(signer.Options{Retry: signer.RetryPolicy{MaxAttempts: 1}}),
		Chain:         &chain.Chain{Hops: hops, STS: &sdksts.Client{MaxAttempts: 1}, Region: region},
	}
	return c.CreateSession(context.Background(), signer.CreateSessionInput{
		Identity:       signer.Identity{Leaf: s.Certificates[0], Intermediates: s.Certificates[1:], Key: s.PrivateKey},
		TrustAnchorARN: w.TrustAnchorARN, ProfileARN: prof, RoleARN: testworld.RoleARN, Endpoint: w.Emulator.URL, AllowHTTP: true,
	})
}

// TestSecurityOriginIdentityAdmitsOnlyThatWorkloadsChain: with trusted identity propagation on, account
// B's role whose trust policy requires aws:OriginIdentity/Subject = the web workload's SPIFFE ID admits
// the web workload's chain and refuses the api workload's chain through the same hub role — even when
// that chain sets the spiffe-id session tag to the web workload's ID, which a trust policy on the tag
// accepts. With TIP off the same policy refuses both.
func TestSecurityOriginIdentityAdmitsOnlyThatWorkloadsChain(t *testing.T) {
	w := tipWorld(t)
	hop := func(role string) chain.Hop { return chain.Hop{RoleARN: role, SPIFFEIDTag: chain.DefaultSPIFFEIDTag} }
	// The api workload, lying in its session tag: it claims to be the web workload.
	spoof := func(role string) chain.Hop {
		return chain.Hop{RoleARN: role, SessionTags: map[string]string{chain.DefaultSPIFFEIDTag: webID.String()}}
	}

	web, err := w.runChain(t, webID, tipProfile, hop(webB))
	if err != nil {
		t.Fatalf("TIP on: the web workload's chain into %s was refused: %v", webB, err)
	}
	v := w.Emulator.Sessions(web.AccessKeyID)
	if len(v) != 1 || v[0].OriginIdentity == nil || v[0].OriginIdentity.Subject != webID.String() || v[0].OriginIdentity.SubjectType != "workload" ||
		v[0].OriginIdentity.Issuer != w.TrustAnchorARN || len(v[0].Chain) != 1 || !strings.Contains(v[0].Chain[0], ":assumed-role/"+testworld.RoleName+"/") {
		t.Fatalf("account B's session does not carry the web workload's origin identity and its chain: %+v", v)
	}

	_, err = w.runChain(t, apiID, tipProfile, spoof(webB))
	var hopErr *chain.HopError
	if !errors.As(err, &hopErr) || hopErr.Hop != 1 || hopErr.RoleARN != webB || hopErr.Code() != "AccessDenied" {
		t.Fatalf("TIP on: the api workload's chain, tagged spiffe-id=%s, got into %s: err = %v", webID, webB, err)
	}
	if !strings.Contains(w.EmulatorLogs(), "aws:OriginIdentity/Subject") {
		t.Fatalf("the emulator's log does not say which condition refused the api chain:\n%s", w.EmulatorLogs())
	}
	// The tag proves nothing: a trust policy on aws:RequestTag/spiffe-id lets the lying chain in.
	if _, err := w.runChain(t, apiID, tipProfile, spoof(tagB)); err != nil {
		t.Fatalf("a trust policy on the spiffe-id tag refused the spoofed tag (the test no longer shows what the tag does not prove): %v", err)
	}
	// The same chain cannot change its origin identity by sending an aws: tag.
	_, err = w.runChain(t, apiID, tipProfile, chain.Hop{RoleARN: webB, SessionTags: map[string]string{"aws:OriginIdentity/Subject": webID.String()}})
	if !errors.As(err, &hopErr) || hopErr.Code() != "ValidationError" {
		t.Fatalf("a chain sending an aws:OriginIdentity/Subject tag: err = %v, want STS's ValidationError", err)
	}

	for _, id := range []spiffeid.ID{webID, apiID} {
		if _, err := w.runChain(t, id, noTIPProfile, hop(webB)); !errors.As(err, &hopErr) || hopErr.Code() != "AccessDenied" {
			t.Fatalf("TIP off: %s's chain got into %s (err = %v); without TIP no session has an origin identity", id, webB, err)
		}
	}
}

// TestOriginIdentityCarriesAcrossHops: the origin identity Roles Anywhere set is the same two hops on,
// and GetCallerIdentity and the session view show the whole chain.
func TestOriginIdentityCarriesAcrossHops(t *testing.T) {
	w := tipWorld(t)
	c, err := w.runChain(t, webID, tipProfile, chain.Hop{RoleARN: webB}, chain.Hop{RoleARN: testworld.RoleC})
	if err != nil {
		t.Fatal(err)
	}
	v := w.Emulator.Sessions(c.AccessKeyID)
	if len(v) != 1 || v[0].OriginIdentity == nil || v[0].OriginIdentity.Subject != webID.String() || len(v[0].Chain) != 2 ||
		!strings.HasPrefix(v[0].Chain[1], "arn:aws:sts::222222222222:assumed-role/web-only/") {
		t.Fatalf("account C's session: %+v", v)
	}
	out, err := callerIdentityXML(t, w, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<Subject>" + webID.String() + "</Subject>", "<SubjectType>workload</SubjectType>", "<RoleChain><member>arn:aws:sts::" + testworld.AccountID + ":assumed-role/" + testworld.RoleName + "/"} {
		if !strings.Contains(out, want) {
			t.Fatalf("GetCallerIdentity lacks %s:\n%s", want, out)
		}
	}
}

// TestSessionPolicyDenyIsNamedByTheHopError: a session policy that allows only sts:GetCallerIdentity —
// the Roles Anywhere profile's, or the inline policy of hop 1 — makes the next hop's AssumeRole fail
// with AccessDenied, and the bridge's hop error names the hop, its role and the session policy.
func TestSessionPolicyDenyIsNamedByTheHopError(t *testing.T) {
	w := tipWorld(t)
	onlyIdentity := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}`
	for _, tc := range []struct {
		name string
		prof string
		hops []chain.Hop
		hop  int
		role string
	}{
		{"the profile's session policy", narrowProfile, []chain.Hop{{RoleARN: webB}}, 1, webB},
		{"hop 1's inline session policy", tipProfile, []chain.Hop{{RoleARN: webB, Policy: onlyIdentity}, {RoleARN: testworld.RoleC}}, 2, testworld.RoleC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.runChain(t, webID, tc.prof, tc.hops...)
			var hopErr *chain.HopError
			if !errors.As(err, &hopErr) || hopErr.Hop != tc.hop || hopErr.RoleARN != tc.role || hopErr.Code() != "AccessDenied" {
				t.Fatalf("err = %v; want hop %d (%s) refused with AccessDenied", err, tc.hop, tc.role)
			}
			msg := hopErr.Error()
			for _, want := range []string{fmt.Sprintf("role chain hop %d (%s)", tc.hop, tc.role), "no session policy allows the sts:AssumeRole action", "session policy"} {
				if !strings.Contains(msg, want) {
					t.Fatalf("the hop error does not say %q: %s", want, msg)
				}
			}
			if !strings.Contains(hopErr.Advice(), "session polic") {
				t.Fatalf("the advice does not point at the session policy: %s", hopErr.Advice())
			}
		})
	}
	// Without the session policy the same hops succeed: the denial is the policy's.
	if _, err := w.runChain(t, webID, tipProfile, chain.Hop{RoleARN: webB}, chain.Hop{RoleARN: testworld.RoleC}); err != nil {
		t.Fatalf("without a session policy: %v", err)
	}
}

// callerIdentityXML calls GetCallerIdentity on the emulator, signed with aws-sdk-go-v2's SigV4 signer,
// and returns the raw answer (with the emulator's OriginIdentity and RoleChain elements).
func callerIdentityXML(t *testing.T, w world, c creds.Credentials) (string, error) {
	t.Helper()
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	req, err := http.NewRequest(http.MethodPost, w.Emulator.URL+"/", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	ac := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), ac, req, hex.EncodeToString(sum[:]), "sts", region, time.Now()); err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GetCallerIdentity: %d %s", resp.StatusCode, b)
	}
	return string(b), err
}
