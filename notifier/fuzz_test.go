package notifier_test

// A native fuzz target for POST /slack/interactions: the body limit, Slack's signature
// check, the form and the interaction payload, up to the action it publishes.
//   go test -run '^$' -fuzz '^FuzzInteractions$' -fuzztime 30s ./notifier
//
// The NATS server runs in a helper process (this test binary, TestFuzzNATSHelper): an
// in-process server's background goroutines would change the coverage the fuzzer sees
// on every input and stall it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/notifier"
)

func FuzzInteractions(f *testing.F) {
	const (
		secret   = "fuzz-signing-secret"
		approver = "U0FUZZAPPR"
		acct     = "333333333333"
		caseID   = "333333333333-1"
		channel  = "C0FUZZ"
	)
	b := fuzzBus(f)
	sl := slackfake.New(slackfake.WithChannel(channel, "fuzz"))
	apiURL := sl.Start()
	f.Cleanup(sl.Close)
	n, err := notifier.New(notifier.Config{Channel: channel, SigningSecret: secret, APIURL: apiURL,
		Approvers: []string{approver}, MaxBodyBytes: 64 << 10}, nil, b, slack.New("xoxb-fuzz", slack.OptionAPIURL(apiURL)))
	if err != nil {
		f.Fatal(err)
	}
	h := n.InteractionsHandler()
	now := time.Now().UTC()
	c := model.Case{SchemaVersion: model.SchemaVersion, ID: caseID, Number: 1, AccountID: acct, State: model.StateOpen,
		Severity: model.SeverityHigh, OpenedAt: now, UpdatedAt: now, LastCheckedAt: now}
	raw, _ := json.Marshal(c)
	ctx := context.Background()
	if _, err := b.Cases.Put(ctx, acct, raw); err != nil {
		f.Fatal(err)
	}
	// Every action published on the bus also reaches this core subscription; it is
	// drained after each request (a JetStream API call per input would stall the fuzzer).
	published := make(chan *nats.Msg, 64)
	sub, err := b.NC.ChanSubscribe(bus.SubjectActions+">", published)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = sub.Unsubscribe() })
	drain := func(t *testing.T) []*nats.Msg {
		if err := b.NC.Flush(); err != nil {
			t.Fatal(err)
		}
		var out []*nats.Msg
		for {
			select {
			case m := <-published:
				out = append(out, m)
			default:
				return out
			}
		}
	}

	value := notifier.ButtonValue(acct, caseID)
	for _, form := range []url.Values{
		slackfake.BlockAction(approver, "alice", notifier.ActionIDApprove, value, channel, "1700000000.000100"),
		slackfake.BlockAction("U0ANYONE", "bob", notifier.ActionIDConfirmDeleted, value, channel, "1700000000.000100"),
		slackfake.BlockAction("U0ANYONE", "bob", notifier.ActionIDRecheck, value, channel, "1700000000.000100"),
		slackfake.BlockAction("U0ANYONE", "bob", notifier.ActionIDApprove, value, channel, "1700000000.000100"),
		slackfake.BlockAction(approver, "alice", notifier.ActionIDApprove, notifier.ButtonValue(acct, acct+"-0"), channel, "1.1"),
		slackfake.BlockAction(approver, "alice", notifier.ActionIDApprove, notifier.ButtonValue("444444444444", "444444444444-1"), channel, "1.1"),
		slackfake.BlockAction(approver, "alice", "rw_frobnicate", value, channel, "1.1"),
		slackfake.BlockAction(approver, "alice", notifier.ActionIDApprove, "no-separator", channel, "1.1"),
		slackfake.ViewSubmission(approver, "alice", slackfake.View{ID: "V1", Request: slack.ModalViewRequest{
			CallbackID: notifier.CallbackAcceptRisk, PrivateMetadata: value}},
			map[string]map[string]slack.BlockAction{
				notifier.BlockIDReason:  {notifier.ActionIDReason: slackfake.TextValue("compensating control")},
				notifier.BlockIDExpires: {notifier.ActionIDExpires: slackfake.DateValue(now.AddDate(0, 0, 7).Format("2006-01-02"))},
			}),
		{"payload": {`{"type":"view_closed"}`}},
		{"payload": {`{"type":"block_actions","actions":[]}`}},
		{"payload": {`[]`}},
		{"payload": {""}},
		{"other": {"x"}},
	} {
		f.Add([]byte(form.Encode()), uint8(0))
	}
	f.Add([]byte("payload=%zz"), uint8(0))
	f.Add([]byte(slackfake.BlockAction(approver, "alice", notifier.ActionIDApprove, value, channel, "1.1").Encode()), uint8(1))
	f.Add([]byte("payload=%7B%7D"), uint8(2))

	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		req := httptest.NewRequest(http.MethodPost, "/slack/interactions", bytes.NewReader(body))
		switch mode % 3 {
		case 0:
			req.Header = slackfake.Sign(secret, time.Now(), body)
		case 1:
			req.Header = slackfake.Sign("not-the-secret", time.Now(), body)
		case 2:
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		drain(t) // anything left from an earlier input
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		msgs := drain(t)

		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if mode%3 != 0 && rec.Code != http.StatusUnauthorized && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("an unsigned or forged request got %d, want 401", rec.Code)
		}
		if len(msgs) > 0 && rec.Code != http.StatusOK {
			t.Fatalf("refused with %d but published %d action(s)", rec.Code, len(msgs))
		}
		if len(msgs) > 1 {
			t.Fatalf("one request published %d actions", len(msgs))
		}
		if len(msgs) == 0 {
			return
		}
		msg := msgs[0]
		var a model.Action
		if err := json.Unmarshal(msg.Data, &a); err != nil {
			t.Fatalf("published action does not decode: %v", err)
		}
		// Only an action on the current case of a known account gets through, with an
		// id that dedupes Slack's retries and the actor who clicked.
		if a.AccountID != acct || a.CaseID != caseID || msg.Subject != bus.ActionSubject(acct) {
			t.Fatalf("published an action for %s/%s on %s", a.AccountID, a.CaseID, msg.Subject)
		}
		if a.ID == "" || a.Actor.ID == "" || a.Kind == "" {
			t.Fatalf("published an incomplete action %+v", a)
		}
		if (a.Kind == model.ActionApprove || a.Kind == model.ActionAcceptRisk || a.Kind == model.ActionRevokeAccept) && a.Actor.ID != approver {
			t.Fatalf("%s published for non-approver %s", a.Kind, a.Actor.ID)
		}
	})
}

const fuzzNATSDirEnv = "ROOTWARDEN_FUZZ_NATS_DIR"

// fuzzBus starts a NATS server in a helper process and opens the bus on it.
func fuzzBus(f *testing.F) *bus.Bus {
	f.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFuzzNATSHelper$")
	cmd.Env = append(os.Environ(), fuzzNATSDirEnv+"="+f.TempDir())
	stdin, err := cmd.StdinPipe() // the helper exits when this closes (also when we die)
	if err != nil {
		f.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		f.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	var url string
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "NATS_URL="); ok {
			url = u
			break
		}
	}
	if url == "" {
		f.Fatal("the NATS helper process printed no URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{URL: url}, nil)
	if err != nil {
		f.Fatalf("open bus: %v", err)
	}
	f.Cleanup(b.Close)
	return b
}

// TestFuzzNATSHelper is the NATS server process of FuzzInteractions, not a test.
func TestFuzzNATSHelper(t *testing.T) {
	dir := os.Getenv(fuzzNATSDirEnv)
	if dir == "" {
		t.Skip("the NATS server process of FuzzInteractions; runs only when started by it")
	}
	s, err := bus.StartEmbedded(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	os.Stdout.WriteString("NATS_URL=" + s.ClientURL() + "\n")
	_, _ = bufio.NewReader(os.Stdin).ReadString(0) // until the fuzzer closes stdin
}
