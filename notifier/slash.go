package notifier

// The slash command /rootwarden (POST /slack/commands, or Socket Mode): status, check
// <account id>, case <id>, help. Requests are verified like interactions; every answer
// is ephemeral (only the caller sees it); anything unknown gets the usage, never an
// error trace. `check` of an account with an active case asks for a Re-check (the same
// action as the button, so the remediator's throttle applies); without a case it asks
// the detector over the bus and answers later through the command's response_url.
// An account that is not in the inventory is answered from it without asking AWS
// (approvers may force a check). Checks are limited per account, per person and for
// everyone (checklimit.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
)

const usageText = "Usage: `/rootwarden status` (cases by state, oldest open case, last sweep) · " +
	"`/rootwarden check <account id> [force]` (check an AWS account now; `force`, for approvers, checks one the last sweep did not list) · " +
	"`/rootwarden case <case id | account id>` (state and history) · " +
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
		return n.checkReply(ctx, cmd, fields[1], false)
	case sub == "check" && len(fields) == 3 && strings.EqualFold(fields[2], "force"):
		return n.checkReply(ctx, cmd, fields[1], true)
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
	b.WriteString(n.withCoverage(ctx, n.sweepLine(ctx)))
	if failing > 0 {
		fmt.Fprintf(&b, "\n:warning: %d active cases whose last check failed.", failing)
	}
	if hidden := v.hiddenUnread(round.cases); hidden > 0 {
		fmt.Fprintf(&b, "\n:lock: %d cases are not counted: rootwarden could not read the members of their channels just now.", hidden)
	}
	return ephemeralReply("%s", b.String()), nil
}

// checkReply answers `check <account> [force]`. Anyone may check an account with an
// active case (a Re-check) or an account of the inventory (rw_accounts, the accounts
// the last sweep listed); an account that is not listed is answered from the
// inventory and the sweep record, without asking AWS; `force` checks it all the same
// (Organizations DescribeAccount), for approvers only. Every check takes the limits
// of checklimit.go; every refusal says why and when to try again.
func (n *Notifier) checkReply(ctx context.Context, cmd slack.SlashCommand, account string, force bool) commandReply {
	if !accountRE.MatchString(account) {
		return usage(fmt.Sprintf("`%s` is not a 12-digit AWS account id.", esc(truncate(account, 30))))
	}
	actor := model.Actor{Kind: model.ActorSlack, ID: cmd.UserID, Name: cmd.UserName}
	e, err := n.b.Cases.Get(ctx, account)
	var c model.Case
	if err == nil && json.Unmarshal(e.Value(), &c) == nil && actionAllowed(model.ActionRecheck, c.State) {
		if ok, why := n.takeCheck(cmd.UserID, account); !ok {
			return ephemeralReply("%s", n.refusalText(account, why))
		}
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
	_, err = n.b.Accounts.Get(ctx, account)
	listed := err == nil
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
		n.log.Warn("slash check: read the inventory", "account", account, "err", err)
		return ephemeralReply("rootwarden could not read its account inventory right now; nothing was checked. Try again in a minute.")
	}
	if !listed && !force {
		return ephemeralReply("%s", n.notListedText(ctx, account))
	}
	if !listed {
		if ok, why := n.isApprover(ctx, cmd.UserID); !ok {
			return ephemeralReply("Account %s is not in rootwarden's inventory, and a check of an account that is not listed is for approvers: %s "+
				"Nothing was checked; the next sweep lists the account if it has joined the organization.", account, why)
		}
	}
	if ok, why := n.takeCheck(cmd.UserID, account); !ok {
		return ephemeralReply("%s", n.refusalText(account, why))
	}
	go n.checkLater(account, cmd.UserID, cmd.ResponseURL)
	return ephemeralReply("Checking account %s now; the answer follows here.", account)
}

// notListedText answers a check of an account the inventory does not hold, from the
// inventory and the sweep record: no AWS call.
func (n *Notifier) notListedText(ctx context.Context, account string) string {
	force := fmt.Sprintf(" If it is an account of the organization that joined since, the next sweep lists and checks it; "+
		"an approver can check it now with `/rootwarden check %s force`.", account)
	sw, err := n.b.Sweep(ctx)
	switch {
	case errors.Is(err, bus.ErrNoSweep):
		return fmt.Sprintf("Account %s is not in rootwarden's inventory: no sweep has listed the organization's accounts yet, "+
			"and rootwarden checks the accounts a sweep lists.", account) + force
	case err != nil:
		n.log.Warn("slash check: read the sweep record", "err", err)
		return fmt.Sprintf("Account %s is not in rootwarden's inventory (the record of the last sweep cannot be read right now).", account) + force
	}
	var b strings.Builder
	switch {
	case sw.Error != "":
		fmt.Fprintf(&b, "Account %s is not in rootwarden's inventory; the listing of the sweep `%s` started %s failed (%s), "+
			"so the inventory is the one before it.", account, esc(sw.ID), stamp(sw.StartedAt), esc(truncate(sw.Error, 120)))
	case !sw.Done:
		fmt.Fprintf(&b, "Account %s is not in rootwarden's inventory yet: the sweep `%s` started %s is still listing the accounts; "+
			"try again when it is done.", account, esc(sw.ID), stamp(sw.StartedAt))
	default:
		fmt.Fprintf(&b, "Account %s is not listed in the organization as of the sweep `%s` started %s (%d accounts listed).",
			account, esc(sw.ID), stamp(sw.StartedAt), sw.Accounts)
	}
	if n.cfg.SweepEvery > 0 {
		next := sw.StartedAt.Add(n.cfg.SweepEvery)
		if wait := next.Sub(n.now()); wait > 0 {
			fmt.Fprintf(&b, " The next sweep starts at %s (in %s).", stamp(next), human((wait + time.Minute - 1).Truncate(time.Minute)))
		} else {
			b.WriteString(" The next sweep is due now.")
		}
	}
	return b.String() + force
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
	n.answerLater(ctx, responseURL, account, text)
}

// answerLater posts a delayed ephemeral answer to a slash command's response_url,
// within CallTimeout. The URL is a capability (whoever holds it may post to the
// channel as the app for 30 minutes), so it never reaches a log line: a failure logs
// the underlying error without the URL, and a non-2xx answer its status.
func (n *Notifier) answerLater(ctx context.Context, responseURL, account, text string) {
	if responseURL == "" {
		return
	}
	log := n.log.With("account", account)
	body, _ := json.Marshal(map[string]any{"response_type": slack.ResponseTypeEphemeral, "replace_original": false, "text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		log.Warn("slash command answer not delivered: unusable response_url")
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: n.cfg.CallTimeout}).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the same error without the URL
		}
		msg := err.Error()
		if u, perr := url.Parse(responseURL); perr == nil && len(u.Path) > 1 {
			msg = strings.ReplaceAll(msg, u.Path, "/…") // should the error name it anyway
		}
		log.Warn("slash command answer not delivered", "err", msg)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		log.Warn("slash command answer refused by Slack", "status", resp.StatusCode, "answer", escape.Log(string(answer)))
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
}

func (n *Notifier) caseReply(ctx context.Context, user, arg string) commandReply {
	account, id, ok, err := n.resolveCaseID(ctx, arg)
	switch {
	case !ok:
		return usage(fmt.Sprintf("`%s` is not a case id like 111122223333-1-t5x2k0 (the message shows it), 111122223333-1 or an account id.", esc(truncate(arg, 40))))
	case err != nil:
		n.log.Warn("slash case id", "case", arg, "err", err)
		return ephemeralReply("rootwarden could not read the cases of account %s right now; try again.", account)
	case id == "" && arg == account:
		return ephemeralReply("rootwarden has no case for account %s.", account)
	case id == "":
		return ephemeralReply("rootwarden knows no case %s.", esc(truncate(arg, 40)))
	}
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
		if arg == account {
			return ephemeralReply("rootwarden has no case for account %s.", account)
		}
		return ephemeralReply("rootwarden knows no case %s.", esc(truncate(arg, 40)))
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

// caseHistory reads the last max events of a case from RW_CASES, and the last event
// (bus.CaseEvents: no consumer is left behind).
func (n *Notifier) caseHistory(ctx context.Context, account, caseID string, max int) ([]model.CaseEvent, *model.CaseEvent, error) {
	out, err := n.b.CaseEvents(ctx, account, caseID)
	if err != nil {
		return nil, nil, fmt.Errorf("read case events of %s: %w", account, err)
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
