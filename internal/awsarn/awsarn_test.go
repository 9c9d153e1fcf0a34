package awsarn

import (
	"strings"
	"testing"
)

const (
	ta   = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f2c0b8e-7b1a-4f4e-9d3a-1c2b3d4e5f60"
	prof = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	role = "arn:aws:iam::123456789012:role/app"
)

func TestCheckSession(t *testing.T) {
	cases := []struct {
		name                   string
		ta, prof, role, region string
		wantErr                string
		wantRegion             string
	}{
		{name: "consistent ARNs default the region to the trust anchor's", ta: ta, prof: prof, role: role, wantRegion: "us-east-1"},
		{name: "explicit matching region", ta: ta, prof: prof, role: role, region: "us-east-1", wantRegion: "us-east-1"},
		{name: "role with a path", ta: ta, prof: prof, role: "arn:aws:iam::123456789012:role/team/app", wantRegion: "us-east-1"},
		{name: "region other than the anchor's", ta: ta, prof: prof, role: role, region: "eu-west-1",
			wantErr: `region "eu-west-1": differs from the trust anchor's region "us-east-1"`},
		{name: "empty trust anchor", ta: "", prof: prof, role: role, wantErr: `trust_anchor_arn "": is empty`},
		{name: "not an ARN", ta: "trust-anchor/abc", prof: prof, role: role, wantErr: `trust_anchor_arn "trust-anchor/abc": is not an ARN`},
		{name: "profile ARN given as trust anchor", ta: prof, prof: prof, role: role, wantErr: `resource "profile/7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d" is not a trust-anchor`},
		{name: "wrong service", ta: strings.Replace(ta, "rolesanywhere", "iam", 1), prof: prof, role: role, wantErr: `service is "iam", want "rolesanywhere"`},
		{name: "short account", ta: strings.Replace(ta, "123456789012", "1234", 1), prof: prof, role: role, wantErr: `account "1234" is not 12 digits`},
		{name: "unknown partition", ta: strings.Replace(ta, "arn:aws:", "arn:aws-mars:", 1), prof: prof, role: role, wantErr: `unknown partition "aws-mars"`},
		{name: "bad region", ta: strings.Replace(ta, "us-east-1", "useast", 1), prof: prof, role: role, wantErr: `region "useast" is not a valid AWS region`},
		{name: "id not a UUID", ta: strings.Replace(ta, "0f2c0b8e-7b1a-4f4e-9d3a-1c2b3d4e5f60", "xyz", 1), prof: prof, role: role, wantErr: `trust-anchor id "xyz" is not a UUID`},
		{name: "profile in another region", ta: ta, prof: strings.Replace(prof, "us-east-1", "us-west-2", 1), role: role, wantErr: `profile_arn "` + strings.Replace(prof, "us-east-1", "us-west-2", 1) + `": region "us-west-2" differs from the trust anchor's "us-east-1"`},
		{name: "profile in another account", ta: ta, prof: strings.Replace(prof, "123456789012", "210987654321", 1), role: role, wantErr: `account "210987654321" differs from the trust anchor's "123456789012"`},
		{name: "role in another partition", ta: ta, prof: prof, role: "arn:aws-cn:iam::123456789012:role/app", wantErr: `role_arn "arn:aws-cn:iam::123456789012:role/app": partition "aws-cn" differs`},
		{name: "role ARN with a region", ta: ta, prof: prof, role: "arn:aws:iam:us-east-1:123456789012:role/app", wantErr: "IAM ARNs have no region"},
		{name: "user instead of role", ta: ta, prof: prof, role: "arn:aws:iam::123456789012:user/bob", wantErr: `resource "user/bob" is not a role`},
		{name: "role name too long", ta: ta, prof: prof, role: "arn:aws:iam::123456789012:role/" + strings.Repeat("a", 65), wantErr: "is not a role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := CheckSession(tc.ta, tc.prof, tc.role, tc.region)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Region != tc.wantRegion {
				t.Fatalf("region = %q, want %q", s.Region, tc.wantRegion)
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct{ region, want string }{
		{"us-east-1", "https://rolesanywhere.us-east-1.amazonaws.com"},
		{"cn-north-1", "https://rolesanywhere.cn-north-1.amazonaws.com.cn"},
		{"us-gov-west-1", "https://rolesanywhere.us-gov-west-1.amazonaws.com"},
	} {
		if got := Endpoint(Partition(tc.region), tc.region); got != tc.want {
			t.Errorf("Endpoint(%s) = %s, want %s", tc.region, got, tc.want)
		}
	}
}
