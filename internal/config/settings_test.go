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
