package awssim_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

// Beyond its published bucket an Organizations operation answers
// TooManyRequestsException in AWS's JSON 1.1 shape (the SDK decodes it into its
// modeled type, Message included); another operation's bucket is not touched, and
// the bucket refills at its rate.
func TestOrganizationsAnswersTooManyRequestsBeyondThePublishedBucket(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	org := organizations.NewFromConfig(e.adminConfig(t, mgmtID), func(o *organizations.Options) { o.RetryMaxAttempts = 1 })

	ok, refused := 0, 0
	var tmr *orgtypes.TooManyRequestsException
	for range 20 { // burst 2, 1 a second: 2 or 3 pass in the few ms this takes
		_, err := org.ListRoots(ctx(t), &organizations.ListRootsInput{})
		switch {
		case err == nil:
			ok++
		case errorsAs(err, &tmr):
			apiErr(t, err, "TooManyRequestsException", 400)
			if aws.ToString(tmr.Message) == "" {
				t.Fatalf("no Message in %v", err)
			}
			refused++
		default:
			t.Fatalf("ListRoots: %v", err)
		}
	}
	if ok < 2 || ok > 3 || refused != 20-ok {
		t.Fatalf("ListRoots: %d answered, %d refused; want the burst of 2 (3 at most) answered", ok, refused)
	}
	if got := e.sim.RateLimited()["Organizations.ListRoots"]; got != refused {
		t.Errorf("RateLimited counts %d ListRoots refusals, want %d", got, refused)
	}
	// Another operation has its own bucket.
	for i := range 12 {
		if _, err := org.ListAccounts(ctx(t), &organizations.ListAccountsInput{}); err != nil {
			t.Fatalf("ListAccounts %d of its burst of 12 while ListRoots is throttled: %v", i+1, err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // 1 a second
	if _, err := org.ListRoots(ctx(t), &organizations.ListRootsInput{}); err != nil {
		t.Fatalf("ListRoots after its bucket refilled: %v", err)
	}
}

// Options.NoRateLimits (and SetRateLimits(false)) turn the buckets off.
func TestNoRateLimits(t *testing.T) {
	e := newEnv(t, awssim.Options{NoRateLimits: true})
	org := organizations.NewFromConfig(e.adminConfig(t, mgmtID), func(o *organizations.Options) { o.RetryMaxAttempts = 1 })
	for range 10 {
		if _, err := org.ListRoots(ctx(t), &organizations.ListRootsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	e.sim.SetRateLimits(true)
	for range 3 {
		_, _ = org.ListRoots(ctx(t), &organizations.ListRootsInput{})
	}
	if e.sim.RateLimited()["Organizations.ListRoots"] == 0 {
		t.Fatal("SetRateLimits(true): no refusal")
	}
}

// A page holds at most 20 items, whatever MaxResults asks.
func TestOrganizationsPagesHoldAtMost20(t *testing.T) {
	e := newEnv(t, awssim.Options{NoRateLimits: true})
	for i := range 45 {
		e.sim.AddAccount(awssim.Account{ID: "5000000000" + string(rune('0'+i/10)) + string(rune('0'+i%10))})
	}
	org := organizations.NewFromConfig(e.adminConfig(t, mgmtID))
	out, err := org.ListAccounts(ctx(t), &organizations.ListAccountsInput{MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Accounts) != 20 || out.NextToken == nil {
		t.Fatalf("MaxResults 100: %d accounts, next token %v; want 20 and a token", len(out.Accounts), out.NextToken)
	}
}

// adminConfig is the SDK config of that account's admin user.
func (e *env) adminConfig(t *testing.T, account string) aws.Config {
	t.Helper()
	cfg := e.baseConfig(t)
	ak, sk := e.sim.AdminCredentials(account)
	cfg.Credentials = credentials.NewStaticCredentialsProvider(ak, sk, "")
	return cfg
}
