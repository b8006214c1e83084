package awssim_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

const (
	mgmtID       = "111111111111"
	prodID       = "222222222222"
	devID        = "333333333333"
	standaloneID = "444444444444"
)

// env is a running simulator with an organization of three accounts.
type env struct {
	sim   *awssim.Sim
	url   string
	clock *testutil.Clock
	once  sync.Once
	base  aws.Config
}

func newEnv(t *testing.T, opts awssim.Options) *env {
	t.Helper()
	clk := testutil.NewClock(time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC))
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	sim := awssim.New(opts)
	sim.AddAccount(awssim.Account{ID: mgmtID, Name: "management", Email: "mgmt@example.com", Management: true})
	sim.AddAccount(awssim.Account{ID: prodID, Name: "prod", State: "ACTIVE", Alias: "acme-prod"})
	sim.AddAccount(awssim.Account{ID: devID, Name: "dev"})
	sim.EnableOrganization(mgmtID)
	srv := sim.Start()
	t.Cleanup(srv.Close)
	return &env{sim: sim, url: srv.URL, clock: clk}
}

// baseConfig is the simulator's SDK config (awssim.SDKConfig, no credentials) with
// a retryer that keeps the SDK's 3 attempts but backs off for 1ms only.
func (e *env) baseConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := awssim.SDKConfig(context.Background(), e.url, aws.AnonymousCredentials{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
			o.RateLimiter = ratelimit.None
		})
	}
	return cfg
}

type clients struct {
	iam  *iam.Client
	sts  *sts.Client
	org  *organizations.Client
	sqs  *sqs.Client
	akid string
}

// clients returns SDK clients signing with those credentials. The config
// (and its HTTP client) is loaded once per env: LoadDefaultConfig is slow.
func (e *env) clients(t testing.TB, akid, secret, token string) clients {
	t.Helper()
	e.once.Do(func() { e.base = e.baseConfig(t) })
	cfg := e.base.Copy()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(akid, secret, token)
	return clients{iam: iam.NewFromConfig(cfg), sts: sts.NewFromConfig(cfg), org: organizations.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg), akid: akid}
}

func (e *env) admin(t testing.TB, account string) clients {
	t.Helper()
	ak, sk := e.sim.AdminCredentials(account)
	return e.clients(t, ak, sk, "")
}

func (e *env) root(t testing.TB, account, keyID string) clients {
	t.Helper()
	return e.clients(t, keyID, e.sim.RootKeySecret(account, keyID), "")
}

// apiErr asserts err is an AWS API error with that code and HTTP status (0: any).
func apiErr(t *testing.T, err error, code string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s error, got success", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want API error %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code = %q, want %q (%v)", ae.ErrorCode(), code, err)
	}
	if status != 0 {
		var re *awshttp.ResponseError
		if !errors.As(err, &re) {
			t.Fatalf("no HTTP response in %v", err)
		}
		if re.HTTPStatusCode() != status {
			t.Fatalf("HTTP status = %d, want %d", re.HTTPStatusCode(), status)
		}
		if re.RequestID == "" {
			t.Fatalf("no request id in %v", err)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
