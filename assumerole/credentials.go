// Package assumerole is the drop-in for spiffe-aws-assume-role: its two commands, with its flags, so that
// a credential_process line needs only its program name replaced.
//
//   - credentials: a JWT-SVID for an audience from the Workload API, exchanged with STS
//     AssumeRoleWithWebIdentity (Options and Credentials here);
//   - rolesanywhere: the Roles Anywhere one-shot of package credentialprocess, its --session-duration
//     written in ISO 8601 by default (SessionDurationDefault).
//
// Both accept spiffe-aws-assume-role's telemetry and Sentry flags and ignore them (IgnoredFlags). The
// commands print through credentialprocess.Output: the credential_process JSON, and only that, on stdout.
package assumerole

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/awsarn"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/sessionname"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
)

// SessionDurationDefault is the default of --session-duration in spiffe-aws-assume-role's form (ISO 8601).
const SessionDurationDefault = "PT1H"

// Options are the flags of spiffe-aws-assume-role's credentials command. Their errors name the flags
// (--audience, --role-arn, --workload-socket).
type Options struct {
	// Audience is the JWT-SVID's audience (required; the role's trust policy checks it).
	Audience string
	// SPIFFEID selects the JWT-SVID (default: the workload's first).
	SPIFFEID string
	// RoleARN is the IAM role to assume (required).
	RoleARN string
	// WorkloadSocket is the Workload API address or socket path; default $SPIFFE_ENDPOINT_SOCKET, then
	// SPIRE's default.
	WorkloadSocket string
	// SessionName is the role session name (default: derived from the SPIFFE ID).
	SessionName string
	// STSEndpoint is the STS endpoint URL (default: the regional STS endpoint).
	STSEndpoint string
	// STSRegion is the STS region (default $AWS_REGION, then us-east-1).
	STSRegion string
	// Duration is the session duration, already checked against its range
	// (credentialprocess.SessionRange) as the flag was parsed.
	Duration time.Duration
}

// validate checks every flag before anything is fetched: its errors are usage errors (exit status 2),
// with every missing required flag listed at once.
func (o *Options) validate() (time.Duration, svid.Address, error) {
	if err := cli.MissingFlags([]string{"audience", "role-arn"}, []string{o.Audience, o.RoleARN}); err != nil {
		return 0, svid.Address{}, err
	}
	if _, err := awsarn.Role("--role-arn", o.RoleARN); err != nil {
		return 0, svid.Address{}, cli.Usage(err)
	}
	d := o.Duration // checked against its range as the flag was parsed
	addr, err := svid.Locate(o.WorkloadSocket, "--workload-socket")
	if err != nil {
		return 0, svid.Address{}, cli.Usage(err)
	}
	return d, addr, nil
}

// Credentials fetches the JWT-SVID and exchanges it with STS AssumeRoleWithWebIdentity: the fetch of
// credentialprocess.Output.Print.
func (o *Options) Credentials(ctx context.Context, log hclog.Logger) (creds.Credentials, error) {
	d, addr, err := o.validate()
	if err != nil {
		return creds.Credentials{}, err
	}
	token, id, err := svid.FetchJWT(ctx, addr.Addr, o.Audience, o.SPIFFEID)
	if err != nil {
		return creds.Credentials{}, fmt.Errorf("fetching a JWT-SVID for audience %q: %w", o.Audience, svid.Diagnose(addr, err))
	}
	name := o.SessionName
	if name == "" {
		name = sessionNameFor(id)
	}
	region := o.STSRegion
	if region == "" {
		region = os.Getenv("AWS_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	log.Debug("assuming role with a JWT-SVID", "spiffe_id", id, "role", o.RoleARN, "session_name", name, "region", region)
	client := sts.NewFromConfig(aws.Config{Region: region, Credentials: aws.AnonymousCredentials{}, AppID: "spiffe-aws-bridge"}, func(so *sts.Options) {
		if o.STSEndpoint != "" {
			so.BaseEndpoint = aws.String(o.STSEndpoint)
		}
	})
	out, err := client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(o.RoleARN),
		RoleSessionName:  aws.String(name),
		WebIdentityToken: aws.String(token),
		DurationSeconds:  aws.Int32(int32(d / time.Second)),
	})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) {
			return creds.Credentials{}, fmt.Errorf("sts AssumeRoleWithWebIdentity: %s: %s", api.ErrorCode(), api.ErrorMessage())
		}
		return creds.Credentials{}, fmt.Errorf("sts AssumeRoleWithWebIdentity: %w", err)
	}
	if out.Credentials == nil {
		return creds.Credentials{}, errors.New("sts AssumeRoleWithWebIdentity: the response holds no credentials")
	}
	c := creds.Credentials{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
		Expiration:      aws.ToTime(out.Credentials.Expiration).UTC(),
	}
	if out.AssumedRoleUser != nil {
		c.AssumedRoleARN = aws.ToString(out.AssumedRoleUser.Arn)
		c.AssumedRoleID = aws.ToString(out.AssumedRoleUser.AssumedRoleId)
	}
	return c, nil
}

// sessionNameFor derives a role session name from a SPIFFE ID within STS's rules, injectively
// (internal/sessionname): spiffe://example.org/ns/prod/app becomes example.org@ns.prod.app, as
// spiffe-aws-assume-role names it; an ID that form cannot say exactly (a "." in a path segment, a
// character STS does not allow, more than 64 characters) gets "-" and 16 hex digits of its SHA-256
// appended, so that distinct IDs stay distinct in CloudTrail.
func sessionNameFor(id string) string { return sessionname.FromSPIFFEID(id) }
