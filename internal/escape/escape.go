// Package escape holds one escaping function per output format rootwarden renders
// into: Slack mrkdwn, Slack plain_text, GitHub Markdown, Jira's document format (ADF
// text nodes), PagerDuty summaries and log lines. Every string that AWS, Slack users
// or ticket systems control (account names, OU and tag values, user agents, IPs,
// event names, error texts, reasons) goes through the function of the format it lands
// in, at the point of rendering; rootwarden's own text does not. A member-account
// admin can rename the account to `<!channel> <https://evil.example|Approve here>`:
// what these functions return shows that text and never parses it as a mention, a
// link or an image. Standard library only; no function here ever fails.
//
// Auto-linking. Slack turns a bare domain such as `evil.example/approve` into a link,
// and GitHub turns `https://…` and `www.…` into links. Escaping cannot stop that, so
// the Slack and Markdown functions break the pattern: a zero-width space (U+200B)
// after every dot that is followed by a letter, between `:` and `//`, and after `@`.
// The text reads the same; it is no longer a domain, a URL or a mention.
package escape

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// ZWSP is the zero-width space that breaks auto-linking.
const ZWSP = "\u200b"

// PagerDutySummaryMax is the longest summary PagerDuty's Events API v2 accepts.
const PagerDutySummaryMax = 1024

// Hostile is a set of strings that try every trick these functions defend against;
// tests of every renderer push them through (as account name, OU and tag values,
// user agent, error text).
var Hostile = []string{
	"<!channel>",
	"<!here>",
	"<@U123>",
	"<https://evil.example|Approve here>",
	"@org/team",
	"![x](https://e.example/p.png)",
	"nul\x00esc\x1b[31mrtl\u202eoverride",
	"evil.example/approve",
}

// Clean removes what no output should carry: control characters (C0, DEL, C1; a tab,
// line feed or carriage return becomes a space, so a value cannot start a new line
// of its own), Unicode bidirectional controls (U+202E turns text around), zero-width
// characters and invalid UTF-8. It is the whole escaping of plain text.
func Clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune(unicode.ReplacementChar)
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case dropped(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// dropped: controls, bidirectional controls, zero-width and invisible formatting.
func dropped(r rune) bool {
	switch {
	case unicode.IsControl(r): // C0, DEL, C1
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, // Arabic letter mark, LRM, RLM
		r >= 0x202a && r <= 0x202e,                           // LRE, RLE, PDF, LRO, RLO
		r >= 0x2066 && r <= 0x2069,                           // LRI, RLI, FSI, PDI
		r >= 0x200b && r <= 0x200d, r == 0x2060, r == 0xfeff: // zero-width
		return true
	}
	return false
}

// Plain is text for a plain-text field: Slack plain_text objects (headers, buttons),
// ticket titles, Jira's summary. Nothing there is parsed; it is Clean.
func Plain(s string) string { return Clean(s) }

// SlackPlain is text for a Slack plain_text object.
func SlackPlain(s string) string { return Clean(s) }

// Slack is text for Slack mrkdwn: the message `text` (what push notifications show),
// mrkdwn text objects, ephemeral messages and slash-command answers. It is Clean, with
// &, < and > as HTML entities (Slack's control characters: no `<!channel>`, `<@U…>`,
// `<url|label>`), and auto-linking broken (package comment). Slack's own formatting
// characters (* _ ~ `) are left: they change how a value looks, never what it does.
func Slack(s string) string {
	s = Clean(s)
	s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	return breakLinks(s)
}

// Markdown is text for GitHub Markdown (issue bodies, comments; the built-in
// tracker's body): every ASCII punctuation character backslash-escaped (CommonMark
// allows it for all of them), so no emphasis, link, image (`![x](…)`), HTML, table or
// heading is made from the value, and auto-linking and mentions (`@org/team`) broken
// (package comment): GitHub finds mentions after rendering, where a backslash is gone.
func Markdown(s string) string {
	s = Clean(s)
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for _, r := range s {
		if r < utf8.RuneSelf && unicode.IsPunct(r) || r < utf8.RuneSelf && unicode.IsSymbol(r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return breakLinks(b.String())
}

// Text is plain text that a system may still scan for links or mentions: ticket
// titles (GitHub issue title, Jira summary). It is Clean, with auto-linking and
// mentions broken (package comment).
func Text(s string) string { return breakLinks(Clean(s)) }

// ADF is text for a text node of Jira's Atlassian Document Format. A text node is
// never parsed, and rootwarden never builds marks or links from a value; Jira still
// turns URLs it finds in text into links, so it is Text.
func ADF(s string) string { return Text(s) }

// PagerDuty is a PagerDuty summary (or a value shown in one): plain, Clean, at most
// max runes (PagerDutySummaryMax when max <= 0 or larger).
func PagerDuty(s string, max int) string {
	if max <= 0 || max > PagerDutySummaryMax {
		max = PagerDutySummaryMax
	}
	s = Clean(s)
	if r := []rune(s); len(r) > max {
		s = string(r[:max-3]) + "..."
	}
	return s
}

// Log is a value put into a log message's text (slog attributes are quoted by the
// handler already): Clean, so it cannot fake a line of its own or hide behind
// terminal escapes.
func Log(s string) string { return Clean(s) }

// breakLinks puts ZWSP after every dot followed by a letter, between ':' and '/',
// and after '@' (the input is Clean: it holds no ZWSP of its own).
func breakLinks(s string) string {
	if !strings.ContainsAny(s, ".:@") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		b.WriteByte(c)
		next := byte(0)
		if i+1 < len(s) {
			next = s[i+1]
			if next == '\\' && i+2 < len(s) { // Markdown: the escaped character counts
				next = s[i+2]
			}
		}
		switch {
		case c == '.' && isLetter(next), c == ':' && next == '/', c == '@':
			b.WriteString(ZWSP)
		}
	}
	return b.String()
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// SlackLink is a Slack mrkdwn link `<url|label>` to a URL rootwarden did not make
// (a ticket's address as its tracker gave it): the label is escaped with Slack, and
// the URL is used only when it is an http(s) address that cannot end the link early
// (no <, >, |, space or control character); otherwise the label alone, unlinked.
func SlackLink(url, label string) string {
	label = Slack(label)
	if !SafeURL(url) {
		return label
	}
	return "<" + strings.ReplaceAll(url, "&", "&amp;") + "|" + label + ">"
}

// SafeURL reports whether u is an http(s) address with nothing in it that a
// renderer could read as the end of the link or as markup.
func SafeURL(u string) bool {
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") || len(u) > 2000 {
		return false
	}
	for _, r := range u {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == '|' || r == '"' || r == '`' || dropped(r) {
			return false
		}
	}
	return true
}
