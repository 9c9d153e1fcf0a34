// Package check is the `check` command ("why doesn't this work?"): it explains what would stop this
// node from getting AWS credentials. It connects to the SPIFFE Workload API and checks every X.509-SVID
// offered against IAM Roles Anywhere's requirements, printing the principal tags AWS derives from it and
// a minimal role trust policy that admits it; with a config it also tries one CreateSession per profile
// (node-mode profiles through the Delegated Identity API), reads the profile's trusted identity
// propagation, walks its assume_role hops, and proves its sinks as the daemon would use them, leaving
// nothing behind. With a pod_identity block it lists the block's settings and rules, in order, warning of
// rules that map too widely (podidentity.go); with Options.SpiffeID it answers only which rule maps that
// SPIFFE ID and to what, by the daemon's own rule engine. None of it needs Kubernetes.
//
// Run writes the report as it goes and returns how many problems it found; the command maps that to its
// exit status.
package check

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain/sdksts"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/x509tags"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/delegated"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/wiring"
)

// Options are the inputs of one check. Errors in them name the flag or config key they came from.
type Options struct {
	// Out receives the report.
	Out io.Writer
	// ConfigPath, when set, is the bridge config whose profiles and sinks are checked too (--config).
	ConfigPath string
	// WorkloadSocket is the Workload API address (--workload-socket); default the config's
	// agent_address, $SPIFFE_ENDPOINT_SOCKET, then SPIRE's default.
	WorkloadSocket string
	// Sinks configures the sink probes; the zero value is ready to use.
	Sinks SinkOptions
	// Now is the time certificates are checked at (default time.Now()).
	Now time.Time
	// SpiffeID, when set (--spiffe-id), asks only which pod_identity rule of the config maps this SPIFFE
	// ID and to what, proving it end to end when the Workload API offers an SVID for it.
	SpiffeID string
	// Getenv reads the environment (default os.Getenv): $NODE_NAME for pod identity's node name.
	Getenv func(string) string
}

// Result is what a check found.
type Result struct {
	// Problems is the number of checks that failed; warnings are not counted.
	Problems int
	// Warnings is the number of warnings (pod_identity rules that map too widely).
	Warnings int
}

// OK reports whether every check passed.
func (r Result) OK() bool { return r.Problems == 0 }

// Run loads the config, if any, and checks everything, writing the report to o.Out as it goes. Its error
// is a usage or configuration error (a *cli.ExitError with code 2, or one for cli.Usage) found before any
// check ran; problems found by the checks are counted in the Result.
func Run(ctx context.Context, o Options) (Result, error) {
	var cfg *config.Config
	socket, from := o.WorkloadSocket, "--workload-socket"
	if o.ConfigPath != "" {
		c, err := config.Load(o.ConfigPath)
		if err != nil {
			return Result{}, &cli.ExitError{Code: 2, Err: err}
		}
		cfg = c
		if socket == "" && c.AgentAddress != "" {
			socket, from = c.AgentAddress, "the agent_address key of "+o.ConfigPath
		}
	}
	if o.SpiffeID != "" && (cfg == nil || cfg.PodIdentity == nil) {
		where := "no --config"
		if cfg != nil {
			where = o.ConfigPath + " has no pod_identity block"
		}
		return Result{}, cli.Usage(fmt.Errorf("--spiffe-id %q asks which pod_identity rule maps that ID, but %s", o.SpiffeID, where))
	}
	addr, err := svid.Locate(socket, from)
	if err != nil {
		return Result{}, cli.Usage(err)
	}
	if o.SpiffeID != "" {
		return Result{Problems: checkPodSpiffeID(ctx, o.Out, cfg.PodIdentity, o.SpiffeID, addr)}, nil
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	r := Result{Problems: runChecks(ctx, o.Out, addr, cfg, now, o.Sinks)}
	if cfg != nil && cfg.PodIdentity != nil {
		p, w := podSection(o.Out, cfg.PodIdentity, getenv)
		r.Problems += p
		r.Warnings = w
	}
	return r, nil
}

// rawSVID is one X.509-SVID as the agent sent it, parsed without go-spiffe's validation: check exists to
// explain certificates that validation would reject without saying why.
type rawSVID struct {
	id, hint string
	certs    []*x509.Certificate
	key      crypto.Signer
	keyErr   error
	bundle   []*x509.Certificate
}

// fetchRawSVIDs reads the first X509SVIDResponse of the Workload API at addr.
func fetchRawSVIDs(ctx context.Context, addr string) ([]rawSVID, error) {
	target := addr
	if strings.HasPrefix(addr, "tcp://") {
		target = "passthrough:///" + strings.TrimPrefix(addr, "tcp://")
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true")
	stream, err := workload.NewSpiffeWorkloadAPIClient(conn).FetchX509SVID(ctx, &workload.X509SVIDRequest{})
	if err != nil {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var out []rawSVID
	for i, s := range resp.GetSvids() {
		r := rawSVID{id: s.GetSpiffeId(), hint: s.GetHint()}
		if r.certs, err = x509.ParseCertificates(s.GetX509Svid()); err != nil || len(r.certs) == 0 {
			return nil, fmt.Errorf("SVID %d (%s): certificates do not parse: %v", i+1, r.id, err)
		}
		r.bundle, _ = x509.ParseCertificates(s.GetBundle())
		key, err := x509.ParsePKCS8PrivateKey(s.GetX509SvidKey())
		if err != nil {
			r.keyErr = err
		} else if k, ok := key.(crypto.Signer); ok {
			r.key = k
		}
		out = append(out, r)
	}
	return out, nil
}

// runChecks prints the report and returns the number of problems found.
func runChecks(ctx context.Context, out io.Writer, addr svid.Address, cfg *config.Config, now time.Time, so SinkOptions) int {
	failures := 0
	fmt.Fprintf(out, "Workload API %s\n", addr)
	svids, err := fetchRawSVIDs(ctx, addr.Addr)
	if err != nil && cfg != nil && cfg.PodIdentity != nil && len(cfg.Profiles) == 0 {
		// Pod identity alone does not use the bridge's own Workload API (the daemon does not dial it).
		fmt.Fprintf(out, "  skip cannot fetch X.509-SVIDs (%v): not a problem for this config, which has no profile; pod identity gets the pods' SVIDs from the Delegated Identity API\n",
			strings.ReplaceAll(svid.Diagnose(addr, err).Error(), "\n", " "))
		return checkSinks(ctx, out, cfg, so)
	}
	if err != nil {
		fmt.Fprintf(out, "  FAIL cannot fetch X.509-SVIDs: %v\n", svid.Diagnose(addr, err))
		return 1 + checkSinks(ctx, out, cfg, so)
	}
	fmt.Fprintf(out, "  ok   connected; %d X.509-SVID(s) offered\n", len(svids))
	for i, s := range svids {
		failures += reportSVID(out, i, s, trustAnchorFor(cfg, s), now)
	}
	if cfg == nil {
		return failures
	}
	for _, p := range cfg.Profiles {
		if p.Delegated() {
			failures += checkDelegatedProfile(ctx, out, cfg.DelegatedIdentity.AdminAddress, p, svids, now)
			continue
		}
		failures += checkProfile(ctx, out, p, svids)
	}
	return failures + checkSinks(ctx, out, cfg, so)
}

// checkDelegatedProfile asks the agent's Delegated Identity API for the workload's SVIDs by the
// profile's selectors (naming plainly a missing admin socket, a bridge not in authorized_delegates, or
// selectors that match no entry, with the agent configuration to add), then checks the selected SVID and
// tries one CreateSession with it.
func checkDelegatedProfile(ctx context.Context, out io.Writer, adminAddr string, p config.Profile, own []rawSVID, now time.Time) int {
	fmt.Fprintf(out, "\nProfile %q (node mode: workload_selectors %s via the Delegated Identity API at %s)\n", p.Name, strings.Join(p.WorkloadSelectors, ", "), adminAddr)
	got, err := delegated.Probe(ctx, adminAddr, p.WorkloadSelectors)
	if err != nil {
		fmt.Fprintf(out, "  FAIL %s\n", strings.ReplaceAll(err.Error(), "\n", "\n       "))
		return 1
	}
	ids := make([]string, len(got))
	for i, v := range got {
		ids[i] = v.ID.String()
	}
	fmt.Fprintf(out, "  ok   the agent issues this workload %d X.509-SVID(s): %s\n", len(got), strings.Join(ids, ", "))
	var bundle []*x509.Certificate
	if len(own) > 0 {
		bundle = own[0].bundle // the trust domain's bundle, from the bridge's own Workload API answer
	}
	raw := make([]rawSVID, len(got))
	for i, v := range got {
		raw[i] = rawSVID{id: v.ID.String(), hint: v.Hint, certs: v.Certificates, key: v.PrivateKey, bundle: bundle}
	}
	sel := svid.Selector{ID: p.SpiffeID, Hint: p.Hint}
	chosen, err := sel.Pick(got)
	if err != nil {
		fmt.Fprintf(out, "  FAIL %v: fix spiffe_id/hint\n", err)
		return 1
	}
	failures := 0
	for i := range raw {
		if raw[i].id == chosen.ID.String() && raw[i].hint == chosen.Hint {
			failures += reportSVID(out, i, raw[i], p.TrustAnchorARN, now)
			return failures + checkProfile(ctx, out, p, raw[i:i+1])
		}
	}
	return 1
}

// trustAnchorFor is the trust anchor ARN of the first profile of cfg that selects s, "" without one.
func trustAnchorFor(cfg *config.Config, s rawSVID) string {
	if cfg == nil {
		return ""
	}
	for _, p := range cfg.Profiles {
		if (p.SpiffeID == "" || s.id == p.SpiffeID) && (p.Hint == "" || s.hint == p.Hint) {
			return p.TrustAnchorARN
		}
	}
	return ""
}

func reportSVID(out io.Writer, i int, s rawSVID, trustAnchorARN string, now time.Time) int {
	leaf := s.certs[0]
	alg, algErr := signer.Algorithm(leaf.PublicKey)
	if algErr != nil {
		alg = "unsupported"
	}
	hint := s.hint
	if hint == "" {
		hint = "(none)"
	}
	fmt.Fprintf(out, "\nSVID %d: %s\n  hint %s; key %s (%s); expires %s (in %s); serial %s\n", i+1, s.id, hint,
		keyDescription(leaf), alg, leaf.NotAfter.UTC().Format(time.RFC3339), leaf.NotAfter.Sub(now).Round(time.Second), leaf.SerialNumber)
	problems := Certificate(CertificateInput{Leaf: leaf, Intermediates: s.certs[1:], Key: s.key, Roots: s.bundle, Now: now})
	if s.keyErr != nil {
		problems = append(problems, Problem{Check: "private key", Detail: "the agent sent a key that does not parse as PKCS#8: " + s.keyErr.Error()})
	}
	for _, p := range problems {
		fmt.Fprintf(out, "  FAIL %s\n", p)
	}
	if len(problems) == 0 {
		fmt.Fprintln(out, "  ok   acceptable to Roles Anywhere (key type, v3, CA:FALSE, digitalSignature, validity, chain to the trust domain's bundle)")
	}
	fmt.Fprintln(out, "  Principal tags AWS derives from it (aws:PrincipalTag/…):")
	for _, t := range PrincipalTags(leaf) {
		fmt.Fprintf(out, "    %-18s %s\n", t.Key, t.Value)
	}
	fmt.Fprintln(out, "  A minimal trust policy for a role that admits it:")
	for _, line := range strings.Split(TrustPolicy(trustAnchorARN, s.id), "\n") {
		fmt.Fprintln(out, "    "+line)
	}
	return len(problems)
}

func keyDescription(c *x509.Certificate) string {
	switch c.PublicKeyAlgorithm {
	case x509.RSA, x509.ECDSA:
		if _, err := signer.Algorithm(c.PublicKey); err == nil {
			return c.PublicKeyAlgorithm.String()
		}
	}
	return fmt.Sprintf("%T", c.PublicKey)
}

// checkProfile selects the profile's SVID and tries one CreateSession.
func checkProfile(ctx context.Context, out io.Writer, p config.Profile, svids []rawSVID) int {
	sel := svid.Selector{ID: p.SpiffeID, Hint: p.Hint}
	fmt.Fprintf(out, "\nProfile %q (role %s, SVID %s)\n", p.Name, p.RoleARN, sel)
	var chosen *rawSVID
	for i, s := range svids {
		if (p.SpiffeID == "" || s.id == p.SpiffeID) && (p.Hint == "" || s.hint == p.Hint) {
			chosen = &svids[i]
			break
		}
	}
	if chosen == nil {
		fmt.Fprintf(out, "  FAIL no X.509-SVID matches %s: register an entry for this workload, or fix spiffe_id/hint\n", sel)
		return 1
	}
	client := signer.New(signer.Options{Retry: signer.RetryPolicy{MaxAttempts: 2}})
	in := wiring.Session(p)
	in.Identity = signer.Identity{Leaf: chosen.certs[0], Intermediates: chosen.certs[1:], Key: chosen.key}
	c, err := client.CreateSession(ctx, in)
	if err != nil {
		var api *signer.APIError
		if errors.As(err, &api) {
			fmt.Fprintf(out, "  FAIL CreateSession: %s (HTTP %d)\n       %s\n", api.Type, api.StatusCode, Explain(api.Type, api.Message, chosen.id))
		} else {
			fmt.Fprintf(out, "  FAIL CreateSession: %v\n", err)
		}
		return 1
	}
	fmt.Fprintf(out, "  ok   CreateSession succeeded: %s until %s\n", c.AssumedRoleARN, c.Expiration.UTC().Format(time.RFC3339))
	return checkHops(ctx, out, p, chosen.id, c, readProfileSettings(ctx, out, p, chosen.certs[0]))
}

// profileSettings is what check learned of a profile's trusted identity propagation (TIP).
type profileSettings struct {
	known   bool   // read (from the emulator's get-profile view)
	tipOn   bool   // tipConfiguration status ENABLED
	subject string // aws:OriginIdentity/Subject of the checked SVID's sessions, with TIP on
}

// readProfileSettings reads the profile's TIP and attribute mappings where it can: from the emulator's
// /_emulator/profiles view (the shape of `aws rolesanywhere get-profile`). AWS's GetProfile needs IAM
// credentials the workload's certificate does not give, so against AWS it prints the command to run.
func readProfileSettings(ctx context.Context, out io.Writer, p config.Profile, leaf *x509.Certificate) profileSettings {
	profileID := p.ProfileARN[strings.LastIndex(p.ProfileARN, "/")+1:]
	view, err := emulatorProfile(ctx, p)
	if err != nil {
		fmt.Fprintf(out, "  info trusted identity propagation and attribute mappings are not readable with the workload's certificate: run\n"+
			"         aws rolesanywhere get-profile --profile-id %s --region %s\n"+
			"       and look at tipConfiguration (status ENABLED, subjectSource x509SAN/URI puts the SPIFFE ID in aws:OriginIdentity/Subject) and attributeMappings\n",
			profileID, p.Region)
		return profileSettings{}
	}
	st := profileSettings{known: true}
	if t := view.TipConfiguration; t != nil && t.Status == "ENABLED" {
		st.tipOn = true
		st.subject = x509tags.Map(leaf)[t.SubjectSource]
		fmt.Fprintf(out, "  ok   trusted identity propagation is on: subject source %s, subject type %s; aws:OriginIdentity/Subject = %s\n",
			t.SubjectSource, t.SubjectType, st.subject)
	} else {
		fmt.Fprintf(out, "  warn trusted identity propagation is off for profile %s: no session has an origin identity "+
			"(turn it on: aws rolesanywhere update-profile --profile-id %s --tip-configuration status=ENABLED,subjectSource=x509SAN/URI,subjectType=workload)\n",
			p.ProfileARN, profileID)
	}
	fmt.Fprintln(out, "  Principal tags this profile maps from the SVID (its attribute mappings):")
	for _, t := range x509tags.Of(leaf) {
		field, rest, _ := strings.Cut(t.Key, "/")
		spec, _, _ := strings.Cut(rest, "/")
		for _, m := range view.AttributeMappings {
			for _, r := range m.MappingRules {
				if m.CertificateField == field && r.Specifier == spec {
					fmt.Fprintf(out, "    %-18s %s\n", t.Key, t.Value)
				}
			}
		}
	}
	return st
}

// emulatorProfile reads the profile from the emulator at the profile's endpoint; an error when the
// endpoint is AWS or answers otherwise.
func emulatorProfile(ctx context.Context, p config.Profile) (*emulator.ProfileDetail, error) {
	if p.Endpoint == "" {
		return nil, errors.New("no emulator endpoint")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p.Endpoint, "/")+"/_emulator/profiles?arn="+url.QueryEscape(p.ProfileARN), nil)
	if err != nil {
		return nil, err
	}
	resp, err := signer.DefaultHTTPClient(false).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var views []emulator.ProfileView
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&views); err != nil || len(views) != 1 {
		return nil, fmt.Errorf("not an emulator profiles view: %v", err)
	}
	return &views[0].Profile, nil
}

// checkHops walks the profile's assume_role hops with aws-sdk-go-v2's STS client, printing for each the
// trust policy its role needs and the permission the previous role needs, and the explained AWS error
// of the first hop that fails (the hops after it are printed, not tried).
func checkHops(ctx context.Context, out io.Writer, p config.Profile, spiffeID string, start creds.Credentials, st profileSettings) int {
	hops := wiring.Hops(p.AssumeRole)
	caller, cur := p.RoleARN, start
	failed := 0
	for i, h := range hops {
		tagged := i > 0 && chain.Transitive(hops, i-1)
		fmt.Fprintf(out, "\n  Hop %d: sts:AssumeRole into %s (account %s) as %s\n", i+1, h.RoleARN, chain.AccountOf(h.RoleARN), caller)
		fmt.Fprintf(out, "    Trust policy %s needs (account %s):\n", h.RoleARN, chain.AccountOf(h.RoleARN))
		// With TIP on, the trust policy admits only this workload's origin identity.
		for _, line := range strings.Split(chain.OriginTrustPolicy(caller, h, tagged, st.subject), "\n") {
			fmt.Fprintln(out, "      "+line)
		}
		fmt.Fprintf(out, "    Permission policy %s needs (account %s):\n", caller, chain.AccountOf(caller))
		for _, line := range strings.Split(chain.CallerPolicy(h, tagged), "\n") {
			fmt.Fprintln(out, "      "+line)
		}
		if !st.tipOn && h.SPIFFEIDTag != "" {
			state := "is off for the profile"
			if !st.known {
				state = "may be off for the profile (see get-profile above)"
			}
			fmt.Fprintf(out, "  warn hop %d relies on the %q session tag, but trusted identity propagation %s: any principal allowed "+
				"sts:TagSession on %s can set that tag to any SPIFFE ID, so a policy on aws:RequestTag/%s or aws:PrincipalTag/%s "+
				"trusts whoever holds %s. Turn TIP on (subjectSource x509SAN/URI) and condition the trust on the origin identity instead:\n",
				i+1, h.SPIFFEIDTag, state, h.RoleARN, h.SPIFFEIDTag, h.SPIFFEIDTag, caller)
			for _, line := range strings.Split(chain.OriginTrustPolicy(caller, h, tagged, spiffeID), "\n") {
				fmt.Fprintln(out, "      "+line)
			}
		}
		caller = h.RoleARN
		if failed > 0 {
			fmt.Fprintf(out, "  skip hop %d: not tried (an earlier hop failed)\n", i+1)
			continue
		}
		one := &chain.Chain{Hops: []chain.Hop{h}, STS: &sdksts.Client{MaxAttempts: 2}, Region: stsRegionOf(p, hops, i), AllowHTTP: p.InsecureEndpoint}
		next, err := one.Assume(ctx, cur, spiffeID)
		if err != nil {
			failed++
			var api *chain.APIError
			if errors.As(err, &api) {
				fmt.Fprintf(out, "  FAIL hop %d (%s): %s (HTTP %d): %s\n       %s\n", i+1, h.RoleARN, api.Code, api.StatusCode, api.Message,
					chain.Explain(api.Code, api.Message, cur.AssumedRoleARN, h.RoleARN))
			} else {
				fmt.Fprintf(out, "  FAIL hop %d (%s): %v\n", i+1, h.RoleARN, err)
			}
			continue
		}
		fmt.Fprintf(out, "  ok   hop %d succeeded: %s until %s\n", i+1, next.AssumedRoleARN, next.Expiration.UTC().Format(time.RFC3339))
		cur = next
	}
	return failed
}

// stsRegionOf is the STS region hop i starts from: the last sts_region set before it, else the
// profile's region (the chain passes each hop's region on to the next).
func stsRegionOf(p config.Profile, hops []chain.Hop, i int) string {
	r := p.Region
	for _, h := range hops[:i] {
		if h.STSRegion != "" {
			r = h.STSRegion
		}
	}
	return r
}
