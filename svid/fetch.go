package svid

import (
	"context"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// FetchX509 fetches the workload's X.509-SVIDs once from the Workload API at addr and returns the one
// sel picks (a *NotFoundError lists the offered IDs and hints otherwise). ctx bounds the call.
func FetchX509(ctx context.Context, addr string, sel Selector) (*SVID, error) {
	svids, err := workloadapi.FetchX509SVIDs(ctx, workloadapi.WithAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("fetch X.509-SVID from %s: %w", addr, err)
	}
	all := make([]*SVID, 0, len(svids))
	for _, v := range svids {
		all = append(all, fromX509SVID(v))
	}
	return sel.pick(all)
}

// FetchJWT fetches a JWT-SVID for audience from the Workload API at addr; spiffeID, if set, asks for
// that identity's token. It returns the token and the SPIFFE ID it was issued to.
func FetchJWT(ctx context.Context, addr, audience, spiffeID string) (token, id string, err error) {
	if audience == "" {
		return "", "", fmt.Errorf("fetch JWT-SVID: an audience is required")
	}
	params := jwtsvid.Params{Audience: audience}
	if spiffeID != "" {
		sub, err := spiffeid.FromString(spiffeID)
		if err != nil {
			return "", "", fmt.Errorf("fetch JWT-SVID: invalid SPIFFE ID %q: %w", spiffeID, err)
		}
		params.Subject = sub
	}
	c, err := workloadapi.New(ctx, workloadapi.WithAddr(addr))
	if err != nil {
		return "", "", fmt.Errorf("fetch JWT-SVID from %s: %w", addr, err)
	}
	defer c.Close()
	s, err := c.FetchJWTSVID(ctx, params)
	if err != nil {
		return "", "", fmt.Errorf("fetch JWT-SVID for audience %q from %s: %w", audience, addr, err)
	}
	return s.Marshal(), s.ID.String(), nil
}

// FetchJWTBundles fetches the JWT bundles (JWKS per trust domain) from the Workload API at addr.
func FetchJWTBundles(ctx context.Context, addr string) (*jwtbundle.Set, error) {
	set, err := workloadapi.FetchJWTBundles(ctx, workloadapi.WithAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("fetch JWT bundles from %s: %w", addr, err)
	}
	return set, nil
}
