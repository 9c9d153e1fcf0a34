// Package creds holds the temporary AWS credentials that flow through the bridge, from a Roles Anywhere
// CreateSession (or STS AssumeRoleWithWebIdentity) to every delivery method.
//
// A Credentials value carries a secret access key and a session token. Its String, GoString and Format
// methods never print either, so a Credentials can be logged, wrapped in an error or printed with %v,
// %+v or %#v without leaking them. Only the explicit encoders in this package (ProcessJSON and friends)
// write the secret, and only to where the caller sends them.
package creds

import (
	"encoding/json"
	"fmt"
	"time"
)

// Credentials are temporary AWS credentials with their expiry and the identity they were issued to.
type Credentials struct {
	// AccessKeyID is the access key id ("ASIA…" for temporary credentials). Not a secret on its own.
	AccessKeyID string
	// SecretAccessKey is the secret half of the key pair. Never logged.
	SecretAccessKey string
	// SessionToken is the session token that must accompany temporary credentials. Never logged.
	SessionToken string
	// Expiration is when AWS stops accepting these credentials.
	Expiration time.Time
	// AssumedRoleARN is the STS assumed-role ARN the credentials act as
	// (arn:aws:sts::<account>:assumed-role/<role>/<session>), when known.
	AssumedRoleARN string
	// AssumedRoleID is the assumed role id (AROA…:<session>), when known.
	AssumedRoleID string
}

// IsZero reports whether c holds no credentials at all.
func (c Credentials) IsZero() bool {
	return c.AccessKeyID == "" && c.SecretAccessKey == "" && c.SessionToken == ""
}

// Remaining is how long c stays valid after now; negative once expired.
func (c Credentials) Remaining(now time.Time) time.Duration {
	return c.Expiration.Sub(now)
}

// ValidAt reports whether c is complete and still unexpired at now.
func (c Credentials) ValidAt(now time.Time) bool {
	return c.AccessKeyID != "" && c.SecretAccessKey != "" && c.SessionToken != "" && now.Before(c.Expiration)
}

// Redacted is the loggable form of c: access key id, role and expiry, with the secret and token elided.
func (c Credentials) Redacted() string {
	return fmt.Sprintf("{AccessKeyID:%s SecretAccessKey:%s SessionToken:%s Expiration:%s AssumedRoleARN:%s}",
		c.AccessKeyID, mask(c.SecretAccessKey), mask(c.SessionToken),
		c.Expiration.UTC().Format(time.RFC3339), c.AssumedRoleARN)
}

func mask(s string) string {
	if s == "" {
		return `""`
	}
	return "<redacted>"
}

// String implements fmt.Stringer with the redacted form.
func (c Credentials) String() string { return c.Redacted() }

// GoString implements fmt.GoStringer (%#v) with the redacted form.
func (c Credentials) GoString() string { return "creds.Credentials" + c.Redacted() }

// Format implements fmt.Formatter so that every verb (%v, %+v, %s, %q, %x, …) prints the redacted form.
func (c Credentials) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.Redacted())
}

// MarshalJSON refuses to serialize the secret implicitly: it writes the redacted fields only.
// Use ProcessJSON, or the endpoint encoders, to send credentials on purpose.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AccessKeyID    string
		Expiration     time.Time
		AssumedRoleARN string `json:",omitempty"`
	}{c.AccessKeyID, c.Expiration.UTC(), c.AssumedRoleARN})
}

// ProcessOutput is the document a credential_process program prints on stdout (Version 1).
type ProcessOutput struct {
	Version         int
	AccessKeyId     string //nolint:revive // the wire name is fixed by AWS
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

// ProcessJSON encodes c as the credential_process document AWS SDKs and the aws CLI read:
// {"Version":1,"AccessKeyId":…,"SecretAccessKey":…,"SessionToken":…,"Expiration":"RFC 3339"}.
func ProcessJSON(c Credentials) ([]byte, error) {
	if c.Expiration.IsZero() || !c.ValidAt(c.Expiration.Add(-time.Nanosecond)) {
		return nil, fmt.Errorf("creds: refusing to encode incomplete credentials %s", c.Redacted())
	}
	return json.Marshal(ProcessOutput{
		Version:         1,
		AccessKeyId:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		Expiration:      c.Expiration.UTC().Format(time.RFC3339),
	})
}
