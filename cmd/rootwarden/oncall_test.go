package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/slackfake"
)

// TestRoutingMistakesStopStartUpNamingTheRule runs the notifier as an operator would,
// with a routing rule whose channel the bot cannot use.
func TestRoutingMistakesStopStartUpNamingTheRule(t *testing.T) {
	const token = "xoxb-route-test"
	sl := slackfake.New(slackfake.WithChannel("C0DEFAULT", "sec"), slackfake.WithChannel("C0PAY", "pay"), slackfake.WithBotToken(token))
	url := sl.Start()
	t.Cleanup(sl.Close)
	sl.SetMember("C0PAY", false)
	for _, tc := range []struct{ name, routes, want string }{
		{"bot not in the routed channel", "account:111122223333=C0DEFAULT; ou:Root/Prod=C0PAY", "ROOTWARDEN_SLACK_ROUTES: rule 2 (ou:Root/Prod=C0PAY): not_in_channel"},
		{"routed channel missing", "tag:team=payments=C0NOPE", "ROOTWARDEN_SLACK_ROUTES: rule 1 (tag:team=payments=C0NOPE): channel_not_found"},
		{"channel name in a rule", "ou:Root/Prod=#payments", "ROOTWARDEN_SLACK_ROUTES: rule 1"},
		{"PagerDuty token without schedules", "", "ROOTWARDEN_PAGERDUTY_SCHEDULES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"SLACK_BOT_TOKEN": token, "SLACK_SIGNING_SECRET": "s", "ROOTWARDEN_SLACK_CHANNEL": "C0DEFAULT",
				"ROOTWARDEN_SLACK_API_URL": url, "ROOTWARDEN_HTTP_ADDR": "127.0.0.1:0", "ROOTWARDEN_NATS_URL": "",
				"ROOTWARDEN_CONFIG": "", "ROOTWARDEN_SLACK_ROUTES": tc.routes, "ROOTWARDEN_PAGERDUTY_TOKEN": "",
				"ROOTWARDEN_DATA_DIR": t.TempDir()}
			if tc.routes == "" {
				env["ROOTWARDEN_PAGERDUTY_TOKEN"] = "u+secret-pd-token"
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code := dispatch(ctx, []string{"notifier"}, io.Discard, &stderr)
			out := strings.TrimSpace(stderr.String())
			lines := strings.Split(out, "\n")
			last := lines[len(lines)-1] // log lines come first; the error is the last line
			if code != 2 || !strings.HasPrefix(last, "rootwarden: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("exit %d, stderr %q: want exit 2 and a last line with %q", code, out, tc.want)
			}
			if strings.Contains(out, "secret-pd-token") {
				t.Fatal("the PagerDuty token is in the error")
			}
		})
	}
}
