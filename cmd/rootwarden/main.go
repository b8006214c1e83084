// Command rootwarden finds AWS root access keys and drives each case to a verified
// deletion through Slack. This package only wires the components together.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rootwarden/rootwarden/internal/config"
)

const usage = `usage: rootwarden <command> [flags]

commands:
  run          start detector, remediator and notifier in one process
  detector     start the detector only
  remediator   start the remediator only
  notifier     start the notifier only
  scan         check AWS now and print the result (exit 0 none, 1 root keys, 2 error)
  cases        list or show cases through the API (cases list | cases show ID)
  demo         play the whole story locally against the AWS simulator and a test Slack
  sim          serve the AWS simulator with a seeded organization (prints the variables to export)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runServe(ctx, []config.Role{config.RoleDetector, config.RoleRemediator, config.RoleNotifier}, stderr, serveOptions{})
	case "detector", "remediator", "notifier":
		return runServe(ctx, []config.Role{config.Role(cmd)}, stderr, serveOptions{})
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "sim":
		return runSim(ctx, rest, stdout, stderr)
	case "scan":
		return runScan(ctx, rest, stdout, stderr)
	case "cases":
		return runCases(ctx, rest, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "rootwarden: unknown command %q\n%s", cmd, usage)
	return 2
}
