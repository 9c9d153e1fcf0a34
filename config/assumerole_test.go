package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAssumeRoleBlocksInOrderWithDefaults(t *testing.T) {
	c := mustParse(t, prof("app", `  assume_role {
    role_arn    = "arn:aws:iam::222222222222:role/deployer"
    external_id = "tenant-7"
  }
  assume_role {
    role_arn            = "arn:aws:iam::333333333333:role/workload"
    role_session_name   = "web"
    duration            = "30m"
    session_tags        = { team = "payments" }
    transitive_tag_keys = ["team"]
    policy              = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    policy_arns         = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    sts_region          = "eu-central-1"
    spiffe_id_tag       = ""
  }`))
	got := c.Profiles[0].AssumeRole
	want := []AssumeRole{
		{RoleARN: "arn:aws:iam::222222222222:role/deployer", ExternalID: "tenant-7", Duration: time.Hour, SPIFFEIDTag: "spiffe-id"},
		{RoleARN: "arn:aws:iam::333333333333:role/workload", RoleSessionName: "web", Duration: 30 * time.Minute,
			SessionTags: map[string]string{"team": "payments"}, TransitiveTagKeys: []string{"team"},
			Policy: `{"Version":"2012-10-17","Statement":[]}`, PolicyARNs: []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"},
			STSRegion: "eu-central-1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestAssumeRoleErrors(t *testing.T) {
	for _, tc := range []struct{ extra, want string }{
		{"  assume_role {\n  }", `x.hcl:6:3: profile "app": assume_role[0].role_arn is required`},
		{"  assume_role {\n    role_arn = \"arn:aws:iam::1:role/x\"\n  }", `x.hcl:7:5: profile "app": assume_role[0].role_arn`},
		{"  assume_role {\n    role_arn = \"arn:aws:iam::222222222222:role/x\"\n    duration = \"2h\"\n  }", `x.hcl:8:16: profile "app": assume_role[0].duration "2h" is out of range (15m–1h: AWS caps sessions assumed by role chaining at one hour)`},
		{"  assume_role {\n    role_arn = \"arn:aws:iam::222222222222:role/x\"\n    role_session_name = \"a b\"\n  }", `x.hcl:8:25: profile "app": assume_role[0].role_session_name "a b"`},
		{"  assume_role {\n    role_arn = \"arn:aws:iam::222222222222:role/x\"\n    transitive_tag_keys = [\"nope\"]\n  }", `assume_role[0].transitive_tag_keys: "nope" is not a key of session_tags`},
		{"  assume_role {\n    role_arn = \"arn:aws:iam::222222222222:role/x\"\n    sts_region = \"mars\"\n  }", `assume_role[0].sts_region "mars" is not a valid AWS region`},
		{"  assume_role {\n    role_arn = \"arn:aws:iam::222222222222:role/x\"\n    sts_endpoint = \"http://sts.example.com\"\n  }", `x.hcl:8:20: profile "app": assume_role[0].sts_endpoint "http://sts.example.com" is plain http`},
		{"  assume_role {\n    role_arn = \"arn:aws:iam::222222222222:role/x\"\n    policy = \"{\"\n  }", `assume_role[0].policy must be a JSON policy document`},
		{"  assume_role {\n    role_arn = \"arn:aws:iam::222222222222:role/x\"\n    session_tags = [\"a\"]\n  }", `assume_role[0].session_tags must be a map of strings`},
		{"  assume_role {\n    role_arn = \"arn:aws:iam::222222222222:role/x\"\n    nope = 1\n  }", `x.hcl:8:5: Unsupported argument`},
	} {
		_, err := Parse([]byte(prof("app", tc.extra)), "x.hcl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n got %v\nwant %s", tc.extra, err, tc.want)
		}
	}
}
