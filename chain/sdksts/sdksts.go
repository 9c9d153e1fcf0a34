// Package sdksts implements chain.STS with aws-sdk-go-v2's STS client: the daemon's and the full
// binary's way of making role-chaining hops (the lean credential-process binary uses chain.Query).
package sdksts

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
)

// Client is a chain.STS backed by aws-sdk-go-v2.
type Client struct {
	// HTTPClient sends the requests; default the SDK's.
	HTTPClient *http.Client
	// MaxAttempts is the SDK's attempts per call (its standard retryer); default 1, as the refresher
	// retries with its own backoff.
	MaxAttempts int
}

// AssumeRole implements chain.STS.
func (c *Client) AssumeRole(ctx context.Context, in chain.Input) (creds.Credentials, error) {
	o := sts.Options{
		Region:           in.Region,
		BaseEndpoint:     aws.String(in.Endpoint),
		Credentials:      awscreds.NewStaticCredentialsProvider(in.Caller.AccessKeyID, in.Caller.SecretAccessKey, in.Caller.SessionToken),
		RetryMaxAttempts: max(1, c.MaxAttempts),
	}
	if c.HTTPClient != nil {
		o.HTTPClient = c.HTTPClient
	}
	req := &sts.AssumeRoleInput{RoleArn: aws.String(in.RoleARN), RoleSessionName: aws.String(in.RoleSessionName),
		TransitiveTagKeys: in.TransitiveTagKeys}
	if in.DurationSeconds != 0 {
		req.DurationSeconds = aws.Int32(int32(in.DurationSeconds))
	}
	if in.ExternalID != "" {
		req.ExternalId = aws.String(in.ExternalID)
	}
	if in.Policy != "" {
		req.Policy = aws.String(in.Policy)
	}
	for _, a := range in.PolicyARNs {
		req.PolicyArns = append(req.PolicyArns, types.PolicyDescriptorType{Arn: aws.String(a)})
	}
	for _, t := range in.Tags {
		req.Tags = append(req.Tags, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	out, err := sts.New(o).AssumeRole(ctx, req)
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) {
			e := &chain.APIError{Code: api.ErrorCode(), Message: api.ErrorMessage()}
			var re *awshttp.ResponseError
			if errors.As(err, &re) {
				e.StatusCode, e.RequestID = re.HTTPStatusCode(), re.ServiceRequestID()
			}
			return creds.Credentials{}, e
		}
		return creds.Credentials{}, fmt.Errorf("sts: %w", err)
	}
	if out.Credentials == nil || out.Credentials.Expiration == nil {
		return creds.Credentials{}, errors.New("sts: AssumeRole answer lacks credentials")
	}
	cr := creds.Credentials{AccessKeyID: aws.ToString(out.Credentials.AccessKeyId), SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken: aws.ToString(out.Credentials.SessionToken), Expiration: *out.Credentials.Expiration}
	if u := out.AssumedRoleUser; u != nil {
		cr.AssumedRoleARN, cr.AssumedRoleID = aws.ToString(u.Arn), aws.ToString(u.AssumedRoleId)
	}
	return cr, nil
}
