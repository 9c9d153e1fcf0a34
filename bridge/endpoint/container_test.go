package endpoint

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
)

// startContainer starts a container endpoint with a fresh token file and returns it with its token.
func startContainer(t *testing.T, clock *fakeClock, o ContainerOptions) (*Server, string, *logtest.Buffer) {
	t.Helper()
	log, buf := logtest.New()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.AuthTokenFile == "" {
		o.AuthTokenFile = filepath.Join(t.TempDir(), "token")
	}
	o.Logger, o.Clock = log, clock.Now
	s, err := NewContainer(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	tok, err := os.ReadFile(s.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(tok)), buf
}

func TestContainerCredentials(t *testing.T) {
	clock := newClock()
	s, tok, logs := startContainer(t, clock, ContainerOptions{})
	if s.Name() != "container_endpoint" {
		t.Errorf("Name = %q", s.Name())
	}
	if !strings.HasSuffix(s.URL(), ":"+strings.Split(s.Addr(), ":")[1]+"/v1/credentials") {
		t.Errorf("URL = %q", s.URL())
	}
	c := testCreds(clock.Now())
	if err := s.Put(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	r := do(t, http.MethodGet, s.URL(), map[string]string{"Authorization": tok})
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var doc map[string]string
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"AccessKeyId":     testAccessKey,
		"SecretAccessKey": testSecret,
		"Token":           testSession,
		"Expiration":      c.Expiration.UTC().Format(time.RFC3339),
		"RoleArn":         testRoleARN,
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %q, want %q", k, doc[k], v)
		}
	}
	if len(doc) != len(want) {
		t.Errorf("extra fields: %v", doc)
	}

	// RoleArn is omitted when unknown.
	c.AssumedRoleARN = ""
	if err := s.Put(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	r = do(t, http.MethodGet, s.URL(), map[string]string{"Authorization": tok})
	if strings.Contains(r.body, "RoleArn") {
		t.Errorf("RoleArn present: %s", r.body)
	}
	s.Close()
	assertNoSecrets(t, "log", logs.String(), tok)
}

func TestContainerUnauthorized(t *testing.T) {
	clock := newClock()
	s, tok, logs := startContainer(t, clock, ContainerOptions{Path: "/creds"})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(s.URL(), "/creds") {
		t.Errorf("URL = %q", s.URL())
	}
	for name, h := range map[string]map[string]string{
		"missing": nil,
		"wrong":   {"Authorization": "wrong-token"},
		"prefix":  {"Authorization": tok[:len(tok)-1]},
		"bearer":  {"Authorization": "Bearer " + tok},
	} {
		r := do(t, http.MethodGet, s.URL(), h)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s token: %d, want 401", name, r.status)
			continue
		}
		if e := decodeError(t, r.body); e.Code == "" {
			t.Errorf("%s token: error body %q", name, r.body)
		}
		assertNoSecrets(t, name+" body", r.body, tok)
	}
	auth := map[string]string{"Authorization": tok}
	if r := do(t, http.MethodGet, strings.TrimSuffix(s.URL(), "/creds")+"/v1/credentials", auth); r.status != http.StatusNotFound {
		t.Errorf("other path: %d, want 404", r.status)
	}
	if r := do(t, http.MethodPost, s.URL(), auth); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", r.status)
	}
	s.Close()
	assertNoSecrets(t, "log", logs.String(), tok)
}

func TestContainerNoCredentials(t *testing.T) {
	clock := newClock()
	s, tok, _ := startContainer(t, clock, ContainerOptions{})
	auth := map[string]string{"Authorization": tok}
	check := func(when string, want int) {
		t.Helper()
		r := do(t, http.MethodGet, s.URL(), auth)
		if r.status != want {
			t.Fatalf("%s: %d %s, want %d", when, r.status, r.body, want)
		}
		if want == http.StatusInternalServerError {
			if e := decodeError(t, r.body); e.Code != "NoCredentials" {
				t.Errorf("%s: %+v", when, e)
			}
		}
	}
	check("before Put", http.StatusInternalServerError)
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	check("after Put", http.StatusOK)
	clock.Advance(time.Hour + time.Second)
	check("after expiry", http.StatusInternalServerError)
	clock.Advance(-time.Hour)
	check("clock back", http.StatusOK)
	if err := s.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("after Clear", http.StatusInternalServerError)
}

func TestContainerTokenFileCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "token")
	s, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if s.TokenFile() != path {
		t.Errorf("TokenFile = %q", s.TokenFile())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("token dir mode %v, want 0700", di.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := hex.DecodeString(string(b)); err != nil || len(raw) != 32 {
		t.Errorf("token %q is not 32 hex-encoded bytes", b)
	}
	// A second server reuses the token.
	s2, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: path})
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(path)
	if string(b2) != string(b) || s2.TokenFile() != path {
		t.Error("token file rewritten")
	}
}

func TestContainerExistingTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("  my-own-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := newClock()
	s, _, _ := startContainer(t, clock, ContainerOptions{AuthTokenFile: path})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	if r := do(t, http.MethodGet, s.URL(), map[string]string{"Authorization": "my-own-token"}); r.status != http.StatusOK {
		t.Errorf("existing token: %d, want 200", r.status)
	}
}

func TestContainerTokenFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: empty}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty token file: %v", err)
	}
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0"}); err == nil {
		t.Error("missing auth_token_file accepted")
	}
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: filepath.Join(dir, "t"), Path: "v1"}); err == nil {
		t.Error("relative path accepted")
	}
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: dir}); err == nil {
		t.Error("directory as token file accepted")
	}
}

func TestContainerWithAWSSDK(t *testing.T) {
	clock := newClock()
	s, tok, logs := startContainer(t, clock, ContainerOptions{})
	c := testCreds(clock.Now())
	if err := s.Put(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	p := endpointcreds.New(s.URL(), func(o *endpointcreds.Options) { o.AuthorizationToken = tok })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := p.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessKeyID != testAccessKey || got.SecretAccessKey != testSecret || got.SessionToken != testSession ||
		!got.CanExpire || !got.Expires.Equal(c.Expiration) {
		t.Errorf("SDK got %+v", got)
	}

	// A wrong token is an error for the SDK too.
	bad := endpointcreds.New(s.URL(), func(o *endpointcreds.Options) { o.AuthorizationToken = "nope" })
	if _, err := bad.Retrieve(ctx); err == nil {
		t.Error("SDK accepted a wrong token")
	}
	s.Close()
	assertNoSecrets(t, "log", logs.String(), tok)
}
