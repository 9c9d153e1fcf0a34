package emulator

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/x509tags"
)

// apiError is an AWS JSON error: status, x-amzn-ErrorType and {"message"}.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func validation(f string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, "ValidationException", fmt.Sprintf(f, a...)}
}
func denied(f string, a ...any) *apiError {
	return &apiError{http.StatusForbidden, "AccessDeniedException", fmt.Sprintf(f, a...)}
}
func notFound(f string, a ...any) *apiError {
	return &apiError{http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf(f, a...)}
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", e.typ)
	w.Header().Set("x-amzn-RequestId", requestID())
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": e.msg})
}

const (
	algRSA   = "AWS4-X509-RSA-SHA256"
	algECDSA = "AWS4-X509-ECDSA-SHA256"
	amzDate  = "20060102T150405Z"
	maxSkew  = 5 * time.Minute
)

// sessionRequest is what a verified CreateSession asks for.
type sessionRequest struct {
	leaf          *x509.Certificate
	region        string
	trustAnchor   *TrustAnchor
	profile       *Profile
	role          *Role
	duration      int
	sessionName   string
	intermediates []*x509.Certificate
	tags          map[string]string // the mapped principal tags
	origin        *OriginIdentity   // with trusted identity propagation
}

// OriginIdentity is a session's aws:OriginIdentity context (trusted identity propagation): set by
// Roles Anywhere from the certificate, never by the caller, and kept unchanged across role chaining.
type OriginIdentity struct {
	Subject     string `json:"subject" xml:"Subject"`
	SubjectType string `json:"subject_type" xml:"SubjectType"`
	// Issuer is the trust anchor ARN that vouched for the certificate (the emulator's choice of value).
	Issuer string `json:"issuer" xml:"Issuer"`
}

// clone is a copy of o (nil for nil), so that what a view hands out cannot change what is evaluated.
func (o *OriginIdentity) clone() *OriginIdentity {
	if o == nil {
		return nil
	}
	c := *o
	return &c
}

// addTo adds the aws:OriginIdentity/* keys to a request context (nothing when o is nil).
func (o *OriginIdentity) addTo(ctx map[string]string) {
	if o == nil {
		return
	}
	ctx["aws:OriginIdentity/Subject"] = o.Subject
	ctx["aws:OriginIdentity/SubjectType"] = o.SubjectType
	ctx["aws:OriginIdentity/Issuer"] = o.Issuer
}

func (e *Emulator) createSession(w http.ResponseWriter, r *http.Request) {
	now := e.now()
	e.mu.Lock()
	e.stats.CreateSession++
	injected := e.failN > 0
	status, typ := e.failStatus, e.failType
	if injected {
		e.failN--
		e.stats.Injected++
	}
	e.mu.Unlock()
	if injected {
		e.log.Info("CreateSession: injected fault", "status", status, "type", typ)
		writeError(w, &apiError{status, typ, "injected fault"})
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, &apiError{http.StatusMethodNotAllowed, "ValidationException", "CreateSession is POST /sessions, not " + r.Method})
		return
	}
	req, err := e.verify(r, now)
	if err != nil {
		e.log.Info("CreateSession refused", "status", err.status, "type", err.typ, "reason", err.msg)
		writeError(w, err)
		return
	}
	if !e.take(req.region, now) {
		e.mu.Lock()
		e.stats.Throttled++
		e.mu.Unlock()
		e.log.Info("CreateSession throttled", "region", req.region, "quota_per_second", e.cfg.QuotaPerSecond)
		writeError(w, &apiError{http.StatusTooManyRequests, "ThrottlingException", "Rate exceeded"})
		return
	}
	resp := e.issue(req, now)
	e.mu.Lock()
	e.stats.CreateSessionOK++
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-RequestId", requestID())
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(resp)
}

var sessionNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w+=,.@-]{2,64}$`) })

// verify checks everything AWS checks, in an order that names the first problem precisely.
func (e *Emulator) verify(r *http.Request, now time.Time) (*sessionRequest, *apiError) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, validation("cannot read the request body: %v", err)
	}
	// Query: the three ARNs.
	q := r.URL.Query()
	for _, k := range []string{"profileArn", "roleArn", "trustAnchorArn"} {
		if len(q[k]) != 1 || q.Get(k) == "" {
			return nil, validation("query parameter %s is required exactly once", k)
		}
	}
	// Headers.
	dateStr := r.Header.Get("X-Amz-Date")
	if dateStr == "" {
		return nil, denied("missing X-Amz-Date header")
	}
	date, err := time.Parse(amzDate, dateStr)
	if err != nil {
		return nil, denied("X-Amz-Date %q is not in the format %s", dateStr, amzDate)
	}
	if d := now.Sub(date); d > maxSkew || d < -maxSkew {
		return nil, denied("signature expired: X-Amz-Date %s is %s from the server time %s (more than 5 minutes)",
			dateStr, d.Round(time.Second), now.UTC().Format(amzDate))
	}
	leaf, err := parseCertHeader(r.Header.Get("X-Amz-X509"))
	if err != nil {
		return nil, validation("X-Amz-X509: %v", err)
	}
	var inters []*x509.Certificate
	if ch := r.Header.Values("X-Amz-X509-Chain"); len(ch) > 0 {
		for i, part := range strings.Split(strings.Join(ch, ","), ",") {
			c, err := parseCertHeader(part)
			if err != nil {
				return nil, validation("X-Amz-X509-Chain certificate %d: %v", i, err)
			}
			inters = append(inters, c)
		}
	}
	auth, aerr := parseAuthorization(r.Header.Get("Authorization"))
	if aerr != nil {
		return nil, aerr
	}
	// The credential scope: serial/date/region/rolesanywhere/aws4_request.
	scope := strings.Split(auth.credential, "/")
	if len(scope) != 5 {
		return nil, denied("credential %q is not <serial>/<date>/<region>/rolesanywhere/aws4_request", auth.credential)
	}
	if scope[0] != leaf.SerialNumber.String() {
		return nil, denied("the serial number in the credential scope (%s) is not the certificate's (%s)", scope[0], leaf.SerialNumber)
	}
	if scope[1] != dateStr[:8] {
		return nil, denied("credential scope date %s does not match X-Amz-Date %s", scope[1], dateStr)
	}
	if scope[3] != "rolesanywhere" || scope[4] != "aws4_request" {
		return nil, denied("credential scope %q must end in /rolesanywhere/aws4_request", auth.credential)
	}
	region := scope[2]
	// Signed headers must cover what identifies the request.
	signed := map[string]bool{}
	for _, h := range strings.Split(auth.signedHeaders, ";") {
		signed[h] = true
	}
	required := []string{"host", "x-amz-date", "x-amz-x509"}
	if len(inters) > 0 {
		required = append(required, "x-amz-x509-chain")
	}
	if len(body) > 0 && r.Header.Get("Content-Type") != "" {
		required = append(required, "content-type")
	}
	for _, h := range required {
		if !signed[h] {
			return nil, denied("header %s must be signed (SignedHeaders=%s)", h, auth.signedHeaders)
		}
	}
	// The signature.
	var wantAlg string
	switch k := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < 2048 || bits > 4096 {
			return nil, validation("certificate key RSA-%d is not supported: RSA keys must have 2048 to 4096 bits", bits)
		}
		wantAlg = algRSA
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, validation("certificate key ECDSA %s is not supported: only the P-256 and P-384 curves are accepted", k.Curve.Params().Name)
		}
		wantAlg = algECDSA
	default:
		return nil, validation("certificate key type %T is not supported (RSA 2048-4096 bits or ECDSA P-256/P-384 only)", leaf.PublicKey)
	}
	if auth.algorithm != wantAlg {
		return nil, denied("algorithm %s does not match the certificate's key (want %s)", auth.algorithm, wantAlg)
	}
	creq, err := canonicalRequest(r, body, auth.signedHeaders)
	if err != nil {
		return nil, denied("%v", err)
	}
	sts := strings.Join([]string{auth.algorithm, dateStr, strings.Join(scope[1:], "/"), hexSHA256([]byte(creq))}, "\n")
	sig, err := hex.DecodeString(auth.signature)
	if err != nil {
		return nil, denied("signature is not hex")
	}
	digest := sha256.Sum256([]byte(sts))
	ok := false
	switch k := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, digest[:], sig)
	}
	if !ok {
		e.log.Debug("signature mismatch", "canonical_request", redactCanonical(creq), "string_to_sign", sts)
		return nil, denied("the request signature we calculated does not match the signature you provided")
	}
	// ARNs.
	taARN, profARN, roleARN := q.Get("trustAnchorArn"), q.Get("profileArn"), q.Get("roleArn")
	ta := e.trustAnchor(taARN)
	if ta == nil {
		return nil, notFound("trust anchor %s not found", taARN)
	}
	if taRegion := strings.Split(taARN, ":")[3]; taRegion != region {
		return nil, validation("the credential scope region %s is not the trust anchor's region %s", region, taRegion)
	}
	prof := e.profile(profARN)
	if prof == nil {
		return nil, notFound("profile %s not found", profARN)
	}
	if strings.Split(profARN, ":")[3] != region {
		return nil, validation("profile %s is not in region %s", profARN, region)
	}
	// The certificate and its chain.
	if leaf.Version != 3 {
		return nil, denied("certificate is X.509 v%d; v3 is required", leaf.Version)
	}
	if leaf.IsCA {
		return nil, denied("certificate %s is a CA certificate; end-entity certificates only", leaf.SerialNumber)
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		// AWS requires the bit; a leaf without a key usage extension lacks it too.
		return nil, denied("certificate key usage lacks digitalSignature")
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, denied("certificate is not valid at %s (valid %s to %s)", now.UTC().Format(time.RFC3339),
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	roots := x509.NewCertPool()
	for _, c := range ta.Roots {
		roots.AddCert(c)
	}
	ip := x509.NewCertPool()
	for _, c := range inters {
		ip.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: ip, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, denied("certificate does not chain to trust anchor %s: %v", taARN, err)
	}
	// The role.
	if !contains(prof.RoleARNs, roleARN) {
		return nil, denied("role %s is not one of profile %s's roles", roleARN, profARN)
	}
	role := e.lookupRole(roleARN)
	if role == nil {
		return nil, denied("role %s does not exist or does not trust rolesanywhere.amazonaws.com", roleARN)
	}
	// The session's principal tags are what the profile's attribute mapping keeps; with trusted identity
	// propagation the subject source must be in the certificate.
	tags := mappedTags(prof, leaf)
	var origin *OriginIdentity
	if prof.TIP.Enabled() {
		subject := x509tags.Map(leaf)[prof.TIP.SubjectSource]
		if subject == "" {
			return nil, denied("profile %s uses trusted identity propagation with subject source %s, and certificate %s has no %s",
				profARN, prof.TIP.SubjectSource, leaf.SerialNumber, prof.TIP.SubjectSource)
		}
		origin = &OriginIdentity{Subject: subject, SubjectType: prof.TIP.SubjectType, Issuer: taARN}
	}
	ctx := map[string]string{"aws:SourceArn": taARN}
	for k, v := range tags {
		ctx["aws:PrincipalTag/"+k] = v
	}
	origin.addTo(ctx)
	for _, c := range role.Conditions {
		if c.holds(ctx) {
			continue
		}
		if c.Tag != "" {
			return nil, denied("role %s does not trust this certificate: aws:PrincipalTag/%s is %q, the trust policy wants %q",
				roleARN, c.Tag, tags[c.Tag], c.Values)
		}
		v, present := lookupKey(ctx, c.Key)
		if !present {
			v = "(absent)"
		}
		return nil, denied("role %s does not trust this certificate: the trust policy's condition %s %s %q does not hold (the session's value: %q)",
			roleARN, c.Test, c.Key, c.Values, v)
	}
	// The body.
	var in struct {
		DurationSeconds    *int              `json:"durationSeconds"`
		RoleSessionName    *string           `json:"roleSessionName"`
		InstanceProperties map[string]string `json:"instanceProperties"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return nil, validation("request body is not valid CreateSession JSON: %v", err)
		}
	}
	dur := 3600
	if in.DurationSeconds != nil {
		dur = *in.DurationSeconds
		if dur < 900 || dur > 43200 {
			return nil, validation("durationSeconds %d is outside 900..43200", dur)
		}
	}
	dur = min(dur, prof.DurationSeconds)
	name := fmt.Sprintf("%x", leaf.SerialNumber)
	if in.RoleSessionName != nil {
		if !prof.AcceptRoleSessionName {
			return nil, denied("profile %s does not accept a role session name", profARN)
		}
		if !sessionNameRE().MatchString(*in.RoleSessionName) {
			return nil, validation("roleSessionName %q must be 2-64 characters of [A-Za-z0-9_+=,.@-]", *in.RoleSessionName)
		}
		name = *in.RoleSessionName
	}
	return &sessionRequest{leaf: leaf, region: region, trustAnchor: ta, profile: prof, role: role,
		duration: dur, sessionName: name, intermediates: inters, tags: tags, origin: origin}, nil
}

type authorization struct {
	algorithm, credential, signedHeaders, signature string
}

func parseAuthorization(h string) (authorization, *apiError) {
	var a authorization
	if h == "" {
		return a, denied("missing Authorization header")
	}
	alg, rest, ok := strings.Cut(h, " ")
	if !ok || (alg != algRSA && alg != algECDSA) {
		return a, denied("Authorization algorithm %q is not %s or %s", alg, algRSA, algECDSA)
	}
	a.algorithm = alg
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			a.credential = v
		case "SignedHeaders":
			a.signedHeaders = v
		case "Signature":
			a.signature = v
		}
	}
	if a.credential == "" || a.signedHeaders == "" || a.signature == "" {
		return a, denied("Authorization header must carry Credential, SignedHeaders and Signature")
	}
	return a, nil
}

// canonicalRequest rebuilds the canonical request from what arrived, per design.md §3.
func canonicalRequest(r *http.Request, body []byte, signedHeaders string) (string, error) {
	names := strings.Split(signedHeaders, ";")
	if !sort.StringsAreSorted(names) {
		return "", fmt.Errorf("SignedHeaders %q is not sorted", signedHeaders)
	}
	var hb strings.Builder
	for _, n := range names {
		if n != strings.ToLower(n) || n == "" {
			return "", fmt.Errorf("SignedHeaders %q must be lower-case names", signedHeaders)
		}
		var vals []string
		if n == "host" {
			vals = []string{r.Host}
		} else {
			vals = r.Header.Values(n)
		}
		if len(vals) == 0 {
			return "", fmt.Errorf("signed header %s is missing from the request", n)
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		hb.WriteString(n + ":" + strings.Join(vals, ",") + "\n")
	}
	return strings.Join([]string{r.Method, "/sessions", canonicalQuery(r.URL.RawQuery), hb.String(), signedHeaders, hexSHA256(body)}, "\n"), nil
}

// canonicalQuery decodes the raw query and re-encodes it: sorted by name (then value), RFC 3986
// percent-encoding.
func canonicalQuery(raw string) string {
	type kv struct{ k, v string }
	var pairs []kv
	for _, p := range strings.Split(raw, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		pairs = append(pairs, kv{uriDecode(k), uriDecode(v)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = uriEncode(p.k) + "=" + uriEncode(p.v)
	}
	return strings.Join(out, "&")
}

func uriDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := hex.DecodeString(s[i+1 : i+3]); err == nil {
				b.WriteByte(v[0])
				i += 2
				continue
			}
		}
		if s[i] == '+' {
			b.WriteByte(' ')
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func uriEncode(s string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func parseCertHeader(v string) (*x509.Certificate, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, fmt.Errorf("missing certificate")
	}
	der, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("not standard base64: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("not a DER certificate: %v", err)
	}
	return c, nil
}

// matchAny is StringLike: exact, or with `*` matching any run of characters (including `/`).
func matchAny(patterns []string, v string) bool {
	for _, p := range patterns {
		if wildcard(p, v) {
			return true
		}
	}
	return false
}

func wildcard(p, v string) bool {
	if !strings.Contains(p, "*") {
		return p == v
	}
	parts := strings.Split(p, "*")
	if !strings.HasPrefix(v, parts[0]) {
		return false
	}
	v = v[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(v, mid)
		if i < 0 {
			return false
		}
		v = v[i+len(mid):]
	}
	return strings.HasSuffix(v, parts[len(parts)-1])
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (e *Emulator) trustAnchor(arn string) *TrustAnchor {
	for _, t := range e.cfg.TrustAnchors {
		if t.ARN == arn {
			return t
		}
	}
	return nil
}

func (e *Emulator) profile(arn string) *Profile {
	for _, p := range e.cfg.Profiles {
		if p.ARN == arn {
			return p
		}
	}
	return nil
}

// lookupRole is role under the lock (SetSTSTrust may add roles while requests are served).
func (e *Emulator) lookupRole(arn string) *Role {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.role(arn)
}

// role finds a role by ARN; the caller holds e.mu.
func (e *Emulator) role(arn string) *Role {
	for _, r := range e.cfg.Roles {
		if r.ARN == arn {
			return r
		}
	}
	return nil
}

// createSessionResponse is AWS's 201 body.
type createSessionResponse struct {
	CredentialSet []credentialSetItem `json:"credentialSet"`
	SubjectArn    string              `json:"subjectArn"`
}

type credentialSetItem struct {
	AssumedRoleUser  assumedRoleUser `json:"assumedRoleUser"`
	Credentials      jsonCredentials `json:"credentials"`
	PackedPolicySize int             `json:"packedPolicySize"`
	RoleArn          string          `json:"roleArn"`
	SourceIdentity   string          `json:"sourceIdentity"`
}

type assumedRoleUser struct {
	Arn           string `json:"arn"`
	AssumedRoleID string `json:"assumedRoleId"`
}

type jsonCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
	Expiration      string `json:"expiration"`
}

func (e *Emulator) issue(req *sessionRequest, now time.Time) createSessionResponse {
	sourceIdentity := "CN=" + req.leaf.Subject.CommonName
	life := time.Duration(req.duration) * time.Second
	e.mu.Lock()
	if e.lifetime > 0 {
		life = e.lifetime
	}
	e.mu.Unlock()
	s := e.newSession(req.role.ARN, req.sessionName, now.Add(life), func(s *session) {
		s.issuedBy = "CreateSession"
		s.sourceIdentity = sourceIdentity
		// The certificate's mapped principal tags are the session's tags; Roles Anywhere does not make
		// them transitive, so they do not follow the session into a chained role. The origin identity
		// does.
		s.tags = req.tags
		s.origin = req.origin
		s.profileARN = req.profile.ARN
		if req.profile.sessionPolicy != nil {
			s.sessionPolicies = append(s.sessionPolicies, req.profile.sessionPolicy)
		}
		for _, a := range req.profile.ManagedPolicyARNs {
			s.sessionPolicies = append(s.sessionPolicies, e.cfg.managedPolicy(a))
		}
	})
	e.log.Info("CreateSession: issued", "access_key_id", s.id, "role", req.role.ARN, "session", req.sessionName,
		"subject", req.leaf.URIs, "serial", req.leaf.SerialNumber.String(), "expires", s.expires.UTC().Format(time.RFC3339))
	return createSessionResponse{
		CredentialSet: []credentialSetItem{{
			AssumedRoleUser: assumedRoleUser{Arn: s.assumedRoleARN, AssumedRoleID: s.assumedRoleID},
			Credentials: jsonCredentials{AccessKeyID: s.id, SecretAccessKey: s.secret, SessionToken: s.token,
				Expiration: s.expires.UTC().Format(time.RFC3339)},
			RoleArn:        req.role.ARN,
			SourceIdentity: sourceIdentity,
		}},
		SubjectArn: fmt.Sprintf("arn:aws:rolesanywhere:%s:%s:subject/%s", req.region, e.cfg.AccountID, requestID()),
	}
}

type issued struct {
	*session
	id string
}

func (e *Emulator) newSession(roleARN, sessionName string, expires time.Time, fill func(*session)) issued {
	const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	id := "ASIA" + randomString(upper, 16)
	roleID := "AROA" + randomString(upper, 17)
	account := e.cfg.AccountID
	if parts := strings.Split(roleARN, ":"); len(parts) == 6 && parts[4] != "" {
		account = parts[4]
	}
	s := &session{
		secret: randomString(secretAlphabet, 40), token: newToken(), expires: expires,
		assumedRoleARN: fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", account, path.Base(roleARN), sessionName),
		assumedRoleID:  roleID + ":" + sessionName,
		account:        account, roleARN: roleARN, sessionName: sessionName, tags: map[string]string{},
	}
	if fill != nil {
		fill(s)
	}
	e.mu.Lock()
	e.sessions[id] = s
	e.mu.Unlock()
	return issued{s, id}
}
