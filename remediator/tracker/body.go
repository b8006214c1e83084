// Package tracker holds the ticket systems behind model.Tracker, one file per system:
// the built-in tracker on the bus (the default), Jira Cloud and GitHub Issues. Every
// tracker finds a case's ticket by its label (rootwarden-case-<case id>) before it
// creates one, so opening is idempotent per case. This package only speaks to ticket
// systems; it never decides anything about a case and never logs a token.
package tracker

import (
	"fmt"
	"strings"
	"time"

	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
)

// AWSGuideURL is AWS's guide to deleting root user access keys.
const AWSGuideURL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user_manage_delete-key.html"

// ConsoleURL is where the root user signs in.
const ConsoleURL = "https://console.aws.amazon.com/"

// Label is the label that marks a case's ticket in every system.
func Label(caseID string) string { return "rootwarden-case-" + caseID }

// Title of a case's ticket: plain text in every system; the account name is
// escape.Text (no control characters, no auto-link, no mention).
func Title(c model.Case) string {
	return fmt.Sprintf("[rootwarden] Delete the root access key of AWS account %s", escape.Text(accountLabel(c)))
}

func accountLabel(c model.Case) string {
	if c.AccountName != "" {
		return fmt.Sprintf("%s (%s)", c.AccountName, c.AccountID)
	}
	return c.AccountID
}

// segment is a run of text, a link when Href is set (only rootwarden's own links).
// Value marks text that AWS or people control (account name, event name, reasons):
// each format escapes it (escape.Markdown, escape.ADF); rootwarden's own text is
// written as it is.
type segment struct {
	Text  string
	Href  string
	Value bool
}

// val is a value segment.
func val(s string) segment { return segment{Text: s, Value: true} }

// txt is a segment of rootwarden's own text.
func txt(s string) segment { return segment{Text: s} }

// block is one piece of a ticket description.
type block struct {
	Heading string      // a heading; or
	Para    []segment   // a paragraph; or
	Steps   [][]segment // an ordered list
}

// Steps are the console steps to delete a root access key.
var Steps = []string{
	"Sign in as the root user at " + ConsoleURL + " with the account's root email address, its password and MFA.",
	"Open the account menu (the account name, top right) and choose Security credentials.",
	"Under Access keys, for each root access key: Actions → Deactivate, then Actions → Delete, and confirm.",
	"Close this ticket. rootwarden then asks AWS to verify; if a key is still there the ticket is reopened.",
}

// description is what every ticket says, as blocks.
func description(c model.Case, slackLink string) []block {
	reported := "1 key reported"
	if n := len(c.Keys); n > 1 {
		reported = fmt.Sprintf("%d keys reported", n)
	}
	found := []segment{txt("AWS account "), val(accountLabel(c)), txt(fmt.Sprintf(" has root user access keys (%s). Severity: ", reported)),
		val(string(c.Severity)), txt(". Case "), val(c.ID), txt(", opened " + c.OpenedAt.UTC().Format(time.RFC3339) + ", found by "),
		val(string(c.FoundBy)), txt(".")}
	var keys [][]segment
	for _, k := range c.Keys {
		s := []segment{txt(fmt.Sprintf("Key %d: active=%t", k.Slot, k.Active))}
		if k.LastUsedAt != nil {
			s = append(s, txt(fmt.Sprintf(", last used %s", k.LastUsedAt.UTC().Format(time.RFC3339))))
			if k.LastUsedService != "" {
				s = append(s, txt(" ("), val(k.LastUsedService), txt(" in "), val(k.LastUsedRegion), txt(")"))
			}
		} else {
			s = append(s, txt(", never used"))
		}
		keys = append(keys, s)
	}
	bs := []block{
		{Heading: "What was found"},
		{Para: found},
	}
	if len(keys) > 0 {
		bs = append(bs, block{Steps: keys})
	}
	if c.Event != nil && c.Event.KeyInUse {
		bs = append(bs, block{Para: []segment{txt("A root access key is in use: "), val(c.Event.EventName),
			txt(" at " + c.Event.EventTime.UTC().Format(time.RFC3339) + ".")}})
	}
	bs = append(bs,
		block{Heading: "Why it matters"},
		block{Para: []segment{{Text: "A root access key can do anything in the account, billing included, and no IAM policy can limit it. " +
			"AWS does not let ordinary IAM credentials delete it: the root user has to."}}},
		block{Heading: "How to delete it"},
	)
	var steps [][]segment
	for _, s := range Steps {
		steps = append(steps, []segment{{Text: s}})
	}
	bs = append(bs, block{Steps: steps},
		block{Para: []segment{{Text: "AWS guide: "}, {Text: AWSGuideURL, Href: AWSGuideURL}}})
	if slackLink != "" {
		bs = append(bs, block{Para: []segment{{Text: "Slack discussion: "}, {Text: slackLink, Href: slackLink}}})
	}
	return bs
}

// Markdown renders a case's ticket description as Markdown (GitHub, built-in).
func Markdown(c model.Case, slackLink string) string {
	var b strings.Builder
	for _, bl := range description(c, slackLink) {
		switch {
		case bl.Heading != "":
			fmt.Fprintf(&b, "## %s\n\n", bl.Heading)
		case bl.Para != nil:
			b.WriteString(mdSegments(bl.Para) + "\n\n")
		default:
			for i, s := range bl.Steps {
				fmt.Fprintf(&b, "%d. %s\n", i+1, mdSegments(s))
			}
			b.WriteString("\n")
		}
	}
	return strings.TrimSpace(b.String()) + "\n"
}

func mdSegments(ss []segment) string {
	var b strings.Builder
	for _, s := range ss {
		switch {
		case s.Value:
			b.WriteString(escape.Markdown(s.Text))
		case s.Href != "":
			fmt.Fprintf(&b, "[%s](%s)", s.Text, s.Href)
		default:
			b.WriteString(s.Text)
		}
	}
	return b.String()
}

// adf renders blocks as an Atlassian Document Format document (Jira Cloud REST v3).
func adf(bs []block) map[string]any {
	var content []any
	for _, bl := range bs {
		switch {
		case bl.Heading != "":
			content = append(content, map[string]any{"type": "heading", "attrs": map[string]any{"level": 3},
				"content": adfText([]segment{{Text: bl.Heading}})})
		case bl.Para != nil:
			content = append(content, map[string]any{"type": "paragraph", "content": adfText(bl.Para)})
		default:
			var items []any
			for _, s := range bl.Steps {
				items = append(items, map[string]any{"type": "listItem", "content": []any{
					map[string]any{"type": "paragraph", "content": adfText(s)}}})
			}
			content = append(content, map[string]any{"type": "orderedList", "content": items})
		}
	}
	return map[string]any{"type": "doc", "version": 1, "content": content}
}

func adfText(ss []segment) []any {
	var out []any
	for _, s := range ss {
		text := s.Text
		if s.Value {
			text = escape.ADF(text)
		}
		if text == "" {
			continue // ADF refuses an empty text node
		}
		n := map[string]any{"type": "text", "text": text}
		if s.Href != "" && !s.Value {
			n["marks"] = []any{map[string]any{"type": "link", "attrs": map[string]any{"href": s.Href}}}
		}
		out = append(out, n)
	}
	return out
}

// adfPlain is a one-paragraph ADF document (comments): the text may carry values
// (reasons people typed, AWS error texts), so all of it is a value.
func adfPlain(text string) map[string]any {
	return adf([]block{{Para: []segment{val(text)}}})
}
