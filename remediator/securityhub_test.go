package remediator

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	sh "github.com/aws/aws-sdk-go-v2/service/securityhub"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/securityhubfake"
	"github.com/rootwarden/rootwarden/remediator/securityhub"
)

// withSecurityHub is a remediator option marking findings in a fresh Security Hub
// fake through the real SDK client; the account has a FAILED IAM.4 and IAM.9 finding.
func withSecurityHub(t *testing.T) (opt, *securityhubfake.Server) {
	t.Helper()
	fake := securityhubfake.New()
	t.Cleanup(fake.Close)
	fake.Add(securityhubfake.Finding{AccountID: acct, ControlID: "IAM.4"}, securityhubfake.Finding{AccountID: acct, ControlID: "IAM.9"})
	cfg, err := awssim.SDKConfig(context.Background(), fake.URL, credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""))
	if err != nil {
		t.Fatal(err)
	}
	hub := securityhub.New(securityhub.Config{Pace: time.Millisecond, CaseURL: "https://rootwarden.example/cases/%s"}, sh.NewFromConfig(cfg))
	return func(c *Config) { c.SecurityHub = hub; c.SecurityHubTimeout = 5 * time.Second }, fake
}

func statusOf(t *testing.T, fake *securityhubfake.Server, control string) securityhubfake.Finding {
	t.Helper()
	for _, f := range fake.Findings(acct) {
		if f.ControlID == control {
			return f
		}
	}
	t.Fatalf("no %s finding", control)
	return securityhubfake.Finding{}
}

// hubEvents are the case events recording Security Hub changes.
func hubEvents(t *testing.T, r *Remediator, account string) []model.CaseEvent {
	t.Helper()
	var out []model.CaseEvent
	for _, ev := range allEvents(t, r.b, account) {
		if strings.HasPrefix(ev.Reason, "Security Hub") {
			out = append(out, ev)
		}
	}
	return out
}

func TestSecurityHubFollowsTheCaseFromOpenToVerifiedResolution(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	startResponder(t, b, clk)
	o, fake := withSecurityHub(t)
	r := newRem(t, b, clk, nil, o)

	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	id := caseID(acct, 1)
	for _, ctl := range []string{"IAM.4", "IAM.9"} {
		f := statusOf(t, fake, ctl)
		if f.WorkflowStatus != "NOTIFIED" || !strings.Contains(f.Note, id) || !strings.Contains(f.Note, "https://rootwarden.example/cases/"+id) {
			t.Fatalf("%s after the case opened: %s, note %q; want NOTIFIED linking case %s", ctl, f.WorkflowStatus, f.Note, id)
		}
	}
	evs := hubEvents(t, r, acct)
	if len(evs) != 1 || evs[0].CaseID != id || !strings.Contains(evs[0].Reason, "set to NOTIFIED") {
		t.Fatalf("audit log of the Security Hub update: %+v", evs)
	}

	// Approved and someone says the keys are gone: nothing is RESOLVED until AWS says so.
	if err := r.HandleAction(ctx, action(model.ActionApprove, acct, id)); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	if f := statusOf(t, fake, "IAM.4"); f.WorkflowStatus != "NOTIFIED" {
		t.Fatalf("IAM.4 is %s while the case is ticketed", f.WorkflowStatus)
	}
	// The check says the keys are gone (AWS verified): IAM.4 is RESOLVED. IAM.9 still
	// FAILED in Security Hub (it also covers the root password) stays NOTIFIED.
	if err := r.HandleFinding(ctx, observation(acct, false, model.SourceCheck, clk.Now())); err != nil {
		t.Fatal(err)
	}
	waitState(t, r, acct, model.StateResolved)
	r.work(ctx, acct)
	if f := statusOf(t, fake, "IAM.4"); f.WorkflowStatus != "RESOLVED" || !strings.Contains(f.Note, "verified") {
		t.Fatalf("IAM.4 after verified resolution: %s %q", f.WorkflowStatus, f.Note)
	}
	if f := statusOf(t, fake, "IAM.9"); f.WorkflowStatus != "NOTIFIED" {
		t.Fatalf("IAM.9 (still FAILED in AWS) is %s", f.WorkflowStatus)
	}
	if evs := hubEvents(t, r, acct); len(evs) != 2 || evs[1].Case.State != model.StateResolved {
		t.Fatalf("Security Hub events %+v; want one for NOTIFIED, one for RESOLVED", evs)
	}
	if rec := getCase(t, r, acct); r.owes(rec) {
		t.Fatalf("resolved case still owes work: %+v", rec.SecurityHub)
	}
}

func TestSecurityHubSuppressedWhileRiskAcceptedAndRestoredAtExpiry(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	o, fake := withSecurityHub(t)
	r := newRem(t, b, clk, nil, o)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	a := action(model.ActionAcceptRisk, acct, caseID(acct, 1))
	exp := clk.Now().Add(48 * time.Hour)
	a.Reason, a.Expires = "vendor integration until Friday", &exp
	if err := r.HandleAction(ctx, a); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	if f := statusOf(t, fake, "IAM.4"); f.WorkflowStatus != "SUPPRESSED" || !strings.Contains(f.Note, "risk accepted until") {
		t.Fatalf("IAM.4 during the risk acceptance: %s %q", f.WorkflowStatus, f.Note)
	}
	// Expiry: the scan reopens the case; the due-time index brings the owed marking.
	clk.Add(49 * time.Hour)
	r.ScanNow(ctx)
	clk.Add(2 * time.Minute)
	r.ScanNow(ctx)
	if c := getCase(t, r, acct); c.State != model.StateOpen {
		t.Fatalf("case after expiry: %s", c.State)
	}
	if f := statusOf(t, fake, "IAM.4"); f.WorkflowStatus != "NOTIFIED" {
		t.Fatalf("IAM.4 after the acceptance expired: %s; want NOTIFIED again", f.WorkflowStatus)
	}
}

func TestSecurityHubLostAnswerAndThrottlingApplyOnce(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	o, fake := withSecurityHub(t)
	r := newRem(t, b, clk, nil, o)
	fake.Throttle(2)
	fake.LoseAnswers(1)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	clk.Add(2 * time.Minute)
	r.ScanNow(ctx) // whatever the lost answer left owed
	for _, ctl := range []string{"IAM.4", "IAM.9"} {
		if f := statusOf(t, fake, ctl); f.WorkflowStatus != "NOTIFIED" {
			t.Fatalf("%s is %s", ctl, f.WorkflowStatus)
		}
	}
	for _, u := range fake.Updates() {
		if u.Status != "NOTIFIED" {
			t.Fatalf("an update set %s: %+v", u.Status, fake.Updates())
		}
	}
	if n := len(fake.Updates()); n > 4 {
		t.Fatalf("%d finding updates for 2 findings: a retry re-applied what had taken effect", n)
	}
	evs := allEvents(t, b, acct)
	assertEventsUnique(t, evs)
	// The change is in the audit log once, whether the SDK's retry saw it applied
	// ("set to") or the next round found it already done ("already").
	if evs := hubEvents(t, r, acct); len(evs) != 1 || !strings.Contains(evs[0].Reason, "NOTIFIED") {
		t.Fatalf("Security Hub case events %+v; want exactly one recording NOTIFIED", evs)
	}
	if rec := getCase(t, r, acct); r.owes(rec) {
		t.Fatal("marking still owed after the retry")
	}
}

func TestSecurityHubResetToNewIsMarkedAgainOnSync(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	o, fake := withSecurityHub(t)
	r := newRem(t, b, clk, nil, o)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	f := statusOf(t, fake, "IAM.4")
	fake.Refail(f.ID)
	r.SyncSecurityHubNow(ctx)
	if f := statusOf(t, fake, "IAM.4"); f.WorkflowStatus != "NOTIFIED" {
		t.Fatalf("IAM.4 reset to NEW by AWS is %s after the sync", f.WorkflowStatus)
	}
	if evs := hubEvents(t, r, acct); len(evs) != 2 || !strings.Contains(evs[1].Reason, f.ID) {
		t.Fatalf("Security Hub events %+v; want the re-marking recorded", evs)
	}
}

func TestSecurityHubDownDoesNotHoldUpTheCase(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	o, fake := withSecurityHub(t)
	r := newRem(t, b, clk, nil, o)
	fake.Throttle(1 << 20)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := r.HandleAction(ctx, action(model.ActionApprove, acct, caseID(acct, 1))); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	rec := getCase(t, r, acct)
	if rec.State != model.StateTicketed || rec.Ticket == nil {
		t.Fatalf("case %s ticket %+v: Security Hub throttling held up the ticket", rec.State, rec.Ticket)
	}
	if !r.owes(rec) {
		t.Fatal("the marking Security Hub refused is not owed any more")
	}
}

func TestSecurityHubHintForAnAccountWithoutKeysOpensNoCase(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	o, fake := withSecurityHub(t)
	r := newRem(t, b, clk, nil, o)
	// The detector checked the account Security Hub named (IAM.4 FAILED, hours old):
	// AWS says no root keys.
	if err := r.HandleFinding(ctx, observation(acct, false, model.SourceSecurityHub, clk.Now())); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	if rec := getCase(t, r, acct); rec != nil {
		t.Fatalf("a case from a Security Hub hint AWS contradicts: %+v", rec.Case)
	}
	if n := len(fake.Updates()); n != 0 {
		t.Fatalf("%d Security Hub updates without a case", n)
	}
}

func TestAccountSecurityHubReportsButRootwardenCannotCheckIsUncheckedAtOnce(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	r := newRem(t, b, clk, nil)
	o := model.Observation{SchemaVersion: 1, ID: "securityhub-ev-1-999999999999", AccountID: "999999999999",
		Source: model.SourceSecurityHub, ObservedAt: clk.Now(), ErrorCode: "SecurityHub/UnknownAccount",
		Error: `Security Hub reports IAM.4 ("arn:…") FAILED, and rootwarden could not check the account: not among the accounts this detector checks`}
	if err := r.HandleFinding(ctx, o); err != nil {
		t.Fatal(err)
	}
	e, err := r.b.Sched.Get(ctx, uncheckedPrefix+"999999999999")
	if err != nil {
		t.Fatalf("no unchecked record for the account Security Hub reports: %v", err)
	}
	var u unchecked
	if err := json.Unmarshal(e.Value(), &u); err != nil {
		t.Fatal(err)
	}
	if u.Failures < r.cfg.UncheckedAfter || !strings.Contains(u.Error, "SecurityHub/UnknownAccount") {
		t.Fatalf("unchecked record %+v; want the account unchecked at once, naming Security Hub", u)
	}
}
