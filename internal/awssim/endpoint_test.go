package awssim_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

// TestStandardEndpointVariable checks that unmodified clients reach every
// service through AWS_ENDPOINT_URL alone.
func TestStandardEndpointVariable(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	e.sim.CreateRootKey(prodID, time.Time{})
	url := e.sim.CreateQueue(mgmtID, "events")
	e.sim.SendMessage(url, "hi")
	t.Setenv("AWS_ENDPOINT_URL", e.url)
	t.Setenv("AWS_REGION", "us-east-1")
	for _, v := range []string{"AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_ORGANIZATIONS", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"} {
		t.Setenv(v, "")
	}
	ak, sk := e.sim.AdminCredentials(mgmtID)
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, "")))
	if err != nil {
		t.Fatal(err)
	}
	c := ctx(t)
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(c, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != mgmtID {
		t.Fatalf("sts: %v %v", id, err)
	}
	if _, err := iam.NewFromConfig(cfg).GetAccountSummary(c, &iam.GetAccountSummaryInput{}); err != nil {
		t.Fatalf("iam: %v", err)
	}
	if _, err := organizations.NewFromConfig(cfg).ListAccounts(c, &organizations.ListAccountsInput{}); err != nil {
		t.Fatalf("organizations: %v", err)
	}
	out, err := sqs.NewFromConfig(cfg).ReceiveMessage(c, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("sqs: %v %v", out, err)
	}
}
