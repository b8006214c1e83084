package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/nats-io/nats.go"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/config"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

// TestE2ETable measures the whole of `rootwarden run` (the wiring of serve.go: the
// detector, the remediator and the notifier over an embedded NATS server) from AWS to
// Slack, against the floor of one AWS round trip measured in the same run, and prints
// a markdown table. It is a benchmark, not a test, and runs only when asked:
//
//	ROOTWARDEN_BENCH=short go test -run TestE2ETable -v ./cmd/rootwarden   # CI, < 30 s
//	ROOTWARDEN_BENCH=1     go test -run TestE2ETable -v -timeout 30m ./cmd/rootwarden   # ~10 min
//
// ROOTWARDEN_BENCH_CLICKS and ROOTWARDEN_BENCH_EVENTS set the counts per latency;
// ROOTWARDEN_BENCH_RUN_ENV ("K=V;K=V") sets more of run's variables.
//
// Real parts: the AWS simulator behind the real aws-sdk-go-v2 clients (latency added
// to every call, SQS included), slack-go against the Slack fake, interactions signed
// as Slack signs them. Figures:
//
//   - event → Slack: a CloudTrail CreateAccessKey event by root sent to the
//     simulator's SQS queue until the Slack fake has answered the chat.postMessage of
//     the new case. Caches are warm (the start-up sweep ran: inventory and role
//     sessions), so the event costs one AWS call (GetAccountSummary). Each event is in
//     another account and each account is routed to its own channel
//     (ROOTWARDEN_SLACK_ROUTES), so Slack's 1 post/s per channel is not what is
//     measured; events go one at a time.
//   - click → resolved: a signed "I deleted the keys" on a ticketed case whose key
//     was deleted in the simulator, until the resolved case event is on the bus and
//     until Slack has answered the chat.update that shows "Resolved — verified".
//     Segments: the click until the check request is on the bus (and, beside it, the
//     `verifying` event), the request until the detector's answer reaches the
//     requester's inbox, the answer until the `resolved` event, and that event
//     until the edit is answered; the three slowest clicks are logged segment by
//     segment.
//     Each click costs two chat.update calls (verifying, resolved) of Slack's Tier 3
//     budget (~50 a minute; the notifier's bucket holds 3, one more every 1.3 s),
//     and the burst summary of the start-up sweep's cases takes one every 10 s.
//     Clicks are 4 s apart, so that the budget is full at each click: a person's
//     click is not what exhausts it. (At 2.7 s apart, 50 cases, the budget ran dry
//     and the edit waited for tokens: p50 0.5 s, p99 1.3 s; Slack's limit, not a
//     delay of rootwarden's.)
//
// The floor is the median of 20 GetAccountSummary calls straight through the SDK.
func TestE2ETable(t *testing.T) {
	mode := os.Getenv("ROOTWARDEN_BENCH")
	if mode != "short" && mode != "1" {
		t.Skip("benchmark: set ROOTWARDEN_BENCH=short (CI) or ROOTWARDEN_BENCH=1 (full) to run")
	}
	events, clicks := 6, 2 // per latency
	if mode == "1" {
		events, clicks = 100, 50 // 50 clicks: the p99 is the slowest click
	}
	if n := benchInt("ROOTWARDEN_BENCH_EVENTS"); n > 0 {
		events = n
	}
	if n := benchInt("ROOTWARDEN_BENCH_CLICKS"); n > 0 {
		clicks = n
	}
	latencies := []time.Duration{0, 50 * time.Millisecond}
	const (
		mgmt      = "100000000000"
		token     = "xoxb-bench"
		secret    = "bench-signing-secret"
		approver  = "U0BENCHAPP"
		defaultCh = "C0BENCH000"
		clickGap  = 4 * time.Second
		eventGap  = 200 * time.Millisecond
		// notifier.DefaultTier3Rate gives a chat.update token every 1.3 s: a click
		// needs two.
		tier3Refill = 2700 * time.Millisecond
	)
	nClick, nEvent := clicks*len(latencies), events*len(latencies)
	member := func(i int) string { return fmt.Sprintf("3%011d", i) }
	channelOf := func(acct string) string { return "CB" + acct[len(acct)-8:] }

	sim := awssim.New(awssim.Options{})
	sim.AddAccount(awssim.Account{ID: mgmt, Name: "management", Management: true})
	sim.EnableOrganization(mgmt)
	sl := slackfake.New(slackfake.WithChannel(defaultCh, "security"), slackfake.WithBotToken(token))
	sl.AddUser(approver, "approver")
	var routes []string
	var clickAccts, eventAccts []string
	for i := 1; i <= nClick+nEvent; i++ {
		a := member(i)
		sim.AddAccount(awssim.Account{ID: a, Name: "bench-" + a[len(a)-4:]})
		sl.AddChannel(channelOf(a), "acct-"+a)
		routes = append(routes, "account:"+a+"="+channelOf(a))
		if i <= nClick {
			sim.CreateRootKey(a, time.Now().AddDate(-1, 0, 0))
			clickAccts = append(clickAccts, a)
		} else {
			eventAccts = append(eventAccts, a)
		}
	}
	queue := sim.CreateQueue(mgmt, "rootwarden-events")
	simSrv := sim.Start()
	t.Cleanup(simSrv.Close)
	ctx := context.Background()
	awsCfg, err := sim.ClientConfig(ctx, simSrv.URL, mgmt)
	if err != nil {
		t.Fatal(err)
	}
	rec := newSlackRecorder(t, sl)

	env := map[string]string{
		"ROOTWARDEN_HTTP_ADDR": "127.0.0.1:0", "SLACK_BOT_TOKEN": token, "SLACK_SIGNING_SECRET": secret,
		"ROOTWARDEN_SLACK_CHANNEL": defaultCh, "ROOTWARDEN_SLACK_API_URL": rec.url, "ROOTWARDEN_APPROVERS": approver,
		"ROOTWARDEN_ORG_ROLE_NAME": "OrganizationAccountAccessRole", "ROOTWARDEN_SQS_QUEUE_URL": queue,
		"ROOTWARDEN_SCAN_INTERVAL": "1h", "ROOTWARDEN_LOG_LEVEL": "warn", "ROOTWARDEN_DATA_DIR": t.TempDir(),
		"ROOTWARDEN_SLACK_ROUTES": strings.Join(routes, ";"),
	}
	// Experiments: ROOTWARDEN_BENCH_RUN_ENV="ROOTWARDEN_TICKET_POLL=1h;…" sets more of
	// run's variables.
	for _, kv := range strings.Split(os.Getenv("ROOTWARDEN_BENCH_RUN_ENV"), ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	logs := &testutil.LogBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	ready := make(chan string, 1)
	natsURL := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- runServe(runCtx, []config.Role{config.RoleDetector, config.RoleRemediator, config.RoleNotifier}, logs,
			serveOptions{getenv: func(k string) string { return env[k] }, aws: &awsCfg, ready: func(a string) { ready <- a },
				bus: func(b *bus.Bus) { natsURL <- b.Server.ClientURL() }})
	}()
	t.Cleanup(func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("run exited %d; logs:\n%s", code, logs)
		}
	})
	var httpAddr string
	select {
	case httpAddr = <-ready:
	case code := <-done:
		t.Fatalf("run exited %d:\n%s", code, logs)
	}
	br := newBusRecorder(t, <-natsURL)

	waitFor := func(what string, d time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; logs:\n%s", what, logs)
			}
			time.Sleep(time.Millisecond)
		}
	}
	iamc := iam.NewFromConfig(awsCfg)
	roundTrip := func() time.Duration {
		var d []time.Duration
		for range 20 {
			t0 := time.Now()
			if _, err := iamc.GetAccountSummary(ctx, &iam.GetAccountSummaryInput{}); err != nil {
				t.Fatal(err)
			}
			d = append(d, time.Since(t0))
		}
		return pctl(d, 50)
	}

	// The start-up sweep: every account checked (inventory and sessions warm), a case
	// and a message for each account with a key; each is approved (ticketed).
	began := time.Now()
	phase := func(what string) { t.Logf("%6.1f s  %s", time.Since(began).Seconds(), what) }
	waitFor("the start-up sweep", time.Minute, func() bool { return br.sweptAccounts() == 1+nClick+nEvent })
	phase("start-up sweep done")
	interactions := "http://" + httpAddr + "/slack/interactions"
	caseOf := map[string]string{}
	for _, a := range clickAccts {
		var m slackfake.Message
		waitFor("the case message of "+a, time.Minute, func() bool {
			ms := sl.Messages(channelOf(a))
			if len(ms) == 0 {
				return false
			}
			m = ms[0]
			return true
		})
		caseOf[a] = fmt.Sprint(m.Metadata.EventPayload["case_id"])
		status, body, err := slackfake.Deliver(ctx, interactions, secret,
			slackfake.BlockAction(approver, "approver", notifier.ActionIDApprove, notifier.ButtonValue(a, caseOf[a]), channelOf(a), m.TS))
		if err != nil || status != http.StatusOK {
			t.Fatalf("approve %s: %d %s %v", a, status, body, err)
		}
	}
	for _, a := range clickAccts {
		waitFor("the ticketed message of "+a, 3*time.Minute, func() bool {
			m, _ := sl.Message(channelOf(a), sl.Messages(channelOf(a))[0].TS)
			for _, b := range m.Buttons() {
				if b.ActionID == notifier.ActionIDConfirmDeleted {
					return true
				}
			}
			return false
		})
	}
	// The approvals' edits spent the chat.update budget (Tier 3, burst 3): the clicks
	// start once it holds what a click needs again.
	phase("cases ticketed")
	waitFor("chat.update to be quiet", 3*time.Minute, func() bool { return time.Since(rec.last("chat.update")) > tier3Refill })
	phase("chat.update budget refilled")

	type row struct {
		what     string
		got      []time.Duration
		floor    time.Duration
		goal     time.Duration // 0: none
		comments string
	}
	var rows []row
	floors := map[time.Duration]time.Duration{}
	updatesPerClick := map[time.Duration]float64{}

	ci := 0
	for _, lat := range latencies {
		sim.SetLatency(lat)
		floor := roundTrip()
		floors[lat] = floor
		var toEvent, toEdit, toVerifying, toRequest, toAnswer, toResolved, toSlack []time.Duration
		u0 := rec.count("chat.update")
		for range clicks {
			a := clickAccts[ci]
			ci++
			for _, k := range sim.RootKeys(a) {
				sim.DeleteRootKey(a, k.ID)
			}
			ts := sl.Messages(channelOf(a))[0].TS
			sent := time.Now()
			status, body, err := slackfake.Deliver(ctx, interactions, secret,
				slackfake.BlockAction("U0RESPONDR", "responder", notifier.ActionIDConfirmDeleted, notifier.ButtonValue(a, caseOf[a]), channelOf(a), ts))
			if err != nil || status != http.StatusOK {
				t.Fatalf("confirm deleted %s: %d %s %v", a, status, body, err)
			}
			var resolved, edited time.Time
			waitFor("the resolved edit of "+a, time.Minute, func() bool {
				resolved = br.caseEvent(caseOf[a], model.EventResolved)
				edited = rec.edit(channelOf(a), "Resolved — verified")
				return !resolved.IsZero() && !edited.IsZero()
			})
			toEvent = append(toEvent, resolved.Sub(sent))
			toEdit = append(toEdit, edited.Sub(sent))
			verifying, asked, answered := br.caseEvent(caseOf[a], model.EventVerifying), br.at(a+"/check-request"), br.at(a+"/check-answer")
			toVerifying = append(toVerifying, verifying.Sub(sent))
			toRequest = append(toRequest, asked.Sub(sent))
			toAnswer = append(toAnswer, answered.Sub(asked))
			toResolved = append(toResolved, resolved.Sub(answered))
			toSlack = append(toSlack, edited.Sub(resolved))
			if os.Getenv("ROOTWARDEN_BENCH_TRACE") != "" {
				rec.trace(t, channelOf(a), sent)
				br.trace(t, caseOf[a], a, sent)
			}
			if ci < len(clickAccts) { // the events after the last click need no chat.update budget
				time.Sleep(time.Until(sent.Add(clickGap)))
			}
		}
		// The slowest clicks, segment by segment: where a tail comes from.
		order := make([]int, len(toEdit))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return int(toEdit[b] - toEdit[a]) })
		for _, i := range order[:min(3, len(order))] {
			t.Logf("slowest clicks at %s/call: %.1f ms = request %.1f (verifying %.1f) + answer %.1f + resolved %.1f + edit %.1f",
				lat, msf(toEdit[i]), msf(toRequest[i]), msf(toVerifying[i]), msf(toAnswer[i]), msf(toResolved[i]), msf(toSlack[i]))
		}
		updatesPerClick[lat] = float64(rec.count("chat.update")-u0) / float64(clicks)
		rows = append(rows,
			row{what: fmt.Sprintf("\"I deleted the keys\" click → Slack edit \"Resolved — verified\", AWS %s/call (%d clicks)", lat, clicks), got: toEdit, floor: floor, goal: floor + 30*time.Millisecond},
			row{what: "  ↳ click → `resolved` case event on the bus (the case resolved, visible in the API)", got: toEvent, floor: floor},
			row{what: "  ↳ click → `verifying` case event (notifier: signature, action; remediator: transition)", got: toVerifying},
			row{what: "  ↳ click → check request (the same, the request sent once `verifying` is stored, as its event is published)", got: toRequest},
			row{what: "  ↳ check request → its answer (detector: GetAccountSummary; the finding is published after)", got: toAnswer, floor: floor},
			row{what: "  ↳ answer → `resolved` case event (remediator)", got: toResolved},
			row{what: "  ↳ `resolved` → chat.update answered (notifier)", got: toSlack})
	}

	phase("clicks measured")
	ei := 0
	for _, lat := range latencies {
		sim.SetLatency(lat)
		floor := floors[lat]
		var total, toFinding, toCase, toPost []time.Duration
		for range events {
			a := eventAccts[ei]
			ei++
			key := sim.CreateRootKey(a, time.Now())
			body := awssim.RootKeyCreatedEvent(a, key, time.Now())
			sent := time.Now()
			sim.SendMessage(queue, body)
			var posted time.Time
			waitFor("the case message of "+a, time.Minute, func() bool {
				posted = rec.post(channelOf(a))
				return !posted.IsZero()
			})
			found, opened := br.finding(a), br.opened(a)
			total = append(total, posted.Sub(sent))
			toFinding = append(toFinding, found.Sub(sent))
			toCase = append(toCase, opened.Sub(found))
			toPost = append(toPost, posted.Sub(opened))
			time.Sleep(time.Until(sent.Add(eventGap)))
		}
		rows = append(rows,
			row{what: fmt.Sprintf("CloudTrail event on SQS → Slack post of the new case, AWS %s/call (%d events)", lat, events), got: total, floor: floor, goal: floor + 30*time.Millisecond},
			row{what: "  ↳ SQS → finding on the bus (detector)", got: toFinding, floor: floor},
			row{what: "  ↳ finding → `opened` case event (remediator)", got: toCase},
			row{what: "  ↳ `opened` → chat.postMessage answered (notifier)", got: toPost})
	}
	phase("events measured")
	stop()

	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", msf(d)) }
	var out strings.Builder
	fmt.Fprintf(&out, "\n| measurement | p50 | p99 | floor (same run) | goal |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		floor, goal := "—", "—"
		if r.floor > 0 {
			floor = ms(r.floor) + " (one AWS round trip)"
		}
		if r.goal > 0 {
			verdict := "met"
			if pctl(r.got, 99) > r.goal {
				verdict = "**missed**"
			}
			goal = fmt.Sprintf("p99 ≤ %s: %s", ms(r.goal), verdict)
		}
		fmt.Fprintf(&out, "| %s | %s | %s | %s | %s |\n", r.what, ms(pctl(r.got, 50)), ms(pctl(r.got, 99)), floor, goal)
	}
	var load [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		_, _ = fmt.Sscan(string(b), &load[0], &load[1], &load[2])
	}
	fmt.Fprintf(&out, "\nEvents: each account routed to its own channel, one event at a time (%s apart); clicks %s apart "+
		"(chat.update calls per click: %.1f at 0 ms, %.1f at 50 ms). Machine: %d CPUs, load average %.1f (1 min) at the end.\n",
		eventGap, clickGap, updatesPerClick[0], updatesPerClick[50*time.Millisecond], runtime.NumCPU(), load[0])
	fmt.Print(out.String())
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func benchInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

func pctl(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

// slackRecorder serves the Slack fake behind a handler that timestamps every
// chat.postMessage and chat.update once the fake has answered it.
type slackRecorder struct {
	url   string
	mu    sync.Mutex
	calls []slackCall
}

type slackCall struct {
	method, channel, threadTS, text string
	at                              time.Time
}

func newSlackRecorder(t *testing.T, sl *slackfake.Server) *slackRecorder {
	t.Helper()
	r := &slackRecorder{}
	srv := httptest.NewUnstartedServer(nil)
	inner := sl.Handler("http://" + srv.Listener.Addr().String())
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		method := strings.TrimPrefix(req.URL.Path, "/api/")
		if method != "chat.postMessage" && method != "chat.update" {
			inner.ServeHTTP(w, req)
			return
		}
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(strings.NewReader(string(body)))
		inner.ServeHTTP(w, req)
		at := time.Now()
		form, _ := url.ParseQuery(string(body))
		r.mu.Lock()
		r.calls = append(r.calls, slackCall{method: method, channel: form.Get("channel"), threadTS: form.Get("thread_ts"),
			text: form.Get("text") + "\n" + form.Get("blocks"), at: at})
		r.mu.Unlock()
	})
	srv.Start()
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/api/"
	return r
}

// post is when the first top-level message of the channel was answered (zero: none yet).
func (r *slackRecorder) post(channel string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if c.method == "chat.postMessage" && c.channel == channel && c.threadTS == "" {
			return c.at
		}
	}
	return time.Time{}
}

// edit is when the first chat.update in the channel showing text was answered.
func (r *slackRecorder) edit(channel, text string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if c.method == "chat.update" && c.channel == channel && strings.Contains(c.text, text) {
			return c.at
		}
	}
	return time.Time{}
}

// trace logs the channel's calls since t0 (ROOTWARDEN_BENCH_TRACE=1).
func (r *slackRecorder) trace(t *testing.T, channel string, t0 time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if c.channel == channel && c.at.After(t0) {
			t.Logf("%8.1f ms  %s thread=%q %.60q", float64(c.at.Sub(t0))/1e6, c.method, c.threadTS, c.text)
		}
	}
}

// last is when the latest call of the method was answered.
func (r *slackRecorder) last(method string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var at time.Time
	for _, c := range r.calls {
		if c.method == method && c.at.After(at) {
			at = c.at
		}
	}
	return at
}

func (r *slackRecorder) count(method string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if c.method == method {
			n++
		}
	}
	return n
}

// busRecorder timestamps findings, check requests, their answers and case events as
// they reach the bus: core NATS subscriptions on a connection of its own, all into
// one channel, so that the timestamps are in the order the server sent them.
type busRecorder struct {
	mu       sync.Mutex
	swept    map[string]bool
	findings map[string]time.Time // account → first event finding
	openedAt map[string]time.Time // account → first opened event
	events   map[string]time.Time // case id + "/" + type, or account + "/check-…" → first such
	asked    map[string]string    // reply subject of a check request → its account
}

func newBusRecorder(t *testing.T, natsURL string) *busRecorder {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := &busRecorder{swept: map[string]bool{}, findings: map[string]time.Time{}, openedAt: map[string]time.Time{}, events: map[string]time.Time{},
		asked: map[string]string{}}
	ch := make(chan *nats.Msg, 1<<16)
	// A check's answer is a reply to the requester's inbox (the request's reply
	// subject); the inboxes also carry JetStream's deliveries, acknowledgements and
	// KV reads, which are not answers.
	for _, subj := range []string{bus.SubjectFindings + ">", bus.SubjectCheck, bus.SubjectCases + ">", nats.InboxPrefix + ">"} {
		if _, err := nc.ChanSubscribe(subj, ch); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		for m := range ch {
			r.record(time.Now(), m)
		}
	}()
	t.Cleanup(func() { _ = nc.Drain() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *busRecorder) record(at time.Time, m *nats.Msg) {
	first := func(k string) {
		if r.events[k].IsZero() {
			r.events[k] = at
		}
	}
	switch {
	case strings.HasPrefix(m.Subject, nats.InboxPrefix):
		// Only the reply to a check request seen before (the server sends in order);
		// the rest costs a map lookup.
		r.mu.Lock()
		defer r.mu.Unlock()
		if account, ok := r.asked[m.Subject]; ok {
			delete(r.asked, m.Subject)
			first(account + "/check-answer")
		}
	case strings.HasPrefix(m.Subject, bus.SubjectFindings):
		var o model.Observation
		if json.Unmarshal(m.Data, &o) != nil {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		switch o.Source {
		case model.SourceSweep:
			r.swept[o.AccountID] = true
		case model.SourceCheck:
			first(o.AccountID + "/check-finding")
		case model.SourceEvent:
			if _, ok := r.findings[o.AccountID]; !ok {
				r.findings[o.AccountID] = at
			}
		}
	case m.Subject == bus.SubjectCheck:
		var req struct {
			Account string `json:"account_id"`
		}
		if json.Unmarshal(m.Data, &req) != nil {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		first(req.Account + "/check-request")
		if m.Reply != "" {
			r.asked[m.Reply] = req.Account
		}
	case strings.HasPrefix(m.Subject, bus.SubjectCases):
		var ev model.CaseEvent
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		first(ev.CaseID + "/" + string(ev.Type))
		if ev.Type == model.EventOpened && r.openedAt[ev.AccountID].IsZero() {
			r.openedAt[ev.AccountID] = at
		}
	}
}

func (r *busRecorder) trace(t *testing.T, caseID, account string, t0 time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, at := range r.events {
		if (strings.HasPrefix(k, caseID+"/") || strings.HasPrefix(k, account+"/")) && at.After(t0) {
			t.Logf("%8.1f ms  case event %s", float64(at.Sub(t0))/1e6, k)
		}
	}
}

func (r *busRecorder) at(key string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[key]
}

func (r *busRecorder) sweptAccounts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.swept)
}

func (r *busRecorder) finding(account string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.findings[account]
}

func (r *busRecorder) opened(account string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.openedAt[account]
}

func (r *busRecorder) caseEvent(caseID string, typ model.CaseEventType) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[caseID+"/"+string(typ)]
}
