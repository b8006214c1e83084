package notifier_test

// The README's picture of a case: the Block Kit JSON the notifier posts for a case
// (through its own block builder, to the Slack fake, as to Slack), drawn as HTML styled
// like Slack and photographed by headless Chromium. No Slack workspace is involved, so
// the picture says it is a mock rendering. Off by default:
//
//	ROOTWARDEN_DOCS_IMAGE=1 go test ./notifier -run TestCaseMessagePicture -v
//
// writes docs/img/case-message.json (the blocks as posted) and docs/img/case-message.png
// (needs chromium on PATH, or ROOTWARDEN_CHROMIUM; and an emoji font such as
// fonts-noto-color-emoji).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/remediator"
)

func TestCaseMessagePicture(t *testing.T) {
	if os.Getenv("ROOTWARDEN_DOCS_IMAGE") == "" {
		t.Skip("set ROOTWARDEN_DOCS_IMAGE=1 to regenerate docs/img/case-message.png")
	}
	o := newOnCallEnv(t, false, nil)
	o.run()

	// A critical case as a CloudTrail event opens it: a root key used from the CLI.
	now := o.clock.Now()
	c := baseCase(remediator.CaseID(account, 1, now), now)
	c.AccountName, c.OUPath = "payments-prod", "Root/Prod/Payments"
	c.Tags = map[string]string{"owner": "pat@example.com"}
	used := now.Add(-3 * time.Minute)
	c.Keys[0].LastUsedAt, c.Keys[0].LastUsedRegion, c.Keys[0].LastUsedService = &used, "eu-west-1", "s3"
	c.Event.EventTime, c.Event.EventName = used, "ListBuckets"
	c.Event.Calls, c.Event.EventNames, c.Event.SourceIPs = 3, []string{"ListBuckets", "GetObject"}, []string{"203.0.113.7"}
	c.LastCheckedAt = now
	o.publish(c, model.EventOpened, "", model.System, "root access key used: ListBuckets")
	o.rendered(c.ID, 1)
	msgs := o.fake.Messages(channelID)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	var blocks []map[string]any
	if err := json.Unmarshal(msgs[0].RawBlocks, &blocks); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join("..", "docs", "img")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pretty, _ := json.MarshalIndent(map[string]any{"text": msgs[0].Text, "blocks": blocks}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "case-message.json"), append(pretty, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	users := map[string]string{ownerUser: "pat", approverUser: "alice", todayUser: "bob"}
	page := filepath.Join(t.TempDir(), "case-message.html")
	if err := os.WriteFile(page, []byte(slackPage(blocks, users, now)), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "shot.png")
	chromium := os.Getenv("ROOTWARDEN_CHROMIUM")
	if chromium == "" {
		chromium = "chromium"
	}
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--force-device-scale-factor=2", "--window-size=860,1400", "--screenshot="+shot, "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", chromium, err, out)
	}
	if err := trimPNG(shot, filepath.Join(dir, "case-message.png")); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s and %s", filepath.Join(dir, "case-message.png"), filepath.Join(dir, "case-message.json"))
}

// trimPNG cuts the page's empty bottom (the window is taller than the message).
func trimPNG(in, out string) error {
	f, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	img, err := png.Decode(bytes.NewReader(f))
	if err != nil {
		return err
	}
	b := img.Bounds()
	bg := img.At(b.Min.X, b.Max.Y-1)
	last := b.Min.Y
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if img.At(x, y) != bg {
				last = y
				break
			}
		}
	}
	cut := image.Rect(b.Min.X, b.Min.Y, b.Max.X, min(b.Max.Y, last+24))
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return fmt.Errorf("cannot crop a %T", img)
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, sub.SubImage(cut)); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// The few emoji codes rootwarden's messages use.
var emoji = map[string]string{
	"red_circle": "🔴", "large_orange_circle": "🟠", "white_check_mark": "✅", "rotating_light": "🚨",
	"mag": "🔍", "bust_in_silhouette": "👤", "warning": "⚠️", "ticket": "🎫", "x": "❌",
	"pencil2": "✏️", "wastebasket": "🗑️", "no_entry": "⛔", "arrows_counterclockwise": "🔄",
}

var (
	slackToken = regexp.MustCompile(`<([^<>]+)>`)
	boldRE     = regexp.MustCompile(`\*([^*\n]+)\*`)
	italicRE   = regexp.MustCompile(`(^|\s)_([^_\n]+)_`)
	emojiRE    = regexp.MustCompile(`:([a-z0-9_+-]+):`)
)

func emojiHTML(t string) string {
	return emojiRE.ReplaceAllStringFunc(t, func(m string) string {
		if e, ok := emoji[strings.Trim(m, ":")]; ok {
			return `<span class="emoji">` + e + `</span>`
		}
		return m
	})
}

// mrkdwnHTML renders Slack mrkdwn (as rootwarden writes it, entities escaped) as HTML.
func mrkdwnHTML(s string, users map[string]string) string {
	unesc := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
	var lines []string
	for _, line := range strings.Split(s, "\n") {
		quote := strings.HasPrefix(line, ">")
		line = strings.TrimPrefix(line, ">")
		var b strings.Builder
		for i, part := range strings.Split(line, "`") {
			if i%2 == 1 {
				b.WriteString("<code>" + html.EscapeString(unesc.Replace(part)) + "</code>")
				continue
			}
			last := 0
			text := func(t string) string {
				t = html.EscapeString(unesc.Replace(t))
				t = boldRE.ReplaceAllString(t, "<b>$1</b>")
				return emojiHTML(italicRE.ReplaceAllString(t, "$1<i>$2</i>"))
			}
			for _, loc := range slackToken.FindAllStringSubmatchIndex(part, -1) {
				b.WriteString(text(part[last:loc[0]]))
				tok := part[loc[2]:loc[3]]
				switch {
				case strings.HasPrefix(tok, "@"):
					name := users[strings.TrimPrefix(tok, "@")]
					if name == "" {
						name = strings.TrimPrefix(tok, "@")
					}
					b.WriteString(`<span class="mention">@` + html.EscapeString(name) + `</span>`)
				case strings.HasPrefix(tok, "!subteam^"):
					b.WriteString(`<span class="mention">@oncall</span>`)
				default:
					url, label, ok := strings.Cut(tok, "|")
					if !ok {
						label = url
					}
					b.WriteString(`<a href="` + html.EscapeString(unesc.Replace(url)) + `">` + text(label) + `</a>`)
				}
				last = loc[1]
			}
			b.WriteString(text(part[last:]))
		}
		if quote {
			lines = append(lines, `<span class="quote">`+b.String()+`</span>`)
		} else {
			lines = append(lines, b.String())
		}
	}
	return strings.Join(lines, "<br>")
}

func textHTML(v any, users map[string]string) string {
	m, _ := v.(map[string]any)
	s, _ := m["text"].(string)
	if m["type"] == "plain_text" {
		if m["emoji"] == true {
			return emojiHTML(html.EscapeString(s))
		}
		return html.EscapeString(s)
	}
	return mrkdwnHTML(s, users)
}

// slackPage draws the blocks as Slack's desktop client shows a bot message.
func slackPage(blocks []map[string]any, users map[string]string, at time.Time) string {
	var b strings.Builder
	for _, blk := range blocks {
		switch blk["type"] {
		case "header":
			b.WriteString(`<div class="header">` + textHTML(blk["text"], users) + `</div>`)
		case "section":
			b.WriteString(`<div class="section">`)
			if blk["text"] != nil {
				b.WriteString(`<div>` + textHTML(blk["text"], users) + `</div>`)
			}
			if fields, ok := blk["fields"].([]any); ok {
				b.WriteString(`<div class="fields">`)
				for _, f := range fields {
					b.WriteString(`<div>` + textHTML(f, users) + `</div>`)
				}
				b.WriteString(`</div>`)
			}
			b.WriteString(`</div>`)
		case "context":
			b.WriteString(`<div class="context">`)
			els, _ := blk["elements"].([]any)
			for _, e := range els {
				b.WriteString(`<span>` + textHTML(e, users) + `</span>`)
			}
			b.WriteString(`</div>`)
		case "actions":
			b.WriteString(`<div class="actions">`)
			els, _ := blk["elements"].([]any)
			for _, e := range els {
				m, _ := e.(map[string]any)
				style, _ := m["style"].(string)
				b.WriteString(`<span class="button ` + html.EscapeString(style) + `">` + textHTML(m["text"], users) + `</span>`)
			}
			b.WriteString(`</div>`)
		}
	}
	return `<!doctype html><html><head><meta charset="utf-8"><style>
body { margin: 0; background: #fff; font-family: Lato, "Liberation Sans", "DejaVu Sans", Arial, sans-serif, "Noto Color Emoji";
  font-size: 15px; line-height: 1.47; color: #1d1c1d; -webkit-font-smoothing: antialiased; }
.label { background: #fff4d6; color: #5c4a00; font-size: 12.5px; padding: 7px 20px; border-bottom: 1px solid #ecd9a0; }
.channel { font-weight: 900; font-size: 17px; padding: 10px 20px; border-bottom: 1px solid #e8e8e8; }
.channel span { color: #616061; font-weight: 400; font-size: 13px; margin-left: 8px; }
.msg { display: flex; padding: 14px 20px 10px; }
.avatar { width: 36px; height: 36px; border-radius: 6px; background: #8b1a1a; color: #fff; font-weight: 900;
  font-size: 19px; display: flex; align-items: center; justify-content: center; margin-right: 9px; flex: none; }
.body { flex: 1; min-width: 0; }
.who { font-weight: 900; }
.app { background: #e8e8e8; color: #616061; font-size: 10px; font-weight: 700; padding: 1px 3px; border-radius: 2px; margin: 0 4px; vertical-align: 2px; }
.time { color: #616061; font-size: 12px; }
.header { font-weight: 900; font-size: 18px; margin: 4px 0 6px; }
.section { margin: 6px 0; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 6px 16px; margin-top: 6px; max-width: 560px; }
.context { color: #616061; font-size: 12.5px; margin: 6px 0; }
.context span + span::before { content: " "; }
.actions { margin: 10px 0 6px; display: flex; gap: 8px; flex-wrap: wrap; }
.button { border: 1px solid #bbbabb; border-radius: 4px; padding: 3px 12px; font-weight: 700; font-size: 14px; height: 26px;
  display: inline-flex; align-items: center; background: #fff; }
.button.primary { background: #007a5a; border-color: #007a5a; color: #fff; }
.button.danger { color: #e01e5a; }
a { color: #1264a3; text-decoration: none; }
code { font-family: Monaco, "DejaVu Sans Mono", monospace; font-size: 12px; color: #c01343; background: #f6f6f6;
  border: 1px solid #e0e0e0; border-radius: 3px; padding: 1px 3px; }
.mention { color: #1264a3; background: #e8f5fa; border-radius: 3px; padding: 0 2px; }
.quote { display: inline-block; border-left: 4px solid #dddddd; padding-left: 10px; }
.emoji { font-family: "Noto Color Emoji"; font-size: 0.95em; }
.replies { color: #1264a3; font-size: 13px; font-weight: 700; margin-top: 4px; }
</style></head><body>
<div class="label">Mock rendering of the Block Kit JSON rootwarden posts for a case (notifier/blocks.go), drawn in HTML: not a screenshot of Slack.</div>
<div class="channel"># security-oncall<span>on-call for AWS root access keys</span></div>
<div class="msg"><div class="avatar">r</div><div class="body">
<div><span class="who">rootwarden</span><span class="app">APP</span><span class="time">` + at.UTC().Format("15:04") + `</span></div>
` + b.String() + `
</div></div></body></html>`
}
