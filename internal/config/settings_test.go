package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every row of the settings table is complete and readable: a default parses as the
// variable would, names, YAML keys and flags are unique, secrets have no flag.
func TestSettingsTable(t *testing.T) {
	names, keys, flags := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		t.Run(s.Name, func(t *testing.T) {
			if names[s.Name] {
				t.Fatal("listed twice")
			}
			names[s.Name] = true
			if !strings.HasPrefix(s.Name, "ROOTWARDEN_") && !strings.HasPrefix(s.Name, "SLACK_") {
				t.Error("not a ROOTWARDEN_ or SLACK_ variable")
			}
			if s.Doc == "" || !strings.HasSuffix(s.Doc, ".") || !contains(groups, s.Group) {
				t.Errorf("doc %q, group %q: want a sentence and a known group", s.Doc, s.Group)
			}
			if (s.field == nil) != (s.Kind == KindCustom) {
				t.Error("a field exactly when the kind is not Custom")
			}
			if k := s.YAMLKey(); k != "" {
				if keys[k] {
					t.Errorf("YAML key %s twice", k)
				}
				keys[k] = true
			}
			if s.Flag != "" {
				if flags[s.Flag] || s.Commands == "" {
					t.Errorf("flag --%s twice, or without commands", s.Flag)
				}
				flags[s.Flag] = true
			}
			if s.Kind == KindSecret && s.Flag != "" {
				t.Error("a secret has no flag: it would show in ps and shell history")
			}
			if s.Default != "" {
				r := reader{known: map[string]bool{}, fromFile: map[string]bool{}, get: func(k string) string {
					if k == s.Name {
						return s.Default
					}
					return ""
				}}
				var c Config
				s.read(&r, &c)
				if len(r.errs) > 0 {
					t.Errorf("default %q does not parse: %v", s.Default, r.errs)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// docs/configuration.md is generated from the table; CI fails when it is stale.
func TestReferenceIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", ReferencePath)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run go generate ./internal/config", err)
	}
	if !bytes.Equal(got, Reference()) {
		t.Fatalf("%s is not what the settings table says: run go generate ./internal/config", ReferencePath)
	}
	for _, v := range Variables() {
		if !bytes.Contains(got, []byte("`"+v+"`")) {
			t.Errorf("%s does not name %s", ReferencePath, v)
		}
	}
}

// Config's String and GoString name the settings that are set and never a secret.
func TestConfigStringRedactsSecrets(t *testing.T) {
	c, err := Load(env(map[string]string{"SLACK_BOT_TOKEN": "xoxb-very-secret", "ROOTWARDEN_JIRA_TOKEN": "jira-very-secret",
		"ROOTWARDEN_SLACK_CHANNEL": "C0123456789"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, "very-secret") || !strings.Contains(s, "SLACK_BOT_TOKEN=(set)") || !strings.Contains(s, `ROOTWARDEN_SLACK_CHANNEL="C0123456789"`) {
			t.Errorf("got %s", s)
		}
	}
}

// The Jira settings of an enterprise project: a custom issue type, required custom
// fields as JSON, closure names with spaces in them.
func TestJiraProjectSettings(t *testing.T) {
	base := map[string]string{"ROOTWARDEN_TRACKER": "jira", "ROOTWARDEN_JIRA_URL": "https://x.atlassian.net", "ROOTWARDEN_JIRA_EMAIL": "a@b.c",
		"ROOTWARDEN_JIRA_TOKEN": "t", "ROOTWARDEN_JIRA_PROJECT": "SEC"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	c, err := Load(env(with()))
	if err != nil || c.JiraIssueType != "Task" || c.JiraExtraFields != nil || c.JiraWontDo != nil {
		t.Fatalf("defaults: %v %+v", err, c)
	}
	c, err = Load(env(with("ROOTWARDEN_JIRA_ISSUE_TYPE", "Security Finding",
		"ROOTWARDEN_JIRA_EXTRA_FIELDS", `{"customfield_10010": {"value": "Security"}, "components": [{"name": "AWS"}]}`,
		"ROOTWARDEN_JIRA_WONT_DO_RESOLUTIONS", "Won't Do, Duplicate\nCannot Reproduce", "ROOTWARDEN_JIRA_DONE_STATUSES", "Done,Closed")))
	if err == nil {
		err = c.Validate(RoleRemediator)
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.JiraIssueType != "Security Finding" || len(c.JiraExtraFields) != 2 ||
		strings.Join(c.JiraWontDo, "|") != "Won't Do|Duplicate|Cannot Reproduce" || strings.Join(c.JiraDoneStatuses, "|") != "Done|Closed" {
		t.Errorf("got %+v", c)
	}
	for name, tc := range map[string]struct{ value, want string }{
		"not JSON":             {`{customfield_10010: "x"}`, "not a JSON object: invalid character"},
		"an array":             {`[{"name": "AWS"}]`, "it is a JSON array"},
		"two objects":          {`{"a": 1} {"b": 2}`, "not one JSON object"},
		"a field of its own":   {`{"labels": ["x"]}`, "ROOTWARDEN_JIRA_LABELS"},
		"the issue type":       {`{"issuetype": {"name": "Bug"}}`, "ROOTWARDEN_JIRA_ISSUE_TYPE"},
		"a string, not JSON":   {`Security`, "not a JSON object"},
		"JSON null":            {`null`, "not a JSON object"},
		"truncated by a shell": {`{"customfield_10010": {"value": "Sec`, "not a JSON object"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(env(with("ROOTWARDEN_JIRA_EXTRA_FIELDS", tc.value)))
			if err == nil {
				err = c.Validate(RoleRemediator)
			}
			if err == nil || !strings.HasPrefix(err.Error(), "ROOTWARDEN_JIRA_EXTRA_FIELDS") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v: want one naming ROOTWARDEN_JIRA_EXTRA_FIELDS and saying %q", err, tc.want)
			}
		})
	}
}

// The table's Required column is what Validate enforces: without the setting, the
// component (or the tracker) named there does not start, and the error names it.
func TestRequiredColumnIsEnforced(t *testing.T) {
	valid := map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "ROOTWARDEN_SLACK_CHANNEL": "C0123456789",
		"ROOTWARDEN_JIRA_URL": "https://x.atlassian.net", "ROOTWARDEN_JIRA_EMAIL": "a@b.c", "ROOTWARDEN_JIRA_TOKEN": "t",
		"ROOTWARDEN_JIRA_PROJECT": "SEC", "ROOTWARDEN_GITHUB_REPO": "acme/security", "ROOTWARDEN_GITHUB_TOKEN": "t"}
	checked := 0
	for _, s := range settings {
		var role Role
		m := map[string]string{}
		switch {
		case s.Required == "notifier":
			role = RoleNotifier
		case strings.HasPrefix(s.Required, "ROOTWARDEN_TRACKER="):
			role, m["ROOTWARDEN_TRACKER"] = RoleRemediator, strings.TrimPrefix(s.Required, "ROOTWARDEN_TRACKER=")
		default:
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			for k, v := range valid {
				m[k] = v
			}
			c, err := Load(env(m))
			if err == nil {
				err = c.Validate(role)
			}
			if err != nil {
				t.Fatalf("with every setting: %v", err)
			}
			delete(m, s.Name)
			c, err = Load(env(m))
			if err == nil {
				err = c.Validate(role)
			}
			if err == nil || !strings.Contains(err.Error(), s.Name) {
				t.Errorf("without %s (required: %s): %v", s.Name, s.Required, err)
			}
		})
		checked++
	}
	if checked < 8 {
		t.Errorf("%d required settings checked", checked)
	}
}
