package config

import (
	"reflect"
	"strings"
	"testing"
)

const adminBlock = "delegated_identity {\n  admin_address = \"unix:///run/spire/admin/admin.sock\"\n}\n"

// A node-mode profile: workload_selectors with the delegated_identity block; files default to the user a
// unix:uid or unix:user selector names; profiles without selectors are untouched.
func TestNodeModeConfig(t *testing.T) {
	c := mustParse(t, adminBlock+prof("billing", `  workload_selectors = ["unix:uid:1001", "unix:gid:50"]
  credentials_file {
    path = "/home/billing/.aws/credentials"
  }
  container_endpoint {
    bind_port       = 9913
    auth_token_file = "/run/billing/token"
  }
  refresh {
    on_rotation = false
  }`)+prof("reports", `  workload_selectors = ["unix:user:reports"]
  credentials_file {
    path = "/home/reports/.aws/credentials"
  }`)+prof("own", ""))
	if c.DelegatedIdentity == nil || c.DelegatedIdentity.AdminAddress != "unix:///run/spire/admin/admin.sock" {
		t.Fatalf("delegated_identity = %+v", c.DelegatedIdentity)
	}
	b := c.Profiles[0]
	if !b.Delegated() || !reflect.DeepEqual(b.WorkloadSelectors, []string{"unix:uid:1001", "unix:gid:50"}) {
		t.Fatalf("billing selectors = %v", b.WorkloadSelectors)
	}
	if b.CredentialsFile.Owner != "1001" || b.ContainerEndpoint.AuthTokenOwner != "1001" {
		t.Errorf("billing owners = %q, %q; want the selector's uid 1001", b.CredentialsFile.Owner, b.ContainerEndpoint.AuthTokenOwner)
	}
	if !b.Refresh.TimerOnly {
		t.Error("on_rotation = false not applied")
	}
	if r := c.Profiles[1]; r.CredentialsFile.Owner != "reports" || r.Refresh.TimerOnly {
		t.Errorf("reports: owner %q, timer only %v", r.CredentialsFile.Owner, r.Refresh.TimerOnly)
	}
	if o := c.Profiles[2]; o.Delegated() || o.Refresh.TimerOnly {
		t.Errorf("profile without selectors changed: %+v", o)
	}
	// An explicit owner wins over the selector's.
	c = mustParse(t, adminBlock+prof("x", `  workload_selectors = ["unix:uid:1001"]
  credentials_file {
    path  = "/srv/x/credentials"
    owner = "billing"
  }`))
	if got := c.Profiles[0].CredentialsFile.Owner; got != "billing" {
		t.Errorf("explicit owner = %q", got)
	}
	// A bare socket path is taken as unix://.
	c = mustParse(t, "delegated_identity {\n  admin_address = \"/run/spire/admin/admin.sock\"\n}\n"+prof("x", `  workload_selectors = ["k8s:ns:billing"]
  credentials_file {
    path  = "/srv/x/credentials"
    owner = "1001"
  }`))
	if got := c.DelegatedIdentity.AdminAddress; got != "unix:///run/spire/admin/admin.sock" {
		t.Errorf("admin_address = %q", got)
	}
}

func TestNodeModeErrors(t *testing.T) {
	// adminBlock is 3 lines: a profile starts at line 4, its extra lines at line 9.
	cases := []struct{ name, src, want string }{
		{"selectors without delegated_identity", prof("app", `  workload_selectors = ["unix:uid:1001"]`),
			`test.hcl:6:24: profile "app": workload_selectors needs the SPIRE agent's admin API: add a top-level delegated_identity { admin_address = "unix:///run/spire/admin/admin.sock" } block`},
		{"selector without a value", adminBlock + prof("app", `  workload_selectors = ["unix:uid:1001", "unix"]`),
			`test.hcl:9:42: profile "app": workload_selectors[1]: selector "unix" is not type:value`},
		{"selector with spaces", adminBlock + prof("app", `  workload_selectors = [" unix:uid:1"]`),
			`test.hcl:9:25: profile "app": workload_selectors[0]: selector " unix:uid:1" has surrounding or inner spaces`},
		{"empty selectors", adminBlock + prof("app", `  workload_selectors = []`),
			`test.hcl:9:24: profile "app": workload_selectors must name at least one selector`},
		{"selectors not a list", adminBlock + prof("app", `  workload_selectors = "unix:uid:1"`),
			`test.hcl:9:24: profile "app": workload_selectors must be a list of strings such as ["unix:uid:1001"]`},
		{"admin_address missing", "delegated_identity {\n}\n" + prof("app", ""),
			`test.hcl:1:1: delegated_identity.admin_address is required`},
		{"admin_address tcp", "delegated_identity {\n  admin_address = \"tcp://127.0.0.1:1\"\n}\n" + prof("app", ""),
			`test.hcl:2:19: delegated_identity.admin_address "tcp://127.0.0.1:1": the SPIRE agent's admin API listens on a unix socket only`},
		{"admin_address two slashes", "delegated_identity {\n  admin_address = \"unix://run/admin.sock\"\n}\n" + prof("app", ""),
			`test.hcl:2:19: delegated_identity.admin_address "unix://run/admin.sock": "run" is read as a host name`},
		{"imds in a delegated profile", adminBlock + prof("app", "  workload_selectors = [\"unix:uid:1001\"]\n  imds {\n  }"),
			`test.hcl:10:3: profile "app": imds cannot serve a profile with workload_selectors: any local user can query an IMDS endpoint`},
		{"no owner derivable for the file", adminBlock + prof("app", "  workload_selectors = [\"k8s:ns:billing\"]\n  credentials_file {\n    path = \"/c\"\n  }"),
			`test.hcl:9:24: profile "app": credentials_file.owner is required with these workload_selectors`},
		{"no owner derivable for the token", adminBlock + prof("app", "  workload_selectors = [\"unix:uid:1\", \"unix:uid:2\"]\n  container_endpoint {\n    auth_token_file = \"/t\"\n  }"),
			`test.hcl:9:24: profile "app": container_endpoint.auth_token_owner is required with these workload_selectors`},
		{"two workloads in one file", adminBlock + prof("a", "  workload_selectors = [\"unix:uid:1001\"]\n  credentials_file {\n    path = \"/srv/creds\"\n  }") +
			prof("b", "  workload_selectors = [\"unix:uid:1002\"]\n  credentials_file {\n    path = \"/srv/creds\"\n  }"),
			`profile "b": credentials_file /srv/creds is also written by profile "a" for another user ("1001", not "1002")`},
		{"bridge identity into a workload's file", adminBlock + prof("a", "  workload_selectors = [\"unix:uid:1001\"]\n  credentials_file {\n    path = \"/srv/creds\"\n  }") +
			prof("b", "  credentials_file {\n    path = \"/srv/creds\"\n  }"),
			`profile "b": credentials_file /srv/creds is also written by profile "a" for another user ("1001", not "")`},
		{"on_rotation not bool", prof("app", "  refresh {\n    on_rotation = \"no\"\n  }"),
			`test.hcl:7:19: profile "app": refresh.on_rotation must be true or false, not a string`},
		{"delegated_identity twice", adminBlock + adminBlock + prof("app", ""), `test.hcl:4:1: only one delegated_identity block is allowed (the first is at line 1)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src), "test.hcl")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s\nsource:\n%s", err, c.want, c.src)
			}
		})
	}
}
