package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/config"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/notifier"
	"github.com/rootwarden/rootwarden/notifier/ask"
	"github.com/rootwarden/rootwarden/remediator"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

// The demo's cast: a small organization and the people in Slack.
const (
	demoMgmt     = "111111111111"
	demoPayments = "222222222222"
	demoStaging  = "333333333333"
	demoSandbox  = "444444444444"
	demoDev      = "555555555555"
	demoChannel  = "C0ONCALL01"
	demoSecret   = "demo-signing-secret"
	demoToken    = "demo-api-token"
	demoApprover = "U0APPROVER"
	demoAssignee = "U0ASSIGNEE"
	demoIntern   = "U0INTERN00"
)

// demo plays the whole story in one process against the AWS simulator and a local
// Slack Web API, and prints a timeline. Exit 0 when the story completes.
type demo struct {
	out      io.Writer
	start    time.Time
	sim      *awssim.Sim
	slack    *slackfake.Server
	b        *bus.Bus // a client connection to the embedded server of `run`
	http     string
	queueURL string
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	d := &demo{out: stdout, start: time.Now()}
	if err := d.run(ctx, stderr); err != nil {
		fmt.Fprintf(stderr, "rootwarden demo: %s\n", oneLine(err))
		return 1
	}
	return 0
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) section(title string) { fmt.Fprintf(d.out, "\n── %s\n", title) }

func (d *demo) run(ctx context.Context, stderr io.Writer) error {
	// AWS: a small organization. payments-prod has a root key used two days ago
	// (critical), data-staging and sandbox have old unused ones, dev has none.
	now := time.Now().UTC()
	d.sim = awssim.New(awssim.Options{})
	simSrv := d.sim.Start()
	defer simSrv.Close()
	d.sim.AddAccount(awssim.Account{ID: demoMgmt, Name: "management", Email: "aws-root@example.com", Management: true})
	d.sim.EnableOrganization(demoMgmt)
	for _, a := range []awssim.Account{
		{ID: demoPayments, Name: "payments-prod", Email: "aws-payments@example.com"},
		{ID: demoStaging, Name: "data-staging", Email: "aws-staging@example.com"},
		{ID: demoSandbox, Name: "sandbox", Email: "aws-sandbox@example.com"},
		{ID: demoDev, Name: "dev", Email: "aws-dev@example.com"},
	} {
		d.sim.AddAccount(a)
	}
	payKey := d.sim.CreateRootKey(demoPayments, now.AddDate(-1, -2, 0))
	d.sim.UseRootKey(demoPayments, payKey, now.Add(-50*time.Hour), "eu-west-1", "s3")
	d.sim.CreateRootKey(demoStaging, now.AddDate(-3, 0, 0))
	d.sim.CreateRootKey(demoSandbox, now.AddDate(0, -8, 0))
	d.queueURL = d.sim.CreateQueue(demoMgmt, "rootwarden-events")
	awsCfg, err := d.sim.ClientConfig(ctx, simSrv.URL, demoMgmt)
	if err != nil {
		return fmt.Errorf("AWS configuration for the simulator: %w", err)
	}

	// Slack: a local Web API server with the on-call channel and its people.
	d.slack = slackfake.New(slackfake.WithChannel(demoChannel, "security-oncall"), slackfake.WithBotToken("xoxb-demo"))
	slackURL := d.slack.Start()
	defer d.slack.Close()
	d.slack.AddUser(demoApprover, "alice (on-call approver)")
	d.slack.AddUser(demoAssignee, "bob (platform)")
	d.slack.AddUser(demoIntern, "carol (intern)")

	dataDir, err := os.MkdirTemp("", "rootwarden-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	env := map[string]string{
		"ROOTWARDEN_DATA_DIR":      dataDir,
		"ROOTWARDEN_HTTP_ADDR":     "127.0.0.1:0",
		"ROOTWARDEN_API_TOKEN":     demoToken,
		"SLACK_BOT_TOKEN":          "xoxb-demo",
		"SLACK_SIGNING_SECRET":     demoSecret,
		"ROOTWARDEN_SLACK_CHANNEL": demoChannel,
		"ROOTWARDEN_SLACK_API_URL": slackURL,
		"ROOTWARDEN_APPROVERS":     demoApprover,
		"ROOTWARDEN_ORG_ROLE_NAME": "OrganizationAccountAccessRole",
		"ROOTWARDEN_SQS_QUEUE_URL": d.queueURL,
		"ROOTWARDEN_SCAN_INTERVAL": "1h",
		"ROOTWARDEN_TICKET_POLL":   "1s",
		"ROOTWARDEN_LOG_LEVEL":     "warn",
	}
	fmt.Fprintf(d.out, "rootwarden demo: an organization of 5 AWS accounts (simulated at %s), Slack channel #security-oncall (local), embedded NATS.\n", simSrv.URL)

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	ready := make(chan string, 1)
	natsURL := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- runServe(runCtx, []config.Role{config.RoleDetector, config.RoleRemediator, config.RoleNotifier}, stderr,
			serveOptions{getenv: func(k string) string { return env[k] }, aws: &awsCfg, ready: func(a string) { ready <- a },
				bus: func(b *bus.Bus) { natsURL <- b.Server.ClientURL() }})
	}()
	select {
	case d.http = <-ready:
	case code := <-done:
		return fmt.Errorf("rootwarden run exited with %d", code)
	case <-ctx.Done():
		return ctx.Err()
	}
	d.http = "http://" + d.http

	// A second connection to the bus, as an auditor's tool would have, to print the
	// audit log as it happens.
	if d.b, err = d.connectBus(ctx, <-natsURL); err != nil {
		return err
	}
	defer d.b.Close()
	stopLog, err := d.followAuditLog(ctx)
	if err != nil {
		return err
	}
	defer stopLog()

	if err := d.story(ctx); err != nil {
		return err
	}
	stopRun()
	if code := <-done; code != 0 {
		return fmt.Errorf("rootwarden run exited with %d", code)
	}
	fmt.Fprintf(d.out, "\nThe story is complete in %.1fs.\n", time.Since(d.start).Seconds())
	return nil
}

func (d *demo) story(ctx context.Context) error {
	d.section("1. The first sweep finds three root keys")
	for _, acct := range []string{demoPayments, demoStaging, demoSandbox} {
		c, err := d.waitCase(ctx, acct, "", model.StateOpen)
		if err != nil {
			return err
		}
		if err := d.showMessage(ctx, c.ID); err != nil {
			return err
		}
	}

	d.section("2. Someone creates a root key in dev: CloudTrail → EventBridge → SQS")
	key := d.sim.CreateRootKey(demoDev, time.Now())
	sent := time.Now()
	d.sim.SendMessage(d.queueURL, awssim.RootKeyCreatedEvent(demoDev, key, time.Now()))
	d.say("CreateAccessKey by root in %s (dev), key %s", demoDev, key)
	devCase, err := d.waitCase(ctx, demoDev, "", model.StateOpen)
	if err != nil {
		return err
	}
	if _, err := d.waitSlackRef(ctx, devCase.ID); err != nil {
		return err
	}
	d.say("in Slack %.1fs after the event", time.Since(sent).Seconds())
	if err := d.showMessage(ctx, devCase.ID); err != nil {
		return err
	}
	d.say("carol (not an approver) presses Approve on the dev case:")
	if err := d.click(ctx, devCase.ID, demoIntern, "carol", notifier.ActionIDApprove); err != nil {
		return err
	}
	if err := d.waitEphemeral(ctx, demoIntern); err != nil {
		return err
	}

	d.say("the new key is then used: s3:ListBuckets signed with %s (a root key in use)", key)
	d.sim.UseRootKey(demoDev, key, time.Now(), "us-east-1", "s3")
	d.sim.SendMessage(d.queueURL, awssim.RootKeyUsedEvent(demoDev, key, "ListBuckets", time.Now()))
	if err := d.poll(ctx, "the dev case to become critical", func() bool {
		c, err := d.currentCase(ctx, demoDev)
		return err == nil && c.Severity == model.SeverityCritical
	}); err != nil {
		return err
	}
	if err := d.waitMessageText(ctx, devCase.ID, "Critical"); err != nil {
		return err
	}
	if err := d.showMessage(ctx, devCase.ID); err != nil {
		return err
	}

	d.section("3. payments-prod: approve → ticket → key deleted → verified")
	pay, err := d.currentCase(ctx, demoPayments)
	if err != nil {
		return err
	}
	if err := d.click(ctx, pay.ID, demoApprover, "alice", notifier.ActionIDApprove); err != nil {
		return err
	}
	if pay, err = d.waitTicket(ctx, demoPayments, pay.ID); err != nil {
		return err
	}
	if err := d.showTicket(ctx, pay); err != nil {
		return err
	}
	for _, k := range d.sim.RootKeys(demoPayments) {
		d.sim.DeleteRootKey(demoPayments, k.ID)
		d.say("bob signs in as root to payments-prod and deletes key %s", k.ID)
	}
	if err := d.click(ctx, pay.ID, demoAssignee, "bob", notifier.ActionIDConfirmDeleted); err != nil {
		return err
	}
	if _, err := d.waitCase(ctx, demoPayments, pay.ID, model.StateResolved); err != nil {
		return err
	}
	if err := d.waitMessageText(ctx, pay.ID, "Resolved"); err != nil {
		return err
	}
	if err := d.showMessage(ctx, pay.ID); err != nil {
		return err
	}

	d.section("4. data-staging: someone says the keys are gone, AWS says otherwise")
	stg, err := d.currentCase(ctx, demoStaging)
	if err != nil {
		return err
	}
	if err := d.click(ctx, stg.ID, demoApprover, "alice", notifier.ActionIDApprove); err != nil {
		return err
	}
	if _, err := d.waitTicket(ctx, demoStaging, stg.ID); err != nil {
		return err
	}
	if err := d.click(ctx, stg.ID, demoAssignee, "bob", notifier.ActionIDConfirmDeleted); err != nil {
		return err
	}
	if err := d.waitEvent(ctx, demoStaging, stg.ID, model.EventStillPresent); err != nil {
		return err
	}
	if _, err := d.waitCase(ctx, demoStaging, stg.ID, model.StateTicketed); err != nil {
		return err
	}
	// The thread as Slack shows it once the notifier has posted the outcome's reply
	// (posts are paced per channel): wait on what is shown, not on the case.
	d.say("waiting for the thread replies in Slack (about one post a second per channel, as Slack allows)")
	if err := d.waitThreadText(ctx, stg.ID, "AWS still reports root access keys"); err != nil {
		return err
	}
	if err := d.showThread(ctx, stg.ID); err != nil {
		return err
	}

	d.section("5. sandbox: an approver accepts the risk for 30 days")
	sbx, err := d.currentCase(ctx, demoSandbox)
	if err != nil {
		return err
	}
	views := len(d.slack.Views())
	if err := d.click(ctx, sbx.ID, demoApprover, "alice", notifier.ActionIDAcceptRisk); err != nil {
		return err
	}
	view, err := d.waitView(ctx, views)
	if err != nil {
		return err
	}
	d.say("the Accept risk modal opened: %q", view.Request.Title.Text)
	expires := time.Now().AddDate(0, 0, 30).Format("2006-01-02")
	form := slackfake.ViewSubmission(demoApprover, "alice", view, map[string]map[string]slack.BlockAction{
		notifier.BlockIDReason:  {notifier.ActionIDReason: slackfake.TextValue("sandbox account is closed next month (FIN-1234)")},
		notifier.BlockIDExpires: {notifier.ActionIDExpires: slackfake.DateValue(expires)},
	})
	if err := d.deliver(ctx, form); err != nil {
		return err
	}
	if _, err := d.waitCase(ctx, demoSandbox, sbx.ID, model.StateRiskAccepted); err != nil {
		return err
	}
	if err := d.waitMessageText(ctx, sbx.ID, "Risk accepted"); err != nil {
		return err
	}
	if err := d.showMessage(ctx, sbx.ID); err != nil {
		return err
	}

	d.section("6. The case API (GET /api/v1/cases, bearer token)")
	if err := d.showCases(ctx); err != nil {
		return err
	}
	return d.rootActivity(ctx)
}

// rootActivity is the end of the story: root signs in to dev's console without MFA,
// the on-call approver is asked "was this you?" (dev has no owner tag), says No, and
// the question escalates (docs/activity.md).
func (d *demo) rootActivity(ctx context.Context) error {
	d.section("7. Root signs in to dev's console without MFA: \"was this you?\"")
	d.sim.SendMessage(d.queueURL, awssim.RootConsoleLoginEvent(demoDev, "203.0.113.99", true, false, time.Now()))
	d.say("ConsoleLogin by root in %s (dev) from 203.0.113.99, MFA not used", demoDev)
	var dm slackfake.Message
	if err := d.poll(ctx, "the question in alice's DMs", func() bool {
		dms := d.slack.DMs(demoApprover)
		if len(dms) == 0 || len(dms[0].Buttons()) == 0 {
			return false
		}
		dm = dms[0]
		return true
	}); err != nil {
		return err
	}
	d.say("Slack DM to alice (dev has no owner tag, so the on-call approver is asked):")
	fmt.Fprint(d.out, renderBlocks(dm.Blocks, "          │ "))
	var notice slackfake.Message
	if err := d.poll(ctx, "the question's notice in #security-oncall", func() bool {
		for _, m := range d.slack.Messages(demoChannel) {
			if m.Metadata != nil && m.Metadata.EventType == ask.MetadataQuestion {
				notice = m
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	d.say("Slack #security-oncall, at once: %s", firstLine(notice.Text))
	for _, b := range dm.Buttons() {
		if b.ActionID != ask.ActionIDNo {
			continue
		}
		d.say("alice clicks %q (signed POST /slack/interactions)", b.Text)
		if err := d.deliver(ctx, slackfake.BlockAction(demoApprover, "alice", b.ActionID, b.Value, dm.Channel, dm.TS)); err != nil {
			return err
		}
	}
	var esc slackfake.Message
	if err := d.poll(ctx, "the escalation in #security-oncall", func() bool {
		for _, r := range d.slack.Replies(demoChannel, notice.TS) {
			if r.Broadcast && strings.Contains(r.AllText(), "root activity not confirmed") {
				esc = r
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	d.say("Slack #security-oncall (also sent to PagerDuty when ROOTWARDEN_PAGERDUTY_ROUTING_KEY is set):")
	fmt.Fprint(d.out, renderBlocks(esc.Blocks, "          │ "))
	return nil
}

// connectBus opens a second connection to the embedded server that `run` started, as
// an auditor's tool would.
func (d *demo) connectBus(ctx context.Context, url string) (*bus.Bus, error) {
	return bus.Open(ctx, bus.Config{URL: url, Name: "rootwarden demo"}, nil)
}

// followAuditLog prints every case event as it is published.
func (d *demo) followAuditLog(ctx context.Context) (func(), error) {
	cons, err := d.b.JS.OrderedConsumer(ctx, bus.StreamCases, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("follow the audit log: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var ev model.CaseEvent
		if json.Unmarshal(m.Data(), &ev) != nil {
			return
		}
		from := ""
		if ev.From != "" && ev.From != ev.To {
			from = string(ev.From) + " → "
		}
		d.say("audit  %-16s %-13s %s%s by %s: %s", ev.CaseID, ev.Type, from, ev.To, ev.Actor, ev.Reason)
	})
	if err != nil {
		return nil, fmt.Errorf("follow the audit log: %w", err)
	}
	return cc.Stop, nil
}

// click presses a button of the case's message as user, signed as Slack signs. It
// waits for the message to show the button: the notifier edits it as the case moves.
func (d *demo) click(ctx context.Context, caseID, user, name, actionID string) error {
	ref, err := d.waitSlackRef(ctx, caseID)
	if err != nil {
		return err
	}
	var btn slackfake.Button
	if err := d.poll(ctx, fmt.Sprintf("case %s's message to show a %s button", caseID, actionID), func() bool {
		msg, ok := d.slack.Message(ref.Channel, ref.TS)
		if !ok {
			return false
		}
		for _, b := range msg.Buttons() {
			if b.ActionID == actionID {
				btn = b
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	d.say("%s clicks %q on case %s (signed POST /slack/interactions)", name, btn.Text, caseID)
	return d.deliver(ctx, slackfake.BlockAction(user, name, btn.ActionID, btn.Value, ref.Channel, ref.TS))
}

func (d *demo) deliver(ctx context.Context, form map[string][]string) error {
	status, body, err := slackfake.Deliver(ctx, d.http+"/slack/interactions", demoSecret, form)
	if err != nil {
		return fmt.Errorf("deliver interaction: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("interaction answered %d: %s", status, body)
	}
	return nil
}

func (d *demo) currentCase(ctx context.Context, account string) (model.Case, error) {
	e, err := d.b.Cases.Get(ctx, account)
	if err != nil {
		return model.Case{}, fmt.Errorf("case of %s: %w", account, err)
	}
	var c model.Case
	return c, json.Unmarshal(e.Value(), &c)
}

// waitCase waits until the account's current case (caseID, or any) is in state.
func (d *demo) waitCase(ctx context.Context, account, caseID string, state model.State) (model.Case, error) {
	var last model.Case
	err := d.poll(ctx, fmt.Sprintf("account %s to reach %s", account, state), func() bool {
		c, err := d.currentCase(ctx, account)
		if err != nil {
			return false
		}
		last = c
		return c.State == state && (caseID == "" || c.ID == caseID)
	})
	if err != nil && last.ID != "" {
		err = fmt.Errorf("%w (case %s is %s)", err, last.ID, last.State)
	}
	return last, err
}

// waitTicket waits until the case is ticketed and its ticket is open: approval moves
// the case to ticketed at once, and the ticket reference follows when the tracker answers.
func (d *demo) waitTicket(ctx context.Context, account, caseID string) (model.Case, error) {
	var c model.Case
	err := d.poll(ctx, "the ticket of case "+caseID, func() bool {
		var err error
		c, err = d.currentCase(ctx, account)
		return err == nil && c.ID == caseID && c.State == model.StateTicketed && c.Ticket != nil
	})
	return c, err
}

func (d *demo) waitSlackRef(ctx context.Context, caseID string) (model.SlackRef, error) {
	var ref model.SlackRef
	err := d.poll(ctx, "the Slack message of case "+caseID, func() bool {
		e, err := d.b.Slack.Get(ctx, caseID)
		return err == nil && json.Unmarshal(e.Value(), &ref) == nil && ref.TS != ""
	})
	return ref, err
}

func (d *demo) waitMessageText(ctx context.Context, caseID, text string) error {
	ref, err := d.waitSlackRef(ctx, caseID)
	if err != nil {
		return err
	}
	return d.poll(ctx, fmt.Sprintf("case %s's message to say %q", caseID, text), func() bool {
		m, ok := d.slack.Message(ref.Channel, ref.TS)
		return ok && strings.Contains(m.AllText(), text)
	})
}

// waitThreadText waits until a reply in the case's thread says text.
func (d *demo) waitThreadText(ctx context.Context, caseID, text string) error {
	ref, err := d.waitSlackRef(ctx, caseID)
	if err != nil {
		return err
	}
	return d.poll(ctx, fmt.Sprintf("a reply in case %s's thread saying %q", caseID, text), func() bool {
		for _, r := range d.slack.Replies(ref.Channel, ref.TS) {
			if strings.Contains(r.AllText(), text) {
				return true
			}
		}
		return false
	})
}

func (d *demo) waitEvent(ctx context.Context, account, caseID string, typ model.CaseEventType) error {
	return d.poll(ctx, fmt.Sprintf("a %s event on case %s", typ, caseID), func() bool {
		r, err := d.caseView(ctx, caseID)
		if err != nil {
			return false
		}
		for _, h := range r.History {
			if h.Type == typ {
				return true
			}
		}
		return false
	})
}

func (d *demo) waitEphemeral(ctx context.Context, user string) error {
	return d.poll(ctx, "an ephemeral answer to "+user, func() bool {
		for _, e := range d.slack.Ephemerals() {
			if e.User == user {
				d.say("Slack, only to %s: %s", user, e.Text)
				return true
			}
		}
		return false
	})
}

func (d *demo) waitView(ctx context.Context, before int) (slackfake.View, error) {
	var v slackfake.View
	err := d.poll(ctx, "the Accept risk modal", func() bool {
		vs := d.slack.Views()
		if len(vs) > before {
			v = vs[len(vs)-1]
			return true
		}
		return false
	})
	return v, err
}

func (d *demo) poll(ctx context.Context, what string, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if ok() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waited for %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// showMessage prints a short rendering of the case's Slack message.
func (d *demo) showMessage(ctx context.Context, caseID string) error {
	ref, err := d.waitSlackRef(ctx, caseID)
	if err != nil {
		return err
	}
	m, ok := d.slack.Message(ref.Channel, ref.TS)
	if !ok {
		return fmt.Errorf("no Slack message for case %s", caseID)
	}
	d.say("Slack #security-oncall, message of case %s (edited %s):", caseID, plural(m.Edits, "time"))
	fmt.Fprint(d.out, renderBlocks(m.Blocks, "          │ "))
	return nil
}

func (d *demo) showThread(ctx context.Context, caseID string) error {
	ref, err := d.waitSlackRef(ctx, caseID)
	if err != nil {
		return err
	}
	d.say("Slack thread of case %s:", caseID)
	for _, r := range d.slack.Replies(ref.Channel, ref.TS) {
		fmt.Fprintf(d.out, "          ↳ %s\n", firstLine(r.AllText()))
	}
	return nil
}

func (d *demo) showTicket(ctx context.Context, c model.Case) error {
	if c.Ticket == nil {
		return fmt.Errorf("case %s is ticketed without a ticket", c.ID)
	}
	t, _, err := tracker.NewBuiltin(d.b).Get(ctx, c.Ticket.ID)
	if err != nil {
		return fmt.Errorf("ticket %s: %w", c.Ticket.ID, err)
	}
	d.say("ticket %s opened: %s", t.ID, t.Title)
	lines := strings.Split(t.Body, "\n")
	shown := 0
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		fmt.Fprintf(d.out, "          │ %s\n", l)
		if shown++; shown == 14 {
			fmt.Fprintf(d.out, "          │ …\n")
			break
		}
	}
	return nil
}

func (d *demo) caseView(ctx context.Context, id string) (remediator.CaseView, error) {
	var v remediator.CaseView
	return v, d.getJSON(ctx, "/api/v1/cases/"+id, &v)
}

func (d *demo) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.http+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+demoToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (d *demo) showCases(ctx context.Context) error {
	var list remediator.CaseList
	if err := d.getJSON(ctx, "/api/v1/cases", &list); err != nil {
		return err
	}
	sort.Slice(list.Cases, func(i, j int) bool { return list.Cases[i].ID < list.Cases[j].ID })
	w := len("CASE")
	for _, c := range list.Cases {
		w = max(w, len(c.ID))
	}
	fmt.Fprintf(d.out, "          %-*s  %-14s %-14s %-9s %s\n", w, "CASE", "ACCOUNT", "STATE", "SEVERITY", "TICKET")
	want := map[string]model.State{demoPayments: model.StateResolved, demoStaging: model.StateTicketed,
		demoSandbox: model.StateRiskAccepted, demoDev: model.StateOpen}
	for _, c := range list.Cases {
		ticket := "-"
		if c.Ticket != nil {
			ticket = c.Ticket.System + " " + c.Ticket.ID
		}
		fmt.Fprintf(d.out, "          %-*s  %-14s %-14s %-9s %s\n", w, c.ID, c.AccountName, c.State, c.Severity, ticket)
		if w, ok := want[c.AccountID]; ok && w == c.State {
			delete(want, c.AccountID)
		}
	}
	if len(want) > 0 {
		return errors.New("the case API does not show the expected final states")
	}
	return nil
}

// renderBlocks renders Block Kit blocks as a few lines of text.
func renderBlocks(blocks slack.Blocks, prefix string) string {
	var sb strings.Builder
	line := func(s string) {
		for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			if strings.TrimSpace(l) != "" {
				sb.WriteString(prefix + l + "\n")
			}
		}
	}
	for _, b := range blocks.BlockSet {
		switch blk := b.(type) {
		case *slack.HeaderBlock:
			if blk.Text != nil {
				line("# " + blk.Text.Text)
			}
		case *slack.SectionBlock:
			if blk.Text != nil {
				line(blk.Text.Text)
			}
			for _, f := range blk.Fields {
				line(f.Text)
			}
		case *slack.ContextBlock:
			var parts []string
			for _, e := range blk.ContextElements.Elements {
				if t, ok := e.(*slack.TextBlockObject); ok {
					parts = append(parts, t.Text)
				}
			}
			line(strings.Join(parts, " · "))
		case *slack.ActionBlock:
			var btns []string
			for _, e := range blk.Elements.ElementSet {
				if bt, ok := e.(*slack.ButtonBlockElement); ok && bt.Text != nil {
					btns = append(btns, "["+bt.Text.Text+"]")
				}
			}
			line(strings.Join(btns, " "))
		}
	}
	return sb.String()
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
