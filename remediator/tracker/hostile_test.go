package tracker

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
)

// hostileCase puts s everywhere AWS controls a string of the ticket: the account
// name, the CloudTrail event name and the key's last-used service and region.
func hostileCase(id, s string) model.Case {
	c := testCase(id)
	c.AccountName = s
	c.Keys[0].LastUsedService, c.Keys[0].LastUsedRegion = s, s
	c.Event = &model.TrailEvent{EventName: s, KeyInUse: true, UserAgent: s, SourceIP: s}
	return c
}

// live are the pieces of escape.Hostile that a tracker would parse as a mention, a
// link, an image or a URL, or that carry a control character.
var live = []string{"<!channel>", "<!here>", "<@U123>", "<https://evil", "@org/team", "![x]",
	"](https://e.example", "https://e.example", "evil.example", "e.example/p", "\x00", "\x1b", "\u202e"}

// liveText are those that matter in plain text that is scanned for links and mentions
// (titles, Jira's text nodes), where the rest is shown as it is.
var liveText = []string{"@org/team", "https://e.example", "evil.example", "e.example/p", "\x00", "\x1b", "\u202e"}

func assertInert(t *testing.T, where, text string) {
	t.Helper()
	assertNone(t, where, text, live)
}

func assertInertText(t *testing.T, where, text string) {
	t.Helper()
	assertNone(t, where, text, liveText)
}

func assertNone(t *testing.T, where, text string, live []string) {
	t.Helper()
	for _, bad := range live {
		if strings.Contains(text, bad) {
			t.Errorf("%s holds %q: %q", where, bad, text)
		}
	}
	for _, r := range text {
		if unicode.IsControl(r) && r != '\n' {
			t.Errorf("%s holds control character %U", where, r)
		}
	}
}

func TestHostileStringsReachNoTicketAsMarkup(t *testing.T) {
	const slackLink = "https://slack.example/archives/C1/p1"
	for i, s := range escape.Hostile {
		id := fmt.Sprintf("222222222222-%d", i+1)
		t.Run("github/"+s, func(t *testing.T) {
			e, f := newGHEnv(t)
			ref, err := e.tr.Open(ctxT(t), hostileCase(id, s), slackLink)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.tr.Comment(ctxT(t), ref, "risk accepted: "+s); err != nil {
				t.Fatal(err)
			}
			n, _ := strconv.Atoi(ref.ID)
			is, _ := f.Issue(n)
			assertInertText(t, "issue title", is.Title)
			assertInert(t, "issue body", is.Body)
			assertInert(t, "comment", strings.Join(is.Comments, "\n"))
			if !strings.Contains(is.Body, "("+AWSGuideURL+")") || !strings.Contains(is.Body, "("+slackLink+")") {
				t.Errorf("rootwarden's own links are gone from the body:\n%s", is.Body)
			}
		})
		t.Run("jira/"+s, func(t *testing.T) {
			e, f := newJiraEnv(t)
			ref, err := e.tr.Open(ctxT(t), hostileCase(id, s), slackLink)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.tr.Comment(ctxT(t), ref, "risk accepted: "+s); err != nil {
				t.Fatal(err)
			}
			is, _ := f.Issue(ref.ID)
			assertInertText(t, "summary", is.Summary)
			assertInertText(t, "description", adfToText(is.Description))
			assertInertText(t, "comment", strings.Join(is.Comments, "\n"))
			for _, href := range adfLinks(is.Description) {
				if href != AWSGuideURL && href != slackLink {
					t.Errorf("a link mark to %q was built from the input", href)
				}
			}
		})
		t.Run("builtin/"+s, func(t *testing.T) {
			tr := NewBuiltin(bustest.New(t))
			ref, err := tr.Open(ctxT(t), hostileCase(id, s), slackLink)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Comment(ctxT(t), ref, "risk accepted: "+s); err != nil {
				t.Fatal(err)
			}
			tk, _, err := tr.Get(ctxT(t), ref.ID)
			if err != nil {
				t.Fatal(err)
			}
			assertInertText(t, "title", tk.Title)
			assertInert(t, "body", tk.Body)
			for _, c := range tk.Comments {
				for _, r := range c.Text {
					if unicode.IsControl(r) || r == '\u202e' {
						t.Errorf("comment holds control character %U", r)
					}
				}
			}
		})
	}
}

// adfLinks lists the href of every link mark in an ADF document.
func adfLinks(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "link" {
				if a, ok := x["attrs"].(map[string]any); ok {
					out = append(out, fmt.Sprint(a["href"]))
				}
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
	return out
}
