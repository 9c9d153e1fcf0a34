package kube

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
)

// answering is a TokenReview API that gives one canned answer: for what a real API server does not
// produce on demand (an authenticator that ignores audiences, a user that is not a service account).
type answering struct {
	authnv1client.TokenReviewInterface
	status authnv1.TokenReviewStatus
	calls  int
}

func (a *answering) TokenReviews() authnv1client.TokenReviewInterface { return a }

func (a *answering) Create(_ context.Context, tr *authnv1.TokenReview, _ metav1.CreateOptions) (*authnv1.TokenReview, error) {
	a.calls++
	out := tr.DeepCopy()
	out.Status = a.status
	return out, nil
}

// jwtWithExp is an unsigned token with the exp claim (Review only reads it; the answering API decides).
func jwtWithExp(exp time.Time, salt string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256"}`)) + "." + enc(fmt.Appendf(nil, `{"exp":%d,"jti":%q}`, exp.Unix(), salt)) + ".c2ln"
}

func podStatus(audiences ...string) authnv1.TokenReviewStatus {
	return authnv1.TokenReviewStatus{
		Authenticated: true,
		Audiences:     audiences,
		User: authnv1.UserInfo{
			Username: "system:serviceaccount:shop:cart",
			Extra: map[string]authnv1.ExtraValue{
				ExtraPodName: {"cart-1"}, ExtraPodUID: {"uid-1"}, ExtraNodeName: {"node-a"},
			},
		},
	}
}

func TestSecurityReviewRefusesAnswersThatDoNotProveAPod(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	noPod := podStatus(DefaultAudience)
	noPod.User.Extra = nil
	twoUIDs := podStatus(DefaultAudience)
	twoUIDs.User.Extra = map[string]authnv1.ExtraValue{ExtraPodName: {"a"}, ExtraPodUID: {"u1", "u2"}}
	notSA := podStatus(DefaultAudience)
	notSA.User.Username = "alice"
	saColon := podStatus(DefaultAudience)
	saColon.User.Username = "system:serviceaccount:shop:cart:x"
	for name, st := range map[string]authnv1.TokenReviewStatus{
		"an API server that does not confirm the audience (not audience-aware)": podStatus(),
		"an API server that confirms only another audience":                     podStatus("vault"),
		"not authenticated":                {Authenticated: false, Error: "invalid bearer token"},
		"a token bound to no pod":          noPod,
		"two pod UIDs":                     twoUIDs,
		"a user, not a service account":    notSA,
		"a malformed service account name": saColon,
	} {
		t.Run(name, func(t *testing.T) {
			api := &answering{status: st}
			r, err := NewReviewer(ReviewerOptions{Client: api, Clock: clock.NewFake(now)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Review(context.Background(), jwtWithExp(now.Add(time.Hour), name))
			e, ok := AsError(err)
			if !ok || e.Kind != KindUnauthenticated || e.HTTPStatus() != http.StatusUnauthorized {
				t.Fatalf("got %v, want a 401 refusal", err)
			}
		})
	}
	t.Run("the same answer with the audience confirmed is accepted", func(t *testing.T) {
		r, _ := NewReviewer(ReviewerOptions{Client: &answering{status: podStatus("x", DefaultAudience)}, Clock: clock.NewFake(now)})
		id, err := r.Review(context.Background(), jwtWithExp(now.Add(time.Hour), "ok"))
		if err != nil || id.PodUID != "uid-1" || id.Namespace != "shop" || id.ServiceAccount != "cart" || id.NodeName != "node-a" {
			t.Fatalf("%+v, %v", id, err)
		}
	})
}

func TestCacheIsBoundedAndEntriesLiveNoLongerThanTokenOrMax(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fake := clock.NewFake(now)
	api := &answering{status: podStatus(DefaultAudience)}
	r, err := NewReviewer(ReviewerOptions{Client: api, Clock: fake, CacheSize: 3, CacheTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	review := func(tok string) {
		t.Helper()
		if _, err := r.Review(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	long := jwtWithExp(now.Add(time.Hour), "long")
	short := jwtWithExp(now.Add(20*time.Second), "short")
	review(long)
	review(short)
	review(long)
	review(short)
	if api.calls != 2 {
		t.Fatalf("%d API calls for two tokens reviewed twice, want 2", api.calls)
	}
	fake.Advance(20 * time.Second) // the short token's exp: its entry is gone, and so is the token
	if _, err := r.Review(context.Background(), short); err == nil {
		t.Fatal("a token at its exp was accepted")
	}
	review(long)
	if api.calls != 2 {
		t.Fatalf("the long token was reviewed again before the cache's max (%d calls)", api.calls)
	}
	fake.Advance(40 * time.Second) // the cache's max for the long token
	review(long)
	if api.calls != 3 {
		t.Fatalf("%d calls: the long token's entry outlived CacheTTL", api.calls)
	}
	for i := range 10 {
		review(jwtWithExp(now.Add(time.Hour), fmt.Sprint(i)))
	}
	if n := r.cache.len(); n != 3 {
		t.Fatalf("%d entries, want the cap of 3", n)
	}
}

func TestSecurityRefusalsAreCachedBriefly(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fake := clock.NewFake(now)
	api := &answering{status: authnv1.TokenReviewStatus{Error: "invalid bearer token"}}
	r, _ := NewReviewer(ReviewerOptions{Client: api, Clock: fake})
	bad := jwtWithExp(now.Add(time.Hour), "bad")
	for range 100 {
		_, _ = r.Review(context.Background(), bad)
	}
	if api.calls != 1 {
		t.Fatalf("%d TokenReviews for one bad token repeated 100 times, want 1", api.calls)
	}
	fake.Advance(DefaultRefusalTTL)
	_, _ = r.Review(context.Background(), bad)
	if api.calls != 2 {
		t.Fatalf("%d calls: the refusal outlived RefusalTTL", api.calls)
	}
}

func TestTokenExpiry(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	for name, c := range map[string]struct {
		token string
		want  int64 // 0: none
	}{
		"integer exp":      {"e30." + enc([]byte(`{"exp":1767323045}`)) + ".x", 1767323045},
		"float exp":        {"e30." + enc([]byte(`{"exp":1767323045.0}`)) + ".x", 1767323045},
		"no exp":           {"e30." + enc([]byte(`{"iat":1}`)) + ".x", 0},
		"string exp":       {"e30." + enc([]byte(`{"exp":"1767323045"}`)) + ".x", 0},
		"negative exp":     {"e30." + enc([]byte(`{"exp":-5}`)) + ".x", 0},
		"huge exp":         {"e30." + enc([]byte(`{"exp":1e300}`)) + ".x", 0},
		"two parts":        {"e30." + enc([]byte(`{"exp":1}`)), 0},
		"not base64":       {"e30.!!!.x", 0},
		"not a JWT at all": {strings.Repeat("a", 40), 0},
	} {
		got, ok := tokenExpiry(c.token)
		if (c.want == 0) == ok || (ok && got.Unix() != c.want) {
			t.Errorf("%s: %v %v, want %d", name, got, ok, c.want)
		}
	}
}
