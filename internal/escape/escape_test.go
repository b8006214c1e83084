package escape_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/rootwarden/rootwarden/internal/escape"
)

// live lists, per format, what would still be parsed as a mention, a link, an image
// or a URL if it were left in the output.
var live = map[string][]string{
	"slack":    {"<!", "<@", "<http", "evil.example", "e.example", "https://", "@org"},
	"markdown": {"evil.example", "e.example", "https://", "@org"}, // plus: no unescaped punctuation
	"adf":      {"evil.example", "e.example", "https://"},
}

func TestEveryFormatNeutralisesTheHostileStrings(t *testing.T) {
	formats := map[string]func(string) string{
		"slack":      escape.Slack,
		"slackPlain": escape.SlackPlain,
		"markdown":   escape.Markdown,
		"adf":        escape.ADF,
		"pagerduty":  func(s string) string { return escape.PagerDuty(s, 0) },
		"log":        escape.Log,
	}
	for name, f := range formats {
		for _, in := range escape.Hostile {
			t.Run(name+"/"+in, func(t *testing.T) {
				out := f(in)
				for _, bad := range live[name] {
					if strings.Contains(out, bad) {
						t.Errorf("%s(%q) = %q still holds %q", name, in, out, bad)
					}
				}
				if name == "markdown" {
					for i := 0; i < len(out); i++ {
						if c := out[i]; c < 0x80 && (unicode.IsPunct(rune(c)) || unicode.IsSymbol(rune(c))) && c != '\\' {
							if i == 0 || out[i-1] != '\\' {
								t.Errorf("markdown(%q) = %q: %q at %d is not escaped", in, out, c, i)
							}
						}
					}
				}
				for _, r := range out {
					if unicode.IsControl(r) || r == '\u202e' {
						t.Errorf("%s(%q) = %q holds control character %U", name, in, out, r)
					}
				}
			})
		}
	}
}

func TestEscapedTextReadsTheSame(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(string) string
		in   string
		want string // the text as a reader sees it: entities decoded, backslashes and ZWSP gone
	}{
		{"slack", escape.Slack, "<!channel> & <https://evil.example|Approve here>", "<!channel> & <https://evil.example|Approve here>"},
		{"slack bare domain", escape.Slack, "evil.example/approve", "evil.example/approve"},
		{"markdown", escape.Markdown, "@org/team ![x](https://e.example/p.png) *b* _i_ `c` #1 <b>", "@org/team ![x](https://e.example/p.png) *b* _i_ `c` #1 <b>"},
		{"adf", escape.ADF, "see https://evil.example", "see https://evil.example"},
		{"plain keeps text", escape.Plain, "prod (eu) <x>", "prod (eu) <x>"},
		{"newline becomes a space", escape.Plain, "a\nb\tc", "a b c"},
		{"control and bidi dropped", escape.Plain, "a\x00b\x1bc\u202ed\u200be", "abcde"},
		{"invalid utf-8", escape.Plain, "a\xffb", "a\ufffdb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.f(tc.in)
			read := strings.ReplaceAll(got, escape.ZWSP, "")
			read = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(read)
			if tc.f != nil && strings.Contains(tc.name, "markdown") {
				read = unbackslash(read)
			}
			if read != tc.want {
				t.Fatalf("got %q, which reads %q; want it to read %q", got, read, tc.want)
			}
		})
	}
}

func unbackslash(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestSlackBreaksBareDomainsAndURLs(t *testing.T) {
	for in, want := range map[string]string{
		"evil.example/approve":  "evil." + escape.ZWSP + "example/approve",
		"https://x":             "https:" + escape.ZWSP + "//x",
		"bob@corp":              "bob@" + escape.ZWSP + "corp",
		"203.0.113.7":           "203.0.113.7", // an IP stays as it is (dots before digits)
		"aws-cli/2.15.0 Python": "aws-cli/2.15.0 Python",
	} {
		if got := escape.Slack(in); got != want {
			t.Errorf("Slack(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPagerDutySummaryIsBounded(t *testing.T) {
	long := strings.Repeat("é", 2000)
	if got := []rune(escape.PagerDuty(long, 0)); len(got) != escape.PagerDutySummaryMax {
		t.Fatalf("summary of %d runes, want %d", len(got), escape.PagerDutySummaryMax)
	}
	if got := escape.PagerDuty("abcdefghij", 8); got != "abcde..." {
		t.Fatalf("bounded summary %q", got)
	}
}
