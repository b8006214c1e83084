package detector_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

func TestManyCallsOfOneKeyAreOneCheck(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	b := bustest.New(t)
	cfg, queue := w.eventsConfig()
	cfg.EventWindow = 500 * time.Millisecond
	d := newDetector(t, w, cfg, b)
	runDetector(t, d)
	waitFindings(t, b, 3, bySource(model.SourceSweep))

	key := w.sim.CreateRootKey(member(2), w.clock.Now())
	names := []string{"ListBuckets", "DescribeInstances", "GetCallerIdentity", "ListUsers"}
	for i := range 20 {
		body := awssim.RootKeyUsedEvent(member(2), key, names[i%len(names)], w.clock.Now().Add(time.Duration(i)*time.Second))
		if i%2 == 1 {
			body = strings.Replace(body, "203.0.113.17", "198.51.100.9", 1)
		}
		w.sim.SendMessage(queue, body)
	}
	testutil.Eventually(t, "all 20 messages deleted", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == 20 })
	// Presence first: the first check's key details follow as their own finding
	// ("-details"); they are not a check of their own.
	checks := func(o model.Observation) bool {
		return o.Source == model.SourceEvent && !strings.HasSuffix(o.ID, "-details")
	}
	// A message is deleted only once the finding that carries it is published (the
	// folded ones with the coalesced finding), so after the 20 deletes every finding
	// they make is on the stream: no window still holds one.
	got := waitFindings(t, b, 2, checks)
	if len(got) != 2 {
		t.Fatalf("20 calls of one key made %d event findings, want 2 (the first at once, the rest coalesced)", len(got))
	}
	first, rest := got[0].Event, got[1].Event
	if first.Calls > 1 {
		t.Errorf("first finding stands for %d calls, want the single first event", first.Calls)
	}
	total := max(first.Calls, 1) + rest.Calls
	if total != 20 || len(rest.EventNames) == 0 || len(rest.SourceIPs) != 2 || !rest.KeyInUse {
		t.Errorf("coalesced event = calls %d (total %d) names %v ips %v", rest.Calls, total, rest.EventNames, rest.SourceIPs)
	}
	if calls := w.sim.Calls()["IAM.GetAccountSummary"]; calls > 3+2 {
		t.Errorf("GetAccountSummary calls = %d, want the sweep's 3 and 2 event checks", calls)
	}
	assertQueueEmpty(t, w, queue)

	// A second key of the account is new: its first call is checked at once.
	key2 := "AKIASECONDKEY0000002"
	w.sim.SendMessage(queue, awssim.RootKeyUsedEvent(member(2), key2, "ListBuckets", w.clock.Now()))
	got = waitFindings(t, b, 3, checks)
	if e := got[2].Event; e.AccessKeyID != key2 || e.Calls > 1 {
		t.Errorf("the new key's first call = %+v, want its own immediate check", e)
	}
}
