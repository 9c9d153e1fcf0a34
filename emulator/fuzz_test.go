package emulator

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzCreateSession throws arbitrary queries, headers and bodies at POST /sessions: the emulator must
// never panic and must answer every request with either a session or an AWS-shaped error.
func FuzzCreateSession(f *testing.F) {
	r := vectorRequestF(f)
	f.Add(vecQuery, r.Header.Get("X-Amz-Date"), r.Header.Get("X-Amz-X509"), r.Header.Get("X-Amz-X509-Chain"), r.Header.Get("Authorization"), vecBody)
	f.Add("profileArn=%zz&roleArn=", "x", "", ",,,", "AWS4-X509-RSA-SHA256 Credential=/////", "{")
	f.Add("", "20261125T053000Z", "AAAA", "", "AWS4-X509-ECDSA-SHA256 Credential=1/20261125/us-east-1/rolesanywhere/aws4_request, SignedHeaders=host, Signature=zz", `{"durationSeconds":1e99}`)
	e := vectorEmulatorF(f)
	f.Fuzz(func(t *testing.T, query, date, x509h, chain, auth, body string) {
		req := httptest.NewRequest("POST", "http://rolesanywhere.us-east-1.amazonaws.com/sessions", strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/json")
		for k, v := range map[string]string{"X-Amz-Date": date, "X-Amz-X509": x509h, "X-Amz-X509-Chain": chain, "Authorization": auth} {
			if v != "" {
				req.Header[k] = []string{v}
			}
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		switch w.Code {
		case 201:
			return
		case 400, 403, 404, 429:
		default:
			t.Fatalf("status %d", w.Code)
		}
		if w.Header().Get("x-amzn-ErrorType") == "" {
			t.Fatal("error without x-amzn-ErrorType")
		}
		var m map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m["message"] == "" {
			t.Fatalf("error body %q is not {\"message\"}", w.Body.String())
		}
	})
}
