// Command gen writes docs/configuration.md from the settings table of
// internal/config: `go generate ./internal/config` runs it. The package's tests fail
// when the file it wrote is not what the table says.
package main

import (
	"fmt"
	"os"

	"github.com/rootwarden/rootwarden/internal/config"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./gen FILE")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], config.Reference(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
