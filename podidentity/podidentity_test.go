package podidentity_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"go.uber.org/goleak"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// callerARN asks STS (the emulator) who an unmodified aws-sdk-go-v2, configured only by the two
// environment variables a pod gets, is.
func (w *world) callerARN(t *testing.T, token string) (string, error) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", w.url)
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokenFile)
	none := filepath.Join(t.TempDir(), "none")
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithSharedCredentialsFiles([]string{none}), awsconfig.WithSharedConfigFiles([]string{none}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(w.emu.URL) }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Arn), nil
}

// A pod's token gets its own role's credentials through an unmodified SDK; a pod of another service
// account gets its own role, never the first's; the emulator's roles each trust one SPIFFE ID only, so a
// mix-up would be refused there too.
func TestSecurityPodGetsOnlyItsOwnRole(t *testing.T) {
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "billing"}, {"prod", "reports"}}})
	_, billingTok := w.pod("prod", "billing", "billing-1")
	_, reportsTok := w.pod("prod", "reports", "reports-1")

	arn, err := w.callerARN(t, billingTok)
	if err != nil || !strings.HasPrefix(arn, "arn:aws:sts::123456789012:assumed-role/prod-billing/") {
		t.Fatalf("billing pod: %q, %v; want the prod-billing role", arn, err)
	}
	arn, err = w.callerARN(t, reportsTok)
	if err != nil || !strings.HasPrefix(arn, "arn:aws:sts::123456789012:assumed-role/prod-reports/") {
		t.Fatalf("reports pod: %q, %v; want the prod-reports role", arn, err)
	}
	// Their keys differ, and each document names its own role.
	_, b := w.get(t, billingTok)
	_, r := w.get(t, reportsTok)
	if b["AccessKeyId"] == "" || b["AccessKeyId"] == r["AccessKeyId"] || !strings.Contains(b["RoleArn"], "/prod-billing/") || !strings.Contains(r["RoleArn"], "/prod-reports/") {
		t.Fatalf("billing %q %q, reports %q %q", b["AccessKeyId"], b["RoleArn"], r["AccessKeyId"], r["RoleArn"])
	}
	if got := len(w.srv.States()); got != 2 {
		t.Fatalf("%d sessions, want 2", got)
	}
}

// Fifty replicas of one identity on the node share one session: one CreateSession for all their first
// requests, and one per SVID rotation after that.
func TestFiftyPodsOneSession(t *testing.T) {
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}}})
	var tokens []string
	for i := range 50 {
		_, tok := w.pod("prod", "web", fmt.Sprintf("web-%d", i))
		tokens = append(tokens, tok)
	}
	var wg sync.WaitGroup
	keys := make([]string, len(tokens))
	status := make([]int, len(tokens))
	for i, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, doc := w.get(t, tok)
			status[i], keys[i] = code, doc["AccessKeyId"]
		}()
	}
	wg.Wait()
	for i := range tokens {
		if status[i] != http.StatusOK || keys[i] != keys[0] {
			t.Fatalf("pod %d: %d %q; want 200 with the shared session's key %q", i, status[i], keys[i], keys[0])
		}
	}
	if n := w.creates(); n != 1 {
		t.Fatalf("%d CreateSession calls for fifty pods' first requests, want 1", n)
	}
	st := w.srv.States()
	if len(st) != 1 || st[0].Pods != 50 || st[0].SpiffeID != idOf("prod", "web").String() || st[0].RoleARN != roleOf("prod", "web") {
		t.Fatalf("states = %+v", st)
	}
	if n := w.admin.Streams(); n != 50 {
		t.Fatalf("%d Delegated Identity streams, want one per pod", n)
	}
	// A rotation reaches every pod's stream; the session refreshes once.
	if err := w.admin.Rotate(); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "the refresh after the rotation", func() bool { return w.srv.States()[0].Refreshes == 2 })
	time.Sleep(300 * time.Millisecond) // would the other 49 streams' copies of the rotation make more calls?
	if n := w.creates(); n != 2 {
		t.Fatalf("%d CreateSession calls after one rotation, want 2", n)
	}
	_, doc := w.get(t, tokens[7])
	if doc["AccessKeyId"] == keys[0] {
		t.Fatal("still the first session's key after the refresh")
	}
}

// A pod going away drops its stream; the last pod of a session drops the session.
func TestPodGoneDropsStreamAndLastSession(t *testing.T) {
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}}})
	a, aTok := w.pod("prod", "web", "web-a")
	b, bTok := w.pod("prod", "web", "web-b")
	for _, tok := range []string{aTok, bTok} {
		if code, doc := w.get(t, tok); code != http.StatusOK {
			t.Fatalf("%d %v", code, doc)
		}
	}
	if w.admin.Streams() != 2 || w.srv.Pods() != 2 {
		t.Fatalf("streams %d pods %d, want 2 and 2", w.admin.Streams(), w.srv.Pods())
	}
	w.auth.Delete(a.UID)
	w.srv.PodDeleted(a.UID)
	within(t, 5*time.Second, "pod a's stream closed", func() bool { return w.admin.Streams() == 1 })
	if st := w.srv.States(); len(st) != 1 || st[0].Pods != 1 {
		t.Fatalf("after pod a: %+v", st)
	}
	if code, _ := w.get(t, aTok); code != http.StatusUnauthorized {
		t.Fatalf("deleted pod's token: %d, want 401", code)
	}
	if code, _ := w.get(t, bTok); code != http.StatusOK {
		t.Fatalf("pod b after pod a went: %d", code)
	}
	w.auth.Delete(b.UID)
	w.srv.PodDeleted(b.UID)
	within(t, 5*time.Second, "the last stream closed and the session dropped", func() bool {
		return w.admin.Streams() == 0 && len(w.srv.States()) == 0
	})
	if w.srv.Pods() != 0 {
		t.Fatalf("%d pods followed after both went", w.srv.Pods())
	}
}

// No rule for the pod's SPIFFE ID: 403 naming it, and no CreateSession.
func TestSecurityNoRuleIsForbiddenNamingTheSPIFFEID(t *testing.T) {
	other := svidtest.WorkloadEntry{ID: idOf("prod", "x"), Selectors: []string{"k8s:ns:batch"}}
	other.ID = mustID("spiffe://example.org/batch/cron")
	w := newWorld(t, worldOptions{extraEntries: []svidtest.WorkloadEntry{other}})
	_, tok := w.pod("batch", "cron", "cron-1")
	code, doc := w.get(t, tok)
	if code != http.StatusForbidden || doc["Code"] != "NoRule" || !strings.Contains(doc["Message"], `"spiffe://example.org/batch/cron" matched no pod_identity rule`) {
		t.Fatalf("%d %v", code, doc)
	}
	if w.creates() != 0 || len(w.srv.States()) != 0 {
		t.Fatalf("a pod without a rule made %d CreateSession calls, %d sessions", w.creates(), len(w.srv.States()))
	}
}

// The answers that refuse: no token, an unknown token, a pod of another node, a pod SPIRE issues no SVID.
func TestSecurityPodIdentityRefusals(t *testing.T) {
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}}, wait: 300 * time.Millisecond})
	if code, doc := w.get(t, ""); code != http.StatusUnauthorized || !strings.Contains(doc["Message"], "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
		t.Errorf("no token: %d %v", code, doc)
	}
	if code, _ := w.get(t, "Bearer not-a-token"); code != http.StatusUnauthorized {
		t.Errorf("unknown token: %d", code)
	}
	elsewhere := w.auth.Issue(podNamed("prod", "web", "web-x", "node-b"))
	if code, doc := w.get(t, elsewhere); code != http.StatusForbidden || !strings.Contains(doc["Message"], "node-b") {
		t.Errorf("another node's pod: %d %v", code, doc)
	}
	_, noEntry := w.pod("prod", "unknown", "u-1")
	if code, doc := w.get(t, noEntry); code != http.StatusForbidden || doc["Code"] != "NoSVID" || !strings.Contains(doc["Message"], "k8s:sa:unknown") {
		t.Errorf("no SVID: %d %v", code, doc)
	}
	if w.creates() != 0 {
		t.Errorf("%d CreateSession calls for refused requests", w.creates())
	}
}

// While the first session cannot be made, the pod gets 503 with the reason, never credentials.
func TestFirstSessionFailingIs503WithTheReason(t *testing.T) {
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}}, wait: 500 * time.Millisecond})
	w.emu.FailNext(100, http.StatusServiceUnavailable, "ServiceUnavailableException")
	_, tok := w.pod("prod", "web", "web-1")
	code, doc := w.get(t, tok)
	if code != http.StatusServiceUnavailable || doc["AccessKeyId"] != "" || !strings.Contains(doc["Message"], idOf("prod", "web").String()) {
		t.Fatalf("%d %v", code, doc)
	}
}

// Logs name pods, SPIFFE IDs and roles, never a token, a secret key or a session token.
func TestSecurityPodIdentityLogsHoldNoTokenOrSecret(t *testing.T) {
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}}})
	p, tok := w.pod("prod", "web", "web-1")
	code, doc := w.get(t, tok)
	if code != http.StatusOK {
		t.Fatalf("%d %v", code, doc)
	}
	w.get(t, tok+"x")
	w.auth.Delete(p.UID)
	w.srv.PodDeleted(p.UID)
	w.get(t, tok)
	logs := w.log.String()
	if !strings.Contains(logs, "web-1") {
		t.Fatalf("the logs do not even name the pod:\n%s", logs)
	}
	for what, secret := range map[string]string{"token": tok, "token body": strings.Split(tok, ".")[1], "secret key": doc["SecretAccessKey"], "session token": doc["Token"]} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold the %s", what)
		}
	}
}

// A new pod asks before SPIRE's entry for it reached the agent (the controller manager makes it when the
// pod appears, the agent syncs seconds later): within startup_grace of the pod's creation that is 503
// NoSVIDYet, which SDKs retry, and once the entry arrives the pod is served; an old pod with no entry is
// refused (403 NoSVID), as it will not get one by waiting.
func TestNewPodWaitingForItsEntryIs503ThenServed(t *testing.T) {
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}, {"prod", "late"}}, wait: 300 * time.Millisecond})
	all := w.admin.Entries()
	var early []svidtest.WorkloadEntry
	for _, e := range all {
		if e.ID != idOf("prod", "late") {
			early = append(early, e)
		}
	}
	if err := w.admin.SetEntries(early); err != nil {
		t.Fatal(err)
	}
	young, youngToken := w.pod("prod", "late", "late-1")
	young.Created = time.Now().Add(-5 * time.Second)
	youngToken = w.auth.Issue(young)
	code, doc := w.get(t, youngToken)
	if code != http.StatusServiceUnavailable || doc["Code"] != "NoSVIDYet" || !strings.Contains(doc["Message"], "k8s:sa:late") || !strings.Contains(doc["Message"], "retry") {
		t.Fatalf("a 5 s old pod without its entry yet: %d %v, want 503 NoSVIDYet naming its selectors", code, doc)
	}
	old, oldToken := w.pod("prod", "never", "never-1")
	old.Created = time.Now().Add(-10 * time.Minute)
	oldToken = w.auth.Issue(old)
	if code, doc := w.get(t, oldToken); code != http.StatusForbidden || doc["Code"] != "NoSVID" {
		t.Fatalf("a 10 min old pod without an entry: %d %v, want 403 NoSVID", code, doc)
	}
	if err := w.admin.SetEntries(all); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, doc = w.get(t, youngToken)
		if code == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != http.StatusOK || doc["AccessKeyId"] == "" {
		t.Fatalf("once its entry reached the agent the new pod got %d %v, want its credentials", code, doc)
	}
}
