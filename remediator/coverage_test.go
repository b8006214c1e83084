package remediator

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// The blind-spot gauges move when the facts do, not with the 6-hourly full pass
// (issue 19 item 12, newcomer D25): a new case counts at once in
// rootwarden_remediator_active_cases, and an account that cannot be checked counts in
// rootwarden_remediator_unchecked_accounts after its third failure in a row — with a
// case or without — until a check works again.
func TestBlindSpotGaugesMoveWithTheFacts(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	reg := prometheus.NewRegistry()
	r := newRem(t, b, clk, nil, func(c *Config) { c.Metrics = reg })
	runRem(t, r)
	<-r.scannedAtStart
	active := func() float64 { return gaugeValue(t, reg, "rootwarden_remediator_active_cases") }
	unchecked := func() float64 { return gaugeValue(t, reg, "rootwarden_remediator_unchecked_accounts") }
	if active() != 0 || unchecked() != 0 {
		t.Fatalf("at start: active %v, unchecked %v", active(), unchecked())
	}

	publishFinding(t, b, observation(acct, true, model.SourceSweep, clk.Now()))
	testutil.Eventually(t, "the new case in the active-cases gauge", func() bool { return active() == 1 })

	const broken = "555555555555"
	fail := func(account string) {
		clk.Add(15 * time.Minute)
		o := observation(account, false, model.SourceSweep, clk.Now())
		o.ErrorCode, o.Error = "AccessDenied", "iam:GetAccountSummary: AccessDenied: User: x is not authorized to perform: iam:GetAccountSummary with an explicit deny in a service control policy"
		publishFinding(t, b, o)
	}
	for range 3 {
		fail(broken)
		fail(acct) // the account with a case cannot be checked either
	}
	testutil.Eventually(t, "two unchecked accounts in the gauge", func() bool { return unchecked() == 2 })
	u, err := r.Unchecked(ctxT(t))
	if err != nil || len(u) != 2 || u[acct] == "" || u[broken] == "" {
		t.Fatalf("GET /api/v1/unchecked would list %v (%v), want %s and %s", u, err, acct, broken)
	}
	if getCase(t, r, acct).State != model.StateOpen {
		t.Fatal("failed checks changed the case")
	}
	clk.Add(time.Minute)
	publishFinding(t, b, observation(broken, false, model.SourceSweep, clk.Now()))
	testutil.Eventually(t, "a check that works to clear the account from the gauge", func() bool { return unchecked() == 1 })
}
