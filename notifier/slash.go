package notifier

// The slash command /rootwarden (POST /slack/commands, or Socket Mode): status, check
// <account id>, case <id>, help. Requests are verified like interactions; every answer
// is ephemeral (only the caller sees it); anything unknown gets the usage, never an
// error trace. `check` of an account with an active case asks for a Re-check (the same
// action as the button, so the remediator's throttle applies); without a case it asks
// the detector over the bus and answers later through the command's response_url.
// Either way one check per account per CheckEvery.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

const usageText = "Usage: `/rootwarden status` (cases by state, oldest open case, last sweep) · " +
	"`/rootwarden check <account id>` (check an AWS account now) · `/rootwarden case <case id>` (state and history) · " +
	"`/rootwarden help`"

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	caseIDRE  = regexp.MustCompile(`^([0-9]{12})-([0-9]{1,9})(-[0-9a-z]{1,13})?$`) // remediator.CaseID
)

// commandReply is the JSON answer of a slash command.
type commandReply struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

func ephemeralReply(format string, a ...any) commandReply {
	return commandReply{ResponseType: slack.ResponseTypeEphemeral, Text: fmt.Sprintf(format, a...)}
}

func usage(prefix string) commandReply {
	if prefix != "" {
		return ephemeralReply("%s\n%s", prefix, usageText)
	}
	return ephemeralReply("%s", usageText)
}

// CommandsHandler serves POST /slack/commands.
func (n *Notifier) CommandsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := n.verified(w, r, "slash commands"); !ok {
			return
		}
		cmd, err := slack.SlashCommandParse(r)
		if err != nil || cmd.UserID == "" {
			n.refuseHTTP(w, r, http.StatusBadRequest, "malformed slash command")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), answerWithin)
		defer cancel()
		rep := n.command(ctx, cmd)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})
}

// command answers one /rootwarden invocation.
func (n *Notifier) command(ctx context.Context, cmd slack.SlashCommand) commandReply {
	fields := strings.Fields(cmd.Text)
	sub := ""
	if len(fields) > 0 {
		sub = strings.ToLower(fields[0])
	}
	log := n.log.With("user", cmd.UserID, "command", sub)
	label := "unknown" // a metric label must not carry what users type
	switch sub {
	case "", "help", "status", "check", "case":
		label = orDash(sub)
	}
	n.m.interactions.WithLabelValues("slash_command", label).Inc()
	switch {
	case sub == "" || sub == "help":
		return usage("")
	case sub == "status" && len(fields) == 1:
		rep, err := n.statusReply(ctx, cmd.UserID)
		if err != nil {
			log.Warn("slash status", "err", err)
			return ephemeralReply("rootwarden could not read the cases right now; try again.")
		}
		return rep
	case sub == "check" && len(fields) == 2:
		return n.checkReply(ctx, cmd, fields[1])
	case sub == "case" && len(fields) == 2:
		return n.caseReply(ctx, cmd.UserID, fields[1])
	case sub == "check" || sub == "case":
		return usage(fmt.Sprintf("`%s` wants exactly one argument.", sub))
	}
	return usage(fmt.Sprintf("rootwarden does not know `%s`.", esc(truncate(cmd.Text, 60))))
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// statusReply counts the active cases the user may see (visible.go), from the shared
// index of active cases (homeindex.go): no case is read from KV.
func (n *Notifier) statusReply(ctx context.Context, user string) (commandReply, error) {
	round, err := n.sharedRound(ctx, homeRoundTTL)
	if err != nil {
		return commandReply{}, err
	}
	v := n.viewerOf(ctx, user, channelsOf(round.cases))
	counts := map[model.State]int{}
	var oldest *caseEntry
	failing, total := 0, 0
	for i, c := range round.cases {
		if !v.sees(c) {
			continue
		}
		total++
		counts[c.State]++
		if c.State == model.StateOpen && oldest == nil {
			oldest = &round.cases[i] // oldest first
		}
		if c.Failing {
			failing++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*rootwarden status* — %d active cases: %d open · %d ticketed · %d verifying · %d risk accepted\n",
		total, counts[model.StateOpen], counts[model.StateTicketed], counts[model.StateVerifying], counts[model.StateRiskAccepted])
	if oldest != nil {
		fmt.Fprintf(&b, "Oldest open case: `%s` (account %s), open for %s\n", esc(oldest.ID), esc(oldest.label()), human(n.now().Sub(oldest.OpenedAt)))
	} else {
		b.WriteString("No open case.\n")
	}
	b.WriteString(n.sweepLine(ctx))
	if failing > 0 {
		fmt.Fprintf(&b, "\n:warning: %d active cases whose last check failed.", failing)
	}
	if hidden := v.hiddenUnread(round.cases); hidden > 0 {
		fmt.Fprintf(&b, "\n:lock: %d cases are not counted: rootwarden could not read the members of their channels just now.", hidden)
	}
	return ephemeralReply("%s", b.String()), nil
}

// allowCheck takes the account's check slot; false when one ran within CheckEvery.
func (n *Notifier) allowCheck(account string) (bool, time.Duration) {
	now := n.now()
	n.chkMu.Lock()
	defer n.chkMu.Unlock()
	if last, ok := n.checks[account]; ok && now.Sub(last) < n.cfg.CheckEvery && !now.Before(last) {
		return false, n.cfg.CheckEvery - now.Sub(last)
	}
	n.checks[account] = now
	return true, 0
}

func (n *Notifier) checkReply(ctx context.Context, cmd slack.SlashCommand, account string) commandReply {
	if !accountRE.MatchString(account) {
		return usage(fmt.Sprintf("`%s` is not a 12-digit AWS account id.", esc(truncate(account, 30))))
	}
	if ok, wait := n.allowCheck(account); !ok {
		return ephemeralReply("Account %s was checked less than %s ago; try again in %s.", account, human(n.cfg.CheckEvery), human(wait+time.Minute/2))
	}
	actor := model.Actor{Kind: model.ActorSlack, ID: cmd.UserID, Name: cmd.UserName}
	e, err := n.b.Cases.Get(ctx, account)
	var c model.Case
	if err == nil && json.Unmarshal(e.Value(), &c) == nil && actionAllowed(model.ActionRecheck, c.State) {
		a := model.Action{SchemaVersion: model.SchemaVersion, ID: "slack:" + cmd.UserID + ":slash_check:" + orDash(cmd.TriggerID),
			Kind: model.ActionRecheck, AccountID: account, CaseID: c.ID, Actor: actor, At: n.now(), Origin: "slack"}
		if rep := n.publish(ctx, n.log.With("user", cmd.UserID, "account", account), a, func(string) {}); rep.status != http.StatusOK {
			return ephemeralReply("rootwarden could not record the check; nothing was done. Please try again.")
		}
		return ephemeralReply("Re-check of account %s requested (case `%s`, %s); the result appears in the case's thread.", account, esc(c.ID), c.State)
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return ephemeralReply("rootwarden could not read the case of account %s right now; try again.", account)
	}
	if n.cfg.Checker == nil {
		return ephemeralReply("Account %s has no active case, and this notifier cannot ask the detector to check it.", account)
	}
	go n.checkLater(account, cmd.UserID, cmd.ResponseURL)
	return ephemeralReply("Checking account %s now; the answer follows here.", account)
}

// checkLater asks the detector and answers through the command's response_url.
func (n *Notifier) checkLater(account, user, responseURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	obs, err := n.cfg.Checker.Check(ctx, account, "slash command by "+user)
	var text string
	switch {
	case err != nil:
		text = fmt.Sprintf("The check of account %s failed: %s", account, esc(err.Error()))
	case obs.Failed():
		text = fmt.Sprintf("The check of account %s failed: %s", account, esc(obs.Error))
	case obs.RootKeysPresent:
		text = fmt.Sprintf(":rotating_light: Account %s has root access keys: a case is being opened in the case channel.", account)
	default:
		text = fmt.Sprintf(":white_check_mark: Account %s has no root access keys.", account)
	}
	if responseURL == "" {
		return
	}
	body, _ := json.Marshal(map[string]any{"response_type": slack.ResponseTypeEphemeral, "replace_original": false, "text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.log.Warn("slash check answer not delivered", "account", account, "err", err)
		return
	}
	_ = resp.Body.Close()
}

func (n *Notifier) caseReply(ctx context.Context, user, id string) commandReply {
	m := caseIDRE.FindStringSubmatch(id)
	if m == nil {
		return usage(fmt.Sprintf("`%s` is not a case id like 111122223333-1-t5x2k0 (the message shows it).", esc(truncate(id, 40))))
	}
	account := m[1]
	hist, last, err := n.caseHistory(ctx, account, id, 15)
	if err != nil {
		n.log.Warn("slash case history", "case", id, "err", err)
		return ephemeralReply("rootwarden could not read the history of case %s right now; try again.", id)
	}
	var c *model.Case
	if e, err := n.b.Cases.Get(ctx, account); err == nil {
		var cur model.Case
		if json.Unmarshal(e.Value(), &cur) == nil && cur.ID == id {
			c = &cur
		}
	}
	if c == nil && last != nil {
		c = &last.Case
	}
	if c == nil || !n.canSee(ctx, user, *c) { // a case the user may not see is not told to exist
		return ephemeralReply("rootwarden knows no case %s.", id)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Case `%s`* — account %s · %s · *%s*", esc(c.ID), esc(accountLabel(*c)), severityWord(c.Severity), esc(stateLine(*c, "")))
	if c.Ticket != nil {
		fmt.Fprintf(&b, " · ticket %s", esc(c.Ticket.ID))
	}
	if n.cfg.OwnerTag != "" {
		b.WriteString("\nOwner: " + ownerText(n.OwnerOf(ctx, *c)))
	}
	if c.State.Active() {
		b.WriteString("\n" + n.lastCheckLine(ctx, *c, true))
	}
	b.WriteString("\n*History*")
	for _, ev := range hist {
		fmt.Fprintf(&b, "\n• %s %s by %s", stamp(ev.At), ev.Type, actorRef(ev.Actor))
		if ev.Reason != "" {
			b.WriteString(": " + esc(truncate(ev.Reason, 160)))
		}
	}
	return ephemeralReply("%s", b.String())
}

// caseHistory reads the last max events of a case from RW_CASES (an ordered consumer
// on the account's subject), and the last event.
func (n *Notifier) caseHistory(ctx context.Context, account, caseID string, max int) ([]model.CaseEvent, *model.CaseEvent, error) {
	cons, err := n.b.JS.OrderedConsumer(ctx, bus.StreamCases, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.CaseSubject(account)}})
	if err != nil {
		return nil, nil, fmt.Errorf("read case events of %s: %w", account, err)
	}
	var out []model.CaseEvent
	for ctx.Err() == nil {
		batch, err := cons.FetchNoWait(200)
		if err != nil {
			return nil, nil, fmt.Errorf("fetch case events of %s: %w", account, err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			var ev model.CaseEvent
			if json.Unmarshal(msg.Data(), &ev) == nil && ev.CaseID == caseID {
				out = append(out, ev)
			}
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), jetstream.ErrNoMessages) {
			return nil, nil, batch.Error()
		}
		if got == 0 {
			break
		}
	}
	if len(out) == 0 {
		return nil, nil, nil
	}
	last := out[len(out)-1]
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out, &last, nil
}
