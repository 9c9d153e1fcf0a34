package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/credentialprocess"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/awsarn"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/duration"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/sessionname"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
)

// jwtOptions are the flags of spiffe-aws-assume-role's credentials command.
type jwtOptions struct {
	audience, spiffeID, roleARN, workloadSocket, sessionName string
	stsEndpoint, stsRegion                                   string
	duration                                                 *duration.Value
	out                                                      credentialprocess.Output
}

func newCredentialsCommand(stdout, stderr io.Writer) *cobra.Command {
	o := jwtOptions{out: credentialprocess.Output{Stdout: stdout, Stderr: stderr}, duration: duration.NewValue("PT1H", credentialprocess.SessionRange)}
	var ignored ignoredFlags
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "spiffe-aws-assume-role's credentials command: JWT-SVID → STS AssumeRoleWithWebIdentity → credential_process JSON",
		Long: `Drop-in for "spiffe-aws-assume-role credentials": fetch a JWT-SVID for --audience from the Workload
API, exchange it with STS AssumeRoleWithWebIdentity for --role-arn, and print the credentials in the
credential_process format. The flags are spiffe-aws-assume-role's; its telemetry and Sentry flags are
accepted and ignored.

  [profile app]
  credential_process = spiffe-aws-bridge credentials --audience sts.amazonaws.com --spiffe-id spiffe://example.org/app --role-arn R`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ignored.warn(stderr)
			return o.out.Print(cmd.Context(), o.assume)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.audience, "audience", "", "audience of the JWT-SVID (required; the role's trust policy checks it)")
	f.StringVar(&o.spiffeID, "spiffe-id", "", "SPIFFE ID of the JWT-SVID (default: the workload's first)")
	f.StringVar(&o.roleARN, "role-arn", "", "IAM role ARN to assume (required)")
	f.StringVar(&o.workloadSocket, "workload-socket", "", "Workload API address or socket path; default $SPIFFE_ENDPOINT_SOCKET, then unix:///tmp/spire-agent/public/api.sock")
	f.StringVar(&o.sessionName, "session-name", "", "role session name (default: derived from the SPIFFE ID)")
	f.StringVar(&o.stsEndpoint, "sts-endpoint", "", "STS endpoint URL (default: the regional STS endpoint)")
	f.StringVar(&o.stsRegion, "sts-region", "", "STS region (default $AWS_REGION, then us-east-1)")
	f.Var(o.duration, "session-duration", "session duration: ISO 8601 (PT1H), seconds (3600) or a Go duration (1h); 15m to 12h")
	o.out.AddFlags(f)
	ignored.addFlags(f)
	return cmd
}

// validate checks every flag before anything is fetched: its errors are usage errors (exit status 2),
// with every missing required flag listed at once.
func (o *jwtOptions) validate() (time.Duration, svid.Address, error) {
	if err := cli.MissingFlags([]string{"audience", "role-arn"}, []string{o.audience, o.roleARN}); err != nil {
		return 0, svid.Address{}, err
	}
	if _, err := awsarn.Role("--role-arn", o.roleARN); err != nil {
		return 0, svid.Address{}, cli.Usage(err)
	}
	d := o.duration.Duration() // checked against its range as the flag was parsed
	addr, err := svid.Locate(o.workloadSocket, "--workload-socket")
	if err != nil {
		return 0, svid.Address{}, cli.Usage(err)
	}
	return d, addr, nil
}

// assume fetches the JWT-SVID and calls STS.
func (o *jwtOptions) assume(ctx context.Context, log hclog.Logger) (creds.Credentials, error) {
	d, addr, err := o.validate()
	if err != nil {
		return creds.Credentials{}, err
	}
	token, id, err := svid.FetchJWT(ctx, addr.Addr, o.audience, o.spiffeID)
	if err != nil {
		return creds.Credentials{}, fmt.Errorf("fetching a JWT-SVID for audience %q: %w", o.audience, svid.Diagnose(addr, err))
	}
	name := o.sessionName
	if name == "" {
		name = sessionNameFor(id)
	}
	region := o.stsRegion
	if region == "" {
		region = os.Getenv("AWS_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	log.Debug("assuming role with a JWT-SVID", "spiffe_id", id, "role", o.roleARN, "session_name", name, "region", region)
	client := sts.NewFromConfig(aws.Config{Region: region, Credentials: aws.AnonymousCredentials{}, AppID: "spiffe-aws-bridge"}, func(so *sts.Options) {
		if o.stsEndpoint != "" {
			so.BaseEndpoint = aws.String(o.stsEndpoint)
		}
	})
	out, err := client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(o.roleARN),
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
