package remediator

// Deletion of root access keys through sts:AssumeRoot: opt-in (Config.AssumeRoot),
// member accounts of an Organization only, never the management account, and only
// after an approval. The remediator verifies the deletion with a check like any other.

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/rootwarden/rootwarden/internal/model"
)

// RootKeyDeleter deletes the root user's access keys of one member account and
// returns the ids of the keys it deleted.
type RootKeyDeleter interface {
	DeleteRootKeys(ctx context.Context, account string) ([]string, error)
}

// DeleteRootCredentialsPolicy is the task policy that lets a root session list and
// delete the root user's access keys.
const DeleteRootCredentialsPolicy = "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials"

// AWSRootKeyDeleter deletes root keys with the real SDK: sts:AssumeRoot with the base
// credentials (the management account or the IAM delegated administrator), then
// iam:ListAccessKeys and iam:DeleteAccessKey as the member's root for 900 seconds.
type AWSRootKeyDeleter struct {
	cfg aws.Config
}

var _ RootKeyDeleter = (*AWSRootKeyDeleter)(nil)

// NewAWSRootKeyDeleter builds the deleter from the base AWS configuration.
func NewAWSRootKeyDeleter(cfg aws.Config) *AWSRootKeyDeleter { return &AWSRootKeyDeleter{cfg: cfg} }

// DeleteRootKeys implements RootKeyDeleter.
func (d *AWSRootKeyDeleter) DeleteRootKeys(ctx context.Context, account string) ([]string, error) {
	out, err := sts.NewFromConfig(d.cfg).AssumeRoot(ctx, &sts.AssumeRootInput{
		TargetPrincipal: aws.String(account),
		TaskPolicyArn:   &ststypes.PolicyDescriptorType{Arn: aws.String(DeleteRootCredentialsPolicy)},
		DurationSeconds: aws.Int32(900),
	})
	if err != nil {
		return nil, awsError(err, "assume root of %s", account)
	}
	cr := out.Credentials
	if cr == nil || cr.AccessKeyId == nil || cr.SecretAccessKey == nil {
		return nil, model.Errorf(model.CodeInternal, "assume root of %s: no credentials in the answer", account)
	}
	rootCfg := d.cfg.Copy()
	rootCfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
		*cr.AccessKeyId, *cr.SecretAccessKey, aws.ToString(cr.SessionToken)))
	client := iam.NewFromConfig(rootCfg)
	var ids []string
	p := iam.NewListAccessKeysPaginator(client, &iam.ListAccessKeysInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, awsError(err, "list root access keys of %s", account)
		}
		for _, k := range page.AccessKeyMetadata {
			if k.AccessKeyId != nil {
				ids = append(ids, *k.AccessKeyId)
			}
		}
	}
	var deleted []string
	for _, id := range ids {
		if _, err := client.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(id)}); err != nil {
			var nf interface{ ErrorCode() string }
			if errors.As(err, &nf) && nf.ErrorCode() == "NoSuchEntity" {
				continue // already gone
			}
			return deleted, awsError(err, "delete root access key %s of %s", id, account)
		}
		deleted = append(deleted, id)
	}
	return deleted, nil
}

// awsError names the operation and classifies an AWS error; it carries AWS's code and
// message only (never credentials).
func awsError(err error, format string, args ...any) error {
	op := fmt.Sprintf(format, args...)
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := model.CodeInvalid
		switch ae.ErrorCode() {
		case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation":
			code = model.CodeUnauthorized
		case "Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable", "InternalFailure":
			code = model.CodeTransient
		}
		return model.Errorf(code, "%s: %s: %s", op, ae.ErrorCode(), ae.ErrorMessage())
	}
	return model.Wrap(model.CodeTransient, err, "%s", op)
}
