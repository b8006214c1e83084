package detector_test

import (
	"strings"
	"testing"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

func TestSecurityHubFindingIsAHintVerifiedWithAWS(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	b := bustest.New(t)
	cfg, queue := w.eventsConfig()
	cfg.SecurityHubIn = true
	d := newDetector(t, w, cfg, b)
	runDetector(t, d)
	waitFindings(t, b, 3, bySource(model.SourceSweep))

	// member-1: Security Hub says IAM.4 FAILED (its periodic evaluation is hours old),
	// but the root has no key in AWS now. member-2 has one. 999999999999 is not in
	// the Organization this detector reads.
	w.sim.CreateRootKey(member(2), w.clock.Now())
	now := w.clock.Now()
	w.sim.SendMessage(queue, awssim.SecurityHubFindingEvent(mgmtID, member(1), "IAM.4", "FAILED", now))
	w.sim.SendMessage(queue, awssim.SecurityHubOCSFFindingEvent(mgmtID, member(2), "IAM.4", "Fail", now))
	w.sim.SendMessage(queue, awssim.SecurityHubFindingEvent(mgmtID, "999999999999", "IAM.9", "FAILED", now))
	w.sim.SendMessage(queue, awssim.SecurityHubFindingEvent(mgmtID, member(2), "IAM.4", "PASSED", now)) // no hint
	w.sim.SendMessage(queue, awssim.SecurityHubFindingEvent(mgmtID, member(2), "S3.1", "FAILED", now))  // not a root control

	got := perAccount(t, waitFindings(t, b, 3, bySource(model.SourceSecurityHub)))
	if o := got[member(1)]; o.RootKeysPresent || o.Error != "" {
		t.Errorf("member-1 (IAM.4 FAILED in Security Hub, no key in AWS): %+v; want no keys, as AWS says", o)
	}
	if o := got[member(2)]; !o.RootKeysPresent {
		t.Errorf("member-2 (OCSF IAM.4 Fail, a key in AWS): %+v", o)
	}
	o := got["999999999999"]
	if o.ErrorCode != "SecurityHub/UnknownAccount" || !strings.Contains(o.Error, "Security Hub reports IAM.9") {
		t.Errorf("an account Security Hub reports and rootwarden cannot check: %+v; want it shown, naming Security Hub", o)
	}
	testutil.Eventually(t, "every message deleted", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == 5 })
	assertQueueEmpty(t, w, queue)
	if n := w.sim.Calls()["IAM.GetAccountSummary"]; n < 5 { // 3 sweep + member-1 + member-2
		t.Errorf("GetAccountSummary called %d times: the hints were not verified with AWS", n)
	}
}

func TestSecurityHubFindingsIgnoredUnlessEnabled(t *testing.T) {
	w := newWorld(t, 1, true, awssim.Options{})
	b := bustest.New(t)
	cfg, queue := w.eventsConfig()
	d := newDetector(t, w, cfg, b)
	runDetector(t, d)
	waitFindings(t, b, 2, bySource(model.SourceSweep))
	w.sim.SendMessage(queue, awssim.SecurityHubFindingEvent(mgmtID, member(1), "IAM.4", "FAILED", w.clock.Now()))
	testutil.Eventually(t, "the message deleted", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == 1 })
	for _, o := range findings(t, b) {
		if o.Source == model.SourceSecurityHub {
			t.Fatalf("Security Hub off, yet a finding: %+v", o)
		}
	}
}
