package wiring_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/wiring"
)

// TestHopsCarryEveryAssumeRoleKey: every field of an assume_role block reaches the hop of the same name,
// so a key added to the config but forgotten here fails this test instead of being silently dropped.
func TestHopsCarryEveryAssumeRoleKey(t *testing.T) {
	var in config.AssumeRole
	v := reflect.ValueOf(&in).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString("value of " + name)
		case reflect.Int64: // time.Duration
			f.SetInt(int64(i+1) * int64(time.Minute))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"value of " + name}))
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"key of " + name: "value"}))
		default:
			t.Fatalf("config.AssumeRole.%s has kind %v, which this test does not fill: extend it", name, f.Kind())
		}
	}
	hops := wiring.Hops([]config.AssumeRole{in, {RoleARN: "second"}})
	if len(hops) != 2 || hops[1].RoleARN != "second" {
		t.Fatalf("hops %+v, want two in order", hops)
	}
	h := reflect.ValueOf(hops[0])
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		got := h.FieldByName(name)
		if !got.IsValid() {
			t.Errorf("config.AssumeRole.%s has no chain.Hop field of that name", name)
			continue
		}
		if !reflect.DeepEqual(got.Interface(), v.Field(i).Interface()) {
			t.Errorf("chain.Hop.%s = %v, want %v (from the assume_role block)", name, got, v.Field(i))
		}
	}
	if wiring.Hops(nil) != nil {
		t.Error("no assume_role blocks should give no hops")
	}
}

func TestCreatorChainsOnlyWithHops(t *testing.T) {
	var ra chain.SessionCreator = &chain.Creator{}
	if got := wiring.Creator(ra, nil, config.Profile{}); got != ra {
		t.Errorf("without assume_role the creator is Roles Anywhere's own, got %T", got)
	}
	pc := config.Profile{Region: "eu-west-1", InsecureEndpoint: true, AssumeRole: []config.AssumeRole{{RoleARN: "arn:aws:iam::111122223333:role/next"}}}
	c, ok := wiring.Creator(ra, nil, pc).(*chain.Creator)
	if !ok || c.RolesAnywhere != ra || c.Chain == nil || len(c.Chain.Hops) != 1 || c.Chain.Region != "eu-west-1" || !c.Chain.AllowHTTP {
		t.Fatalf("with one assume_role block: %+v", c)
	}
}

// TestSessionCarriesTheProfilesRolesAnywhereKeys: every Roles Anywhere key of a profile reaches the
// CreateSession input of the same name (the duration in whole seconds), and no identity is set.
func TestSessionCarriesTheProfilesRolesAnywhereKeys(t *testing.T) {
	pc := config.Profile{
		TrustAnchorARN:   "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/ta",
		ProfileARN:       "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/p",
		RoleARN:          "arn:aws:iam::111122223333:role/r",
		Region:           "eu-west-1",
		Endpoint:         "http://127.0.0.1:8443",
		InsecureEndpoint: true,
		SessionDuration:  90 * time.Minute,
		RoleSessionName:  "svc",
	}
	got := wiring.Session(pc)
	want := signer.CreateSessionInput{TrustAnchorARN: pc.TrustAnchorARN, ProfileARN: pc.ProfileARN, RoleARN: pc.RoleARN,
		Region: "eu-west-1", Endpoint: pc.Endpoint, AllowHTTP: true, DurationSeconds: 5400, RoleSessionName: "svc"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Session = %+v\nwant      %+v", got, want)
	}
}
