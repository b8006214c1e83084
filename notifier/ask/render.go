package ask

// The question's Slack layout: the DM, the channel notice, the escalation and the
// reason modal. Every value AWS or people control is escaped for where it lands.

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
)

func esc(s string) string { return escape.Slack(s) }

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, escape.SlackPlain(s), false, false)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

// label is the account for plain text: "name (id)".
func label(q model.Activity) string {
	if q.AccountName != "" {
		return q.AccountName + " (" + q.AccountID + ")"
	}
	return q.AccountID
}

var kindText = map[model.ActivityKind]string{
	model.ActivityConsoleLogin:        "root signed in to the console",
	model.ActivityConsoleLoginFailed:  "failed root sign-ins",
	model.ActivityPasswordChanged:     "root password changed",
	model.ActivityPasswordRecovery:    "root password recovery",
	model.ActivityMFARemoved:          "root MFA device removed",
	model.ActivitySigningCertUploaded: "root signing certificate uploaded",
	model.ActivityAssumeRoot:          "root session started (AssumeRoot)",
}

// itemLine is one item in mrkdwn: what, when, from where, MFA.
func itemLine(it model.ActivityItem) string {
	what := kindText[it.Kind]
	if what == "" {
		what = string(it.Kind)
	}
	s := "*" + esc(what) + "* (`" + esc(it.EventName) + "`) at " + it.At.UTC().Format("15:04 UTC, 2 Jan")
	if it.SourceIP != "" {
		s += " from " + esc(it.SourceIP)
	}
	if it.MFAUsed != "" {
		s += ", MFA used: " + esc(it.MFAUsed)
	}
	if it.Failures > 0 {
		s += fmt.Sprintf(", %d failures this hour", it.Failures)
	}
	if it.Principal != "" {
		s += ", by " + esc(it.Principal)
	}
	if it.UserAgent != "" {
		ua := it.UserAgent
		if len(ua) > 120 {
			ua = ua[:120] + "…"
		}
		s += "\n    user agent: " + esc(ua)
	}
	return s
}

// itemsLine is the items in plain text (PagerDuty, logs).
func itemsLine(items []model.ActivityItem) string {
	var parts []string
	for _, it := range items {
		p := string(it.Kind) + " " + it.EventName
		if it.SourceIP != "" {
			p += " from " + it.SourceIP
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

func itemsBlock(q model.Activity) slack.Block {
	lines := make([]string, 0, len(q.Items))
	for _, it := range q.Items {
		lines = append(lines, "• "+itemLine(it))
	}
	return slack.NewSectionBlock(mrkdwn(strings.Join(lines, "\n")), nil, nil)
}

func accountMrkdwn(q model.Activity) string {
	s := "*" + esc(q.AccountID) + "*"
	if q.AccountName != "" {
		s = "*" + esc(q.AccountName) + "* (" + esc(q.AccountID) + ")"
	}
	if q.OUPath != "" {
		s += " · " + esc(q.OUPath)
	}
	return s
}

func answerButtons(q model.Activity) slack.Block {
	v := q.AccountID + "|" + q.ID
	yes := slack.NewButtonBlockElement(ActionIDYes, v, plain("Yes, it was me (reason)")).WithStyle(slack.StylePrimary)
	no := slack.NewButtonBlockElement(ActionIDNo, v, plain("No, I don't recognise this")).WithStyle(slack.StyleDanger)
	return slack.NewActionBlock("activity_answer", yes, no)
}

func outcomeLine(q model.Activity) string {
	switch q.State {
	case model.ActivityConfirmed:
		by := ""
		if q.By != nil {
			by = esc(q.By.String())
			if q.By.Kind == model.ActorSlack && q.By.ID != "" {
				by = "<@" + esc(q.By.ID) + ">"
			}
		}
		return "✅ *Confirmed* by " + by + ": " + esc(q.Reason)
	case model.ActivityEscalated:
		why := esc(q.Reason)
		if q.By != nil && q.By.Kind == model.ActorSlack {
			why = "<@" + esc(q.By.ID) + "> does not recognise this"
		}
		return "🚨 *Critical*: " + why
	}
	return ""
}

func dmText(q model.Activity) string {
	return "Was this you? Root activity in AWS account " + esc(label(q))
}

// dmBlocks is the question to the person asked.
func (a *asker) dmBlocks(ev model.CaseEvent, rec *record) []slack.Block {
	q := *ev.Activity
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain("Was this you? Root activity in AWS account " + label(q))),
		slack.NewSectionBlock(mrkdwn("Account "+accountMrkdwn(q)+". You are asked as its "+whoText(rec)+"."), nil, nil),
		itemsBlock(q),
	}
	if q.Open() {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn("No answer by "+clock(q.AnswerBy)+" counts as *No*: the on-call team is paged.")),
			answerButtons(q))
	} else {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(outcomeLine(q)), nil, nil))
	}
	return blocks
}

func whoText(rec *record) string {
	if rec.AskedVia == "owner" {
		return "owner"
	}
	return "on-call approver (the account has no owner rootwarden can reach)"
}

func noticeText(q model.Activity, rec *record) string {
	return "Root activity in AWS account " + esc(label(q)) + ": " + askedLine(q, rec)
}

func askedLine(q model.Activity, rec *record) string {
	who := "nobody could be asked by DM (no owner and no on-call approver)"
	if rec.AskedUser != "" {
		who = "asked <@" + esc(rec.AskedUser) + "> (" + esc(rec.AskedVia) + ")"
		if rec.DMError != "" {
			who = "could not DM <@" + esc(rec.AskedUser) + "> (" + esc(rec.AskedVia) + "; Slack: `" + esc(rec.DMError) + "`): answer here"
		}
	}
	return who + "; escalates at " + clock(q.AnswerBy)
}

// noticeBlocks is the routed channel's notice: who was asked and when it escalates,
// so that one absent or compromised owner cannot hide it. Approvers may answer here.
func (a *asker) noticeBlocks(ev model.CaseEvent, rec *record) []slack.Block {
	q := *ev.Activity
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn("*Root activity* in AWS account "+accountMrkdwn(q)), nil, nil),
		itemsBlock(q),
	}
	ctx := "Question " + esc(q.ID)
	if q.RootCaseID != "" {
		ctx += " · root credential case " + esc(q.RootCaseID) + " (`/rootwarden case " + esc(q.RootCaseID) + "`)"
	}
	if q.Open() {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(askedLine(q, rec)+"."), nil, nil), answerButtons(q))
	} else {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(outcomeLine(q)), nil, nil))
	}
	return append(blocks, slack.NewContextBlock("", mrkdwn(ctx)))
}

func escalatedText(q model.Activity) string {
	return "Critical: unrecognised root activity in AWS account " + esc(label(q))
}

func escalatedBlocks(ev model.CaseEvent, steps string) []slack.Block {
	q := *ev.Activity
	return []slack.Block{
		slack.NewSectionBlock(mrkdwn("🚨 *Critical: root activity not confirmed* in AWS account "+accountMrkdwn(q)+"\n"+outcomeLine(q)), nil, nil),
		slack.NewSectionBlock(mrkdwn("*What to do now* (console):\n"+steps), nil, nil),
	}
}

func clock(t time.Time) string { return t.UTC().Format("15:04 UTC") }

// reasonModal asks for the reason of a "Yes".
func reasonModal(account, id string) slack.ModalViewRequest {
	in := slack.NewPlainTextInputBlockElement(plain("e.g. closing the account's billing, ticket OPS-123"), ActionIDReason)
	in.Multiline = true
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackReason,
		PrivateMetadata: account + "|" + id,
		Title:           plain("It was me"),
		Submit:          plain("Confirm"),
		Close:           plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn("What did you do as root in account *"+esc(account)+"*, and why?"), nil, nil),
			slack.NewInputBlock(BlockIDReason, plain("Reason"), nil, in),
		}},
	}
}
