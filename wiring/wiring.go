// Package wiring converts a validated config into the options of the runtime packages: a profile's
// assume_role blocks into chain hops, its chain into a session creator, its Roles Anywhere settings into
// a CreateSession input. Only the daemon and the commands (the one-shots, check, dev) use it; the runtime
// packages (svid, signer, chain, bridge and its sinks) never see the file format, so the engine does not
// depend on the configuration that drives it. It stays light (config and chain only): the lean
// spiffe-aws-credential-process binary links it, and must link nothing of the daemon or the refresher.
package wiring

import (
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
)

// Hops converts a profile's assume_role blocks into the chain's hops, in order.
func Hops(blocks []config.AssumeRole) []chain.Hop {
	var out []chain.Hop
	for _, a := range blocks {
		out = append(out, chain.Hop{RoleARN: a.RoleARN, ExternalID: a.ExternalID, RoleSessionName: a.RoleSessionName,
			Duration: a.Duration, SessionTags: a.SessionTags, TransitiveTagKeys: a.TransitiveTagKeys, Policy: a.Policy,
			PolicyARNs: a.PolicyARNs, SPIFFEIDTag: a.SPIFFEIDTag, STSRegion: a.STSRegion, STSEndpoint: a.STSEndpoint})
	}
	return out
}

// Creator is the profile's session creator: rolesAnywhere's CreateSession, then the profile's
// assume_role hops through sts when it has any.
func Creator(rolesAnywhere chain.SessionCreator, sts chain.STS, pc config.Profile) chain.SessionCreator {
	if len(pc.AssumeRole) == 0 {
		return rolesAnywhere
	}
	return &chain.Creator{RolesAnywhere: rolesAnywhere, Chain: &chain.Chain{
		Hops: Hops(pc.AssumeRole), STS: sts, Region: pc.Region, AllowHTTP: pc.InsecureEndpoint,
	}}
}

// Session is the profile's CreateSession input without the signing identity (the refresher, or check, adds
// the SVID it signs with).
func Session(pc config.Profile) signer.CreateSessionInput {
	return signer.CreateSessionInput{
		TrustAnchorARN:  pc.TrustAnchorARN,
		ProfileARN:      pc.ProfileARN,
		RoleARN:         pc.RoleARN,
		Region:          pc.Region,
		Endpoint:        pc.Endpoint,
		AllowHTTP:       pc.InsecureEndpoint,
		DurationSeconds: int(pc.SessionDuration / time.Second),
		RoleSessionName: pc.RoleSessionName,
	}
}
