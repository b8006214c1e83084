// Command rootwarden finds AWS root access keys and drives each case to a verified
// deletion through Slack. This package only wires the components together and holds
// the command line (cobra): every subcommand, its flags, help and exit codes.
//
// Exit codes: 0 success; 1 `scan` found root access keys; 2 a usage error (unknown
// command or flag, missing argument), a configuration or set-up error, or `scan` could
// not check an account. Help (`--help`, `help CMD`) exits 0 and starts nothing.
//
// Settings: a flag beats the environment, which beats the YAML file (--config or
// ROOTWARDEN_CONFIG). Flags are overlaid on the environment, so each flag and its
// variable have one meaning and one validation (internal/config).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rootwarden/rootwarden/internal/config"
	"github.com/rootwarden/rootwarden/internal/version"
)

func main() {
	// A closed stdout (`rootwarden demo | head`) must end the command through its
	// write errors and deferred clean-ups, not kill the process mid-way.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitCode is returned by a command that has already said what went wrong.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// usageError is a command line mistake: printed with a pointer to the help, exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// dispatch runs the command line args and returns the exit code.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	var code exitCode
	var uerr usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &uerr):
	default:
		// cobra's own usage errors: unknown command, wrong number of arguments.
	}
	name := "rootwarden"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", name, strings.TrimSpace(err.Error()), name)
	return 2
}

const rootLong = `rootwarden finds AWS root-user access keys across an AWS Organization, posts each
case to Slack with approve buttons, opens a ticket, and verifies the deletion with AWS.

Settings come from flags, the environment and an optional YAML file, in that order
of precedence (a flag beats its variable, a variable beats the file). Secrets are
variables only, or files named by the variable with _FILE appended
(SLACK_BOT_TOKEN_FILE=/run/secrets/slack-bot-token).

Start here:
  rootwarden demo                 the whole story locally, nothing to set up
  rootwarden sim --env-file sim.env &    a local AWS and Slack to try scan and run
  rootwarden scan --org-role NAME  check every account now (a CI gate: exit 0/1/2)

Documentation: README.md; docs/configuration.md lists every variable, YAML key and flag;
deploy/ holds the IAM policies, the container and systemd.`

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "rootwarden",
		Short:         "Find AWS root access keys and drive each case to a verified deletion",
		Long:          rootLong,
		Version:       version.Get().String(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// No command: the usage, on stderr, exit 2 (a script that forgot the verb).
			cmd.SetOut(stderr)
			_ = cmd.Usage()
			return exitCode(2)
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	// -v is --verbose (scan), never --version: `rootwarden -v` says where each is.
	root.Flags().Bool("version", false, "print the version, commit and build date (the same as rootwarden version)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		if strings.Contains(err.Error(), "unknown shorthand flag: 'v'") {
			if cmd == cmd.Root() {
				return usagef("-v is not a flag of rootwarden itself: the version is --version (or rootwarden version); -v is --verbose, on scan")
			}
			return usagef("%s (-v is --verbose, on scan; for more log lines here: --log-level debug)", err)
		}
		return usageError{err.Error()}
	})
	root.PersistentFlags().String("config", "", "YAML file of settings (ROOTWARDEN_CONFIG)")
	_ = root.PersistentFlags().SetAnnotation("config", envAnnotation, []string{"ROOTWARDEN_CONFIG"})
	_ = root.MarkPersistentFlagFilename("config", "yaml", "yml")
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			var names []string
			for _, sub := range c.Root().Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 || target == nil {
				return usagef("unknown help topic %q", strings.Join(args, " "))
			}
			target.SetOut(c.OutOrStdout())
			return target.Help()
		},
	})
	root.AddCommand(
		newServeCmd("run", "Start detector, remediator and notifier in one process", []config.Role{config.RoleDetector, config.RoleRemediator, config.RoleNotifier}),
		newServeCmd("detector", "Start the detector only (AWS sweeps, CloudTrail events, on-demand checks)", []config.Role{config.RoleDetector}),
		newServeCmd("remediator", "Start the remediator only (cases, tickets, the case API)", []config.Role{config.RoleRemediator}),
		newServeCmd("notifier", "Start the notifier only (Slack messages and interactions)", []config.Role{config.RoleNotifier}),
		newScanCmd(),
		newCasesCmd(),
		newEvidenceCmd(),
		newDemoCmd(),
		newSimCmd(),
		newVersionCmd(),
	)
	return root
}

// envFlags binds flags to the variables they override.
type envFlags struct {
	fs    *pflag.FlagSet
	binds [][2]string // flag name, variable
}

// add defines the flag of the variable env (its name and value come from the
// settings table, internal/config) as an override of the variable.
func (e *envFlags) add(env, usage string) {
	s, ok := config.Lookup(env)
	if !ok || s.Flag == "" {
		panic("cmd/rootwarden: " + env + " has no flag in the settings table (internal/config/settings.go)")
	}
	e.fs.Var(&envValue{kind: s.FlagValue}, s.Flag, usage+" ("+env+")")
	_ = e.fs.SetAnnotation(s.Flag, envAnnotation, []string{env})
	e.binds = append(e.binds, [2]string{s.Flag, env})
}

// envAnnotation marks a flag with the variable it overrides (the tests compare the
// command line with the settings table).
const envAnnotation = "rootwarden_env"

// envValue is a flag's text, validated later with its variable (internal/config).
type envValue struct{ v, kind string }

func (v *envValue) String() string     { return v.v }
func (v *envValue) Set(s string) error { v.v = s; return nil }
func (v *envValue) Type() string {
	if v.kind == "" {
		return "string"
	}
	return v.kind
}

// getenv is base with the flags given on the command line laid over it, and
// --config as ROOTWARDEN_CONFIG.
func (e *envFlags) getenv(cmd *cobra.Command, base func(string) string) func(string) string {
	over := map[string]string{}
	for _, b := range e.binds {
		if f := cmd.Flags().Lookup(b[0]); f != nil && f.Changed {
			over[b[1]] = f.Value.String()
		}
	}
	if f := cmd.Flags().Lookup("config"); f != nil && f.Changed {
		over["ROOTWARDEN_CONFIG"] = f.Value.String()
	}
	return func(k string) string {
		if v, ok := over[k]; ok {
			return v
		}
		return base(k)
	}
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			i := version.Get()
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), i)
			}
			fmt.Fprintln(cmd.OutOrStdout(), i.String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func newDemoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Play the whole story locally against the AWS simulator and a local Slack",
		Long: `Play the whole story locally: an organization in the AWS simulator, a local Slack,
the real components over an embedded NATS server. Nothing to set up, nothing left behind.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := runDemo(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}
