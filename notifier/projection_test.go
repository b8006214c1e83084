package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

func TestCaseMessageFollowsTheCase(t *testing.T) {
	e := newEnv(t, nil)
	e.run()
	c := e.openCase()
	m := e.onlyMessage()
	if got, want := buttonIDs(m), []string{notifier.ActionIDApprove, notifier.ActionIDAcceptRisk, notifier.ActionIDRecheck}; !reflect.DeepEqual(got, want) {
		t.Fatalf("open buttons = %v, want %v", got, want)
	}
	btns := m.Buttons()
	if btns[0].Style != "primary" || !btns[0].Confirm || btns[0].Text != "Approve remediation" {
		t.Errorf("approve button = %+v, want primary with confirm", btns[0])
	}
	if !btns[1].Confirm || btns[1].Text != "Accept risk…" {
		t.Errorf("accept button = %+v, want a confirm dialog", btns[1])
	}
	for _, b := range btns {
		if b.Value != notifier.ButtonValue(account, c.ID) {
			t.Errorf("button %s value = %q, want account|case", b.ActionID, b.Value)
		}
	}
	text := m.AllText()
	for _, want := range []string{"Critical", account, "prod", "Key 1", "*active*", "eu-west-1", "s3", "ListBuckets",
		"203.0.113.7", "aws-cli/2.15.0", "open: waiting for an on-call approver", notifier.RootSignInURL, notifier.DeleteKeyDocURL} {
		if !strings.Contains(text, want) {
			t.Errorf("message lacks %q:\n%s", want, text)
		}
	}
	if m.Metadata == nil || m.Metadata.EventType != notifier.MetadataCase || m.Metadata.EventPayload["case_id"] != c.ID {
		t.Errorf("metadata = %+v, want %s with the case id", m.Metadata, notifier.MetadataCase)
	}
	if ref := e.slackRef(c.ID); ref.Channel != channelID || ref.TS != m.TS || ref.CaseID != c.ID {
		t.Errorf("SlackRef = %+v, want channel %s ts %s", ref, channelID, m.TS)
	}
	wantLink := "https://fake.slack.test/archives/" + channelID + "/p" + strings.ReplaceAll(m.TS, ".", "")
	if ref := e.slackRef(c.ID); ref.Permalink != wantLink {
		t.Errorf("permalink = %q, want %q (tickets link back to Slack with it)", ref.Permalink, wantLink)
	}
	if len(m.Replies) != 0 {
		t.Errorf("opening posted %d thread replies, want 0", len(m.Replies))
	}

	// ticketed: edited in place, a reply saying who/when/why, the ticket link.
	c.State = model.StateTicketed
	c.Ticket = &model.TicketRef{System: "builtin", ID: "RW-7", URL: "https://tickets.example/RW-7"}
	e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved in Slack")
	e.rendered(c.ID, 2)
	m = e.onlyMessage()
	if got, want := buttonIDs(m), []string{notifier.ActionIDConfirmDeleted, notifier.ActionIDRecheck}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ticketed buttons = %v, want %v", got, want)
	}
	if m.Edits != 1 || !strings.Contains(m.AllText(), "https://tickets.example/RW-7") {
		t.Errorf("edits = %d, text has ticket = %v", m.Edits, strings.Contains(m.AllText(), "RW-7"))
	}
	if len(m.Replies) != 1 || !strings.Contains(m.Replies[0].Text, "<@"+approverUser+">") ||
		!strings.Contains(m.Replies[0].Text, "approved in Slack") || !strings.Contains(m.Replies[0].Text, "open → ticketed") {
		t.Fatalf("replies after ticketed = %+v", m.Replies)
	}

	// A refused action is explained in the thread; the state does not change.
	e.publish(c, model.EventRefused, model.StateTicketed, slackActor(outsider, "bob"), "approve does not apply to a ticketed case")
	e.rendered(c.ID, 3)
	m = e.onlyMessage()
	if len(m.Replies) != 2 || !strings.Contains(m.Replies[1].Text, "refused") || !strings.Contains(m.Replies[1].Text, "does not apply") ||
		!strings.Contains(m.Replies[1].Text, "<@"+outsider+">") {
		t.Fatalf("refusal reply = %+v", m.Replies)
	}

	// verifying: only Re-check (a check that keeps failing can be retried by hand).
	c.State = model.StateVerifying
	e.publish(c, model.EventVerifying, model.StateTicketed, slackActor(outsider, "bob"), "I deleted the keys")
	e.rendered(c.ID, 4)
	if m = e.onlyMessage(); !slices.Equal(buttonIDs(m), []string{notifier.ActionIDRecheck}) || len(m.Replies) != 3 {
		t.Fatalf("verifying: buttons %v replies %d, want Re-check only and 3", buttonIDs(m), len(m.Replies))
	}

	// resolved after a check: "Resolved — verified", no buttons.
	c.State = model.StateResolved
	now := e.clock.Now()
	c.ResolvedAt = &now
	e.publish(c, model.EventResolved, model.StateVerifying, model.System, "AWS reports no root access keys")
	e.rendered(c.ID, 5)
	m = e.onlyMessage()
	if len(m.Buttons()) != 0 || !strings.Contains(m.AllText(), "Resolved — verified") || len(m.Replies) != 4 || m.Edits != 4 {
		t.Fatalf("resolved: buttons %v, replies %d, edits %d, text:\n%s", buttonIDs(m), len(m.Replies), m.Edits, m.AllText())
	}
}

func TestRiskAcceptedShowsRevoke(t *testing.T) {
	e := newEnv(t, nil)
	e.run()
	c := baseCase(account+"-1", e.clock.Now())
	c.Severity = model.SeverityHigh
	e.publish(c, model.EventOpened, "", model.System, "found by sweep")
	c.State = model.StateRiskAccepted
	c.Risk = &model.RiskAcceptance{Reason: "break-glass account", Expires: e.clock.Now().Add(30 * 24 * time.Hour),
		By: slackActor(approverUser, "alice"), At: e.clock.Now()}
	e.publish(c, model.EventRiskAccepted, model.StateOpen, slackActor(approverUser, "alice"), "break-glass account")
	e.rendered(c.ID, 2)
	m := e.onlyMessage()
	if got := buttonIDs(m); !reflect.DeepEqual(got, []string{notifier.ActionIDRevoke}) {
		t.Fatalf("risk_accepted buttons = %v, want revoke only", got)
	}
	if !strings.Contains(m.AllText(), "High") || !strings.Contains(m.AllText(), "break-glass account") {
		t.Errorf("text lacks severity or reason:\n%s", m.AllText())
	}
}

func TestRedeliveryDoesNotDuplicate(t *testing.T) {
	e := newEnv(t, nil)
	e.run()
	c := baseCase(account+"-1", e.clock.Now())
	open := e.publish(c, model.EventOpened, "", model.System, "found")
	c.State = model.StateTicketed
	tick := e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
	e.rendered(c.ID, 2)

	// The same events again under new message ids (a republish): skipped by seq.
	e.publishEvent(open, "again-1")
	e.publishEvent(tick, "again-2")
	// A marker event after them proves they were consumed.
	c.State = model.StateVerifying
	e.publish(c, model.EventVerifying, model.StateTicketed, slackActor(outsider, "bob"), "deleted")
	e.rendered(c.ID, 3)
	m := e.onlyMessage()
	if len(m.Replies) != 2 {
		t.Fatalf("thread replies = %d, want 2 (ticketed, verifying)", len(m.Replies))
	}

	// A thread reply whose answer is lost: Slack has it, the notifier retries; the
	// redelivery finds it in the thread and does not post it again.
	e.fake.FailNext("chat.postMessage", 1, slackfake.LostResponse())
	c.State = model.StateTicketed
	e.publish(c, model.EventStillPresent, model.StateVerifying, model.System, "AWS still reports keys")
	e.rendered(c.ID, 4)
	m = e.onlyMessage()
	if len(m.Replies) != 3 {
		t.Fatalf("thread replies = %d after a lost reply answer, want 3", len(m.Replies))
	}
	if e.fake.Calls("conversations.replies") == 0 {
		t.Errorf("redelivery did not look in the thread")
	}
}

func TestCrashBetweenPostAndSaveAdoptsTheMessage(t *testing.T) {
	t.Run("post succeeded but its answer was lost", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.FailNext("chat.postMessage", 1, slackfake.LostResponse())
		e.run()
		c := e.openCase()
		m := e.onlyMessage()
		if ref := e.slackRef(c.ID); ref.TS != m.TS {
			t.Errorf("SlackRef ts %s, want the adopted message %s", ref.TS, m.TS)
		}
		if n := e.fake.Calls("chat.postMessage"); n != 1 {
			t.Errorf("chat.postMessage calls = %d, want 1 (the adopted one)", n)
		}
	})
	t.Run("message posted by an earlier run that crashed before saving its ts", func(t *testing.T) {
		e := newEnv(t, nil)
		c := baseCase(account+"-1", e.clock.Now())
		// The earlier run saved its intent to post, posted, and died.
		intent, _ := json.Marshal(map[string]any{"case_id": c.ID, "posting_since": time.Now().Add(-time.Minute)})
		if _, err := e.b.Slack.Create(context.Background(), c.ID, intent); err != nil {
			t.Fatal(err)
		}
		// Other traffic in the channel, including another case's message.
		e.fake.PostMessage(slackfake.Message{Channel: channelID, Text: "hello", User: "U0HUMAN"})
		e.fake.PostMessage(slackfake.Message{Channel: channelID, Text: "other case",
			Metadata: &slackMeta{EventType: notifier.MetadataCase, EventPayload: map[string]any{"case_id": account + "-0"}}})
		ts := e.fake.PostMessage(slackfake.Message{Channel: channelID, Text: "stale render",
			Metadata: &slackMeta{EventType: notifier.MetadataCase, EventPayload: map[string]any{"case_id": c.ID}}})
		e.fake.PostMessage(slackfake.Message{Channel: channelID, Text: "later chatter", User: "U0HUMAN"})
		e.run()
		e.publish(c, model.EventOpened, "", model.System, "found")
		e.rendered(c.ID, 1)
		if ref := e.slackRef(c.ID); ref.TS != ts {
			t.Fatalf("SlackRef ts %s, want adopted %s", ref.TS, ts)
		}
		if n := e.fake.Calls("chat.postMessage"); n != 0 {
			t.Errorf("chat.postMessage calls = %d, want 0", n)
		}
		m, _ := e.fake.Message(channelID, ts)
		if m.Edits != 1 || len(m.Buttons()) != 3 {
			t.Errorf("adopted message: edits %d buttons %v, want re-rendered", m.Edits, buttonIDs(m))
		}
	})
}

func TestSlackFailuresAreRetried(t *testing.T) {
	t.Run("429 honours Retry-After", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.FailNext("chat.postMessage", 1, slackfake.RateLimited(time.Second))
		e.run()
		start := time.Now()
		e.openCase()
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("posted after %v, before Retry-After (1s)", d)
		}
		e.onlyMessage()
		if n := e.fake.Calls("chat.postMessage"); n != 2 {
			t.Errorf("chat.postMessage calls = %d, want 2", n)
		}
		if !strings.Contains(e.logs.String(), "retry_after=1s") {
			t.Errorf("rate limit not logged with its delay")
		}
	})
	t.Run("5xx and lost answers are retried with backoff", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.FailNext("chat.postMessage", 2, slackfake.ServerError(503))
		e.fake.FailNext("conversations.history", 1, slackfake.ServerError(500))
		e.fake.FailNext("chat.update", 1, slackfake.APIError("internal_error"))
		e.run()
		c := baseCase(account+"-1", e.clock.Now())
		e.publish(c, model.EventOpened, "", model.System, "found")
		c.State = model.StateTicketed
		e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
		e.rendered(c.ID, 2)
		m := e.onlyMessage()
		if len(m.Replies) != 1 || len(m.Buttons()) != 2 {
			t.Errorf("replies %d buttons %v", len(m.Replies), buttonIDs(m))
		}
	})
	t.Run("order per case is kept across retries", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.FailNext("chat.update", 2, slackfake.ServerError(502))
		e.run()
		c := baseCase(account+"-1", e.clock.Now())
		e.publish(c, model.EventOpened, "", model.System, "found")
		c.State = model.StateTicketed
		e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
		c.State = model.StateVerifying
		e.publish(c, model.EventVerifying, model.StateTicketed, slackActor(outsider, "bob"), "deleted")
		e.rendered(c.ID, 3)
		m := e.onlyMessage()
		if len(m.Replies) != 2 || !strings.Contains(m.Replies[0].Text, "ticket") || !strings.Contains(m.Replies[1].Text, "Checking") {
			t.Fatalf("replies out of order: %+v", m.Replies)
		}
		if !slices.Equal(buttonIDs(m), []string{notifier.ActionIDRecheck}) {
			t.Errorf("final render has buttons %v, want the verifying render", buttonIDs(m))
		}
	})
}

func TestPermanentSlackErrorStopsRetrying(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { c.Channel = "C0MISSING" })
	e.run()
	c := baseCase(account+"-1", e.clock.Now())
	e.publish(c, model.EventOpened, "", model.System, "found")
	testutil.Eventually(t, "the failing call", func() bool { return e.fake.Calls("chat.postMessage") >= 1 })
	testutil.Eventually(t, "the error log", func() bool { return strings.Contains(e.logs.String(), "level=ERROR") })
	// The event is settled for good (terminated: nothing pending, nothing in flight,
	// nothing to redeliver), so no retry can follow: a retry happens in place before
	// the event is settled, or after a Nak, which leaves it pending.
	consumerIdle(t, e.b, bus.StreamCases, bus.ConsumerNotifierCases)
	if n := e.fake.Calls("conversations.history") + e.fake.Calls("chat.postMessage"); n != 1 {
		t.Errorf("Slack calls = %d, want 1 (no retry of channel_not_found)", n)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "channel_not_found") || !strings.Contains(logs, "PERMANENTLY") {
		t.Errorf("permanent failure not logged loudly:\n%s", logs)
	}
	if ent, err := e.b.Slack.Get(context.Background(), c.ID); err == nil && strings.Contains(string(ent.Value()), `"ts":"1`) {
		t.Errorf("a SlackRef with a ts was saved for a message never posted: %s", ent.Value())
	}
}

func TestCheckSlack(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.n.CheckSlack(context.Background()); err != nil {
		t.Fatalf("CheckSlack: %v", err)
	}
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func(*env) *notifier.Notifier
		want  string
	}{
		{"bad token", func(e *env) *notifier.Notifier {
			n, _ := notifier.New(e.cfg, nil, e.b, slackClient(e, "xoxb-wrong"))
			return n
		}, "SLACK_BOT_TOKEN: invalid_auth"},
		{"missing channel", func(e *env) *notifier.Notifier {
			cfg := e.cfg
			cfg.Channel = "C0NOPE"
			n, _ := notifier.New(cfg, nil, e.b, e.api)
			return n
		}, "ROOTWARDEN_SLACK_CHANNEL: channel_not_found"},
		{"bot not in channel", func(e *env) *notifier.Notifier {
			e.fake.AddChannel("C0PRIV", "private")
			e.fake.SetMember("C0PRIV", false)
			cfg := e.cfg
			cfg.Channel = "C0PRIV"
			n, _ := notifier.New(cfg, nil, e.b, e.api)
			return n
		}, "ROOTWARDEN_SLACK_CHANNEL: not_in_channel"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.setup(e).CheckSlack(ctx)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("CheckSlack = %v, want %q…", err, tc.want)
			}
			if notifier.SlackDown(err) {
				t.Errorf("a configuration mistake is taken for Slack being down: %v", err)
			}
			if strings.Contains(err.Error(), "xoxb-") {
				t.Errorf("error names the token: %v", err)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	e := newEnv(t, nil)
	for name, tc := range map[string]struct {
		mutate func(*notifier.Config)
		want   string
	}{
		"no channel":    {func(c *notifier.Config) { c.Channel = "" }, "ROOTWARDEN_SLACK_CHANNEL"},
		"no secret":     {func(c *notifier.Config) { c.SigningSecret = "" }, "SLACK_SIGNING_SECRET"},
		"bad approver":  {func(c *notifier.Config) { c.Approvers = []string{"alice"} }, "ROOTWARDEN_APPROVERS"},
		"bad app token": {func(c *notifier.Config) { c.AppToken = "xoxb-not-an-app-token" }, "SLACK_APP_TOKEN"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := e.cfg
			tc.mutate(&cfg)
			_, err := notifier.New(cfg, nil, e.b, e.api)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error naming %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "xoxb-not") {
				t.Errorf("error repeats the token")
			}
		})
	}
}

func TestApprovalReplyDoesNotClaimATicketBeforeOneExists(t *testing.T) {
	e := newEnv(t, nil)
	e.run()
	c := e.openCase()
	// The remediator's approval event: the ticket is still to be opened (or, with
	// AssumeRoot, the keys are deleted and no ticket is opened at all).
	c.State = model.StateTicketed
	e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"),
		"remediation approved by alice; deleting the root keys through AssumeRoot")
	e.rendered(c.ID, 2)
	m := e.onlyMessage()
	if len(m.Replies) != 1 {
		t.Fatalf("replies = %+v", m.Replies)
	}
	if r := m.Replies[0].Text; strings.Contains(r, "ticket opened") || !strings.Contains(r, "approved") {
		t.Fatalf("approval reply claims a ticket that does not exist: %q", r)
	}
}

// A case message deleted by someone in Slack comes back on the case's next transition,
// once, and later transitions edit the new one.
func TestDeletedCaseMessageIsPostedAgainOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.run()
	c := e.openCase()
	old := e.onlyMessage()
	if !e.fake.DeleteMessage(channelID, old.TS) {
		t.Fatal("could not delete the message in the fake")
	}

	c.State = model.StateTicketed
	e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved in Slack")
	e.rendered(c.ID, 2)
	m := e.onlyMessage()
	if m.TS == old.TS {
		t.Fatalf("the deleted message (ts %s) is still the case's message", old.TS)
	}
	if m.Metadata == nil || m.Metadata.EventPayload["case_id"] != c.ID {
		t.Errorf("new message metadata = %+v, want the case id", m.Metadata)
	}
	if got := buttonIDs(m); len(got) != 2 || got[0] != notifier.ActionIDConfirmDeleted {
		t.Errorf("new message buttons = %v, want the ticketed ones", got)
	}
	if ref := e.slackRef(c.ID); ref.TS != m.TS || !strings.HasSuffix(ref.Permalink, strings.ReplaceAll(m.TS, ".", "")) {
		t.Errorf("SlackRef = %+v, want the new ts %s", ref, m.TS)
	}
	if len(m.Replies) != 1 {
		t.Errorf("new message has %d thread replies, want the ticketed one", len(m.Replies))
	}

	c.State = model.StateVerifying
	e.publish(c, model.EventVerifying, model.StateTicketed, slackActor("U0BOB", "bob"), "says deleted")
	e.rendered(c.ID, 3)
	if again := e.onlyMessage(); again.TS != m.TS || again.Edits == 0 {
		t.Errorf("after the repost, the next transition posted again or did not edit: %+v", again)
	}
}

func TestSlackDownAtStartDoesNotStopTheStart(t *testing.T) {
	for name, f := range map[string]slackfake.Failure{"5xx": slackfake.ServerError(503), "hang": slackfake.Hang()} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(c *notifier.Config) { c.CallTimeout = 300 * time.Millisecond })
			e.fake.FailNext("auth.test", 2, f)
			if err := e.n.CheckSlack(context.Background()); !notifier.SlackDown(err) {
				t.Fatalf("CheckSlack with Slack down = %v, want an error that says Slack is down (start anyway)", err)
			}
			if err := e.n.Ready(context.Background()); err == nil {
				t.Fatalf("Ready with Slack down: nil, want not ready")
			}
			e.run()
			testutil.Eventually(t, "ready once Slack answers", func() bool { return e.n.Ready(context.Background()) == nil })
			e.openCase() // and projecting works
		})
	}
}

func TestCoalescedCallsAreShownInOneUpdate(t *testing.T) {
	e := newEnv(t, nil)
	e.run()
	c := e.openCase()
	c.Event.Calls, c.Event.EventNames, c.Event.SourceIPs = 19, []string{"DescribeInstances", "ListBuckets"}, []string{"198.51.100.9", "203.0.113.7"}
	e.publish(c, model.EventUpdated, model.StateOpen, model.System, "details refreshed (seen by event)")
	e.rendered(c.ID, 2)
	m := e.onlyMessage()
	if len(m.Replies) != 1 || !strings.Contains(m.Replies[0].Text, "19 calls signed with the root key (DescribeInstances, ListBuckets) from 198.51.100.9, 203.0.113.7") {
		t.Fatalf("replies = %+v, want one reply naming the 19 calls, names and IPs", m.Replies)
	}
	if !strings.Contains(m.AllText(), "*19 calls* with the key") {
		t.Errorf("the case message does not show the coalesced calls:\n%s", m.AllText())
	}
}

// Slack allows about 50 chat.update calls a minute, the slowest of the limits the
// projection meets: after a backlog (a restart, a burst of clicks) every needless edit
// delays every case's message by more than a second. Events of a case queued together
// cost one edit (it shows the newest of them), and an event whose edit went out is not
// edited again when only its thread reply failed.
func TestProjectionSkipsNeedlessEdits(t *testing.T) {
	t.Run("a newer event of the case is waiting", func(t *testing.T) {
		e := newEnv(t, nil)
		c := baseCase(account+"-1", e.clock.Now())
		// All three are in the stream before the notifier starts: the two later ones
		// are queued behind the first post.
		e.publish(c, model.EventOpened, "", model.System, "found")
		c.State = model.StateTicketed
		e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
		c.State = model.StateVerifying
		e.publish(c, model.EventVerifying, model.StateTicketed, slackActor(outsider, "bob"), "deleted")
		e.run()
		e.rendered(c.ID, 3)
		m := e.onlyMessage()
		if len(m.Replies) != 2 || !strings.Contains(m.Replies[0].Text, "ticket") || !strings.Contains(m.Replies[1].Text, "Checking") {
			t.Fatalf("replies: %+v, want the ticketed and the verifying reply in order", m.Replies)
		}
		if !slices.Equal(buttonIDs(m), []string{notifier.ActionIDRecheck}) {
			t.Errorf("final render has buttons %v, want the verifying render", buttonIDs(m))
		}
		if m.Edits != 1 || e.fake.Calls("chat.update") != 1 {
			t.Errorf("message edited %d times (%d chat.update calls), want 1: the ticketed render was replaced before anyone saw it",
				m.Edits, e.fake.Calls("chat.update"))
		}
	})
	t.Run("only the thread reply failed", func(t *testing.T) {
		e := newEnv(t, nil)
		e.run()
		c := e.openCase()
		e.fake.FailNext("chat.postMessage", 1, slackfake.ServerError(503))
		c.State = model.StateTicketed
		e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
		e.rendered(c.ID, 2)
		m := e.onlyMessage()
		if len(m.Replies) != 1 || !slices.Equal(buttonIDs(m), []string{notifier.ActionIDConfirmDeleted, notifier.ActionIDRecheck}) {
			t.Fatalf("replies %d buttons %v, want 1 and the ticketed buttons", len(m.Replies), buttonIDs(m))
		}
		if m.Edits != 1 || e.fake.Calls("chat.update") != 1 {
			t.Errorf("message edited %d times (%d chat.update calls), want 1: the retry of the reply edited it again",
				m.Edits, e.fake.Calls("chat.update"))
		}
	})
}

// After a crash, an event the dead process held comes back one AckWait later, while
// the case's next event, published after the restart, is delivered at once. Projected
// in arrival order, the older event was then skipped (its thread reply never posted)
// or, when the newer one had not finished, it took over the newer one's reply intent,
// and the newer reply was posted twice (seen in TestChaos). A case's events are
// projected in their order: a newer one waits for the older ones.
func TestOlderEventDeliveredLateIsProjectedFirst(t *testing.T) {
	e := newEnv(t, nil)
	e.run()
	c := e.openCase()
	event := func(seq int, typ model.CaseEventType, from model.State, actor model.Actor, reason string) model.CaseEvent {
		c.Seq = seq
		return model.CaseEvent{SchemaVersion: model.SchemaVersion, ID: fmt.Sprintf("%s/%d", c.ID, seq), Type: typ,
			CaseID: c.ID, AccountID: c.AccountID, Seq: seq, From: from, To: c.State, Actor: actor, At: e.clock.Now(),
			Reason: reason, Case: c}
	}
	c.State = model.StateTicketed
	ticketed := event(2, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
	c.State = model.StateVerifying
	verifying := event(3, model.EventVerifying, model.StateTicketed, slackActor(outsider, "bob"), "deleted")
	e.putCase(c)
	e.publishEvent(verifying, verifying.ID) // the newer one first, as after a restart
	testutil.Eventually(t, "the newer event was handled", func() bool {
		return len(e.onlyMessage().Replies) > 0 || strings.Contains(e.logs.String(), "waits for an older event")
	})
	e.publishEvent(ticketed, ticketed.ID) // the older one, redelivered late
	e.rendered(c.ID, 3)
	m := e.onlyMessage()
	if len(m.Replies) != 2 || !strings.Contains(m.Replies[0].Text, "open → ticketed") || !strings.Contains(m.Replies[1].Text, "Checking") {
		var texts []string
		for _, r := range m.Replies {
			texts = append(texts, r.Text)
		}
		t.Fatalf("thread replies %q, want the ticketed reply, then the verifying one", texts)
	}
	if !slices.Equal(buttonIDs(m), []string{notifier.ActionIDRecheck}) {
		t.Errorf("final render has buttons %v, want the verifying render", buttonIDs(m))
	}
}

// consumerIdle waits until a durable consumer has settled every message of its
// stream: the positive signal that what was published has been processed.
func consumerIdle(t *testing.T, b *bus.Bus, stream, consumer string) {
	t.Helper()
	testutil.Eventually(t, consumer+" idle", func() bool { return bustest.Settled(b, stream, consumer) })
}
