package main

// The rest of the local Slack workspace that `rootwarden sim` serves, for trying the
// slash command, the App Home and a risk acceptance without Slack: each request is
// signed with SLACK_SIGNING_SECRET exactly as Slack signs it and sent to the running
// `rootwarden run`; what Slack would then show is read back from the sim.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/spf13/cobra"

	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/notifier"
)

// simView is an opened modal as GET /_sim/slack/views lists it.
type simView struct {
	ID        string          `json:"id"`
	TriggerID string          `json:"trigger_id"`
	Hash      string          `json:"hash"`
	View      json.RawMessage `json:"view"`
}

// simHome is a user's Home tab as GET /_sim/slack/home/{user} shows it.
type simHome struct {
	User      string          `json:"user"`
	Publishes int             `json:"publishes"`
	View      json.RawMessage `json:"view"`
}

// simEphemeral is an answer only one user sees, as GET /_sim/slack/ephemerals lists it.
type simEphemeral struct {
	Channel string `json:"channel"`
	User    string `json:"user"`
	TS      string `json:"ts"`
	Text    string `json:"text"`
}

// simSlackEndpoints serves what the local Slack shows beyond channel messages: the
// modals opened, each user's Home tab, the ephemeral answers.
func simSlackEndpoints(mux *http.ServeMux, sl *slackfake.Server) {
	mux.HandleFunc("GET /_sim/slack/views", func(w http.ResponseWriter, r *http.Request) {
		out := []simView{}
		for _, v := range sl.Views() {
			out = append(out, simView{ID: v.ID, TriggerID: v.TriggerID, Hash: v.Hash, View: v.Raw})
		}
		writeSimJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /_sim/slack/home/{user}", func(w http.ResponseWriter, r *http.Request) {
		h, ok := sl.Home(r.PathValue("user"))
		if !ok {
			writeSimJSON(w, http.StatusOK, simHome{User: r.PathValue("user")})
			return
		}
		writeSimJSON(w, http.StatusOK, simHome{User: h.UserID, Publishes: h.Publishes, View: h.Raw})
	})
	mux.HandleFunc("GET /_sim/slack/ephemerals", func(w http.ResponseWriter, r *http.Request) {
		out := []simEphemeral{}
		for _, e := range sl.Ephemerals() {
			if u := r.URL.Query().Get("user"); u == "" || u == e.User {
				out = append(out, simEphemeral{Channel: e.Channel, User: e.User, TS: e.TS, Text: e.Text})
			}
		}
		writeSimJSON(w, http.StatusOK, out)
	})
}

func writeSimJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// simTarget is where a signed request goes and where the sim is.
type simTarget struct {
	simURL, secret, base string // base: rootwarden's Slack endpoints, http://host:port
}

// resolveSimTarget reads the sourced sim.env (or the flags).
func resolveSimTarget(simURL, base string) (simTarget, error) {
	if simURL == "" {
		simURL = os.Getenv("ROOTWARDEN_SIM_URL")
	}
	if simURL == "" {
		return simTarget{}, fmt.Errorf("ROOTWARDEN_SIM_URL is not set: source the file rootwarden sim --env-file wrote, or pass --sim-url")
	}
	secret := os.Getenv("SLACK_SIGNING_SECRET")
	if secret == "" {
		return simTarget{}, fmt.Errorf("SLACK_SIGNING_SECRET is not set: source the file rootwarden sim --env-file wrote")
	}
	if base == "" {
		addr := os.Getenv("ROOTWARDEN_SLACK_HTTP_ADDR")
		if addr == "" {
			addr = os.Getenv("ROOTWARDEN_HTTP_ADDR")
		}
		u, err := apiURLFromAddr(addr)
		if err != nil {
			return simTarget{}, err
		}
		base = u
	}
	return simTarget{simURL: strings.TrimSuffix(simURL, "/"), secret: secret, base: strings.TrimSuffix(base, "/")}, nil
}

func (t simTarget) get(ctx context.Context, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.simURL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("read the local Slack at %s: %v (is rootwarden sim running?)", t.simURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("read the local Slack at %s%s: HTTP %d (is this a rootwarden sim of this version?)", t.simURL, path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// simPoll calls ok every 100 ms until it is true or the context ends.
func simPoll(ctx context.Context, ok func() (bool, error)) error {
	for {
		done, err := ok()
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func simFail(stderr io.Writer, cmd, format string, a ...any) int {
	fmt.Fprintf(stderr, "rootwarden sim "+cmd+": "+format+"\n", a...)
	return 2
}

func runCode(code int) error {
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

func newSimSlashCmd() *cobra.Command {
	var user, simURL, base string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "slash TEXT",
		Short: "Type /rootwarden TEXT in the local Slack: a signed slash command to rootwarden run",
		Long: `Send "/rootwarden TEXT" to rootwarden's POST /slack/commands, signed with
SLACK_SIGNING_SECRET exactly as Slack signs it, and print the answer the person who typed
it would see. TEXT is one argument: quote it.

  rootwarden sim slash "status"
  rootwarden sim slash "case 200000000001-1"
  rootwarden sim slash "check 200000000003"    # the answer follows through response_url

It reads ROOTWARDEN_SIM_URL, SLACK_SIGNING_SECRET and ROOTWARDEN_SLACK_HTTP_ADDR or
ROOTWARDEN_HTTP_ADDR from the sourced sim.env.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef(`needs the command's text as one argument, like: rootwarden sim slash "status"`)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCode(simSlash(cmd.Context(), args[0], user, simURL, base, wait, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().StringVar(&user, "user", simApprover, "Slack user id of the person typing")
	cmd.Flags().StringVar(&simURL, "sim-url", "", "the sim's address (ROOTWARDEN_SIM_URL)")
	cmd.Flags().StringVar(&base, "url", "", "rootwarden's Slack address, http://host:port (default from ROOTWARDEN_SLACK_HTTP_ADDR or ROOTWARDEN_HTTP_ADDR)")
	cmd.Flags().DurationVar(&wait, "wait", 90*time.Second, "how long to wait for an answer that follows through response_url")
	return cmd
}

func simSlash(ctx context.Context, text, user, simURL, base string, wait time.Duration, stdout, stderr io.Writer) int {
	t, err := resolveSimTarget(simURL, base)
	if err != nil {
		return simFail(stderr, "slash", "%v", err)
	}
	// response_url: Slack's address for an answer that comes later (a check).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return simFail(stderr, "slash", "listen for the delayed answer: %v", err)
	}
	later := make(chan string, 1)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Text string `json:"text"`
		}
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m)
		select {
		case later <- m.Text:
		default:
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+wait)
	defer cancel()
	endpoint := t.base + "/slack/commands"
	form := slackfake.SlashCommand(user, user, text, simChannel, "http://"+ln.Addr().String()+"/response")
	status, body, err := slackfake.Deliver(ctx, endpoint, t.secret, form)
	if err != nil {
		return simFail(stderr, "slash", "send the command to %s: %v (is rootwarden run serving there?)", endpoint, err)
	}
	if status != http.StatusOK {
		return simFail(stderr, "slash", "%s answered HTTP %d: %s", endpoint, status, strings.TrimSpace(string(body)))
	}
	var rep struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return simFail(stderr, "slash", "%s answered %q: %v", endpoint, body, err)
	}
	fmt.Fprintln(stdout, rep.Text)
	if !strings.Contains(rep.Text, "follows") || wait <= 0 {
		return 0
	}
	select {
	case s := <-later:
		fmt.Fprintln(stdout, s)
		return 0
	case <-time.After(wait):
		return simFail(stderr, "slash", "no answer through response_url within %s", wait)
	case <-ctx.Done():
		return simFail(stderr, "slash", "no answer through response_url: %v", ctx.Err())
	}
}

func newSimHomeCmd() *cobra.Command {
	var simURL, base string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "home USER",
		Short: "Open rootwarden's App Home as USER in the local Slack and print the tab",
		Long: `Send the app_home_opened event Slack sends when USER (a Slack user id, U…) opens
rootwarden's Home tab to POST /slack/events, signed as Slack signs it, wait for the tab
rootwarden publishes (views.publish) and print it as text, or with --json the view as
Slack received it.

  rootwarden sim home ` + simApprover + `

It reads ROOTWARDEN_SIM_URL, SLACK_SIGNING_SECRET and ROOTWARDEN_SLACK_HTTP_ADDR or
ROOTWARDEN_HTTP_ADDR from the sourced sim.env.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("needs a Slack user id, like: rootwarden sim home %s", simApprover)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCode(simHomeOpen(cmd.Context(), args[0], simURL, base, asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().StringVar(&simURL, "sim-url", "", "the sim's address (ROOTWARDEN_SIM_URL)")
	cmd.Flags().StringVar(&base, "url", "", "rootwarden's Slack address, http://host:port (default from ROOTWARDEN_SLACK_HTTP_ADDR or ROOTWARDEN_HTTP_ADDR)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the published view's JSON")
	return cmd
}

func simHomeOpen(ctx context.Context, user, simURL, base string, asJSON bool, stdout, stderr io.Writer) int {
	t, err := resolveSimTarget(simURL, base)
	if err != nil {
		return simFail(stderr, "home", "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var before simHome
	if err := t.get(ctx, "/_sim/slack/home/"+user, &before); err != nil {
		return simFail(stderr, "home", "%v", err)
	}
	endpoint := t.base + "/slack/events"
	status, body, err := slackfake.DeliverJSON(ctx, endpoint, t.secret, slackfake.AppHomeOpened(user))
	if err != nil {
		return simFail(stderr, "home", "send app_home_opened to %s: %v (is rootwarden run serving there?)", endpoint, err)
	}
	if status != http.StatusOK {
		return simFail(stderr, "home", "%s answered HTTP %d: %s", endpoint, status, strings.TrimSpace(string(body)))
	}
	var h simHome
	err = simPoll(ctx, func() (bool, error) {
		err := t.get(ctx, "/_sim/slack/home/"+user, &h)
		return err == nil && h.Publishes > before.Publishes, err
	})
	if err != nil {
		return simFail(stderr, "home", "no Home tab published for %s: %v (is %s a user of the local Slack? %s and %s are)", user, err, user, simApprover, simOther)
	}
	if asJSON {
		fmt.Fprintf(stdout, "%s\n", h.View)
		return 0
	}
	var v slack.HomeTabViewRequest
	if err := json.Unmarshal(h.View, &v); err != nil {
		return simFail(stderr, "home", "the published view: %v", err)
	}
	fmt.Fprintf(stdout, "App Home of %s (published %s):\n", user, plural(h.Publishes, "time"))
	fmt.Fprint(stdout, renderBlocks(v.Blocks, "  "))
	return 0
}

func newSimSubmitRiskCmd() *cobra.Command {
	var user, simURL, base, reason, until string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "submit-risk CASE-ID --reason TEXT --until YYYY-MM-DD",
		Short: "Accept the risk of a case in the local Slack: press Accept risk…, fill in the modal, submit",
		Long: `Press "Accept risk…" on the case's message in the local Slack, as --user (an approver),
then submit the modal that opens with the reason and the expiry date, each signed as
Slack signs it. A refusal (not an approver, no reason, a date too far away) is printed
as the modal or Slack would show it, exit 2.

  rootwarden sim submit-risk 200000000002-1 --reason "closed next month (FIN-1234)" --until "$(date -u -d '+30 days' +%F)"

It reads ROOTWARDEN_SIM_URL, SLACK_SIGNING_SECRET and ROOTWARDEN_SLACK_HTTP_ADDR or
ROOTWARDEN_HTTP_ADDR from the sourced sim.env.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef(`needs a case id, like: rootwarden sim submit-risk 200000000002-1 --reason "…" --until YYYY-MM-DD`)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCode(simSubmitRisk(cmd.Context(), args[0], user, simURL, base, reason, until, wait, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().StringVar(&user, "user", simApprover, "Slack user id of the approver")
	cmd.Flags().StringVar(&simURL, "sim-url", "", "the sim's address (ROOTWARDEN_SIM_URL)")
	cmd.Flags().StringVar(&base, "url", "", "rootwarden's Slack address, http://host:port (default from ROOTWARDEN_SLACK_HTTP_ADDR or ROOTWARDEN_HTTP_ADDR)")
	cmd.Flags().StringVar(&reason, "reason", "", "why the risk is accepted (the modal's reason)")
	cmd.Flags().StringVar(&until, "until", "", "expiry date, YYYY-MM-DD (the modal's date)")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the case's message to show Accept risk…")
	return cmd
}

func simSubmitRisk(ctx context.Context, caseID, user, simURL, base, reason, until string, wait time.Duration, stdout, stderr io.Writer) int {
	t, err := resolveSimTarget(simURL, base)
	if err != nil {
		return simFail(stderr, "submit-risk", "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+wait)
	defer cancel()
	var views []simView
	if err := t.get(ctx, "/_sim/slack/views", &views); err != nil {
		return simFail(stderr, "submit-risk", "%v", err)
	}
	var ephs []simEphemeral
	if err := t.get(ctx, "/_sim/slack/ephemerals?user="+user, &ephs); err != nil {
		return simFail(stderr, "submit-risk", "%v", err)
	}
	seenViews, seenEphs := len(views), len(ephs)
	var clickErr strings.Builder
	if code := simClick(ctx, caseID, "accept-risk", user, t.simURL, t.base+"/slack/interactions", wait, io.Discard, &clickErr); code != 0 {
		fmt.Fprint(stderr, strings.ReplaceAll(clickErr.String(), "sim click", "sim submit-risk"))
		return code
	}
	// The modal opens (views.open), or the clicker is told why not (an ephemeral).
	var modal simView
	var refusal string
	err = simPoll(ctx, func() (bool, error) {
		if err := t.get(ctx, "/_sim/slack/views", &views); err != nil {
			return false, err
		}
		if len(views) > seenViews {
			modal = views[len(views)-1]
			return true, nil
		}
		if err := t.get(ctx, "/_sim/slack/ephemerals?user="+user, &ephs); err != nil {
			return false, err
		}
		if len(ephs) > seenEphs {
			refusal = ephs[len(ephs)-1].Text
			return true, nil
		}
		return false, nil
	})
	switch {
	case err != nil:
		return simFail(stderr, "submit-risk", "the Accept risk modal did not open: %v", err)
	case refusal != "":
		return simFail(stderr, "submit-risk", "Slack, only to %s: %s", user, refusal)
	}
	var mv slack.ModalViewRequest
	if err := json.Unmarshal(modal.View, &mv); err != nil {
		return simFail(stderr, "submit-risk", "the modal: %v", err)
	}
	v := slackfake.View{ID: modal.ID, TriggerID: modal.TriggerID, Hash: modal.Hash, Request: mv, Raw: modal.View}
	form := slackfake.ViewSubmission(user, user, v, map[string]map[string]slack.BlockAction{
		notifier.BlockIDReason:  {notifier.ActionIDReason: slackfake.TextValue(reason)},
		notifier.BlockIDExpires: {notifier.ActionIDExpires: slackfake.DateValue(until)},
	})
	endpoint := t.base + "/slack/interactions"
	status, body, err := slackfake.Deliver(ctx, endpoint, t.secret, form)
	if err != nil {
		return simFail(stderr, "submit-risk", "send the submission to %s: %v", endpoint, err)
	}
	if status != http.StatusOK {
		return simFail(stderr, "submit-risk", "%s answered HTTP %d: %s", endpoint, status, strings.TrimSpace(string(body)))
	}
	var rep struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if len(strings.TrimSpace(string(body))) > 0 && json.Unmarshal(body, &rep) == nil && rep.ResponseAction == "errors" {
		var msgs []string
		for _, m := range rep.Errors {
			msgs = append(msgs, m)
		}
		return simFail(stderr, "submit-risk", "the modal refused the submission: %s", strings.Join(msgs, "; "))
	}
	fmt.Fprintf(stdout, "submitted \"Accept risk\" for case %s as %s: until %s, %q\n", caseID, user, until, reason)
	return 0
}
