package notifier_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

// parsed are the pieces of escape.Hostile that Slack would turn into a mention, a
// link or an auto-linked domain in mrkdwn (or that carry a control character).
var parsed = []string{"<!channel>", "<!here>", "<@U123>", "<https://evil", "|Approve here>", "evil.example",
	"e.example", "https://e.", "@org/team", "\x00", "\x1b", "\u202e"}

// assertNotParsed checks mrkdwn text; plain says the text is a plain_text object,
// where nothing is parsed and only control characters matter.
func assertNotParsed(t *testing.T, where, text string, plain bool) {
	t.Helper()
	for _, bad := range parsed {
		if plain && !strings.ContainsAny(bad, "\x00\x1b\u202e") {
			continue
		}
		if strings.Contains(text, bad) {
			t.Errorf("%s: %q is live in %q", where, bad, text)
		}
	}
	for _, r := range text {
		if unicode.IsControl(r) && r != '\n' {
			t.Errorf("%s: control character %U in %q", where, r, text)
		}
	}
}

// assertBlocksNotParsed walks Block Kit JSON: mrkdwn objects are checked for live
// markup, plain_text objects for control characters.
func assertBlocksNotParsed(t *testing.T, where string, raw json.RawMessage) {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: blocks: %v", where, err)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["text"].(string); ok {
				assertNotParsed(t, where+" ("+fmt.Sprint(x["type"])+")", s, x["type"] == "plain_text")
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(v)
}

// TestHostileStringsAreNeverParsedInSlackOrPagerDuty pushes escape.Hostile through
// every Slack rendering: as account name, owner tag, OU, CloudTrail user agent, IP and
// event name, key service, check error and event reason, through the case message
// (chat.postMessage and chat.update: text and blocks), its thread replies, a reminder,
// the App Home, the slash answers (status, case, a check's delayed answer) and the
// PagerDuty incident.
func TestHostileStringsAreNeverParsedInSlackOrPagerDuty(t *testing.T) {
	checkErr := make(chan string, 1)
	o := newOnCallEnv(t, true, func(c *notifier.Config) {
		c.Checker = checkerFunc(func(_ context.Context, acct, _ string) (model.Observation, error) {
			return model.Observation{}, errors.New(<-checkErr)
		})
		c.CheckPerUser = notifier.Rate{Every: time.Minute, Burst: 100}
	})
	answers := make(chan string, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		answers <- fmt.Sprint(m["text"])
	}))
	t.Cleanup(hook.Close)
	o.run()

	var cases []model.Case
	for i, s := range escape.Hostile {
		c := baseCase(fmt.Sprintf("3000000000%02d-1", i), o.clock.Now())
		c.AccountID = fmt.Sprintf("3000000000%02d", i)
		c.AccountName, c.OUPath, c.Tags = s, s, map[string]string{"owner": s + "@x"}
		c.Event.UserAgent, c.Event.SourceIP, c.Event.EventName = s, s, s
		c.Event.Calls, c.Event.EventNames, c.Event.SourceIPs = 2, []string{s, s}, []string{s}
		c.Keys[0].LastUsedService, c.Keys[0].LastUsedRegion = s, s
		c.LastError = s
		o.publish(c, model.EventOpened, "", model.System, s)
		o.rendered(c.ID, 1)
		o.publish(c, model.EventUpdated, model.StateOpen, model.System, s) // chat.update and a reply
		o.rendered(c.ID, 2)
		cases = append(cases, c)
	}
	o.clock.Add(31 * time.Minute)
	if err := o.n.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}

	for i, c := range cases {
		s := escape.Hostile[i]
		t.Run(s, func(t *testing.T) {
			m := o.onlyMessageOf(c.ID)
			if m.Edits == 0 {
				t.Fatalf("the case message was never edited")
			}
			assertNotParsed(t, "message text (push notification)", m.Text, false)
			assertBlocksNotParsed(t, "message blocks", m.RawBlocks)
			replies := o.fake.Replies(channelID, m.TS)
			if len(replies) < 2 {
				t.Fatalf("%d thread replies, want the update and a reminder", len(replies))
			}
			for _, r := range replies {
				assertNotParsed(t, "thread reply", r.Text, false)
			}
			_, ans := o.command(outsider, "case "+c.ID, "")
			assertNotParsed(t, "/rootwarden case", fmt.Sprint(ans["text"]), false)
			testutil.Eventually(t, "incident triggered", func() bool { _, ok := o.pd.Incident(c.ID); return ok })
			in, _ := o.pd.Incident(c.ID)
			assertNotParsed(t, "PagerDuty summary", in.Summary, true)
		})
	}
	t.Run("status", func(t *testing.T) {
		_, ans := o.command(outsider, "status", "")
		assertNotParsed(t, "/rootwarden status", fmt.Sprint(ans["text"]), false)
	})
	t.Run("App Home", func(t *testing.T) {
		if st, body, err := slackfake.DeliverJSON(context.Background(), o.events.URL, signingSecret,
			slackfake.AppHomeOpened(outsider)); err != nil || st != 200 {
			t.Fatalf("app_home_opened: %d %s %v", st, body, err)
		}
		h := o.homeOf(outsider, "home published", func(h slackfake.HomeView) bool { return len(h.Buttons()) > 0 })
		assertBlocksNotParsed(t, "App Home", h.Raw)
	})
	t.Run("logs", func(t *testing.T) {
		if logs := o.logs.String(); strings.ContainsAny(logs, "\x00\x1b\u202e") {
			t.Errorf("a raw control character reached the logs:\n%q", logs)
		}
	})
	t.Run("check answer", func(t *testing.T) {
		o.list("399999999999")
		for _, s := range escape.Hostile {
			checkErr <- s
			_, ans := o.command(outsider, "check 399999999999", hook.URL)
			assertNotParsed(t, "/rootwarden check", fmt.Sprint(ans["text"]), false)
			o.clock.Add(time.Hour) // the account's check slot again
			assertNotParsed(t, "check answer via response_url", <-answers, false)
		}
	})
}
