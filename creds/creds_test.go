package creds

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const (
	secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	token  = "FwoGZXIvYXdzEXAMPLETOKENVALUE"
)

func sample() Credentials {
	return Credentials{
		AccessKeyID:     "ASIAEXAMPLEEXAMPLE12",
		SecretAccessKey: secret,
		SessionToken:    token,
		Expiration:      time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC),
		AssumedRoleARN:  "arn:aws:sts::123456789012:assumed-role/app/s1",
	}
}

func TestFormattingNeverLeaksSecrets(t *testing.T) {
	c := sample()
	wrapped := fmt.Errorf("refresh: %v", c)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%s": fmt.Sprintf("%s", c), "%q": fmt.Sprintf("%q", c), "%x": fmt.Sprintf("%x", c),
		"pointer %v": fmt.Sprintf("%v", &c), "String()": c.String(), "error": errors.Unwrap(fmt.Errorf("x: %w", wrapped)).Error(),
		"json.Marshal": string(js), "slice %v": fmt.Sprintf("%v", []Credentials{c}),
		"struct field %+v": fmt.Sprintf("%+v", struct{ C Credentials }{c}),
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(out, token) {
			t.Errorf("%s leaks a secret: %s", name, out)
		}
		if !strings.Contains(out, "ASIAEXAMPLEEXAMPLE12") {
			t.Errorf("%s lost the access key id, which is useful to operators: %s", name, out)
		}
	}
}

func TestProcessJSONShape(t *testing.T) {
	b, err := ProcessJSON(sample())
	if err != nil {
		t.Fatal(err)
	}
	// The exact document the AWS CLI's credential_process reader expects (AWS CLI docs, "Sourcing
	// credentials with an external process").
	want := `{"Version":1,"AccessKeyId":"ASIAEXAMPLEEXAMPLE12","SecretAccessKey":"` + secret +
		`","SessionToken":"` + token + `","Expiration":"2026-11-24T13:00:00Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestProcessJSONRefusesIncomplete(t *testing.T) {
	for name, mutate := range map[string]func(*Credentials){
		"no secret":     func(c *Credentials) { c.SecretAccessKey = "" },
		"no token":      func(c *Credentials) { c.SessionToken = "" },
		"no key id":     func(c *Credentials) { c.AccessKeyID = "" },
		"no expiration": func(c *Credentials) { c.Expiration = time.Time{} },
	} {
		t.Run(name, func(t *testing.T) {
			c := sample()
			mutate(&c)
			if _, err := ProcessJSON(c); err == nil {
				t.Fatal("incomplete credentials were encoded")
			} else if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), token) {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestValidAt(t *testing.T) {
	c := sample()
	if !c.ValidAt(c.Expiration.Add(-time.Second)) {
		t.Error("valid credentials reported invalid one second before expiry")
	}
	if c.ValidAt(c.Expiration) {
		t.Error("credentials reported valid at their expiration instant")
	}
	if (Credentials{}).ValidAt(time.Time{}) {
		t.Error("zero credentials reported valid")
	}
}
