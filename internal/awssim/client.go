package awssim

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// ClientConfig is an aws-sdk-go-v2 configuration that signs as the admin user of
// accountID (AdminCredentials) and sends every call to the simulator served at
// baseURL; see SDKConfig.
func (s *Sim) ClientConfig(ctx context.Context, baseURL, accountID string) (aws.Config, error) {
	ak, sk := s.AdminCredentials(accountID)
	cfg, err := SDKConfig(ctx, baseURL, credentials.NewStaticCredentialsProvider(ak, sk, ""))
	if err != nil {
		return aws.Config{}, fmt.Errorf("awssim: SDK config for account %s: %w", accountID, err)
	}
	return cfg, nil
}

// SDKConfig is an aws-sdk-go-v2 configuration that signs with creds and sends every
// call to the simulator served at baseURL, in region us-east-1. It reads no shared
// config or credentials file, so a developer's ~/.aws does not leak in, and keeps the
// SDK's own HTTP client (LoadDefaultConfig refuses any other when AWS_CA_BUNDLE is
// set). Callers may replace the retryer or the credentials of the copy they get.
func SDKConfig(ctx context.Context, baseURL string, creds aws.CredentialsProvider) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(creds),
		config.WithBaseEndpoint(baseURL),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load SDK config: %w", err)
	}
	return cfg, nil
}
