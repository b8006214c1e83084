package detector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

func newDetector(t *testing.T, w *world, cfg detector.Config, b *bus.Bus) *detector.Detector {
	t.Helper()
	d, err := detector.New(cfg, w.logger(), b, w.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// perAccount counts findings per account and fails on a second one for an account.
func perAccount(t *testing.T, obs []model.Observation) map[string]model.Observation {
	t.Helper()
	out := map[string]model.Observation{}
	for _, o := range obs {
		if prev, dup := out[o.AccountID]; dup {
			t.Errorf("account %s has two findings: %s and %s", o.AccountID, prev.ID, o.ID)
		}
		out[o.AccountID] = o
	}
	return out
}

func TestSweepOnStartAndEveryInterval(t *testing.T) {
	w := newWorld(t, 0, false, awssim.Options{})
	w.sim.CreateRootKey(mgmtID, w.clock.Now().Add(-time.Hour))
	b := bustest.New(t)
	cfg := w.config("")
	cfg.ScanInterval = time.Hour
	d := newDetector(t, w, cfg, b)
	runDetector(t, d)

	first := waitFindings(t, b, 1, bySource(model.SourceSweep))[0]
	if first.AccountID != mgmtID || !first.RootKeysPresent || len(first.Keys) != 1 || first.SweepID == "" ||
		first.AccountName != "acme-mgmt" || !first.Management || first.Failed() {
		t.Fatalf("first sweep finding = %+v", first)
	}
	if !strings.HasPrefix(first.ID, "sweep-") || !strings.Contains(first.ID, mgmtID) {
		t.Errorf("finding id = %q", first.ID)
	}

	// Not due yet: no new sweep, whoever asks.
	w.clock.Add(59 * time.Minute)
	if id, started, err := d.MaybeSweep(context.Background()); err != nil || started {
		t.Fatalf("MaybeSweep before the interval = %q %v %v", id, started, err)
	}
	// Due: the next sweep starts (the running scheduler or this call wins it).
	w.clock.Add(2 * time.Minute)
	_, _, _ = d.MaybeSweep(context.Background())
	all := waitFindings(t, b, 2, bySource(model.SourceSweep))
	if all[1].SweepID == first.SweepID || all[1].ID == first.ID {
		t.Errorf("second sweep reused the first one's ids: %+v", all[1])
	}
	// Every job handed out is done (nothing queued, nothing in flight), the schedule
	// still names the second sweep, and the scheduler's own decision at this time is
	// "not due": no third sweep, whenever its next poll comes.
	scanIdle(t, b)
	if id, started, err := d.MaybeSweep(context.Background()); err != nil || started {
		t.Fatalf("MaybeSweep right after the second sweep = %q %v %v, want not due", id, started, err)
	}
	if st := readSweep(t, b); st.ID != all[1].SweepID || !st.Done {
		t.Errorf("schedule = %+v, want the second sweep %s, done", st, all[1].SweepID)
	}
	if n := len(waitFindings(t, b, 2, bySource(model.SourceSweep))); n != 2 {
		t.Errorf("%d sweep findings, want 2", n)
	}
}

// scanIdle waits until RW_SCAN holds no job and the detectors' consumer has none in
// flight: every check asked for so far has published its finding (a positive signal
// before asserting that nothing more comes).
func scanIdle(t *testing.T, b *bus.Bus) {
	t.Helper()
	testutil.Eventually(t, "every sweep job done", func() bool {
		c, err := b.JS.Consumer(context.Background(), bus.StreamScan, bus.ConsumerDetectorScan)
		if err != nil {
			return false
		}
		ci, err := c.Info(context.Background())
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.NumRedelivered == 0 && queuedJobs(t, b) == 0
	})
}

func TestTwoDetectorsShareOneSweep(t *testing.T) {
	const members = 40
	w := newWorld(t, members, true, awssim.Options{})
	w.sim.SetLatency(5 * time.Millisecond)
	w.sim.CreateRootKey(member(3), w.clock.Now())
	w.sim.SetAccessDenied(member(5), true)
	b1 := bustest.New(t)
	b2 := bustest.Connect(t, b1)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.Concurrency = 3
	cfg1, cfg2 := cfg, cfg
	cfg1.Instance, cfg2.Instance = "detector-a", "detector-b"
	reg1, reg2 := prometheus.NewRegistry(), prometheus.NewRegistry()
	cfg1.Metrics, cfg2.Metrics = reg1, reg2
	d1 := newDetector(t, w, cfg1, b1)
	d2 := newDetector(t, w, cfg2, b2)
	// A sweep just happened: neither starts one on start-up.
	ctx := context.Background()
	last := fmt.Sprintf(`{"schema_version":1,"id":"earlier","started_at":%q,"owner":"x","done":true}`, w.clock.Now().Format(time.RFC3339Nano))
	if _, err := b1.Sched.Put(ctx, "sweep", []byte(last)); err != nil {
		t.Fatal(err)
	}
	runDetector(t, d1)
	runDetector(t, d2)
	testutil.Eventually(t, "both detectors pulling sweep jobs", func() bool {
		c, err := b1.JS.Consumer(ctx, bus.StreamScan, bus.ConsumerDetectorScan)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumWaiting >= 2
	})

	// The interval passes; both try to start the sweep at once: exactly one wins.
	w.clock.Add(25 * time.Hour)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for _, d := range []*detector.Detector{d1, d2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, started, err := d.MaybeSweep(ctx); err != nil {
				t.Errorf("MaybeSweep: %v", err)
			} else if started {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d detectors started the sweep, want exactly 1", wins.Load())
	}

	got := perAccount(t, waitFindings(t, b1, members+1, bySource(model.SourceSweep)))
	if len(got) != members+1 {
		t.Fatalf("%d accounts have findings, want %d", len(got), members+1)
	}
	sweeps := map[string]bool{}
	for _, o := range got {
		sweeps[o.SweepID] = true
	}
	if len(sweeps) != 1 {
		t.Errorf("findings of %d sweeps, want 1: %v", len(sweeps), sweeps)
	}
	if !got[member(3)].RootKeysPresent || got[member(5)].ErrorCode != "AccessDenied" || got[member(1)].Failed() {
		t.Errorf("findings: member-3 %+v, member-5 %+v", got[member(3)], got[member(5)])
	}
	// Every job acked (none pending, none in flight or to be redelivered) before
	// counting: a redelivery would have to come from one of those.
	scanIdle(t, b1)
	for _, d := range []*detector.Detector{d1, d2} { // and what either scheduler decides now
		if id, started, err := d.MaybeSweep(ctx); err != nil || started {
			t.Fatalf("MaybeSweep after the shared sweep = %q %v %v, want not due", id, started, err)
		}
	}
	if n := len(findings(t, b1)); n != members+1 {
		t.Errorf("%d findings on the stream, want %d", n, members+1)
	}
	n1, n2 := counter(t, reg1, "rootwarden_detector_accounts_checked_total"), counter(t, reg2, "rootwarden_detector_accounts_checked_total")
	t.Logf("accounts checked: detector-a %v, detector-b %v", n1, n2)
	if n1+n2 != members+1 {
		t.Errorf("the detectors checked %v accounts together, want %d", n1+n2, members+1)
	}
	if n1 == 0 || n2 == 0 {
		t.Errorf("one detector did all the work (a %v, b %v): the sweep was not shared", n1, n2)
	}
	calls := w.sim.Calls()
	// AccessDenied is the answer of member-5's summary call: it counts too.
	if n := calls["IAM.GetAccountSummary"]; n != members+1 {
		t.Errorf("GetAccountSummary called %d times, want %d (each account once)", n, members+1)
	}
	if n := calls["STS.AssumeRole"]; n != members {
		t.Errorf("AssumeRole called %d times, want %d", n, members)
	}
	if n := calls["Organizations.DescribeOrganization"]; n != 1 {
		t.Errorf("DescribeOrganization called %d times: more than one detector enumerated", n)
	}
}

func TestSQSEventTriggersImmediateCheck(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	b := bustest.New(t)
	cfg, queue := w.eventsConfig()
	d := newDetector(t, w, cfg, b)
	runDetector(t, d)
	waitFindings(t, b, 3, bySource(model.SourceSweep)) // the start-up sweep; the next is a day away

	key := w.sim.CreateRootKey(member(2), w.clock.Now())
	w.sim.UseRootKey(member(2), key, w.clock.Now(), "us-east-1", "s3")
	body := awssim.RootKeyUsedEvent(member(2), key, "ListBuckets", w.clock.Now())
	var ev struct {
		Detail struct {
			EventID string `json:"eventID"`
		} `json:"detail"`
	}
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		t.Fatal(err)
	}
	w.sim.SendMessage(queue, body)

	o := waitFindings(t, b, 1, bySource(model.SourceEvent))[0]
	if o.AccountID != member(2) || !o.RootKeysPresent || o.Event == nil || o.ID != "event-"+ev.Detail.EventID {
		t.Fatalf("event finding = %+v", o)
	}
	e := o.Event
	if !e.KeyInUse || e.AccessKeyID != key || e.EventName != "ListBuckets" || e.EventSource != "s3.amazonaws.com" ||
		e.EventID != ev.Detail.EventID || e.SourceIP == "" || e.UserAgent == "" || e.Region != "us-east-1" || !e.EventTime.Equal(w.clock.Now()) {
		t.Errorf("event = %+v", e)
	}
	if model.SeverityOf(o, w.clock.Now()) != model.SeverityCritical {
		t.Error("a root key in use must rate critical")
	}
	testutil.Eventually(t, "the message to be deleted", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == 1 })
	assertQueueEmpty(t, w, queue)
}

func TestDuplicateSQSDeliveryIsOneFinding(t *testing.T) {
	w := newWorld(t, 1, true, awssim.Options{})
	b := bustest.New(t)
	cfg, queue := w.eventsConfig()
	key := w.sim.CreateRootKey(member(1), w.clock.Now())
	body := awssim.RootKeyCreatedEvent(member(1), key, w.clock.Now())
	w.sim.SendMessage(queue, body)
	w.sim.SendMessage(queue, body) // SQS delivers at least once; EventBridge may too
	d := newDetector(t, w, cfg, b)
	runDetector(t, d)

	testutil.Eventually(t, "both messages deleted", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == 2 })
	// Presence first, then the key details: two findings for the event, not four. When
	// the credential report is ready before the presence is published (the routing
	// facts are read first, which a slow machine stretches), the presence carries the
	// details and is the only finding.
	var got []model.Observation
	testutil.Eventually(t, "the event's key details", func() bool {
		got = nil
		for _, o := range findings(t, b) {
			if o.Source == model.SourceEvent {
				got = append(got, o)
			}
		}
		return len(got) > 0 && !got[len(got)-1].KeyDetailsPending
	})
	time.Sleep(200 * time.Millisecond) // a duplicate would follow its original
	got = waitFindings(t, b, len(got), bySource(model.SourceEvent))
	switch {
	case len(got) == 1 && got[0].ID == "event-"+got[0].Event.EventID && len(got[0].Keys) == 1:
	case len(got) == 2 && got[0].ID == "event-"+got[0].Event.EventID && got[1].ID == got[0].ID+"-details" &&
		got[0].KeyDetailsPending && !got[1].KeyDetailsPending && len(got[1].Keys) == 1 && got[1].ObservedAt.Equal(got[0].ObservedAt):
	default:
		t.Fatalf("%d event findings, want the presence and its details once: %+v", len(got), got)
	}
	if e := got[0].Event; e == nil || e.EventName != "CreateAccessKey" || e.KeyInUse || e.AccessKeyID != key {
		t.Errorf("event = %+v", e)
	}
	assertQueueEmpty(t, w, queue)
}

// An event whose finding cannot be published stays in the queue: the message comes
// back after its visibility timeout and is deleted only on its 10th receive, when the
// next sweep is the better bet.
func TestUnpublishableEventIsKeptUntilTheReceiveLimit(t *testing.T) {
	const limit = 10 // maxReceives in sqs.go
	w := newWorld(t, 1, true, awssim.Options{})
	b := bustest.New(t)
	ctx := context.Background()
	// A sweep just happened: none runs during the test.
	writeSweep(t, b, detector.SweepState{SchemaVersion: 1, ID: "earlier", StartedAt: w.clock.Now(), Owner: "x", Done: true})
	// RW_FINDINGS refuses every finding (each is larger than 16 bytes).
	for _, sc := range b.Streams() {
		if sc.Name == bus.StreamFindings {
			sc.MaxMsgSize = 16
			if _, err := b.JS.UpdateStream(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg, queue := w.eventsConfig()
	key := w.sim.CreateRootKey(member(1), w.clock.Now())
	w.sim.SendMessage(queue, awssim.RootKeyUsedEvent(member(1), key, "ListBuckets", w.clock.Now()))
	det := newDetector(t, w, cfg, b)
	runDetector(t, det)
	// The detector hides a message for its check's time (presence, then details) plus 30s.
	visibility := 2*det.Config().AccountTimeout + 30*time.Second

	failures := func() int { return strings.Count(w.logs.String(), "the message will come back") }
	for n := 1; n < limit; n++ {
		testutil.Eventually(t, fmt.Sprintf("receive %d to fail", n), func() bool {
			return failures() >= n || w.sim.Calls()["SQS.DeleteMessage"] > 0
		})
		if d := w.sim.Calls()["SQS.DeleteMessage"]; d != 0 {
			t.Fatalf("the message was deleted after %d receives, want it kept until %d", failures()+1, limit)
		}
		if got := failures(); got != n {
			t.Fatalf("%d failed receives, want %d: the message came back before its visibility timeout", got, n)
		}
		if !regexp.MustCompile(fmt.Sprintf(`come back.* receives=%d\b`, n)).MatchString(w.logs.String()) {
			t.Fatalf("receive %d: the log does not give the receive count:\n%s", n, w.logs.String())
		}
		if n == 1 {
			// Past SQS's default 30s but within the detector's own timeout: still hidden,
			// and received once (the simulator counts receives as it hands them out).
			w.clock.Add(31 * time.Second)
			q := w.sim.Queued(queue)
			if len(q) != 1 || q[0].Receives != 1 || !q[0].VisibleAt.After(w.clock.Now()) {
				t.Fatalf("31s after the first receive the queue holds %+v (now %v), want the message received once and hidden "+
					"for the %s the detector asks for", q, w.clock.Now(), visibility)
			}
			if got := failures(); got != 1 {
				t.Fatalf("the message came back %d times within %s, the visibility timeout the detector asks for", got-1, visibility)
			}
			w.clock.Add(visibility - 31*time.Second)
		}
		w.clock.Add(visibility + time.Second) // past the visibility timeout the detector asked for
	}
	testutil.Eventually(t, "the message deleted on its last receive", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == 1 })
	if logs := w.logs.String(); !regexp.MustCompile(fmt.Sprintf(`failed too often; deleting the message.* receives=%d\b`, limit)).MatchString(logs) {
		t.Errorf("the deletion after %d receives is not logged:\n%s", limit, logs)
	}
	if got := failures(); got != limit-1 {
		t.Errorf("%d receives kept the message, want %d", got, limit-1)
	}
	if got := findings(t, b); len(got) != 0 {
		t.Errorf("findings published through a stream that refuses them: %+v", got)
	}
	assertQueueEmpty(t, w, queue)
}

func TestMalformedMessagesAreDeletedAndLogged(t *testing.T) {
	w := newWorld(t, 1, true, awssim.Options{})
	b := bustest.New(t)
	cfg, queue := w.eventsConfig()
	used := awssim.RootKeyUsedEvent(member(1), "AKIAEXAMPLEEXAMPLE01", "ListBuckets", w.clock.Now())
	var noAccount map[string]any
	_ = json.Unmarshal([]byte(used), &noAccount)
	delete(noAccount, "account")
	delete(noAccount["detail"].(map[string]any), "recipientAccountId")
	delete(noAccount["detail"].(map[string]any)["userIdentity"].(map[string]any), "accountId")
	missing, _ := json.Marshal(noAccount)
	bodies := []string{
		awssim.RootKeyUsedEvent("999999999999", "AKIAEXAMPLEEXAMPLE01", "ListBuckets", w.clock.Now()),
		"this is not JSON",
		`{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}`,
		`{"hello":"world"}`,
		string(missing),
	}
	for _, body := range bodies {
		w.sim.SendMessage(queue, body)
	}
	d := newDetector(t, w, cfg, b)
	runDetector(t, d)

	testutil.Eventually(t, "every message deleted", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == len(bodies) })
	assertQueueEmpty(t, w, queue)
	waitFindings(t, b, 2, bySource(model.SourceSweep)) // the detector is alive and sweeping
	if got := waitFindings(t, b, 0, bySource(model.SourceEvent)); len(got) != 0 {
		t.Errorf("malformed messages produced findings: %+v", got)
	}
	logs := w.logs.String()
	for _, reason := range []string{"body is not a JSON object", "not a CloudTrail event", "no 12-digit account id", "an account this detector does not check"} {
		if !strings.Contains(logs, reason) {
			t.Errorf("logs lack the reason %q", reason)
		}
	}
	if strings.Contains(logs, "this is not JSON") {
		t.Error("logs quote a message body")
	}
}

func TestFailedEnumerationIsRetried(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	b := bustest.New(t)
	// A member account's admin may not list the organization's accounts.
	d, err := detector.New(w.config("OrganizationAccountAccessRole"), w.logger(), b, w.awsConfigAs(t, member(1)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, started, err := d.MaybeSweep(ctx)
	if !started || err == nil || !strings.Contains(err.Error(), "ListAccounts") {
		t.Fatalf("MaybeSweep = %q %v %v, want a started sweep whose listing fails", id, started, err)
	}
	if _, started, _ := d.MaybeSweep(ctx); started {
		t.Error("a failed sweep was retried at once")
	}
	w.clock.Add(2 * time.Minute) // long before the 24h interval
	if _, started, err := d.MaybeSweep(ctx); !started || err == nil {
		t.Errorf("failed sweep not retried after a minute: started %v, err %v", started, err)
	}
	if got := findings(t, b); len(got) != 0 {
		t.Errorf("findings after failed enumerations: %+v", got)
	}
}

func TestCheckRequestReply(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	w.sim.CreateRootKey(member(1), w.clock.Now())
	b := bustest.New(t)
	d := newDetector(t, w, w.config("OrganizationAccountAccessRole"), b)
	runDetector(t, d)
	caller := bustest.Connect(t, b)
	checker := bus.Checker{NC: caller.NC}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("known account answers and is published", func(t *testing.T) {
		o, err := checker.Check(ctx, member(1), "verify after deletion")
		if err != nil {
			t.Fatal(err)
		}
		if o.Source != model.SourceCheck || o.RequestID == "" || !o.RootKeysPresent || o.AccountName != "member-1" || !o.OrgMember {
			t.Errorf("answer = %+v", o)
		}
		pub := waitFindings(t, b, 1, func(f model.Observation) bool { return f.ID == o.ID })
		if pub[0].RequestID != o.RequestID || pub[0].Source != model.SourceCheck {
			t.Errorf("published = %+v", pub[0])
		}
	})
	t.Run("unknown account is an UnknownAccount answer, not published", func(t *testing.T) {
		o, err := checker.Check(ctx, "999999999999", "verify")
		if err != nil {
			t.Fatal(err)
		}
		if o.ErrorCode != "UnknownAccount" || o.Error == "" || o.AccountID != "999999999999" || o.RootKeysPresent {
			t.Errorf("answer = %+v", o)
		}
		for _, f := range findings(t, b) {
			if f.AccountID == "999999999999" {
				t.Errorf("an unknown account was published: %+v", f)
			}
		}
	})
	t.Run("AccessDenied is an answer with the code", func(t *testing.T) {
		w.sim.SetAccessDenied(member(2), true)
		o, err := checker.Check(ctx, member(2), "")
		if err != nil {
			t.Fatal(err)
		}
		if o.ErrorCode != "AccessDenied" || !o.Failed() {
			t.Errorf("answer = %+v", o)
		}
		w.assertNoSecrets(t, "answer", o.Error, member(2))
	})
	t.Run("a suspended account is AccountNotActive", func(t *testing.T) {
		w.sim.SetAccountState(member(2), "SUSPENDED")
		t.Cleanup(func() { w.sim.SetAccountState(member(2), "ACTIVE") })
		o, err := checker.Check(ctx, member(2), "")
		if err != nil {
			t.Fatal(err)
		}
		if o.ErrorCode != "AccountNotActive" || !strings.Contains(o.Error, "SUSPENDED") {
			t.Errorf("answer = %+v", o)
		}
	})
	t.Run("garbage request gets an error answer", func(t *testing.T) {
		msg, err := caller.NC.RequestWithContext(ctx, bus.SubjectCheck, []byte("{nope"))
		if err != nil {
			t.Fatal(err)
		}
		var o model.Observation
		if err := json.Unmarshal(msg.Data, &o); err != nil || o.ErrorCode != "InvalidRequest" {
			t.Errorf("answer = %s (%v)", msg.Data, err)
		}
	})
	t.Run("in-process Check publishes too", func(t *testing.T) {
		o, err := d.Check(ctx, mgmtID, "recheck")
		if err != nil || o.Failed() || !o.Management {
			t.Fatalf("Check = %+v, %v", o, err)
		}
		waitFindings(t, b, 1, func(f model.Observation) bool { return f.ID == o.ID })
	})
}

func TestNewValidatesConfig(t *testing.T) {
	w := newWorld(t, 0, false, awssim.Options{})
	b := bustest.New(t)
	cfg := w.config("")
	cfg.SQSQueueURL = "sqs://nope"
	if _, err := detector.New(cfg, nil, b, w.awsConfig()); err == nil || !strings.HasPrefix(err.Error(), "ROOTWARDEN_SQS_QUEUE_URL:") {
		t.Errorf("New = %v, want an error naming ROOTWARDEN_SQS_QUEUE_URL", err)
	}
	if _, err := detector.New(w.config(""), nil, nil, w.awsConfig()); err == nil {
		t.Error("New without a bus must fail")
	}
}

func TestScanConsumerConfig(t *testing.T) {
	w := newWorld(t, 0, false, awssim.Options{})
	b := bustest.New(t)
	cfg := w.config("")
	cfg.AccountTimeout = 20 * time.Second
	runDetector(t, newDetector(t, w, cfg, b))
	waitFindings(t, b, 1, nil)
	ctx := context.Background()
	c, err := b.JS.Consumer(ctx, bus.StreamScan, bus.ConsumerDetectorScan)
	if err != nil {
		t.Fatal(err)
	}
	ci := c.CachedInfo().Config
	if ci.AckPolicy != jetstream.AckExplicitPolicy || ci.AckWait > 30*time.Second || ci.MaxDeliver <= 0 || ci.MaxDeliver > 10 {
		t.Errorf("consumer config = ack %v wait %s maxdeliver %d", ci.AckPolicy, ci.AckWait, ci.MaxDeliver)
	}
}

// counter sums a counter family of a registry.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func assertQueueEmpty(t *testing.T, w *world, queue string) {
	t.Helper()
	w.clock.Add(time.Hour) // past any visibility timeout
	c := sqs.NewFromConfig(w.awsConfig())
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), WaitTimeSeconds: 0, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 0 {
		t.Errorf("%d messages left in the queue", len(out.Messages))
	}
}
