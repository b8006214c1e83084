package config

// A native fuzz target for the YAML configuration file (ROOTWARDEN_CONFIG).
//   go test -run '^$' -fuzz '^FuzzLoadYAML$' -fuzztime 30s ./internal/config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func FuzzLoadYAML(f *testing.F) {
	for _, s := range []string{
		"slack_channel: C0123456789\nslack_bot_token: xoxb-1-2-3\nscan_interval: 15m\napprovers:\n  - U0ALICE\n  - S0ONCALL\n",
		"ROOTWARDEN_SLACK_CHANNEL: C1\nSLACK_SIGNING_SECRET: s3cr3t\nROOTWARDEN_TRACKER: github\ngithub_repo: acme/security\ngithub_token: ghp_x\n",
		"org_role_name: OrganizationAccountAccessRole\norg_external_id: \"0042\"\nscan_concurrency: 8\naccount_timeout: 90s\n",
		"max_reminders: 0\nremind_after: 30m\nsla: 24h\nmax_risk_acceptance: 2160h\nassume_root: true\n",
		"nats_url: nats://a:4222,nats://b:4222\nnats_replicas: 3\nlog_level: debug\nlog_format: json\n",
		"tracker: jira\njira_url: https://acme.atlassian.net\njira_email: a@b.c\njira_token: t\njira_project: SEC\n",
		"scan_interval: often\n", "colour: blue\n", "slack_channel: [a, b]\n", "approvers: {a: 1}\n",
		"- a\n- b\n", "a: b: c\n", "slack_bot_token: xoxb-1\n  bad: indent\n", ": :\n", "~\n", "", "\t", "&a [*a]\n",
		"scan_interval: 1e3\nnats_replicas: 0x10\nscan_concurrency: -1\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "rootwarden.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{"ROOTWARDEN_CONFIG": path}
		getenv := func(k string) string { return vars[k] }
		c, err := Load(getenv)
		if err != nil {
			if !reflect.DeepEqual(c, Config{}) {
				t.Fatalf("error %v with a partial configuration %+v", err, c)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.Contains(line, "ROOTWARDEN_") && !strings.Contains(line, "SLACK_") {
					t.Fatalf("error line names no variable: %q", line)
				}
			}
			return
		}
		for _, r := range []Role{RoleDetector, RoleRemediator, RoleNotifier} {
			_ = c.Validate(r) // must not panic
		}
		// The environment wins over the file, for every value the file may hold.
		vars["ROOTWARDEN_SLACK_CHANNEL"] = "C0FROMENV"
		vars["ROOTWARDEN_SCAN_INTERVAL"] = "42m"
		c2, err := Load(getenv)
		if err != nil {
			t.Fatalf("file loads alone but not with valid environment overrides: %v", err)
		}
		if c2.SlackChannel != "C0FROMENV" || c2.ScanInterval.String() != "42m0s" {
			t.Fatalf("the file won over the environment: channel %q, interval %s", c2.SlackChannel, c2.ScanInterval)
		}
		c2.SlackChannel, c2.ScanInterval = c.SlackChannel, c.ScanInterval
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("overriding two variables changed others:\n%+v\n%+v", c, c2)
		}
	})
}
