package awssim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

// A management account and a member with a root key, checked through a role
// with the real SDK.
func Example() {
	sim := awssim.New(awssim.Options{})
	sim.AddAccount(awssim.Account{ID: "111111111111", Name: "management", Management: true})
	sim.AddAccount(awssim.Account{ID: "222222222222", Name: "prod"})
	sim.EnableOrganization("111111111111")
	sim.CreateRootKey("222222222222", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	srv := sim.Start()
	defer srv.Close()

	ak, sk := sim.AdminCredentials("111111111111")
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, "")))
	if err != nil {
		panic(err)
	}
	cfg.BaseEndpoint = aws.String(srv.URL) // or AWS_ENDPOINT_URL=srv.URL

	role, err := sts.NewFromConfig(cfg).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"),
		RoleSessionName: aws.String("rootwarden"),
	})
	if err != nil {
		panic(err)
	}
	member := cfg.Copy()
	member.Credentials = credentials.NewStaticCredentialsProvider(*role.Credentials.AccessKeyId,
		*role.Credentials.SecretAccessKey, *role.Credentials.SessionToken)
	sum, err := iam.NewFromConfig(member).GetAccountSummary(context.Background(), &iam.GetAccountSummaryInput{})
	if err != nil {
		panic(err)
	}
	fmt.Println("root keys present:", sum.SummaryMap["AccountAccessKeysPresent"])
	fmt.Println("calls:", sim.Calls()["STS.AssumeRole"], sim.Calls()["IAM.GetAccountSummary"])
	// Output:
	// root keys present: 1
	// calls: 1 1
}
