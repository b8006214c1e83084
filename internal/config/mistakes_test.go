package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// D10: a _FILE naming no file is what a key missing from a mounted Kubernetes Secret
// looks like; the error says so, and how to fix either side.
func TestMissingSecretFileSaysWhatToDo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jira-token")
	_, err := Load(env(map[string]string{"ROOTWARDEN_JIRA_TOKEN_FILE": path}))
	if err == nil {
		t.Fatal("a missing secret file was accepted")
	}
	for _, want := range []string{"ROOTWARDEN_JIRA_TOKEN_FILE", path, "a key missing from the mounted Secret?",
		"remove it from the chart's secrets.keys", "or unset ROOTWARDEN_JIRA_TOKEN_FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// D11: a misspelt variable whose real one is unset stops start-up (nobody can approve
// while the process looks healthy); when the real one is set, it stays a warning.
func TestMisspeltVariableWhoseRealOneIsUnsetIsAnError(t *testing.T) {
	check := func(environ ...string) ([]string, error) {
		m := map[string]string{}
		for _, kv := range environ {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		c, err := Load(env(m))
		if err != nil {
			t.Fatal(err)
		}
		return c.CheckEnviron(environ, env(m))
	}
	_, err := check("ROOTWARDEN_APPROVER=U0AAAAAAA", "ROOTWARDEN_SLACK_CHANNEL=C0123456789")
	if err == nil || err.Error() != "ROOTWARDEN_APPROVER is not a variable; did you mean ROOTWARDEN_APPROVERS (which is unset)?" {
		t.Errorf("error %v", err)
	}
	warn, err := check("ROOTWARDEN_APPROVER=U0AAAAAAA", "ROOTWARDEN_APPROVERS=U0BBBBBBB")
	if err != nil || len(warn) != 1 || !strings.Contains(warn[0], "did you mean ROOTWARDEN_APPROVERS?") {
		t.Errorf("near name set: warnings %q, error %v; want a warning only", warn, err)
	}
	t.Run("a duration left at its default is unset", func(t *testing.T) {
		_, err := check("ROOTWARDEN_SCAN_INTERVALL=5m")
		if err == nil || !strings.Contains(err.Error(), "did you mean ROOTWARDEN_SCAN_INTERVAL (which is unset)?") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("a secret given through its file is set", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bot")
		writeFile(t, path, "xoxb-1")
		warn, err := check("SLACK_BOT_TOKN=xoxb-2", "SLACK_BOT_TOKEN_FILE="+path)
		if err != nil || len(warn) != 1 {
			t.Errorf("warnings %q, error %v", warn, err)
		}
	})
	t.Run("a Slack near miss of an unset secret", func(t *testing.T) {
		_, err := check("SLACK_BOT_TOKN=xoxb-2")
		if err == nil || !strings.Contains(err.Error(), "SLACK_BOT_TOKN is not a variable; did you mean SLACK_BOT_TOKEN (which is unset)?") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("nothing near is a warning", func(t *testing.T) {
		warn, err := check("ROOTWARDEN_ZZZZZZZZZZZZZZZZZZZZZZ=1", "SLACK_WEBHOOK_URL=x", "HOME=/root")
		if err != nil || len(warn) != 1 {
			t.Errorf("warnings %q, error %v", warn, err)
		}
	})
	t.Run("the test suite's own variables are no mistake", func(t *testing.T) {
		warn, err := check("ROOTWARDEN_BENCH_ACCOUNTS=300", "ROOTWARDEN_SOAK_SWEEPS=3", "ROOTWARDEN_CHAOS_KILLS=2", "ROOTWARDEN_FUZZTIME=10s")
		if err != nil || len(warn) != 0 {
			t.Errorf("warnings %q, error %v", warn, err)
		}
	})
	t.Run("every mistake, one line each", func(t *testing.T) {
		_, err := check("ROOTWARDEN_APPROVER=U0AAAAAAA", "ROOTWARDEN_SLACK_CHANEL=C0123456789")
		if err == nil || strings.Count(err.Error(), "\n") != 1 {
			t.Errorf("error %q: want two lines", err)
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
