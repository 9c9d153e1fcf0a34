package chain

import (
	"bytes"
	"context"
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

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
)

// Query is an STS client written with the standard library: the AWS query protocol (form-encoded POST,
// XML answers) signed with SigV4 (AWS4-HMAC-SHA256). The lean credential-process binary uses it, since
// it must not link aws-sdk-go-v2; its signatures are tested equal to the aws-sdk's signer's.
type Query struct {
	// HTTPClient sends the requests; default http.DefaultClient.
	HTTPClient *http.Client
	// Now is the signing time; default time.Now.
	Now func() time.Time
}

// AssumeRole implements STS.
func (q *Query) AssumeRole(ctx context.Context, in Input) (creds.Credentials, error) {
	form := url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"}, "RoleArn": {in.RoleARN},
		"RoleSessionName": {in.RoleSessionName}}
	if in.DurationSeconds != 0 {
		form.Set("DurationSeconds", strconv.Itoa(in.DurationSeconds))
	}
	if in.ExternalID != "" {
		form.Set("ExternalId", in.ExternalID)
	}
	if in.Policy != "" {
		form.Set("Policy", in.Policy)
	}
	for i, a := range in.PolicyARNs {
		form.Set(fmt.Sprintf("PolicyArns.member.%d.arn", i+1), a)
	}
	for i, t := range in.Tags {
		form.Set(fmt.Sprintf("Tags.member.%d.Key", i+1), t.Key)
		form.Set(fmt.Sprintf("Tags.member.%d.Value", i+1), t.Value)
	}
	for i, k := range in.TransitiveTagKeys {
		form.Set(fmt.Sprintf("TransitiveTagKeys.member.%d", i+1), k)
	}
	body := []byte(form.Encode())
	u, err := url.Parse(in.Endpoint)
	if err != nil {
		return creds.Credentials{}, fmt.Errorf("sts endpoint: %w", err)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return creds.Credentials{}, fmt.Errorf("sts: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	now := time.Now
	if q.Now != nil {
		now = q.Now
	}
	Sign(req, body, in.Caller, "sts", in.Region, now())
	hc := q.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return creds.Credentials{}, fmt.Errorf("sts: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return creds.Credentials{}, fmt.Errorf("sts: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Code    string `xml:"Code"`
				Message string `xml:"Message"`
			} `xml:"Error"`
			RequestID string `xml:"RequestId"`
		}
		_ = xml.Unmarshal(raw, &e)
		if e.Error.Code == "" {
			e.Error.Code = fmt.Sprintf("HTTP%d", resp.StatusCode)
		}
		return creds.Credentials{}, &APIError{StatusCode: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, RequestID: e.RequestID}
	}
	var out struct {
		Result struct {
			Credentials struct {
				AccessKeyID     string `xml:"AccessKeyId"`
				SecretAccessKey string `xml:"SecretAccessKey"`
				SessionToken    string `xml:"SessionToken"`
				Expiration      string `xml:"Expiration"`
			} `xml:"Credentials"`
			AssumedRoleUser struct {
				Arn           string `xml:"Arn"`
				AssumedRoleID string `xml:"AssumedRoleId"`
			} `xml:"AssumedRoleUser"`
		} `xml:"AssumeRoleResult"`
	}
	if err := xml.Unmarshal(raw, &out); err != nil {
		return creds.Credentials{}, fmt.Errorf("sts: AssumeRole answer is not XML: %w", err)
	}
	c := out.Result.Credentials
	exp, err := time.Parse(time.RFC3339, c.Expiration)
	if err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" {
		return creds.Credentials{}, fmt.Errorf("sts: AssumeRole answer lacks credentials or a valid Expiration")
	}
	return creds.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Expiration: exp, AssumedRoleARN: out.Result.AssumedRoleUser.Arn, AssumedRoleID: out.Result.AssumedRoleUser.AssumedRoleID}, nil
}

// Sign adds X-Amz-Date, X-Amz-Security-Token (when c has a token) and a SigV4 Authorization header to
// req, whose body is body, signing Content-Length, Content-Type, Host, X-Amz-Date and X-Amz-Security-Token.
func Sign(req *http.Request, body []byte, c creds.Credentials, service, region string, now time.Time) {
	date := now.UTC().Format("20060102T150405Z")
	req.Header.Set("X-Amz-Date", date)
	if c.SessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", c.SessionToken)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	names := []string{"host", "x-amz-date"}
	if req.ContentLength > 0 { // signed as aws-sdk-go-v2 signs it
		names = append(names, "content-length")
	}
	for _, h := range []string{"content-type", "x-amz-security-token"} {
		if req.Header.Get(h) != "" {
			names = append(names, h)
		}
	}
	sort.Strings(names)
	var canonHeaders strings.Builder
	for _, n := range names {
		var v string
		switch n {
		case "host":
			v = host
		case "content-length":
			v = strconv.FormatInt(req.ContentLength, 10)
		default:
			v = strings.Join(strings.Fields(req.Header.Get(n)), " ")
		}
		canonHeaders.WriteString(n + ":" + v + "\n")
	}
	signed := strings.Join(names, ";")
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	sum := sha256.Sum256(body)
	creq := strings.Join([]string{req.Method, path, req.URL.Query().Encode(), canonHeaders.String(), signed, hex.EncodeToString(sum[:])}, "\n")
	scope := date[:8] + "/" + region + "/" + service + "/aws4_request"
	csum := sha256.Sum256([]byte(creq))
	sts := "AWS4-HMAC-SHA256\n" + date + "\n" + scope + "\n" + hex.EncodeToString(csum[:])
	k := mac([]byte("AWS4"+c.SecretAccessKey), date[:8])
	k = mac(k, region)
	k = mac(k, service)
	k = mac(k, "aws4_request")
	req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		c.AccessKeyID, scope, signed, hex.EncodeToString(mac(k, sts))))
}

func mac(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
