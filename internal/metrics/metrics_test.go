package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

// TestSeriesExistFromStart: an alert on rate() or absent() needs the series before
// the first event.
func TestSeriesExistFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := Register(reg, Build{Version: "v1.2.3", Commit: "abc", Date: "2026-12-01"}); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg, Build{}); err != nil {
		t.Fatalf("a second Register must be harmless: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, mf := range mfs {
		series[mf.GetName()] = len(mf.GetMetric())
	}
	for name, want := range map[string]int{
		"rootwarden_build_info":                           1,
		"rootwarden_case_time_to_remediate_seconds":       3,
		"rootwarden_cases":                                10,
		"rootwarden_case_oldest_open_age_seconds":         2,
		"rootwarden_accounts_with_root_keys":              1,
		"rootwarden_sweep_last_success_timestamp_seconds": 1,
		"rootwarden_slack_calls_total":                    len(SlackMethods) * len(outcomes),
		"rootwarden_tracker_calls_total":                  len(Trackers) * len(outcomes),
	} {
		if series[name] < want {
			t.Errorf("%s: %d series at start, want at least %d", name, series[name], want)
		}
	}
	if v := val(t, buildInfo.WithLabelValues("v1.2.3", "abc", "2026-12-01", runtime.Version())); v != 1 {
		t.Errorf("build info = %v", v)
	}
}

func TestTimeToRemediate(t *testing.T) {
	opened := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	before := map[string]uint64{}
	for _, r := range []string{ResolvedDeleted, ResolvedAssumeRoot, ResolvedRiskAccepted} {
		before[r] = histCount(t, r)
	}
	defer NewTally().Publish(time.Now()) // these events move no case the other tests count
	CaseEvent(model.CaseEvent{Type: model.EventResolved, At: opened.Add(3 * time.Hour), Case: model.Case{OpenedAt: opened}})
	CaseEvent(model.CaseEvent{Type: model.EventResolved, At: opened.Add(time.Hour), Case: model.Case{OpenedAt: opened, DeletedKeyIDs: []string{"AKIA1"}}})
	CaseEvent(model.CaseEvent{Type: model.EventRiskAccepted, At: opened.Add(time.Hour), Case: model.Case{OpenedAt: opened}})
	CaseEvent(model.CaseEvent{Type: model.EventTicketed, At: opened.Add(time.Hour), Case: model.Case{OpenedAt: opened}})
	for r, want := range map[string]uint64{ResolvedDeleted: 1, ResolvedAssumeRoot: 1, ResolvedRiskAccepted: 1} {
		if got := histCount(t, r) - before[r]; got != want {
			t.Errorf("%s: %d observations, want %d", r, got, want)
		}
	}
}

func histCount(t *testing.T, resolution string) uint64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(timeToRemediate)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "resolution" && l.GetValue() == resolution {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	t.Fatalf("no series for resolution %s", resolution)
	return 0
}

func oldest(t *testing.T, sev string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(oldestOpen)
	return gathered(t, reg, "rootwarden_case_oldest_open_age_seconds", "severity", sev)
}

func TestCaseGauges(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock = func() time.Time { return now }
	defer func() { clock = time.Now }()
	tl := NewTally()
	tl.Add(model.Case{AccountID: "1", State: model.StateOpen, Severity: model.SeverityCritical, OpenedAt: now.Add(-2 * time.Hour)})
	tl.Add(model.Case{AccountID: "2", State: model.StateTicketed, Severity: model.SeverityCritical, OpenedAt: now.Add(-30 * time.Hour)})
	tl.Add(model.Case{AccountID: "3", State: model.StateRiskAccepted, Severity: model.SeverityHigh, OpenedAt: now.Add(-900 * time.Hour)})
	tl.Add(model.Case{AccountID: "4", State: model.StateResolved, Severity: model.SeverityHigh, OpenedAt: now.Add(-90 * time.Hour)})
	tl.Publish(now)
	if v := val(t, cases.WithLabelValues("ticketed", "critical")); v != 1 {
		t.Errorf("ticketed/critical = %v", v)
	}
	if v := val(t, cases.WithLabelValues("verifying", "high")); v != 0 {
		t.Errorf("verifying/high = %v", v)
	}
	if v := oldest(t, "critical"); v != 30*3600 {
		t.Errorf("oldest critical = %v, want 30h", v)
	}
	if v := oldest(t, "high"); v != 0 {
		t.Errorf("oldest high = %v: risk-accepted and resolved cases do not count", v)
	}
	if v := val(t, accountsWithKeys); v != 3 {
		t.Errorf("accounts with keys = %v, want 3 (open, ticketed, risk accepted)", v)
	}

	// Between passes: the age grows at scrape time, and each saved event moves its case.
	now = now.Add(time.Hour)
	if v := oldest(t, "critical"); v != 31*3600 {
		t.Errorf("an hour later the oldest critical = %v, want 31h", v)
	}
	resolved := model.Case{AccountID: "2", State: model.StateResolved, Severity: model.SeverityCritical, OpenedAt: now.Add(-31 * time.Hour)}
	CaseEvent(model.CaseEvent{Type: model.EventResolved, At: now, From: model.StateVerifying, To: model.StateResolved, Case: resolved})
	if v := val(t, cases.WithLabelValues("ticketed", "critical")); v != 0 {
		t.Errorf("after the resolution ticketed/critical = %v", v)
	}
	if v := val(t, cases.WithLabelValues("resolved", "critical")); v != 1 {
		t.Errorf("after the resolution resolved/critical = %v", v)
	}
	if v := oldest(t, "critical"); v != 3*3600 {
		t.Errorf("after the resolution the oldest critical = %v, want 3h (case 1)", v)
	}
	if v := val(t, accountsWithKeys); v != 2 {
		t.Errorf("after the resolution accounts with keys = %v, want 2", v)
	}
	// The next full pass replaces the view.
	NewTally().Publish(now)
	if v := val(t, cases.WithLabelValues("open", "critical")); v != 0 {
		t.Errorf("after an empty pass open/critical = %v", v)
	}
	if v := oldest(t, "critical"); v != 0 {
		t.Errorf("after an empty pass the oldest critical = %v", v)
	}
}

func TestSlackTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/chat.postMessage":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			io.WriteString(w, `{"ok":true,"ts":"1.2"}`)
		case "/api/chat.update":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":false,"error":"message_not_found"}`)
		case "/api/conversations.history":
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	c := &http.Client{Transport: SlackTransport(nil)}
	get := func(method string) string {
		resp, err := c.Post(srv.URL+"/api/"+method, "application/x-www-form-urlencoded", strings.NewReader("x=1"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	cases := []struct{ method, outcome string }{
		{"chat.postMessage", OutcomeOK}, {"chat.update", OutcomeClientError},
		{"conversations.history", OutcomeRateLimited}, {"views.open", OutcomeServerError},
	}
	for _, tc := range cases {
		before := val(t, slackCalls.WithLabelValues(tc.method, tc.outcome))
		body := get(tc.method)
		if got := val(t, slackCalls.WithLabelValues(tc.method, tc.outcome)) - before; got != 1 {
			t.Errorf("%s: %s counted %v times", tc.method, tc.outcome, got)
		}
		if tc.method == "chat.postMessage" && body != `{"ok":true,"ts":"1.2"}` {
			t.Errorf("the body was not handed on unchanged: %q", body)
		}
	}
	before := val(t, trackerCalls.WithLabelValues("github", OutcomeNetwork))
	dead := &http.Client{Transport: TrackerTransport("github", nil)}
	srv.Close()
	if _, err := dead.Get(srv.URL + "/repos/x/y/issues"); err == nil {
		t.Fatal("a closed server answered")
	}
	if got := val(t, trackerCalls.WithLabelValues("github", OutcomeNetwork)) - before; got != 1 {
		t.Errorf("network failure counted %v times", got)
	}
}

func TestConsumerLag(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	if _, err := b.JS.CreateOrUpdateConsumer(ctx, bus.StreamCases, jetstream.ConsumerConfig{
		Durable: bus.ConsumerNotifierCases, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := b.JS.Publish(ctx, bus.CaseSubject("111111111111"), []byte{byte('0' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewConsumerLag(b.JS, time.Second))
	if got := gathered(t, reg, "rootwarden_consumer_pending_messages", "consumer", bus.ConsumerNotifierCases); got != 3 {
		t.Errorf("pending = %v, want 3", got)
	}
}

// val reads one gauge or counter child through a registry, as a scrape would.
func val(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gather one series: %v %v", mfs, err)
	}
	m := mfs[0].GetMetric()[0]
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// gathered reads the series of name whose label has value.
func gathered(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}
