package emulator_test

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
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

const (
	roleB = "arn:aws:iam::222222222222:role/b"
	roleC = "arn:aws:iam::333333333333:role/c"
)

// assumeRole calls STS AssumeRole on the emulator with aws-sdk-go-v2, as caller.
func assumeRole(w *world, caller creds.Credentials, in *sts.AssumeRoleInput) (creds.Credentials, error) {
	out, err := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(w.emu.URL), RetryMaxAttempts: 1,
		Credentials: awscreds.NewStaticCredentialsProvider(caller.AccessKeyID, caller.SecretAccessKey, caller.SessionToken)}).
		AssumeRole(context.Background(), in)
	if err != nil {
		return creds.Credentials{}, err
	}
	return creds.Credentials{AccessKeyID: aws.ToString(out.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken: aws.ToString(out.Credentials.SessionToken), Expiration: aws.ToTime(out.Credentials.Expiration),
		AssumedRoleARN: aws.ToString(out.AssumedRoleUser.Arn)}, nil
}

func code(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode() + ": " + api.ErrorMessage()
	}
	return fmt.Sprint(err)
}

// TestAssumeRoleEnforcesTheTargetsTrustPolicy: the emulator's STS AssumeRole, driven by aws-sdk-go-v2,
// admits exactly what the target's sts_trust grants, as AWS's policy evaluation would.
func TestAssumeRoleEnforcesTheTargetsTrustPolicy(t *testing.T) {
	w := newWorld(t, svidtest.CAOptions{})
	start, err := client().CreateSession(context.Background(), w.input(w.mint(t, appID, svidtest.MintOptions{})))
	if err != nil {
		t.Fatal(err)
	}
	full := emulator.STSTrust{Principals: []string{role}, ExternalID: "x-1", TagSession: true, SetSourceIdentity: true}
	tags := []types.Tag{{Key: aws.String("spiffe-id"), Value: aws.String(appID.String())}}
	base := func() *sts.AssumeRoleInput {
		return &sts.AssumeRoleInput{RoleArn: aws.String(roleB), RoleSessionName: aws.String("s1"), ExternalId: aws.String("x-1"), Tags: tags}
	}
	if _, err := assumeRole(w, start, base()); err == nil || !strings.Contains(code(err), "AccessDenied") {
		t.Fatalf("a role that is not configured: %v", err)
	}
	for _, tc := range []struct {
		name  string
		trust func(*emulator.STSTrust)
		in    func(*sts.AssumeRoleInput)
		want  string // "" = allowed
	}{
		{"everything granted", nil, nil, ""},
		{"principal is the caller's account root", func(s *emulator.STSTrust) { s.Principals = []string{"arn:aws:iam::" + account + ":root"} }, nil, ""},
		{"principal is another role", func(s *emulator.STSTrust) { s.Principals = []string{otherRole} }, nil, "AccessDenied: User: arn:aws:sts::" + account + ":assumed-role/app/"},
		{"wrong external id", nil, func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("x-2") }, "AccessDenied"},
		{"missing external id", nil, func(in *sts.AssumeRoleInput) { in.ExternalId = nil }, "AccessDenied"},
		{"tags without sts:TagSession", func(s *emulator.STSTrust) { s.TagSession = false }, nil, "sts:TagSession"},
		{"no tags need no sts:TagSession", func(s *emulator.STSTrust) { s.TagSession = false }, func(in *sts.AssumeRoleInput) { in.Tags = nil }, ""},
		{"source identity without sts:SetSourceIdentity", func(s *emulator.STSTrust) { s.SetSourceIdentity = false }, nil, "sts:SetSourceIdentity"},
		{"chained session over 1h", nil, func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(3601) }, "ValidationError: The requested DurationSeconds exceeds the 1 hour session limit"},
		{"bad session name", nil, func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("a b") }, "ValidationError"},
		{"external id with a character STS refuses", nil, func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("*x-1") }, "ValidationError: 1 validation error detected: Value at 'externalId'"},
		{"external id of one character", nil, func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("x") }, "ValidationError: 1 validation error detected: Value at 'externalId'"},
		{"transitive key not among the tags", nil, func(in *sts.AssumeRoleInput) { in.TransitiveTagKeys = []string{"team"} }, "ValidationError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := full
			if tc.trust != nil {
				tc.trust(&tr)
			}
			w.emu.SetSTSTrust(roleB, &tr)
			in := base()
			if tc.in != nil {
				tc.in(in)
			}
			got, err := assumeRole(w, start, in)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %s", code(err))
				}
				if !strings.HasPrefix(got.AssumedRoleARN, "arn:aws:sts::222222222222:assumed-role/b/") {
					t.Fatalf("assumed %s", got.AssumedRoleARN)
				}
				return
			}
			if err == nil || !strings.Contains(code(err), tc.want) {
				t.Fatalf("got %v, want %q", code(err), tc.want)
			}
		})
	}
}

// TestChainedSessionsCarrySourceIdentityAndTransitiveTags: A → B (tags team, made transitive, and
// spiffe-id) → C: C's session has the source identity of the Roles Anywhere session, the transitive tag
// but not B's other tag, and GetCallerIdentity (raw, as the emulator answers it) shows both.
func TestChainedSessionsCarrySourceIdentityAndTransitiveTags(t *testing.T) {
	w := newWorld(t, svidtest.CAOptions{})
	start, err := client().CreateSession(context.Background(), w.input(w.mint(t, appID, svidtest.MintOptions{})))
	if err != nil {
		t.Fatal(err)
	}
	w.emu.SetSTSTrust(roleB, &emulator.STSTrust{Principals: []string{role}, TagSession: true, SetSourceIdentity: true})
	w.emu.SetSTSTrust(roleC, &emulator.STSTrust{Principals: []string{roleB}, TagSession: true, SetSourceIdentity: true})
	b, err := assumeRole(w, start, &sts.AssumeRoleInput{RoleArn: aws.String(roleB), RoleSessionName: aws.String("bb"),
		Tags:              []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}, {Key: aws.String("spiffe-id"), Value: aws.String(appID.String())}},
		TransitiveTagKeys: []string{"team"}})
	if err != nil {
		t.Fatal(code(err))
	}
	if _, err := assumeRole(w, b, &sts.AssumeRoleInput{RoleArn: aws.String(roleC), RoleSessionName: aws.String("cc"),
		Tags: []types.Tag{{Key: aws.String("TEAM"), Value: aws.String("other")}}}); err == nil || !strings.Contains(code(err), "transitive") {
		t.Fatalf("overriding a transitive tag: %v", code(err))
	}
	c, err := assumeRole(w, b, &sts.AssumeRoleInput{RoleArn: aws.String(roleC), RoleSessionName: aws.String("cc"),
		Tags: []types.Tag{{Key: aws.String("spiffe-id"), Value: aws.String(appID.String())}}})
	if err != nil {
		t.Fatal(code(err))
	}
	startView := w.emu.Sessions(start.AccessKeyID)[0]
	v := w.emu.Sessions(c.AccessKeyID)[0]
	if v.Account != "333333333333" || v.SourceIdentity == "" || v.SourceIdentity != startView.SourceIdentity ||
		v.Tags["team"] != "payments" || v.Tags["spiffe-id"] != appID.String() || len(v.Tags) != 2 {
		t.Fatalf("C's session %+v (Roles Anywhere session's source identity %q)", v, startView.SourceIdentity)
	}
	// GetCallerIdentity, signed by hand with the SDK's signer, read raw.
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	req, _ := http.NewRequest(http.MethodPost, w.emu.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken},
		req, hex.EncodeToString(sum[:]), "sts", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"<Account>333333333333</Account>", "<Key>spiffe-id</Key>", "<Value>" + appID.String() + "</Value>",
		"<SourceIdentity>" + startView.SourceIdentity + "</SourceIdentity>"} {
		if !strings.Contains(string(raw), want) {
			t.Fatalf("GetCallerIdentity lacks %s:\n%s", want, raw)
		}
	}
	if strings.Contains(string(raw), c.SecretAccessKey) || strings.Contains(w.logs(), c.SecretAccessKey) || strings.Contains(w.logs(), c.SessionToken) {
		t.Fatal("a secret leaked")
	}
}
