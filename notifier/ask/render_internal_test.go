package ask

import (
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/model"
)

// Every value AWS or people control is escaped where it lands: no mention, broadcast
// or link can be made from an account name, tag, user agent, IP or reason.
func TestHostileValuesAreEscapedInEveryMessage(t *testing.T) {
	hostile := "<!channel> <@U0BOSS> <https://evil.example|click> `x` \x1b[31m"
	at := time.Date(2026, 12, 8, 10, 27, 0, 0, time.UTC)
	by := model.Actor{Kind: model.ActorSlack, ID: "U0OWNER", Name: hostile}
	q := model.Activity{ID: "222222222222-a1-x", AccountID: "222222222222", AccountName: hostile, OUPath: hostile,
		State: model.ActivityConfirmed, OpenedAt: at, AnswerBy: at.Add(15 * time.Minute), By: &by, Reason: hostile,
		Items: []model.ActivityItem{{Kind: model.ActivityAssumeRoot, EventID: "e", EventName: hostile, At: at,
			SourceIP: hostile, UserAgent: hostile, MFAUsed: hostile, Principal: hostile}}}
	ev := model.CaseEvent{Activity: &q, Reason: hostile}
	rec := &record{AskedUser: "U0OWNER", AskedVia: "owner", DMError: hostile}
	a := &asker{d: Deps{ConsoleSteps: DefaultConsoleSteps}}
	var texts []string
	collect := func(blocks []slack.Block) {
		for _, b := range blocks {
			if s, ok := b.(*slack.SectionBlock); ok && s.Text != nil {
				texts = append(texts, s.Text.Text)
			}
		}
	}
	collect(a.dmBlocks(ev, rec))
	collect(a.noticeBlocks(ev, rec))
	q.State = model.ActivityEscalated
	collect(escalatedBlocks(ev, DefaultConsoleSteps))
	texts = append(texts, dmText(q), noticeText(q, rec), escalatedText(q))
	for _, s := range texts {
		for _, bad := range []string{"<!channel>", "<@U0BOSS>", "<https://evil", "\x1b"} {
			if strings.Contains(s, bad) {
				t.Errorf("%q reaches Slack in %q", bad, s)
			}
		}
	}
	if !strings.Contains(strings.Join(texts, "\n"), "&lt;!channel&gt;") {
		t.Error("the hostile text is not shown at all (escaped)")
	}
}
