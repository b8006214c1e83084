package remediator

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

// simEnv is the AWS simulator with an organization: management 111…, member 222….
func simEnv(t *testing.T) (*awssim.Sim, aws.Config) {
	t.Helper()
	sim := awssim.New(awssim.Options{Now: func() time.Time { return t0 }})
	sim.AddAccount(awssim.Account{ID: mgmt, Name: "management", Email: "mgmt@example.com", Management: true})
	sim.AddAccount(awssim.Account{ID: acct, Name: "prod", State: "ACTIVE"})
	sim.EnableOrganization(mgmt)
	sim.SetRootSessions(true)
	srv := sim.Start()
	t.Cleanup(srv.Close)
	cfg, err := sim.ClientConfig(context.Background(), srv.URL, mgmt)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	}
	return sim, cfg
}

func TestAWSRootKeyDeleterDeletesMemberKeys(t *testing.T) {
	sim, cfg := simEnv(t)
	k1 := sim.CreateRootKey(acct, t0.Add(-48*time.Hour))
	k2 := sim.CreateRootKey(acct, t0.Add(-24*time.Hour))
	mk := sim.CreateRootKey(mgmt, t0)
	d := NewAWSRootKeyDeleter(cfg)
	ids, err := d.DeleteRootKeys(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	want := []string{k1, k2}
	slices.Sort(want)
	if !slices.Equal(ids, want) || len(sim.RootKeys(acct)) != 0 {
		t.Fatalf("deleted %v, want %v; left %v", ids, want, sim.RootKeys(acct))
	}
	if len(sim.RootKeys(mgmt)) != 1 || sim.RootKeys(mgmt)[0].ID != mk {
		t.Fatalf("management keys touched")
	}
	// AWS itself refuses the management account; the error carries no secret.
	_, err = d.DeleteRootKeys(context.Background(), mgmt)
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("AssumeRoot of the management account: %v", err)
	}
	_, sk := sim.AdminCredentials(mgmt)
	if strings.Contains(err.Error(), sk) {
		t.Fatal("error leaks the secret key")
	}
}

func assumeRootRemediator(t *testing.T, sim *awssim.Sim, cfg aws.Config) (*Remediator, *responder) {
	t.Helper()
	b := bustest.New(t)
	clk := newClock()
	resp := startResponder(t, b, clk)
	resp.fn = func(account string) bool { return len(sim.RootKeys(account)) > 0 }
	r := newRem(t, b, clk, nil, func(c *Config) { c.AssumeRoot, c.Deleter = true, NewAWSRootKeyDeleter(cfg) })
	return r, resp
}

// approveAndWork opens the account's case from a sweep finding, approves it, runs the
// work the approval queued and returns the case.
func approveAndWork(t *testing.T, r *Remediator, account string) *record {
	t.Helper()
	ctx := ctxT(t)
	if err := r.HandleFinding(ctx, observation(account, true, model.SourceSweep, t0)); err != nil {
		t.Fatal(err)
	}
	if err := r.HandleAction(ctx, action(model.ActionApprove, account, caseID(account, 1))); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, account)
	return getCase(t, r, account)
}

func TestApprovalDeletesMemberKeysThroughAssumeRootAndVerifies(t *testing.T) {
	sim, cfg := simEnv(t)
	key := sim.CreateRootKey(acct, t0.Add(-time.Hour))
	r, resp := assumeRootRemediator(t, sim, cfg)
	c := approveAndWork(t, r, acct)
	if c.State != model.StateResolved || !slices.Equal(c.DeletedKeyIDs, []string{key}) || c.Ticket != nil {
		t.Fatalf("case %s deleted %v ticket %+v", c.State, c.DeletedKeyIDs, c.Ticket)
	}
	if len(sim.RootKeys(acct)) != 0 || resp.calls.Load() == 0 {
		t.Fatalf("keys left %v, checks %d", sim.RootKeys(acct), resp.calls.Load())
	}
	got := eventTypes(allEvents(t, r.b, acct))
	if !slices.Equal(got, []string{"opened", "ticketed", "keys_deleted", "resolved"}) {
		t.Fatalf("events %v", got)
	}
	if n := len(builtinTickets(t, r.b)); n != 0 {
		t.Fatalf("%d tickets opened although AssumeRoot deleted the keys", n)
	}
}

func TestAssumeRootIsNeverUsedForTheManagementAccount(t *testing.T) {
	sim, cfg := simEnv(t)
	sim.CreateRootKey(mgmt, t0.Add(-time.Hour))
	r, _ := assumeRootRemediator(t, sim, cfg)
	c := approveAndWork(t, r, mgmt)
	if c.State != model.StateTicketed || c.Ticket == nil || len(c.DeletedKeyIDs) != 0 {
		t.Fatalf("management case %s ticket %+v deleted %v", c.State, c.Ticket, c.DeletedKeyIDs)
	}
	if n := sim.Calls()["STS.AssumeRoot"]; n != 0 {
		t.Fatalf("AssumeRoot called %d times for the management account", n)
	}
	if len(sim.RootKeys(mgmt)) != 1 {
		t.Fatal("management root key deleted")
	}
}

func TestAssumeRootFailureFallsBackToTicket(t *testing.T) {
	sim, cfg := simEnv(t)
	sim.CreateRootKey(acct, t0.Add(-time.Hour))
	sim.SetRootSessions(false) // centralized root access not enabled: AccessDenied
	r, _ := assumeRootRemediator(t, sim, cfg)
	c := approveAndWork(t, r, acct)
	if c.State != model.StateTicketed || c.Ticket == nil || len(c.Pending) != 0 {
		t.Fatalf("case %s ticket %+v pending %v", c.State, c.Ticket, c.Pending)
	}
	evs := allEvents(t, r.b, acct)
	var fallback string
	for _, e := range evs {
		if strings.Contains(e.Reason, "falling back to a ticket") {
			fallback = e.Reason
		}
	}
	if !strings.Contains(fallback, "AccessDenied") {
		t.Fatalf("no fallback event with the reason: %v", eventTypes(evs))
	}
	if sim.Calls()["STS.AssumeRoot"] == 0 {
		t.Fatal("AssumeRoot not tried")
	}
}

// deleterFunc is a func-field fake RootKeyDeleter.
type deleterFunc func(ctx context.Context, account string) ([]string, error)

func (f deleterFunc) DeleteRootKeys(ctx context.Context, account string) ([]string, error) {
	return f(ctx, account)
}

func TestKeysStillPresentAfterAssumeRootDeletionFallsBackToTicket(t *testing.T) {
	sim, cfg := simEnv(t)
	sim.CreateRootKey(acct, t0.Add(-time.Hour))
	r, _ := assumeRootRemediator(t, sim, cfg)
	real := r.cfg.Deleter
	// Someone creates a new root key right after the deletion: verification sees keys.
	r.cfg.Deleter = deleterFunc(func(ctx context.Context, account string) ([]string, error) {
		ids, err := real.DeleteRootKeys(ctx, account)
		sim.CreateRootKey(account, t0)
		return ids, err
	})
	c := approveAndWork(t, r, acct)
	if c.State != model.StateTicketed {
		t.Fatalf("case %s, want ticketed (keys still present)", c.State)
	}
	if c.Ticket == nil || len(c.Pending) != 0 {
		t.Fatalf("keys still present after AssumeRoot: case is ticketed without a ticket (ticket %+v, pending %v)", c.Ticket, c.Pending)
	}
	if n := len(builtinTickets(t, r.b)); n != 1 {
		t.Fatalf("%d tickets, want 1", n)
	}
	got := eventTypes(allEvents(t, r.b, acct))
	if !slices.Contains(got, "still_present") {
		t.Fatalf("events %v", got)
	}
}
