package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/notifier"
)

// The local Slack workspace `rootwarden sim` serves.
const (
	simChannel  = "C0SIMONCALL"
	simApprover = "U0SIMAPPROVER"
	simOther    = "U0SIMOTHER"
)

const simLong = `Serve a local AWS (IAM, STS, Organizations, SQS: an organization with seeded root
keys) and a local Slack Web API on one address, and print every variable that scan and
run need, as lines a shell can source:

  rootwarden sim --env-file sim.env &
  set -a; . ./sim.env; set +a
  rootwarden scan              # exit 1: root keys found
  rootwarden run               # posts the cases to the local Slack
  rootwarden sim click 200000000001-1 approve --user ` + simApprover + `
  rootwarden sim slash "status"
  rootwarden sim home ` + simApprover + `
  rootwarden sim submit-risk 200000000002-1 --reason "…" --until YYYY-MM-DD

With --seed the credentials and secrets are the same on every start, so a shell that
sourced them keeps working after a restart. The control endpoints (/_sim/…) have no
authentication: keep --addr on loopback.`

func newSimCmd() *cobra.Command {
	var o simOptions
	cmd := &cobra.Command{Use: "sim", Short: "Serve a local AWS and Slack and print the variables scan and run need",
		Long: simLong, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return exitCode(code)
			}
			return nil
		}}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:4566", "listen address (keep it on loopback: the control surface has no authentication)")
	f.IntVar(&o.accounts, "accounts", 5, "member accounts in the organization")
	f.IntVar(&o.withKeys, "root-keys", 2, "member accounts that have a root access key")
	f.DurationVar(&o.latency, "latency", 0, "latency added to every AWS call")
	f.BoolVar(&o.rateLimits, "aws-rate-limits", true, "answer TooManyRequestsException beyond AWS's published Organizations rates (and STS's 600/s), as AWS does")
	f.Int64Var(&o.seed, "seed", 0, "derive credentials and secrets from this number (stable across restarts); 0: random")
	f.StringVar(&o.envFile, "env-file", "", "also write the variables to this file (mode 0600)")
	f.StringVar(&o.httpAddr, "rootwarden-addr", "127.0.0.1:8080", "the ROOTWARDEN_HTTP_ADDR printed for run")
	f.StringVar(&o.dataDir, "data-dir", "rootwarden-data", "the ROOTWARDEN_DATA_DIR printed for run (made absolute): cases and Slack messages survive a restart of run")
	cmd.AddCommand(newSimClickCmd(), newSimSlashCmd(), newSimHomeCmd(), newSimSubmitRiskCmd())
	return cmd
}

type simOptions struct {
	addr, envFile, httpAddr string
	dataDir                 string
	accounts, withKeys      int
	latency                 time.Duration
	seed                    int64
	rateLimits              bool
}

// secret derives a stable value from the seed, or a random one without it.
func (o *simOptions) secret(purpose string, n int) string {
	var b []byte
	if o.seed != 0 {
		sum := sha256.Sum256([]byte(fmt.Sprintf("rootwarden-sim/%d/%s", o.seed, purpose)))
		b = sum[:]
	} else {
		b = make([]byte, 32)
		_, _ = rand.Read(b)
	}
	return hex.EncodeToString(b)[:n]
}

func (o *simOptions) run(ctx context.Context, stdout, stderr io.Writer) int {
	if o.accounts < 0 || o.withKeys < 0 || o.withKeys > o.accounts {
		fmt.Fprintln(stderr, "rootwarden sim: --root-keys must be between 0 and --accounts")
		return 2
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden sim: --addr: %v\n", err)
		return 2
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		fmt.Fprintf(stderr, "rootwarden sim: warning: listening on every interface (%s): the control endpoints /_sim/… have no authentication; anyone who reaches this port can change the simulated organization\n", o.addr)
		host = "127.0.0.1"
	} else if ip != nil && !ip.IsLoopback() {
		fmt.Fprintf(stderr, "rootwarden sim: warning: %s is not a loopback address: the control endpoints /_sim/… have no authentication\n", host)
	}
	base := "http://" + net.JoinHostPort(host, port)

	sim := awssim.New(awssim.Options{NoRateLimits: !o.rateLimits})
	sim.SetBaseURL(base)
	const mgmt = "100000000000"
	sim.AddAccount(awssim.Account{ID: mgmt, Name: "management", Email: "root@example.com", Management: true})
	sim.EnableOrganization(mgmt)
	now := time.Now().UTC()
	for i := 1; i <= o.accounts; i++ {
		id := fmt.Sprintf("2%011d", i)
		sim.AddAccount(awssim.Account{ID: id, Name: fmt.Sprintf("member-%d", i), Email: fmt.Sprintf("aws-%d@example.com", i)})
		if i <= o.withKeys {
			sim.CreateRootKey(id, now.AddDate(0, -i, 0))
		}
	}
	sim.SetLatency(o.latency)
	queue := sim.CreateQueue(mgmt, "rootwarden-events")
	akid, secret := sim.AdminCredentials(mgmt)
	if o.seed != 0 {
		akid, secret = "AKIA"+strings.ToUpper(o.secret("akid", 16)), o.secret("secret", 40)
		sim.SetAdminCredentials(mgmt, akid, secret)
	}

	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil || o.dataDir == "" {
		fmt.Fprintf(stderr, "rootwarden sim: --data-dir %q: %v\n", o.dataDir, err)
		return 2
	}
	botToken := "xoxb-sim-" + o.secret("bot", 24)
	signing := o.secret("signing", 32)
	apiToken := o.secret("api", 32)
	sl := slackfake.New(slackfake.WithChannel(simChannel, "security-oncall"), slackfake.WithBotToken(botToken))
	sl.AddUser(simApprover, "alice (approver)")
	sl.AddUser(simOther, "bob")

	env := fmt.Sprintf(`# rootwarden sim: an organization of %d member accounts, %d with a root access key,
# and a local Slack (channel %s, approver %s). Source this file, then run
# rootwarden scan or rootwarden run; click buttons with rootwarden sim click.
export AWS_ENDPOINT_URL=%s
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=%s
export AWS_SECRET_ACCESS_KEY=%s
export AWS_EC2_METADATA_DISABLED=true
export ROOTWARDEN_ORG_ROLE_NAME=OrganizationAccountAccessRole
export ROOTWARDEN_SQS_QUEUE_URL=%s
export ROOTWARDEN_SLACK_API_URL=%s/api/
export SLACK_BOT_TOKEN=%s
export SLACK_SIGNING_SECRET=%s
export ROOTWARDEN_SLACK_CHANNEL=%s
export ROOTWARDEN_APPROVERS=%s
export ROOTWARDEN_HTTP_ADDR=%s
export ROOTWARDEN_API_TOKEN=%s
export ROOTWARDEN_SIM_URL=%s
export ROOTWARDEN_DATA_DIR=%s
`, o.accounts, o.withKeys, simChannel, simApprover, base, akid, secret, queue, base, botToken, signing, simChannel,
		simApprover, o.httpAddr, apiToken, base, dataDir)
	help := fmt.Sprintf(`# AWS control (no authentication):
#   curl -X POST %[1]s/_sim/accounts/200000000001/root-keys           # create a root key
#   curl %[1]s/_sim/accounts/200000000001/root-keys                   # list them
#   curl -X DELETE %[1]s/_sim/accounts/200000000001/root-keys/KEYID    # delete one
#   curl -X POST %[1]s/_sim/queues/rootwarden-events/events -d '{"kind":"created","account":"200000000001","keyId":"AKIA…"}'
#   curl -X POST %[1]s/_sim/accounts/200000000002/faults -d '{"accessDenied":true}'   # see internal/awssim for faults
#   curl %[1]s/_sim/calls                                             # calls made so far
# Slack: curl %[1]s/_sim/slack/messages ; rootwarden sim click CASE approve|deleted|recheck|revoke --user %[2]s
#   rootwarden sim slash "status" ; rootwarden sim home %[2]s ; rootwarden sim submit-risk CASE --reason … --until YYYY-MM-DD
`, base, simApprover)
	fmt.Fprint(stdout, env+help)
	if o.envFile != "" {
		if err := os.WriteFile(o.envFile, []byte(env), 0o600); err != nil {
			fmt.Fprintf(stderr, "rootwarden sim: --env-file: %v\n", err)
			return 2
		}
	}

	mux := http.NewServeMux()
	slackH := sl.Handler(base)
	mux.Handle("/api/", slackH)
	mux.Handle("/ws", slackH)
	mux.HandleFunc("GET /_sim/slack/messages", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(simMessages(sl))
	})
	simSlackEndpoints(mux, sl)
	mux.Handle("/", sim.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		sl.Close()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "rootwarden sim: %v\n", err)
		return 2
	}
	return 0
}

// simMessage is a top-level message of the local Slack, as /_sim/slack/messages lists.
type simMessage struct {
	Channel string             `json:"channel"`
	TS      string             `json:"ts"`
	CaseID  string             `json:"case_id,omitempty"`
	Text    string             `json:"text"`
	Buttons []slackfake.Button `json:"buttons"`
	Replies int                `json:"replies"`
}

func simMessages(sl *slackfake.Server) []simMessage {
	out := []simMessage{}
	for _, m := range sl.Messages(simChannel) {
		sm := simMessage{Channel: simChannel, TS: m.TS, Text: m.Text, Buttons: m.Buttons(), Replies: len(m.Replies)}
		if m.Metadata != nil {
			if id, ok := m.Metadata.EventPayload["case_id"].(string); ok {
				sm.CaseID = id
			}
		}
		if sm.Buttons == nil {
			sm.Buttons = []slackfake.Button{}
		}
		out = append(out, sm)
	}
	return out
}

// simActions maps the words `sim click` takes to the buttons' action ids.
var simActions = map[string]string{
	"approve": notifier.ActionIDApprove, "deleted": notifier.ActionIDConfirmDeleted,
	"recheck": notifier.ActionIDRecheck, "revoke": notifier.ActionIDRevoke, "accept-risk": notifier.ActionIDAcceptRisk,
}

func newSimClickCmd() *cobra.Command {
	var user, simURL, endpoint string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "click CASE-ID ACTION",
		Short: "Press a button of a case's message in the local Slack, signed as Slack signs it",
		Long: `Press a button of a case's message in the local Slack that rootwarden sim serves, and
send the interaction to rootwarden's POST /slack/interactions signed with
SLACK_SIGNING_SECRET, exactly as Slack would.

ACTION: approve, deleted ("I deleted the keys"), recheck, revoke, accept-risk (opens
the modal only), or a button's action id. It waits (--wait) for the case's message to
show the button, as the notifier posts and edits messages at Slack's pace. It reads ROOTWARDEN_SIM_URL,
SLACK_SIGNING_SECRET and ROOTWARDEN_SLACK_HTTP_ADDR or ROOTWARDEN_HTTP_ADDR from the
sourced sim.env.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("needs a case id and an action, like: rootwarden sim click 200000000001-1 approve --user %s", simApprover)
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return []string{"approve", "deleted", "recheck", "revoke", "accept-risk"}, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			code := simClick(cmd.Context(), args[0], args[1], user, simURL, endpoint, wait, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", simApprover, "Slack user id of the person clicking")
	cmd.Flags().StringVar(&simURL, "sim-url", "", "the sim's address (ROOTWARDEN_SIM_URL)")
	_ = cmd.Flags().SetAnnotation("sim-url", envAnnotation, []string{"ROOTWARDEN_SIM_URL"})
	cmd.Flags().StringVar(&endpoint, "url", "", "rootwarden's interactions URL (default from ROOTWARDEN_SLACK_HTTP_ADDR or ROOTWARDEN_HTTP_ADDR)")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the case's message to show the button (Slack edits are paced)")
	return cmd
}

func simClick(ctx context.Context, caseID, action, user, simURL, endpoint string, wait time.Duration, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "rootwarden sim click: "+format+"\n", a...)
		return 2
	}
	if simURL == "" {
		simURL = os.Getenv("ROOTWARDEN_SIM_URL")
	}
	if simURL == "" {
		return fail("ROOTWARDEN_SIM_URL is not set: source the file rootwarden sim --env-file wrote, or pass --sim-url")
	}
	secret := os.Getenv("SLACK_SIGNING_SECRET")
	if secret == "" {
		return fail("SLACK_SIGNING_SECRET is not set: source the file rootwarden sim --env-file wrote")
	}
	if endpoint == "" {
		addr := os.Getenv("ROOTWARDEN_SLACK_HTTP_ADDR")
		if addr == "" {
			addr = os.Getenv("ROOTWARDEN_HTTP_ADDR")
		}
		u, err := apiURLFromAddr(addr)
		if err != nil {
			return fail("%v", err)
		}
		endpoint = u + "/slack/interactions"
	}
	actionID := action
	if id, ok := simActions[action]; ok {
		actionID = id
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+wait)
	defer cancel()
	// The notifier posts and edits the message at Slack's pace: wait up to wait for the
	// case's message to show the button, as a person would.
	deadline := time.Now().Add(wait)
	told := false
	for {
		m, why, err := simFindButton(ctx, simURL, caseID, actionID, action)
		if err != nil {
			return fail("%v", err)
		}
		if why == "" {
			status, body, err := slackfake.Deliver(ctx, endpoint, secret,
				slackfake.BlockAction(user, user, m.button.ActionID, m.button.Value, m.msg.Channel, m.msg.TS))
			if err != nil {
				return fail("send the click to %s: %v (is rootwarden run serving there?)", endpoint, err)
			}
			if status != http.StatusOK {
				return fail("%s answered HTTP %d: %s", endpoint, status, strings.TrimSpace(string(body)))
			}
			fmt.Fprintf(stdout, "clicked %q on case %s as %s\n", m.button.Text, caseID, user)
			return 0
		}
		if time.Now().After(deadline) {
			return fail("%s", why)
		}
		if !told && time.Until(deadline) < wait-2*time.Second {
			told = true
			fmt.Fprintf(stderr, "rootwarden sim click: waiting up to %s: %s\n", wait.Round(time.Second), why)
		}
		select {
		case <-ctx.Done():
			return fail("%s", why)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type simButton struct {
	msg    simMessage
	button slackfake.Button
}

// simFindButton finds the button actionID on the message of case caseID ("<account>-<n>"
// names the case "<account>-<n>-<opened>" too); why says what is missing instead.
func simFindButton(ctx context.Context, simURL, caseID, actionID, action string) (simButton, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(simURL, "/")+"/_sim/slack/messages", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return simButton{}, "", fmt.Errorf("read the local Slack at %s: %v (is rootwarden sim running?)", simURL, err)
	}
	var msgs []simMessage
	err = json.NewDecoder(resp.Body).Decode(&msgs)
	resp.Body.Close()
	if err != nil {
		return simButton{}, "", fmt.Errorf("read the local Slack at %s: %v", simURL, err)
	}
	var cases []string
	for _, m := range msgs {
		if m.CaseID != caseID && !strings.HasPrefix(m.CaseID, caseID+"-") {
			if m.CaseID != "" {
				cases = append(cases, m.CaseID)
			}
			continue
		}
		var words []string
		for _, b := range m.Buttons {
			if b.ActionID == actionID {
				return simButton{msg: m, button: b}, "", nil
			}
			words = append(words, actionWord(b.ActionID))
		}
		if len(words) == 0 {
			return simButton{}, fmt.Sprintf("case %s's message has no buttons now (its state offers none)", caseID), nil
		}
		return simButton{}, fmt.Sprintf("case %s's message has no %q button; it has: %s", caseID, action, strings.Join(words, ", ")), nil
	}
	if len(cases) == 0 {
		return simButton{}, fmt.Sprintf("no message for case %s in the local Slack yet (is rootwarden run running against this sim?)", caseID), nil
	}
	return simButton{}, fmt.Sprintf("no message for case %s; cases with messages: %s", caseID, strings.Join(cases, ", ")), nil
}

func actionWord(actionID string) string {
	for w, id := range simActions {
		if id == actionID {
			return w
		}
	}
	return actionID
}
