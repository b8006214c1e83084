package awssim_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

func TestAccessDenied(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	e.sim.SetAccessDenied(devID, true)
	admin := e.admin(t, devID)
	_, err := admin.iam.GetAccountSummary(ctx(t), &iam.GetAccountSummaryInput{})
	apiErr(t, err, "AccessDenied", 403)
	if n := e.sim.Calls()["IAM.GetAccountSummary"]; n != 1 {
		t.Fatalf("AccessDenied was retried: %d calls", n)
	}
	_, err = admin.iam.GenerateCredentialReport(ctx(t), &iam.GenerateCredentialReportInput{})
	apiErr(t, err, "AccessDenied", 403)

	// A role session acting in that account is denied too; AssumeRole itself works.
	out, err := assumeRole(t, e.admin(t, mgmtID), "arn:aws:iam::"+devID+":role/OrganizationAccountAccessRole", "")
	if err != nil {
		t.Fatalf("AssumeRole into a denied account: %v", err)
	}
	_, err = e.session(t, out.Credentials).iam.GetAccountSummary(ctx(t), &iam.GetAccountSummaryInput{})
	apiErr(t, err, "AccessDenied", 403)
	if _, err := admin.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("STS is not IAM: %v", err)
	}
	// Other accounts are unaffected; lifting the fault restores the account.
	summaryKeys(t, e.admin(t, prodID))
	e.sim.SetAccessDenied(devID, false)
	summaryKeys(t, admin)
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	admin := e.admin(t, prodID)

	e.sim.Throttle(prodID, 2)
	if got := summaryKeys(t, admin); got != 0 {
		t.Fatalf("summary = %d", got)
	}
	if n := e.sim.Calls()["IAM.GetAccountSummary"]; n != 3 {
		t.Fatalf("calls = %d, want 2 throttled + 1 success", n)
	}

	e.sim.ResetCalls()
	e.sim.Throttle(prodID, 3)
	_, err := admin.iam.GetAccountSummary(ctx(t), &iam.GetAccountSummaryInput{})
	apiErr(t, err, "Throttling", 400)
	if n := e.sim.Calls()["IAM.GetAccountSummary"]; n != 3 {
		t.Fatalf("calls = %d, want the SDK's 3 attempts", n)
	}

	// Organizations throttles with its own retryable code.
	e.sim.Throttle(mgmtID, 1)
	if _, err := e.admin(t, mgmtID).org.ListAccounts(ctx(t), &organizations.ListAccountsInput{}); err != nil {
		t.Fatalf("ListAccounts after one throttle: %v", err)
	}
}

func TestLatencyHonoursContext(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	e.sim.SetLatency(100 * time.Millisecond)
	admin := e.admin(t, prodID)
	start := time.Now()
	summaryKeys(t, admin)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("call took %v, want >= 100ms latency", d)
	}
	e.sim.SetLatency(5 * time.Second)
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := admin.iam.GetAccountSummary(c, &iam.GetAccountSummaryInput{}); err == nil {
		t.Fatal("call succeeded despite the context deadline")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancelled call took %v", d)
	}
}

// TestConcurrentSweep drives many accounts in parallel with latency: the
// simulator must not serialise calls behind the latency sleep.
func TestConcurrentSweep(t *testing.T) {
	e := newEnv(t, awssim.Options{Now: time.Now})
	const n = 200
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("6000000%05d", i)
		e.sim.AddAccount(awssim.Account{ID: id})
		if i%3 == 0 {
			e.sim.CreateRootKey(id, time.Time{})
		}
	}
	e.sim.SetLatency(50 * time.Millisecond)
	mgmt := e.admin(t, mgmtID)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("6000000%05d", i)
			out, err := assumeRoleErr(mgmt, "arn:aws:iam::"+id+":role/OrganizationAccountAccessRole")
			if err != nil {
				errs <- err
				return
			}
			s := e.session(t, out.Credentials)
			sum, err := s.iam.GetAccountSummary(context.Background(), &iam.GetAccountSummaryInput{})
			if err != nil {
				errs <- err
				return
			}
			if want := int32(0); i%3 == 0 {
				want = 1
				if sum.SummaryMap["AccountAccessKeysPresent"] != want {
					errs <- fmt.Errorf("account %s: present = %d", id, sum.SummaryMap["AccountAccessKeysPresent"])
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("200 accounts × 2 calls at 50ms took %v: calls are serialised", d)
	}
	if c := e.sim.Calls(); c["STS.AssumeRole"] != n || c["IAM.GetAccountSummary"] != n {
		t.Fatalf("calls = %v", c)
	}
}

func assumeRoleErr(c clients, roleArn string) (*sts.AssumeRoleOutput, error) {
	s := "sweep"
	return c.sts.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: &roleArn, RoleSessionName: &s})
}
