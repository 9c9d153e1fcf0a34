package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// stsError is an STS (awsquery) error: XML ErrorResponse.
type stsError struct {
	status int
	code   string
	msg    string
}

func writeSTSError(w http.ResponseWriter, e *stsError) {
	type errBody struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	body := struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		XMLNS     string   `xml:"xmlns,attr"`
		Error     errBody  `xml:"Error"`
		RequestID string   `xml:"RequestId"`
	}{XMLNS: stsNS, Error: errBody{"Sender", e.code, e.msg}, RequestID: requestID()}
	writeXML(w, e.status, body)
}

const stsNS = "https://sts.amazonaws.com/doc/2011-06-15/"

func writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", requestID())
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(v)
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

func (e *Emulator) sts(w http.ResponseWriter, r *http.Request) {
	now := e.now()
	e.mu.Lock()
	e.stats.STS++
	e.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeSTSError(w, &stsError{400, "ValidationError", "cannot read the request body"})
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeSTSError(w, &stsError{400, "MalformedInput", "body is not form-encoded: " + err.Error()})
		return
	}
	switch a := form.Get("Action"); a {
	case "GetCallerIdentity":
		s, serr := e.verifySigV4(r, body, now)
		if serr != nil {
			e.log.Info("GetCallerIdentity refused", "code", serr.code, "reason", serr.msg)
			writeSTSError(w, serr)
			return
		}
		e.log.Info("GetCallerIdentity", "arn", s.assumedRoleARN)
		e.countSTSOK()
		e.mu.Lock()
		tags := tagList(s.tags)
		result := callerIdentityResult{Arn: s.assumedRoleARN, UserID: s.assumedRoleID, Account: s.account,
			SourceIdentity: s.sourceIdentity, SessionTags: tags, OriginIdentity: s.origin.clone(), RoleChain: append([]string(nil), s.chain...)}
		e.mu.Unlock()
		// Arn, UserId and Account are AWS's answer. SourceIdentity, SessionTags, OriginIdentity and
		// RoleChain are the emulator's additions (AWS does not return them; SDKs and the aws CLI ignore
		// unknown elements) so that a test can see what the session carries without the admin view.
		writeXML(w, 200, struct {
			XMLName xml.Name             `xml:"GetCallerIdentityResponse"`
			XMLNS   string               `xml:"xmlns,attr"`
			Result  callerIdentityResult `xml:"GetCallerIdentityResult"`
			Meta    responseMetadata     `xml:"ResponseMetadata"`
		}{XMLNS: stsNS, Result: result, Meta: responseMetadata{requestID()}})
	case "AssumeRoleWithWebIdentity":
		e.assumeRoleWithWebIdentity(w, form, now)
	case "AssumeRole":
		caller, serr := e.verifySigV4(r, body, now)
		if serr != nil {
			e.log.Info("AssumeRole refused", "code", serr.code, "reason", serr.msg)
			writeSTSError(w, serr)
			return
		}
		e.assumeRole(w, caller, form, now)
	default:
		writeSTSError(w, &stsError{400, "InvalidAction", fmt.Sprintf("could not find operation %q", a)})
	}
}

// callerIdentityResult is GetCallerIdentity's result element, with the emulator's additions.
type callerIdentityResult struct {
	Arn            string          `xml:"Arn"`
	UserID         string          `xml:"UserId"`
	Account        string          `xml:"Account"`
	SourceIdentity string          `xml:"SourceIdentity,omitempty"`
	SessionTags    []xmlTag        `xml:"SessionTags>member"`
	OriginIdentity *OriginIdentity `xml:"OriginIdentity,omitempty"`
	RoleChain      []string        `xml:"RoleChain>member"`
}

func (e *Emulator) countSTSOK() {
	e.mu.Lock()
	e.stats.STSOK++
	e.mu.Unlock()
}

// verifySigV4 checks a standard SigV4 (AWS4-HMAC-SHA256) request signed with credentials this emulator
// issued, and returns their session.
func (e *Emulator) verifySigV4(r *http.Request, body []byte, now time.Time) (*session, *stsError) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return nil, &stsError{403, "MissingAuthenticationToken", "request is missing a SigV4 Authorization header"}
	}
	var cred, signedHeaders, sig string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			sig = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || signedHeaders == "" || sig == "" {
		return nil, &stsError{400, "IncompleteSignature", "Authorization header is incomplete"}
	}
	// AWS checks the credential scope before the signature: the date must be X-Amz-Date's, the service
	// this one and the region one this endpoint serves.
	if scope[3] != "sts" {
		return nil, &stsError{403, "SignatureDoesNotMatch", fmt.Sprintf("Credential should be scoped to correct service: 'sts'. (scope names %q)", scope[3])}
	}
	if !e.stsRegion(scope[2]) {
		return nil, &stsError{403, "SignatureDoesNotMatch", fmt.Sprintf("Credential should be scoped to a valid region (scope names %q; this endpoint serves %s).", scope[2], strings.Join(e.stsRegions(), ", "))}
	}
	if d := r.Header.Get("X-Amz-Date"); len(d) < 8 || scope[1] != d[:8] {
		return nil, &stsError{403, "SignatureDoesNotMatch", fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: %q != %q", scope[1], d)}
	}
	signed := map[string]bool{}
	for _, h := range strings.Split(signedHeaders, ";") {
		signed[h] = true
	}
	for _, h := range []string{"host", "x-amz-date", "x-amz-security-token"} {
		if !signed[h] {
			return nil, &stsError{403, "SignatureDoesNotMatch", fmt.Sprintf("%s must be a signed header (SignedHeaders=%s)", h, signedHeaders)}
		}
	}
	e.mu.Lock()
	s := e.sessions[scope[0]]
	e.mu.Unlock()
	if s == nil {
		return nil, &stsError{403, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	if r.Header.Get("X-Amz-Security-Token") != s.token {
		return nil, &stsError{403, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	if !now.Before(s.expires) {
		return nil, &stsError{403, "ExpiredToken", "The security token included in the request is expired"}
	}
	dateStr := r.Header.Get("X-Amz-Date")
	date, err := time.Parse(amzDate, dateStr)
	if err != nil {
		return nil, &stsError{400, "IncompleteSignature", "X-Amz-Date is missing or malformed"}
	}
	if d := now.Sub(date); d > maxSkew || d < -maxSkew {
		return nil, &stsError{403, "SignatureDoesNotMatch", "Signature expired: " + dateStr + " is not within 5 minutes of the server time"}
	}
	// Canonical request, standard SigV4: path is URI-encoded per segment (already normalized: "/").
	var hb strings.Builder
	for _, n := range strings.Split(signedHeaders, ";") {
		var vals []string
		if n == "host" {
			vals = []string{r.Host}
		} else {
			vals = r.Header.Values(n)
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		hb.WriteString(n + ":" + strings.Join(vals, ",") + "\n")
	}
	// STS signs its payload: the canonical request always ends in the body's own hash. An
	// X-Amz-Content-Sha256 header, when sent, must be that hash; "UNSIGNED-PAYLOAD" (S3's opt-out) is
	// refused, or a signature made for one action could carry another action's body.
	payload := hexSHA256(body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		if h == "UNSIGNED-PAYLOAD" {
			return nil, &stsError{400, "InvalidRequest", "X-Amz-Content-Sha256 is UNSIGNED-PAYLOAD: STS requires the request body to be signed (send the hex SHA-256 of the body, or no X-Amz-Content-Sha256 header)"}
		}
		return nil, &stsError{400, "XAmzContentSHA256Mismatch", fmt.Sprintf("The provided X-Amz-Content-Sha256 header %q does not match what was computed from the body (%s)", h, payload)}
	}
	canonPath := r.URL.EscapedPath()
	if canonPath == "" {
		canonPath = "/"
	}
	creq := strings.Join([]string{r.Method, canonPath, sigv4Query(r.URL.Query()), hb.String(), signedHeaders, payload}, "\n")
	sts := strings.Join([]string{"AWS4-HMAC-SHA256", dateStr, strings.Join(scope[1:], "/"), hexSHA256([]byte(creq))}, "\n")
	k := hmacSHA256([]byte("AWS4"+s.secret), scope[1])
	k = hmacSHA256(k, scope[2])
	k = hmacSHA256(k, scope[3])
	k = hmacSHA256(k, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(k, sts))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		e.log.Debug("SigV4 mismatch", "canonical_request", redactCanonical(creq),
			"string_to_sign", sts)
		return nil, &stsError{403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."}
	}
	return s, nil
}

func sigv4Query(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			out = append(out, uriEncode(k)+"="+uriEncode(v))
		}
	}
	return strings.Join(out, "&")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func (e *Emulator) assumeRoleWithWebIdentity(w http.ResponseWriter, form url.Values, now time.Time) {
	fail := func(status int, code, msg string) {
		e.log.Info("AssumeRoleWithWebIdentity refused", "code", code, "reason", msg)
		writeSTSError(w, &stsError{status, code, msg})
	}
	roleARN, sessionName, token := form.Get("RoleArn"), form.Get("RoleSessionName"), form.Get("WebIdentityToken")
	if roleARN == "" || sessionName == "" || token == "" {
		fail(400, "ValidationError", "RoleArn, RoleSessionName and WebIdentityToken are required")
		return
	}
	if !sessionNameRE().MatchString(sessionName) {
		fail(400, "ValidationError", fmt.Sprintf("RoleSessionName %q must be 2-64 characters of [\\w+=,.@-]", sessionName))
		return
	}
	dur := 3600
	if d := form.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 900 || n > 43200 {
			fail(400, "ValidationError", fmt.Sprintf("DurationSeconds %q is outside 900..43200", d))
			return
		}
		dur = n
	}
	if e.cfg.JWTBundle == nil {
		fail(400, "InvalidIdentityToken", "no OpenID Connect provider (jwt_bundle) is configured")
		return
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.RS384, jose.PS256})
	if err != nil {
		fail(400, "InvalidIdentityToken", "the web identity token is not a signed JWT: "+err.Error())
		return
	}
	var claims jwt.Claims
	verified := false
	for _, h := range tok.Headers {
		for _, k := range e.cfg.JWTBundle.Keys.Key(h.KeyID) {
			if err := tok.Claims(k.Key, &claims); err == nil {
				verified = true
			}
		}
	}
	if !verified {
		fail(400, "InvalidIdentityToken", "the web identity token's signature does not verify with any key of the jwt_bundle")
		return
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Time: now}, 0); err != nil {
		if err == jwt.ErrExpired {
			fail(400, "ExpiredTokenException", "Token expired: current date/time "+now.UTC().Format(time.RFC3339)+" must be before the expiration date/time")
			return
		}
		fail(400, "InvalidIdentityToken", "the web identity token is not valid now: "+err.Error())
		return
	}
	role := e.lookupRole(roleARN)
	if role == nil || role.WebIdentity == nil {
		fail(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity: role "+roleARN+" does not trust web identities")
		return
	}
	audOK := false
	for _, a := range claims.Audience {
		if contains(role.WebIdentity.Audiences, a) {
			audOK = true
		}
	}
	if !audOK || !matchAny(role.WebIdentity.Subjects, claims.Subject) {
		fail(403, "AccessDenied", fmt.Sprintf("Not authorized to perform sts:AssumeRoleWithWebIdentity: role %s does not trust sub %q aud %q",
			roleARN, claims.Subject, []string(claims.Audience)))
		return
	}
	s := e.newSession(roleARN, sessionName, now.Add(time.Duration(dur)*time.Second), func(s *session) { s.issuedBy = "AssumeRoleWithWebIdentity" })
	e.log.Info("AssumeRoleWithWebIdentity: issued", "access_key_id", s.id, "role", roleARN, "sub", claims.Subject)
	e.countSTSOK()
	type result struct {
		Credentials                 stsCredentials     `xml:"Credentials"`
		SubjectFromWebIdentityToken string             `xml:"SubjectFromWebIdentityToken"`
		AssumedRoleUser             stsAssumedRoleUser `xml:"AssumedRoleUser"`
		Audience                    string             `xml:"Audience"`
		Provider                    string             `xml:"Provider"`
	}
	writeXML(w, 200, struct {
		XMLName xml.Name         `xml:"AssumeRoleWithWebIdentityResponse"`
		XMLNS   string           `xml:"xmlns,attr"`
		Result  result           `xml:"AssumeRoleWithWebIdentityResult"`
		Meta    responseMetadata `xml:"ResponseMetadata"`
	}{XMLNS: stsNS, Result: result{
		Credentials:                 s.xmlCredentials(),
		SubjectFromWebIdentityToken: claims.Subject,
		AssumedRoleUser:             stsAssumedRoleUser{s.assumedRoleARN, s.assumedRoleID},
		Audience:                    strings.Join(claims.Audience, ","),
		Provider:                    "emulator",
	}, Meta: responseMetadata{requestID()}})
}

// stsCredentials is the Credentials element of STS's AssumeRole* responses.
type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

// stsAssumedRoleUser is the AssumedRoleUser element of STS's AssumeRole* responses.
type stsAssumedRoleUser struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

// xmlCredentials is the issued session's credentials as STS writes them.
func (s issued) xmlCredentials() stsCredentials {
	return stsCredentials{s.id, s.secret, s.token, s.expires.UTC().Format(time.RFC3339)}
}
