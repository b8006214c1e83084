package awssim_test

import (
	"context"
	"strings"
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

// TestClientConfigSignsAsTheAccountAdmin checks the SDK config tests use: the
// account's admin user, region us-east-1, every call to the simulator.
func TestClientConfigSignsAsTheAccountAdmin(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	cfg, err := e.sim.ClientConfig(ctx(t), e.url, prodID)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "us-east-1" || aws.ToString(cfg.BaseEndpoint) != e.url {
		t.Errorf("region %q, endpoint %q", cfg.Region, aws.ToString(cfg.BaseEndpoint))
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != prodID || !strings.HasSuffix(aws.ToString(id.Arn), ":user/rootwarden-admin") {
		t.Fatalf("GetCallerIdentity = %+v, %v", id, err)
	}
}
