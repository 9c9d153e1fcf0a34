package endpoint

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
)

var fuzzCreds = creds.Credentials{AccessKeyID: "ASIAFUZZFUZZFUZZFUZZ", SecretAccessKey: "fuzz-secret-fuzz-secret-fuzz-secret-fuzz",
	SessionToken: "fuzz-session-token", Expiration: time.Now().Add(time.Hour)}

// FuzzIMDS: arbitrary requests never panic, never get credentials without a token the server issued,
// and get only the statuses IMDSv2 uses.
func FuzzIMDS(f *testing.F) {
	f.Add("GET", "/latest/meta-data/iam/security-credentials/app", "", "", "")
	f.Add("PUT", "/latest/api/token", "21600", "", "")
	f.Add("GET", "/latest/meta-data/iam/security-credentials/", "", "token", "1.2.3.4")
	f.Add("POST", "/%zz", "-1", "\x00", "")
	s, err := NewIMDS(IMDSOptions{Addr: "127.0.0.1:0", RoleName: "app"})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Put(context.Background(), fuzzCreds); err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, method, path, ttl, token, xff string) {
		req, err := http.NewRequest(method, "http://127.0.0.1"+path, nil)
		if err != nil {
			return // not an HTTP request a client could send
		}
		for k, v := range map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": ttl, "X-aws-ec2-metadata-token": token, "X-Forwarded-For": xff} {
			if v != "" {
				req.Header[k] = []string{v}
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 401, 403, 404, 405:
		default:
			t.Fatalf("%s %q: status %d", method, path, w.Code)
		}
		if strings.Contains(w.Body.String(), fuzzCreds.SecretAccessKey) {
			t.Fatalf("%s %q with token %q: credentials served without an issued token", method, path, token)
		}
	})
}

// FuzzContainer: arbitrary requests never panic and never get credentials without the exact token.
func FuzzContainer(f *testing.F) {
	f.Add("GET", "/v1/credentials", "wrong", "")
	f.Add("GET", "/v1/credentials/", "", "10.0.0.1")
	f.Add("DELETE", "/", "\xff", "")
	s, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: filepath.Join(f.TempDir(), "token")})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Put(context.Background(), fuzzCreds); err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, method, path, auth, xff string) {
		req, err := http.NewRequest(method, "http://127.0.0.1"+path, nil)
		if err != nil {
			return
		}
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		if xff != "" {
			req.Header["X-Forwarded-For"] = []string{xff}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 401, 403, 404, 405:
		default:
			t.Fatalf("%s %q: status %d without the token", method, path, w.Code)
		}
		if strings.Contains(w.Body.String(), fuzzCreds.SecretAccessKey) {
			t.Fatal("credentials served without the token")
		}
	})
}
