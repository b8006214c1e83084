package notifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

// Secrets that must never reach a log line.
const (
	botToken      = "xoxb-1111-2222-BOTTOKENSECRET"
	appToken      = "xapp-1-A0FAKE-3333-APPTOKENSECRET"
	signingSecret = "8f14e45fceea167a5a36dedd4bea2543SIGNINGSECRET"
	channelID     = "C0CASES"
	approverUser  = "U0APPROVER"
	groupMember   = "U0ONCALL"
	outsider      = "U0OUTSIDER"
	oncallGroup   = "S0ONCALL"
	account       = "222222222222"
)

type env struct {
	t     testing.TB
	b     *bus.Bus
	fake  *slackfake.Server
	api   *slack.Client
	cfg   notifier.Config
	n     *notifier.Notifier
	clock *testutil.Clock
	logs  *testutil.LogBuffer
	http  *httptest.Server
	seq   map[string]int
}

// newEnv builds a notifier on a real embedded NATS server and a real slack-go client
// talking to slackfake. Every env checks at the end that no secret reached the logs.
func newEnv(t testing.TB, mutate func(*notifier.Config)) *env {
	t.Helper()
	return newEnvWith(t, nil, mutate)
}

// newEnvWith is newEnv with more options for the fake (limits, seed).
func newEnvWith(t testing.TB, fakeOpts []slackfake.Option, mutate func(*notifier.Config)) *env {
	t.Helper()
	e := &env{t: t, b: bustest.New(t), logs: &testutil.LogBuffer{}, seq: map[string]int{},
		clock: testutil.NewClock(time.Now().UTC().Truncate(time.Second))}
	e.fake = slackfake.New(append([]slackfake.Option{slackfake.WithBotToken(botToken), slackfake.WithAppToken(appToken),
		slackfake.WithChannel(channelID, "root-keys")}, fakeOpts...)...)
	apiURL := e.fake.Start()
	t.Cleanup(e.fake.Close)
	e.fake.AddUserGroup(oncallGroup, groupMember, "U0SOMEONE")
	e.fake.AddUser(approverUser, "alice")
	e.api = slack.New(botToken, slack.OptionAPIURL(apiURL))
	e.cfg = notifier.Config{
		Channel:       channelID,
		SigningSecret: signingSecret,
		APIURL:        apiURL,
		Approvers:     []string{approverUser, oncallGroup},
		Now:           e.clock.Now,
		RetryBase:     50 * time.Millisecond,
		RetryMax:      200 * time.Millisecond,
		TickEvery:     time.Hour, // tests call Tick themselves
		MaxReminders:  notifier.DefaultMaxReminders,
		// Tests that are not about pacing do not wait for Slack's rates.
		PostRate:  notifier.Rate{Every: time.Millisecond, Burst: 100},
		Tier3Rate: notifier.Rate{Every: time.Millisecond, Burst: 100},
	}
	if mutate != nil {
		mutate(&e.cfg)
	}
	n, err := notifier.New(e.cfg, e.logs.Logger(), e.b, e.api)
	if err != nil {
		t.Fatalf("notifier.New: %v", err)
	}
	e.n = n
	e.http = httptest.NewServer(n.InteractionsHandler())
	t.Cleanup(e.http.Close)
	t.Cleanup(func() { assertNoSecrets(t, e.logs.String()) })
	return e
}

func assertNoSecrets(t testing.TB, logs string) {
	t.Helper()
	for _, s := range []string{botToken, appToken, signingSecret, "BOTTOKENSECRET", "APPTOKENSECRET", "SIGNINGSECRET"} {
		if strings.Contains(logs, s) {
			t.Errorf("a secret (%.12s…) appears in the logs", s)
		}
	}
}

// run starts the notifier until the test ends.
func (e *env) run() {
	e.t.Helper()
	testutil.Run(e.t, 10*time.Second, e.n.Run)
}

func baseCase(id string, now time.Time) model.Case {
	rotated := now.Add(-400 * 24 * time.Hour)
	used := now.Add(-2 * time.Hour)
	return model.Case{
		SchemaVersion: model.SchemaVersion, ID: id, Number: 1, AccountID: account, AccountName: "prod",
		State: model.StateOpen, Severity: model.SeverityCritical,
		Keys: []model.KeyDetail{
			{Slot: 1, Active: true, LastRotated: &rotated, LastUsedAt: &used, LastUsedRegion: "eu-west-1", LastUsedService: "s3"},
			{Slot: 2, Active: false, LastRotated: &rotated},
		},
		FoundBy: model.SourceEvent,
		Event: &model.TrailEvent{EventID: "ev-1", EventName: "ListBuckets", EventSource: "s3.amazonaws.com",
			EventTime: used, SourceIP: "203.0.113.7", UserAgent: "aws-cli/2.15.0", AccessKeyID: "AKIAEXAMPLE", KeyInUse: true},
		LastCheckedAt: now, OpenedAt: now, UpdatedAt: now,
	}
}

// publish writes c as the account's current case (as the remediator would) and
// publishes the case event that produced it.
func (e *env) publish(c model.Case, typ model.CaseEventType, from model.State, actor model.Actor, reason string) model.CaseEvent {
	e.t.Helper()
	e.seq[c.ID]++
	c.Seq = e.seq[c.ID]
	c.UpdatedAt = e.clock.Now()
	e.putCase(c)
	ev := model.CaseEvent{SchemaVersion: model.SchemaVersion, ID: fmt.Sprintf("%s/%d", c.ID, c.Seq), Type: typ,
		CaseID: c.ID, AccountID: c.AccountID, Seq: c.Seq, From: from, To: c.State, Actor: actor, At: e.clock.Now(),
		Reason: reason, Case: c}
	e.publishEvent(ev, ev.ID)
	return ev
}

// openCase publishes the opening event of a new case for account and waits until its
// message is posted.
func (e *env) openCase() model.Case {
	e.t.Helper()
	c := baseCase(account+"-1", e.clock.Now())
	e.publish(c, model.EventOpened, "", model.System, "root access key found")
	e.rendered(c.ID, 1)
	e.tracked(c.ID)
	return c
}

func (e *env) publishEvent(ev model.CaseEvent, msgID string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.b.PublishJSON(ctx, bus.CaseSubject(ev.AccountID), msgID, ev); err != nil {
		e.t.Fatalf("publish case event: %v", err)
	}
}

func (e *env) putCase(c model.Case) {
	e.t.Helper()
	data, _ := json.Marshal(c)
	if _, err := e.b.Cases.Put(context.Background(), c.AccountID, data); err != nil {
		e.t.Fatalf("put case: %v", err)
	}
}

// rendered waits until the case's record says seq was rendered.
func (e *env) rendered(caseID string, seq int) {
	e.t.Helper()
	testutil.Eventually(e.t, fmt.Sprintf("case %s seq %d rendered", caseID, seq), func() bool {
		ent, err := e.b.Slack.Get(context.Background(), caseID)
		if err != nil {
			return false
		}
		var r struct {
			RenderedSeq int `json:"rendered_seq"`
		}
		return json.Unmarshal(ent.Value(), &r) == nil && r.RenderedSeq >= seq
	})
}

// tracked waits until e.n's reminder index (fed by a watch) has seen the case's
// record as it is now, so that a Tick acts on it.
func (e *env) tracked(caseID string) {
	e.t.Helper()
	ent, err := e.b.Slack.Get(context.Background(), caseID)
	if err != nil {
		e.t.Fatalf("record of %s: %v", caseID, err)
	}
	testutil.Eventually(e.t, "reminder index has "+caseID, func() bool { return e.n.DueRevision() >= ent.Revision() })
}

func (e *env) slackRef(caseID string) model.SlackRef {
	e.t.Helper()
	ent, err := e.b.Slack.Get(context.Background(), caseID)
	if err != nil {
		e.t.Fatalf("SlackRef of %s: %v", caseID, err)
	}
	var r model.SlackRef
	if err := json.Unmarshal(ent.Value(), &r); err != nil {
		e.t.Fatalf("decode SlackRef: %v", err)
	}
	return r
}

// onlyMessage asserts the channel holds exactly one top-level message and returns it.
func (e *env) onlyMessage() slackfake.Message {
	e.t.Helper()
	msgs := e.fake.Messages(channelID)
	if len(msgs) != 1 {
		e.t.Fatalf("want exactly 1 top-level message in %s, got %d", channelID, len(msgs))
	}
	return msgs[0]
}

// actions returns every action in RW_ACTIONS.
func (e *env) actions() []model.Action {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.b.JS.Stream(ctx, bus.StreamActions)
	if err != nil {
		e.t.Fatalf("stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		e.t.Fatalf("stream info: %v", err)
	}
	var out []model.Action
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatalf("get msg %d: %v", seq, err)
		}
		var a model.Action
		if err := json.Unmarshal(m.Data, &a); err != nil {
			e.t.Fatalf("decode action: %v", err)
		}
		out = append(out, a)
	}
	return out
}

// deliver posts a signed interaction like Slack does.
func (e *env) deliver(form url.Values) (int, string) {
	e.t.Helper()
	status, body, err := slackfake.Deliver(context.Background(), e.http.URL, signingSecret, form)
	if err != nil {
		e.t.Fatalf("deliver: %v", err)
	}
	return status, string(body)
}

// raw posts body with headers as given.
func (e *env) raw(h http.Header, body []byte) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.http.URL, bytes.NewReader(body))
	if h != nil {
		req.Header = h
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func buttonIDs(m slackfake.Message) []string {
	var ids []string
	for _, b := range m.Buttons() {
		ids = append(ids, b.ActionID)
	}
	return ids
}

func slackActor(id, name string) model.Actor {
	return model.Actor{Kind: model.ActorSlack, ID: id, Name: name}
}

type slackMeta = slack.SlackMetadata

func slackClient(e *env, token string) *slack.Client {
	return slack.New(token, slack.OptionAPIURL(e.fake.APIURL()))
}

// onlyMessageOf is the case's top-level message.
func (e *env) onlyMessageOf(caseID string) slackfake.Message {
	e.t.Helper()
	ref := e.slackRef(caseID)
	for _, m := range e.fake.Messages(channelID) {
		if m.TS == ref.TS {
			return m
		}
	}
	e.t.Fatalf("no message %s for case %s", ref.TS, caseID)
	return slackfake.Message{}
}
