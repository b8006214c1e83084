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
		{"Security Hub in without the events queue", map[string]string{"ROOTWARDEN_SECURITYHUB": "both"}, RoleDetector, "ROOTWARDEN_SQS_QUEUE_URL"},
		{"unknown Security Hub mode", map[string]string{"ROOTWARDEN_SECURITYHUB": "yes"}, RoleRemediator, "ROOTWARDEN_SECURITYHUB"},
		{"case URL without the case id", map[string]string{"ROOTWARDEN_CASE_URL": "https://rw.example.com/cases"}, RoleRemediator, "ROOTWARDEN_CASE_URL"},
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

// A YAML value is the text the file holds, not the number a YAML parser makes of it:
// an external id 0042 stays "0042" (not the octal 34), 1e3 stays "1e3", 0x1F stays
// "0x1F", in lists too.
func TestYAMLValuesKeepTheirText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rootwarden.yaml")
	yml := "org_external_id: 0042\norg_role_name: 1e3\napprovers: [U0AAAAAAA, 0x1F]\njira_project: 007\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"ROOTWARDEN_CONFIG": path}))
	if err != nil {
		t.Fatal(err)
	}
	if c.OrgExternalID != "0042" || c.OrgRoleName != "1e3" || c.JiraProject != "007" ||
		strings.Join(c.Approvers, ",") != "U0AAAAAAA,0x1F" {
		t.Errorf("external id %q, role %q, project %q, approvers %q", c.OrgExternalID, c.OrgRoleName, c.JiraProject, c.Approvers)
	}
}

// Slack identities are checked at start, and each refusal says how to find the id.
func TestSlackIdentityMistakesSayTheFix(t *testing.T) {
	base := map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "ROOTWARDEN_SLACK_CHANNEL": "C0123456789", "SLACK_SIGNING_SECRET": "s"}
	for _, tc := range []struct {
		name, key, value, want string
	}{
		{"channel given by name", "ROOTWARDEN_SLACK_CHANNEL", "#security-oncall", "not the name"},
		{"channel name without #", "ROOTWARDEN_SLACK_CHANNEL", "security-oncall", "About tab"},
		{"approvers split by semicolons", "ROOTWARDEN_APPROVERS", "U0AAAAAAA;U0BBBBBBB", "not semicolons"},
		{"approver email", "ROOTWARDEN_APPROVERS", "Sam.Smith@example.com", "email"},
		{"approver handle", "ROOTWARDEN_APPROVERS", "@alice", "handle"},
		{"approver mention", "ROOTWARDEN_APPROVERS", "<@U0AAAAAAA>", "bare id"},
		{"approver first name", "ROOTWARDEN_APPROVERS", "Ursula", "Copy member ID"},
		{"approver lower-case id", "ROOTWARDEN_APPROVERS", "u0aaaaaaa", "upper-case"},
		{"user token", "SLACK_BOT_TOKEN", "xoxp-123-456", "user token"},
		{"app token as bot token", "SLACK_BOT_TOKEN", "xapp-1-A1", "SLACK_APP_TOKEN"},
		{"Slack API URL without scheme", "ROOTWARDEN_SLACK_API_URL", "localhost:9999", "/api/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range base {
				m[k] = v
			}
			m[tc.key] = tc.value
			c, err := Load(env(m))
			if err == nil {
				err = c.Validate(RoleNotifier)
			}
			if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v: want it to name %s and say %q", err, tc.key, tc.want)
			}
			if strings.HasPrefix(tc.value, "xox") && strings.Contains(err.Error(), tc.value) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
	t.Run("ids of users, enterprise users and groups pass", func(t *testing.T) {
		m := map[string]string{"ROOTWARDEN_APPROVERS": "U0AAAAAAA, W0BBBBBBB\nS0CCCCCCC"}
		for k, v := range base {
			m[k] = v
		}
		c, err := Load(env(m))
		if err == nil {
			err = c.Validate(RoleNotifier)
		}
		if err != nil || len(c.Approvers) != 3 {
			t.Fatalf("approvers %q: %v", c.Approvers, err)
		}
	})
}

// Every secret can come from a file (a mounted Kubernetes Secret, a systemd
// credential); giving both the variable and its _FILE is refused, naming both.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m := map[string]string{
		"SLACK_BOT_TOKEN_FILE":                  write("bot", "xoxb-from-file\n"),
		"SLACK_SIGNING_SECRET_FILE":             write("sign", "signing-from-file"),
		"SLACK_APP_TOKEN_FILE":                  write("app", "xapp-from-file\n"),
		"ROOTWARDEN_API_TOKEN_FILE":             write("api", "api-from-file\n"),
		"ROOTWARDEN_JIRA_TOKEN_FILE":            write("jira", "jira-from-file"),
		"ROOTWARDEN_GITHUB_TOKEN_FILE":          write("gh", "gh-from-file"),
		"ROOTWARDEN_PAGERDUTY_TOKEN_FILE":       write("pd", "pd-from-file\n"),
		"ROOTWARDEN_PAGERDUTY_SCHEDULES":        "PABC123",
		"ROOTWARDEN_PAGERDUTY_ROUTING_KEY_FILE": write("pdkey", "pdkey-from-file"),
	}
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.SlackBotToken != "xoxb-from-file" || c.SlackSigningSecret != "signing-from-file" || c.SlackAppToken != "xapp-from-file" ||
		c.APIToken != "api-from-file" || c.JiraToken != "jira-from-file" || c.GitHubToken != "gh-from-file" ||
		c.OnCall.PagerDutyToken != "pd-from-file" || c.OnCall.PagerDutyRoutingKey != "pdkey-from-file" {
		t.Errorf("got %+v", c)
	}
	t.Run("both set", func(t *testing.T) {
		_, err := Load(env(map[string]string{"SLACK_BOT_TOKEN": "xoxb-env-secret", "SLACK_BOT_TOKEN_FILE": m["SLACK_BOT_TOKEN_FILE"]}))
		if err == nil || !strings.Contains(err.Error(), "SLACK_BOT_TOKEN and SLACK_BOT_TOKEN_FILE") || strings.Contains(err.Error(), "secret") {
			t.Fatalf("error %v: want one naming both variables and no value", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := Load(env(map[string]string{"ROOTWARDEN_API_TOKEN_FILE": filepath.Join(dir, "nope")}))
		if err == nil || !strings.Contains(err.Error(), "ROOTWARDEN_API_TOKEN_FILE") {
			t.Fatalf("error %v: want one naming ROOTWARDEN_API_TOKEN_FILE", err)
		}
	})
}

// ROOTWARDEN_MAX_REMINDERS=0 means no reminders and must not read as "unset"
// (which means the default, 3).
func TestMaxRemindersZeroIsKept(t *testing.T) {
	c, err := Load(env(map[string]string{"ROOTWARDEN_MAX_REMINDERS": "0"}))
	if err != nil || c.MaxReminders != 0 {
		t.Fatalf("MAX_REMINDERS=0: %d, %v", c.MaxReminders, err)
	}
	c, err = Load(env(nil))
	if err != nil || c.MaxReminders != 3 {
		t.Fatalf("unset: %d, %v; want the default 3", c.MaxReminders, err)
	}
}

func TestMisspeltVariablesAreNamedWithTheClosestOne(t *testing.T) {
	got := UnknownVariables([]string{"ROOTWARDEN_APPROVER=U1", "ROOTWARDEN_SLACK_CHANEL=C1", "ROOTWARDEN_SLACK_CHANNEL=C1",
		"HOME=/root", "ROOTWARDEN_ZZZZZZZZZZZZZZZZZZZZZZ=1", "SLACK_BOT_TOKEN_FILE=/x", "SLACK_BOT_TOKN=x", "SLACK_WEBHOOK_URL=x"})
	want := []string{
		"ROOTWARDEN_APPROVER is not a rootwarden variable and is ignored (did you mean ROOTWARDEN_APPROVERS?)",
		"ROOTWARDEN_SLACK_CHANEL is not a rootwarden variable and is ignored (did you mean ROOTWARDEN_SLACK_CHANNEL?)",
		"ROOTWARDEN_ZZZZZZZZZZZZZZZZZZZZZZ is not a rootwarden variable and is ignored",
		"SLACK_BOT_TOKN is not a rootwarden variable and is ignored (did you mean SLACK_BOT_TOKEN?)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestYAMLMistakesSayWhatIsWrong(t *testing.T) {
	for name, tc := range map[string]struct{ yml, want string }{
		"a tab":           {"slack_channel: C1\n\tscan_interval: 5m\n", "indented with a tab"},
		"nested settings": {"slack:\n  channel: C1\n", "flat"},
		"misspelt key":    {"slack_chanel: C1\n", "slack_chanel (did you mean slack_channel?)"},
		"misspelt name":   {"ROOTWARDEN_SLACK_CHANEL: C1\n", "(did you mean ROOTWARDEN_SLACK_CHANNEL?)"},
		"bad value":       {"scan_interval: 15\n", "ROOTWARDEN_SCAN_INTERVAL (from "},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rootwarden.yaml")
			if err := os.WriteFile(path, []byte(tc.yml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(env(map[string]string{"ROOTWARDEN_CONFIG": path}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
}
