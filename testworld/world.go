// Package testworld is the world every end-to-end test and the bench run in, in the manner of
// net/http/httptest: a fake SPIRE agent (svidtest's real Workload API on a unix socket) and the Roles
// Anywhere + STS emulator with its accounts, whose trust anchor trusts the agent's CA, plus a builder for
// the bridge configs that sign against them.
//
// One call gives a running world: New for tests (cleaned up with t.Cleanup), Start and Close elsewhere
// (cmd/bench). The world's names (accounts, ARNs, SPIFFE ID) are the package's constants, and the
// World's fields for those that follow Options.Region, so tests assert against the world's values
// rather than re-typing them.
//
// testworld imports neither chain, daemon, config nor bridge (it writes config text), so that the
// tests of those packages can use it.
package testworld

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

// The default world's names: account AccountID in Region holds the trust anchor, the Roles Anywhere
// profile and the role RoleARN, which trusts every SVID under WorkloadPattern; the agent serves SPIFFEID.
const (
	AccountID       = "123456789012"
	Region          = "us-east-1"
	TrustAnchorARN  = "arn:aws:rolesanywhere:" + Region + ":" + AccountID + ":trust-anchor/" + trustAnchorID
	ProfileARN      = "arn:aws:rolesanywhere:" + Region + ":" + AccountID + ":profile/" + profileID
	RoleName        = "app"
	RoleARN         = "arn:aws:iam::" + AccountID + ":role/" + RoleName
	SPIFFEID        = "spiffe://example.org/ns/prod/app"
	WorkloadPattern = "spiffe://example.org/ns/prod/*"
	// JWTRoleARN is the role AssumeRoleWithWebIdentity assumes with a JWT-SVID for Audience whose
	// subject matches WorkloadPattern (the `credentials` one-shot).
	JWTRoleARN = "arn:aws:iam::" + AccountID + ":role/" + jwtRoleName
	Audience   = "sts.amazonaws.com"
)

// The chain's accounts (Options.Chain): RoleB in AccountB trusts the Roles Anywhere role when the
// caller gives ExternalID; RoleC in AccountC trusts RoleB.
const (
	AccountB   = "222222222222"
	AccountC   = "333333333333"
	RoleB      = "arn:aws:iam::" + AccountB + ":role/deployer"
	RoleC      = "arn:aws:iam::" + AccountC + ":role/workload"
	ExternalID = "tenant-7"
)

const (
	trustAnchorID = "0f0e0d0c-0b0a-4909-8807-060504030201"
	profileID     = "01020304-0506-4708-8900-0a0b0c0d0e0f"
	jwtRoleName   = "jwt-app"
)

// Options shape a world; the zero value is the default world.
type Options struct {
	// Region moves the trust anchor and profile to another region (default Region), and with them the
	// region STS accepts in a signature; the World's fields hold the names that follow.
	Region string
	// Entries are the identities the agent serves, the first its default; default one, SPIFFEID.
	Entries []svidtest.Entry
	// Clock is the CA's and the emulator's time (default time.Now); SVIDTTL the X.509-SVIDs' lifetime
	// (default svidtest's, 1h).
	Clock   func() time.Time
	SVIDTTL time.Duration
	// QuotaPerSecond is the emulator's CreateSession quota: 0 is AWS's 10/s, -1 unlimited.
	QuotaPerSecond int
	// ProfileDurationSeconds caps the Roles Anywhere profile's sessions (default AWS's 3600).
	ProfileDurationSeconds int
	// ProfileBody is more emulator HCL inside the Roles Anywhere profile block (lines ending in a newline).
	ProfileBody string
	// Chain adds accounts B and C for role chaining: RoleB and RoleC.
	Chain bool
	// STSRoles are more roles that STS AssumeRole admits into.
	STSRoles []STSRole
	// EmulatorHCL is more emulator config (profiles, roles), appended to the world's.
	EmulatorHCL string
	// EmulatorLog keeps the emulator's debug log for EmulatorLogs.
	EmulatorLog bool
}

// STSRole is a role of any account that STS AssumeRole admits into: its trust policy names Principals
// (role ARNs or arn:aws:iam::<account>:root), the ExternalID when set, and Conditions; it grants
// sts:TagSession and sts:SetSourceIdentity.
type STSRole struct {
	ARN        string
	Principals []string
	ExternalID string
	Conditions []emulator.Condition
}

// World is a running fake agent and emulator.
type World struct {
	// Dir holds the world's files (ca.pem, jwks.json, emulator.hcl) and the configs it writes.
	Dir string
	// Agent is the fake SPIRE agent; Emulator the Roles Anywhere + STS that trusts the agent's CA.
	Agent    *svidtest.Server
	Emulator *emulator.Server
	// ID is the SPIFFE ID the profiles of Profile select (SPIFFEID).
	ID spiffeid.ID

	// Region, TrustAnchorARN and ProfileARN are Region's, TrustAnchorARN's and ProfileARN's values in
	// Options.Region.
	Region, TrustAnchorARN, ProfileARN string

	ownDir bool
	logs   *logtest.Buffer
}

// New starts a world for t in t.TempDir() and closes it when t ends.
func New(t testing.TB, o Options) *World {
	t.Helper()
	w, err := start(t.TempDir(), false, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// Start starts a world in a new temporary directory; Close ends it and removes the directory.
func Start(o Options) (*World, error) {
	dir, err := os.MkdirTemp("", "testworld")
	if err != nil {
		return nil, err
	}
	w, err := start(dir, true, o)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return w, nil
}

func start(dir string, ownDir bool, o Options) (*World, error) {
	w := &World{Dir: dir, ownDir: ownDir, ID: spiffeid.RequireFromString(SPIFFEID), Region: o.Region}
	if w.Region == "" {
		w.Region = Region
	}
	w.TrustAnchorARN = strings.Replace(TrustAnchorARN, ":"+Region+":", ":"+w.Region+":", 1)
	w.ProfileARN = strings.Replace(ProfileARN, ":"+Region+":", ":"+w.Region+":", 1)

	ca, err := svidtest.NewCA(svidtest.CAOptions{Clock: o.Clock, TTL: o.SVIDTTL})
	if err != nil {
		return nil, fmt.Errorf("testworld: %w", err)
	}
	entries := o.Entries
	if len(entries) == 0 {
		entries = []svidtest.Entry{{ID: w.ID}}
	}
	if w.Agent, err = svidtest.Start(svidtest.ServerOptions{CA: ca, Entries: entries}); err != nil {
		return nil, fmt.Errorf("testworld: agent: %w", err)
	}
	if err := w.startEmulator(o); err != nil {
		w.Agent.Close()
		return nil, err
	}
	return w, nil
}

// Close stops the emulator and the agent (and removes the directory Start made).
func (w *World) Close() {
	w.Emulator.Close()
	w.Agent.Close()
	if w.ownDir {
		os.RemoveAll(w.Dir)
	}
}
