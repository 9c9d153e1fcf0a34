package kube

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/singleflight"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
)

// Defaults of ReviewerOptions.
const (
	DefaultCacheTTL      = time.Minute
	DefaultRefusalTTL    = 5 * time.Second
	DefaultCacheSize     = 4096
	DefaultReviewTimeout = 10 * time.Second
	// MaxTokenBytes bounds a token's size; longer ones are refused without asking the API server
	// (service-account tokens are 1–2 KiB).
	MaxTokenBytes = 16 << 10
)

// ReviewerOptions configure a Reviewer.
type ReviewerOptions struct {
	// Client calls the TokenReview API (kubernetes.Interface's AuthenticationV1()). Required.
	Client authnv1client.TokenReviewsGetter
	// Audience is the audience a token must be issued for; default DefaultAudience.
	Audience string
	// CacheTTL is the longest a verified token's review is reused (never past the token's exp);
	// default DefaultCacheTTL, negative: every request asks the API server.
	CacheTTL time.Duration
	// RefusalTTL is how long the API server's refusal of a token is reused, so that a client repeating
	// a bad token does not cost a TokenReview each time; default DefaultRefusalTTL, negative: never.
	RefusalTTL time.Duration
	// CacheSize bounds the number of cached reviews (least recently used go first); default
	// DefaultCacheSize.
	CacheSize int
	// ReviewTimeout bounds one TokenReview call; default DefaultReviewTimeout.
	ReviewTimeout time.Duration
	// Clock tells the time; default the wall clock.
	Clock clock.Clock
	// Logger receives debug lines (token hashes' prefixes and credential IDs, never tokens).
	Logger hclog.Logger
}

// Reviewer verifies pods' service-account tokens with TokenReview, caching answers by the token's hash.
// It is safe for concurrent use; concurrent reviews of one token share one API call.
type Reviewer struct {
	opts   ReviewerOptions
	cache  *reviewCache
	flight singleflight.Group
}

// NewReviewer returns a Reviewer with opts' defaults applied.
func NewReviewer(opts ReviewerOptions) (*Reviewer, error) {
	if opts.Client == nil {
		return nil, errors.New("pod identity: a TokenReview client is required")
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.RefusalTTL == 0 {
		opts.RefusalTTL = DefaultRefusalTTL
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.ReviewTimeout <= 0 {
		opts.ReviewTimeout = DefaultReviewTimeout
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	return &Reviewer{opts: opts, cache: newReviewCache(opts.CacheSize)}, nil
}

// Audience is the audience tokens must be issued for.
func (r *Reviewer) Audience() string { return r.opts.Audience }

// Review verifies token and returns the pod it was issued to, or an *Error: KindUnauthenticated for a
// token that proves no pod (malformed, expired, another audience, not bound to a pod, refused by the API
// server), KindUnavailable when the API server could not be asked.
func (r *Reviewer) Review(ctx context.Context, token string) (Identity, error) {
	switch {
	case token == "":
		return Identity{}, refuse(KindUnauthenticated, "", "no token in the Authorization header")
	case len(token) > MaxTokenBytes:
		return Identity{}, refuse(KindUnauthenticated, "", "token of %d bytes is longer than %d", len(token), MaxTokenBytes)
	}
	now := r.opts.Clock.Now()
	key := keyOf(token)
	// A cached review lives no longer than its token (an expired entry is dropped here).
	if res, ok := r.cache.get(key, now); ok {
		if res.err != nil {
			return Identity{}, res.err
		}
		return res.id, nil
	}
	exp, hasExp := tokenExpiry(token)
	if hasExp && !now.Before(exp) {
		// The API server would refuse it too; the bridge's own clock decides first.
		return Identity{}, refuse(KindUnauthenticated, "", "token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	v, err, _ := r.flight.Do(string(key[:]), func() (any, error) {
		return r.review(ctx, token, key, exp, hasExp)
	})
	if err != nil {
		return Identity{}, err
	}
	return v.(Identity), nil
}

// review asks the API server and caches the answer.
func (r *Reviewer) review(ctx context.Context, token string, key tokenKey, exp time.Time, hasExp bool) (Identity, error) {
	// The call is shared by every concurrent request with this token: one caller going away must not
	// fail the others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.ReviewTimeout)
	defer cancel()
	tr, err := r.opts.Client.TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{r.opts.Audience}},
	}, metav1.CreateOptions{})
	hash := hex.EncodeToString(key[:4])
	if err != nil {
		r.opts.Logger.Debug("TokenReview failed", "token_sha256_prefix", hash, "error", redact(err.Error(), token))
		return Identity{}, &Error{Kind: KindUnavailable, Reason: "TokenReview failed", Err: errors.New(redact(err.Error(), token))}
	}
	now := r.opts.Clock.Now()
	id, rerr := r.identity(tr, token)
	if rerr != nil {
		r.opts.Logger.Debug("token refused", "token_sha256_prefix", hash, "reason", rerr.Reason)
		if r.opts.RefusalTTL > 0 {
			until := now.Add(r.opts.RefusalTTL)
			if hasExp && exp.Before(until) {
				until = exp
			}
			r.cache.put(key, result{err: rerr, expires: until}, now)
		}
		return Identity{}, rerr
	}
	if hasExp {
		id.Expires = exp
		if r.opts.CacheTTL > 0 {
			until := now.Add(r.opts.CacheTTL)
			if exp.Before(until) {
				until = exp
			}
			r.cache.put(key, result{id: id, expires: until}, now)
		}
	}
	r.opts.Logger.Debug("token reviewed", "token_sha256_prefix", hash, "pod", id.String(), "node", id.NodeName, "credential_id", id.CredentialID)
	return id, nil
}

// identity checks a TokenReview's answer and extracts the pod from it.
func (r *Reviewer) identity(tr *authnv1.TokenReview, token string) (Identity, *Error) {
	st := tr.Status
	if !st.Authenticated {
		reason := "the API server did not authenticate the token"
		if st.Error != "" {
			reason += ": " + redact(st.Error, token)
		}
		return Identity{}, refuse(KindUnauthenticated, "", "%s", reason)
	}
	// An audience-aware API server answers with the audiences it verified; none (or others) means the
	// token was not checked for ours.
	if !slices.Contains(st.Audiences, r.opts.Audience) {
		return Identity{}, refuse(KindUnauthenticated, "", "the API server did not confirm audience %q (it returned %q)", r.opts.Audience, st.Audiences)
	}
	ns, sa, ok := splitServiceAccount(st.User.Username)
	if !ok {
		return Identity{}, refuse(KindUnauthenticated, "", "token of %q is not a service account's", st.User.Username)
	}
	one := func(key string) string {
		if v := st.User.Extra[key]; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	id := Identity{
		Namespace:      ns,
		ServiceAccount: sa,
		PodName:        one(ExtraPodName),
		PodUID:         one(ExtraPodUID),
		NodeName:       one(ExtraNodeName),
		CredentialID:   one(ExtraCredentialID),
	}
	if id.PodName == "" || id.PodUID == "" {
		return Identity{}, refuse(KindUnauthenticated, "", "token of service account %s/%s is not bound to a pod (a projected service-account token is required)", ns, sa)
	}
	return id, nil
}

// tokenExpiry reads a JWT's exp claim without verifying the token (the API server verifies it); it is
// used only to refuse early and to bound how long a review is cached.
func tokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"` // a NumericDate is a JSON number, never a string
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	f := *claims.Exp
	if math.IsNaN(f) || f <= 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// redact removes the token from a message the API server or the client library produced.
func redact(msg, token string) string {
	if token == "" {
		return msg
	}
	return strings.ReplaceAll(msg, token, "[token]")
}

// String describes the reviewer, for logs.
func (r *Reviewer) String() string {
	return fmt.Sprintf("TokenReview (audience %q, cache %s, %d entries)", r.opts.Audience, r.opts.CacheTTL, r.cache.len())
}
