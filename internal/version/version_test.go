package version

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestLinkerValuesWin(t *testing.T) {
	Version, Commit, Date = "v1.2.3", "abc123", "2026-12-01T00:00:00Z"
	t.Cleanup(func() { Version, Commit, Date = "", "", "" })
	i := Get()
	if i.Version != "v1.2.3" || i.Commit != "abc123" || i.Date != "2026-12-01T00:00:00Z" {
		t.Fatalf("got %+v", i)
	}
	if s := i.String(); !strings.Contains(s, "rootwarden v1.2.3") || !strings.Contains(s, "commit abc123") {
		t.Errorf("String() = %q", s)
	}
}

func TestWithoutLinkerValuesNothingIsEmpty(t *testing.T) {
	i := Get()
	if i.Version == "" || i.Commit == "" || i.Date == "" || i.GoVersion == "" {
		t.Fatalf("got %+v", i)
	}
}

// TestOneVersion: the release version is set once, in VERSION, and everything that
// names it says the same: the Helm chart's version and appVersion (the image tag it
// defaults to) and the release notes.
func TestOneVersion(t *testing.T) {
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(Release) {
		t.Fatalf("internal/version/VERSION = %q, want MAJOR.MINOR.PATCH", Release)
	}
	chart, err := os.ReadFile("../../deploy/helm/rootwarden/Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"version", "appVersion"} {
		got := ""
		if m := regexp.MustCompile(`(?m)^` + key + `: *"?([^"\n]+)"?$`).FindSubmatch(chart); m != nil {
			got = string(m[1])
		}
		if got != Release {
			t.Errorf("deploy/helm/rootwarden/Chart.yaml %s = %q, want %q (internal/version/VERSION)", key, got, Release)
		}
	}
	notes, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^## ` + regexp.QuoteMeta(Release) + `\b`).Match(notes) {
		t.Errorf("CHANGELOG.md has no section \"## %s\"", Release)
	}
	if Version == "" && Get().Version != Release+"-dev" && !strings.HasPrefix(Get().Version, "v") {
		t.Errorf("a build without -X reports %q, want %q", Get().Version, Release+"-dev")
	}
}
