package endpoint

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"
)

// TokenKeySize is the size of an IMDS token key (IMDSOptions.TokenKey): 32 bytes, the strength of
// HMAC-SHA256.
const TokenKeySize = 32

// NewTokenKey returns a random IMDS token key (TokenKeySize bytes from crypto/rand).
func NewTokenKey() ([]byte, error) {
	k := make([]byte, TokenKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate IMDS token key: %w", err)
	}
	return k, nil
}

// An IMDS session token is self-contained, so that there is no store a flood of token requests could fill
// or evict from: every token stays valid until its own expiry, however many were issued after it.
//
//	token = base64url(payload || HMAC-SHA256(key, scope || 0 || payload))
//	payload = version (1 byte, 1) || expiry (Unix nanoseconds, 8 bytes big-endian) || TTL (seconds, 4 bytes)
//
// The key is random and never leaves the process; scope (the role name) keeps a token of one IMDS
// endpoint from opening another's. A token is valid while now is in [expiry - TTL, expiry): a wall clock
// moved back past its issue time ends it too (SDKs fetch a new one on 401).
const (
	tokenVersion    = 1
	tokenPayloadLen = 1 + 8 + 4
	tokenLen        = tokenPayloadLen + sha256.Size
)

// tokenEncodedLen is the length of every token's text.
var tokenEncodedLen = base64.RawURLEncoding.EncodedLen(tokenLen)

// imdsTokens issues and checks IMDS session tokens for one scope.
type imdsTokens struct {
	key   []byte
	scope string
}

// issue returns a token valid for ttl seconds from now.
func (t imdsTokens) issue(now time.Time, ttl int) string {
	b := make([]byte, tokenPayloadLen, tokenLen)
	b[0] = tokenVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(now.Add(time.Duration(ttl)*time.Second).UnixNano()))
	binary.BigEndian.PutUint32(b[9:13], uint32(ttl))
	return base64.RawURLEncoding.EncodeToString(t.mac(b))
}

// mac appends the payload's MAC to it.
func (t imdsTokens) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(t.scope))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(payload)
}

// valid reports whether tok is a token this key issued for this scope, and live at now. The MAC is
// compared in constant time.
func (t imdsTokens) valid(tok string, now time.Time) bool {
	if len(tok) != tokenEncodedLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != tokenLen || b[0] != tokenVersion {
		return false
	}
	want := t.mac(append([]byte(nil), b[:tokenPayloadLen]...))
	if !hmac.Equal(b, want) {
		return false
	}
	exp := time.Unix(0, int64(binary.BigEndian.Uint64(b[1:9])))
	ttl := time.Duration(binary.BigEndian.Uint32(b[9:13])) * time.Second
	return now.Before(exp) && !now.Before(exp.Add(-ttl))
}
