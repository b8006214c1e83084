package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ScanInterval != 15*time.Minute || c.RemindAfter != 30*time.Minute || c.SLA != 24*time.Hour ||
		c.Tracker != "builtin" || c.HTTPAddr != ":8080" || c.MaxRiskAcceptance != 90*24*time.Hour {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if err := c.Validate(RoleDetector, RoleRemediator); err != nil {
		t.Errorf("defaults must be valid for detector and remediator: %v", err)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		role Role
		want string
	}{
		{"bad duration", map[string]string{"ROOTWARDEN_SCAN_INTERVAL": "soon"}, RoleDetector, "ROOTWARDEN_SCAN_INTERVAL"},
		{"too short interval", map[string]string{"ROOTWARDEN_SCAN_INTERVAL": "5s"}, RoleDetector, "ROOTWARDEN_SCAN_INTERVAL"},
		{"malformed queue url", map[string]string{"ROOTWARDEN_SQS_QUEUE_URL": "rootwarden-events"}, RoleDetector, "ROOTWARDEN_SQS_QUEUE_URL"},
		{"queue url without path", map[string]string{"ROOTWARDEN_SQS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/"}, RoleDetector, "ROOTWARDEN_SQS_QUEUE_URL"},
		{"bad nats url", map[string]string{"ROOTWARDEN_NATS_URL": "::nope"}, RoleDetector, "ROOTWARDEN_NATS_URL"},
		{"missing bot token", map[string]string{"ROOTWARDEN_SLACK_CHANNEL": "C1", "SLACK_SIGNING_SECRET": "s"}, RoleNotifier, "SLACK_BOT_TOKEN"},
		{"missing channel", map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, RoleNotifier, "ROOTWARDEN_SLACK_CHANNEL"},
		{"no signing secret nor app token", map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "ROOTWARDEN_SLACK_CHANNEL": "C1"}, RoleNotifier, "SLACK_SIGNING_SECRET"},
		{"bad approver", map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "ROOTWARDEN_SLACK_CHANNEL": "C1", "SLACK_SIGNING_SECRET": "s", "ROOTWARDEN_APPROVERS": "alice"}, RoleNotifier, "ROOTWARDEN_APPROVERS"},
		{"jira incomplete", map[string]string{"ROOTWARDEN_TRACKER": "jira", "ROOTWARDEN_JIRA_URL": "https://x.atlassian.net"}, RoleRemediator, "ROOTWARDEN_JIRA_TOKEN"},
		{"unknown tracker", map[string]string{"ROOTWARDEN_TRACKER": "trello"}, RoleRemediator, "ROOTWARDEN_TRACKER"},
		{"bad bool", map[string]string{"ROOTWARDEN_ASSUME_ROOT": "maybe"}, RoleRemediator, "ROOTWARDEN_ASSUME_ROOT"},
		{"embedded listen address not host:port", map[string]string{"ROOTWARDEN_NATS_LISTEN": "4222"}, RoleDetector, "ROOTWARDEN_NATS_LISTEN"},
		{"embedded server open to the network", map[string]string{"ROOTWARDEN_NATS_LISTEN": "0.0.0.0:4222"}, RoleDetector, "ROOTWARDEN_NATS_LISTEN"},
		{"embedded server on a public name", map[string]string{"ROOTWARDEN_NATS_LISTEN": "nats.example.com:4222"}, RoleRemediator, "ROOTWARDEN_NATS_LISTEN"},
		{"embedded listen port not a number", map[string]string{"ROOTWARDEN_NATS_LISTEN": "127.0.0.1:nats"}, RoleNotifier, "ROOTWARDEN_NATS_LISTEN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if err == nil {
				err = c.Validate(tc.role)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not name %s", err, tc.want)
			}
		})
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	c, err := Load(env(map[string]string{"SLACK_BOT_TOKEN": "xoxb-very-secret", "SLACK_APP_TOKEN": "bad-secret-token",
		"ROOTWARDEN_SLACK_CHANNEL": "C1", "ROOTWARDEN_NATS_URL": "nats://user:hunter2@:x"}))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(RoleNotifier)
	if err == nil {
		t.Fatal("want an error for the app token")
	}
	for _, s := range []string{"xoxb-very-secret", "bad-secret-token", "hunter2"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error leaks %q: %v", s, err)
		}
	}
}

func TestYAMLFileAddsAndEnvironmentWins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rootwarden.yaml")
	yml := "slack_channel: C-from-file\nscan_interval: 30m\napprovers: [U1, S2]\nROOTWARDEN_TRACKER: github\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"ROOTWARDEN_CONFIG": path, "ROOTWARDEN_SCAN_INTERVAL": "1h"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SlackChannel != "C-from-file" || c.ScanInterval != time.Hour || c.Tracker != "github" ||
		strings.Join(c.Approvers, ",") != "U1,S2" {
		t.Errorf("got %+v", c)
	}
}

// A YAML file with a syntax error is reported by line and column only: the parser's
// own message quotes the offending source lines, which would put a token kept in the
// file into the start-up log.
func TestYAMLSyntaxErrorDoesNotQuoteTheFile(t *testing.T) {
	for name, yml := range map[string]string{
		"bad indentation":      "slack_channel: C1\nSLACK_BOT_TOKEN: xoxb-very-secret\n  bad: [\n",
		"unterminated quote":   "slack_signing_secret: \"signing-very-secret\n",
		"not a mapping":        "- xoxb-very-secret\n",
		"tab after the secret": "slack_app_token: xapp-very-secret\n\tx: 1\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rootwarden.yaml")
			if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(env(map[string]string{"ROOTWARDEN_CONFIG": path}))
			if err == nil {
				t.Fatal("want an error for the malformed file")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "ROOTWARDEN_CONFIG: ") || strings.Contains(msg, "\n") {
				t.Errorf("error is not one line naming ROOTWARDEN_CONFIG: %q", msg)
			}
			if strings.Contains(msg, "very-secret") {
				t.Errorf("error quotes the file's contents: %q", msg)
			}
		})
	}
}

// The embedded server has no authentication: whoever reaches it can publish actions
// (approve, accept a risk) past every Slack check. Loopback addresses are fine.
func TestEmbeddedNATSListensOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:4222", "localhost:0", "[::1]:4222", ":4222", "127.0.0.2:14222"} {
		c, err := Load(env(map[string]string{"ROOTWARDEN_NATS_LISTEN": addr}))
		if err == nil {
			err = c.Validate(RoleDetector)
		}
		if err != nil {
			t.Errorf("ROOTWARDEN_NATS_LISTEN=%s: %v", addr, err)
		}
	}
}

// A misspelt key in the YAML file is an error naming it, not a setting silently
// left at its default (a scan interval of 15m instead of the 5m asked for).
func TestYAMLUnknownKeyIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rootwarden.yaml")
	if err := os.WriteFile(path, []byte("slack_channel: C1\nscan_intervall: 5m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(env(map[string]string{"ROOTWARDEN_CONFIG": path}))
	if err == nil || !strings.Contains(err.Error(), "ROOTWARDEN_CONFIG") || !strings.Contains(err.Error(), "scan_intervall") {
		t.Fatalf("Load = %v, want an error naming ROOTWARDEN_CONFIG and the unknown key", err)
	}
}
