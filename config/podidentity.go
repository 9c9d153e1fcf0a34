package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/idpattern"
)

// Defaults and limits of the pod_identity block.
const (
	// DefaultPodIdentityListen is the link-local address EKS Pod Identity uses, which every AWS SDK
	// accepts as a container-credentials endpoint over plain http.
	DefaultPodIdentityListen = "169.254.170.23:80"
	// PodIdentityIPv6Address is EKS Pod Identity's IPv6 address (a unique local address AWS SDKs also
	// accept over plain http).
	PodIdentityIPv6Address = "fd00:ec2::23"
	// DefaultPodIdentityInterface is the dummy link the listen addresses are added to.
	DefaultPodIdentityInterface = "spiffe-aws-pod0"
	// DefaultPodIdentityAudience is the audience of the projected service-account tokens.
	DefaultPodIdentityAudience = "spiffe-aws-bridge"
	// DefaultTokenCacheTTL bounds how long a verified token is trusted without asking the API server
	// again (never longer than the token itself lives).
	DefaultTokenCacheTTL = time.Minute
	MaxTokenCacheTTL     = 10 * time.Minute
)

// PodIdentity is the pod_identity block: the bridge serves every pod of its Kubernetes node the AWS
// credentials of the pod's own SPIFFE ID, on the container-credentials address AWS SDKs trust.
type PodIdentity struct {
	// Listen are the "host:port" addresses of the credentials endpoint (default 169.254.170.23:80);
	// each host is an IP literal, link-local, loopback or fd00:ec2::23 unless AllowAnyAddress.
	Listen []string
	// AllowAnyAddress permits listen addresses that are neither link-local nor loopback (other hosts
	// could then ask for the node's pods' credentials with a stolen token).
	AllowAnyAddress bool
	// VerifySourceAddress serves a pod's request only from the pod's own IPs (a host-network pod's: from
	// the node's addresses); default true. Off for CNIs that SNAT pod traffic to node-local addresses.
	VerifySourceAddress bool
	// Interface is the dummy link the listen addresses are added to when the host has them nowhere
	// (created when missing); "" leaves the host's addresses alone.
	Interface string
	// NodeName is this node's Kubernetes name; "" means $NODE_NAME, read when the daemon starts.
	NodeName string
	// Audience is the audience the pods' projected service-account tokens must carry.
	Audience string
	// Kubeconfig is a kubeconfig file for the API server; "" means the in-cluster config.
	Kubeconfig string
	// TokenCacheTTL bounds how long a verified token is cached (never past its own expiry).
	TokenCacheTTL time.Duration
	// Rules map a pod's SPIFFE ID to its session, in file order; the first that matches wins. Each is a
	// Profile holding only session settings: SpiffeID is the pattern ("{name}" captures one path
	// segment), RoleARN, RoleSessionName and the assume_role hops' RoleARN and RoleSessionName are
	// templates that may use the pattern's captures; Name is "rule[i]"; no sinks.
	Rules []Profile
	// Pos is where the block starts, "file:line".
	Pos string
}

// Equal reports whether p and o configure the same thing, positions aside.
func (p *PodIdentity) Equal(o *PodIdentity) bool {
	if p == nil || o == nil {
		return p == o
	}
	return reflect.DeepEqual(p.withoutPos(), o.withoutPos())
}

func (p *PodIdentity) withoutPos() *PodIdentity {
	out := *p
	out.Pos = ""
	out.Rules = append([]Profile(nil), p.Rules...)
	for i := range out.Rules {
		out.Rules[i].Pos = ""
	}
	return &out
}

// ruleScope is the pod_identity rule being decoded.
type ruleScope struct {
	captures []string
}

var (
	podIdentitySchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "listen"}, {Name: "allow_any_address"}, {Name: "interface"}, {Name: "node_name"},
			{Name: "audience"}, {Name: "kubeconfig"}, {Name: "token_cache_ttl"}, {Name: "verify_source_address"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "rule"}},
	}
	ruleSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "spiffe_id"},
			{Name: "trust_anchor_arn"}, {Name: "profile_arn"}, {Name: "role_arn"}, {Name: "region"},
			{Name: "session_duration"}, {Name: "role_session_name"},
			{Name: "endpoint"}, {Name: "insecure_endpoint"}, {Name: "on_identity_loss"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "refresh"}, {Type: "assume_role"}},
	}
)

// template checks value, an attribute that may hold "{name}" placeholders inside a pod_identity rule,
// and returns it with every placeholder filled with a sample capture, to be checked as a plain value.
// Outside a rule a placeholder is just text (and fails the caller's own check). It reports false when a
// placeholder is not one of the rule's captures (already reported).
func (d *decoder) template(s *scope, a *hcl.Attribute, value string) (string, bool) {
	if d.rule == nil {
		return value, true
	}
	if err := idpattern.Check(value, d.rule.captures); err != nil {
		s.errAt(a, "%s %q: %v", s.name(a.Name), value, err)
		return "", false
	}
	return idpattern.Sample(value), true
}

func (d *decoder) podIdentity(b *hcl.Block) *PodIdentity {
	s := d.content(b.Body, podIdentitySchema, "", "pod_identity.", b.DefRange)
	pi := &PodIdentity{
		VerifySourceAddress: true,
		Interface:           DefaultPodIdentityInterface,
		Audience:            DefaultPodIdentityAudience,
		TokenCacheTTL:       DefaultTokenCacheTTL,
		Pos:                 fmt.Sprintf("%s:%d", b.DefRange.Filename, b.DefRange.Start.Line),
	}
	if d.delegated == nil {
		d.errorf(b.DefRange, `pod_identity needs a delegated_identity { admin_address = "unix:///…" } block: the pods' SVIDs come from the SPIRE agent's Delegated Identity API`)
	}
	s.boolean("allow_any_address", &pi.AllowAnyAddress)
	s.boolean("verify_source_address", &pi.VerifySourceAddress)
	listen := []string{DefaultPodIdentityListen}
	if a, ok := s.strList("listen", `["169.254.170.23:80", "[fd00:ec2::23]:80"]`, &listen); ok {
		if len(listen) == 0 {
			s.errAt(a, "pod_identity.listen must name at least one address, e.g. [%q]", DefaultPodIdentityListen)
		}
		seen := map[string]bool{}
		for i, l := range listen {
			addr, err := checkPodListen(l, pi.AllowAnyAddress)
			if err != nil {
				s.errAt(a, "pod_identity.listen[%d] %q: %v", i, l, err)
				continue
			}
			if seen[addr.String()] {
				s.errAt(a, "pod_identity.listen[%d] %q is listed twice", i, l)
			}
			seen[addr.String()] = true
			if addr.Port() != 0 {
				d.binds = append(d.binds, bindUse{host: addr.Addr().String(), port: int(addr.Port()), block: "pod_identity", rng: a.Expr.Range()})
			}
		}
	} else if a == nil {
		d.binds = append(d.binds, bindUse{host: "169.254.170.23", port: 80, block: "pod_identity", rng: b.DefRange})
	}
	pi.Listen = listen
	if a, ok := s.str("interface", &pi.Interface); ok && pi.Interface != "" && !validInterfaceName(pi.Interface) {
		s.errAt(a, "pod_identity.interface %q is not a network interface name (1–15 characters, no \"/\", \":\" or white space)", pi.Interface)
	}
	if a, ok := s.str("node_name", &pi.NodeName); ok && pi.NodeName != "" && !validNodeName(pi.NodeName) {
		s.errAt(a, "pod_identity.node_name %q is not a Kubernetes node name (a DNS subdomain: lower-case letters, digits, \"-\" and \".\")", pi.NodeName)
	}
	if a, ok := s.str("audience", &pi.Audience); ok && strings.TrimSpace(pi.Audience) == "" {
		s.errAt(a, "pod_identity.audience must not be empty")
	}
	if a, ok := s.str("kubeconfig", &pi.Kubeconfig); ok && pi.Kubeconfig != "" {
		if !filepath.IsAbs(pi.Kubeconfig) {
			s.errAt(a, "pod_identity.kubeconfig %q must be an absolute path (or \"\" for the in-cluster config)", pi.Kubeconfig)
		}
	}
	s.duration("token_cache_ttl", &pi.TokenCacheTTL, time.Second, MaxTokenCacheTTL, "1s–10m")

	for _, rb := range s.blocks {
		if rb.Type == "rule" {
			pi.Rules = append(pi.Rules, d.podRule(rb, len(pi.Rules)))
		}
	}
	if len(pi.Rules) == 0 {
		d.errorf(b.DefRange, "pod_identity needs at least one rule { spiffe_id = \"spiffe://example.org/ns/{ns}/sa/{sa}\" … } block: without one no pod gets credentials")
	}
	return pi
}

// podRule decodes the i-th rule block of pod_identity.
func (d *decoder) podRule(b *hcl.Block, i int) Profile {
	name := fmt.Sprintf("rule[%d]", i)
	prefix := fmt.Sprintf("pod_identity.%s: ", name)
	s := d.content(b.Body, ruleSchema, prefix, "", b.DefRange)
	p := Profile{
		Name:            name,
		SessionDuration: DefaultSessionDuration,
		Refresh:         Refresh{RotationSpread: DefaultRotationSpread, JitterFraction: DefaultJitterFraction},
		OnIdentityLoss:  DefaultOnIdentityLoss,
		Pos:             fmt.Sprintf("%s:%d", b.DefRange.Filename, b.DefRange.Start.Line),
	}
	// While the pattern is missing or broken (reported) its captures are unknown: check the templates
	// as if every placeholder were captured, rather than report each one again.
	rs := &ruleScope{captures: allPlaceholders(s)}
	if !s.present("spiffe_id") {
		s.d.errorf(b.DefRange, "%sspiffe_id is required: the SPIFFE ID pattern of the pods the rule serves, e.g. \"spiffe://example.org/ns/{ns}/sa/{sa}\"", prefix)
	} else if a, ok := s.str("spiffe_id", &p.SpiffeID); ok {
		if pat, err := idpattern.Compile(p.SpiffeID); err != nil {
			s.errAt(a, "spiffe_id %v", err)
		} else {
			rs.captures = pat.Captures()
		}
	}
	d.rule = rs
	defer func() { d.rule = nil }()
	d.sessionSettings(s, prefix, &p)
	return p
}

// allPlaceholders are the placeholders of every attribute of s, for checking a rule whose pattern is
// broken without a second error per placeholder.
func allPlaceholders(s *scope) []string {
	var out []string
	for _, a := range s.attrs {
		if v, diags := safeValue(a.Expr); !diags.HasErrors() && !v.IsNull() && v.Type() == cty.String {
			out = append(out, idpattern.Placeholders(v.AsString())...)
		}
	}
	return out
}

// checkPodListen parses a pod_identity listen address: an IP literal and a port, the IP link-local,
// loopback or EKS's IPv6 address unless allowAny.
func checkPodListen(l string, allowAny bool) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(l)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("not host:port (write IPv6 as \"[fd00:ec2::23]:80\"): %w", err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("host %q must be an IP address without a zone, such as 169.254.170.23", host)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q must be 0–65535 (0 picks a free one, for tests)", port)
	}
	ip = ip.Unmap()
	if ip.IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("%s would serve every pod's credentials on every address of the node, to other hosts too; name the link-local address pods use, such as 169.254.170.23", host)
	}
	local := ip.IsLinkLocalUnicast() || ip.IsLoopback() || ip == netip.MustParseAddr(PodIdentityIPv6Address)
	if !local && !allowAny {
		return netip.AddrPort{}, fmt.Errorf("%s is neither link-local nor loopback, so other hosts could reach it; set allow_any_address = true only when the network keeps them out", ip)
	}
	return netip.AddrPortFrom(ip, uint16(n)), nil
}

func validInterfaceName(s string) bool {
	return len(s) >= 1 && len(s) <= 15 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n\r")
}

func validNodeName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
