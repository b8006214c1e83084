package version

import (
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
