// Package version tells which build of rootwarden is running: version, commit and
// build date, set at link time or read from the Go build information. It also holds
// the release version, in the file VERSION beside this one: the one place it is set.
// The release builds (goreleaser, deploy/Dockerfile) stamp it with -X; the chart's
// version and appVersion and the CHANGELOG.md section must equal it (tested). It owns
// nothing else.
//
//	go build -ldflags "-X github.com/rootwarden/rootwarden/internal/version.Version=v1.2.3 \
//	  -X github.com/rootwarden/rootwarden/internal/version.Commit=$(git rev-parse HEAD) \
//	  -X github.com/rootwarden/rootwarden/internal/version.Date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/rootwarden
package version

import (
	_ "embed"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Release is the version this source tree is, from VERSION (0.1.0): what a release
// build stamps, and what a build without -X reports with -dev appended.
var Release = strings.TrimSpace(releaseFile)

//go:embed VERSION
var releaseFile string

// Set with -ldflags -X; empty values are filled from the build information.
var (
	Version string
	Commit  string
	Date    string
)

// Info is the running build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	Modified  bool   `json:"modified,omitempty"` // built from a work tree with changes
}

// Get returns the build: the -X values where set, else what the Go toolchain
// recorded (module version for `go install …@v1.2.3`, VCS revision and time for a
// build in a git work tree), else Release-dev ("0.1.0-dev") / "unknown".
func Get() Info {
	i := Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Commit == "" {
					i.Commit = s.Value
				}
			case "vcs.time":
				if i.Date == "" {
					i.Date = s.Value
				}
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = Release + "-dev"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.Date == "" {
		i.Date = "unknown"
	}
	return i
}

// String is the one line `rootwarden version` prints.
func (i Info) String() string {
	commit := i.Commit
	if i.Modified {
		commit += "-modified"
	}
	return fmt.Sprintf("rootwarden %s (commit %s, built %s, %s)", i.Version, commit, i.Date, i.GoVersion)
}
