package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rootwarden/rootwarden/internal/config"
	"github.com/rootwarden/rootwarden/internal/escape"
)

// apiCase is the part of the API's case JSON the CLI prints.
type apiCase struct {
	ID          string `json:"id"`
	AccountID   string `json:"account_id"`
	AccountName string `json:"account_name"`
	State       string `json:"state"`
	Severity    string `json:"severity"`
	Ticket      *struct {
		System string `json:"system"`
		ID     string `json:"id"`
		URL    string `json:"url"`
	} `json:"ticket"`
	LastError string     `json:"last_error"`
	OpenedAt  time.Time  `json:"opened_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	Resolved  *time.Time `json:"resolved_at"`
	Risk      *struct {
		Reason  string    `json:"reason"`
		Expires time.Time `json:"expires"`
	} `json:"risk"`
	History []struct {
		Seq    int       `json:"seq"`
		Type   string    `json:"type"`
		From   string    `json:"from"`
		To     string    `json:"to"`
		Reason string    `json:"reason"`
		At     time.Time `json:"at"`
		Actor  struct {
			Kind string `json:"kind"`
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"actor"`
	} `json:"history"`
}

const casesLong = `List or show cases through the case API of a running rootwarden (read-only).

It reads the API at ROOTWARDEN_API_URL (default: derived from ROOTWARDEN_HTTP_ADDR,
else http://127.0.0.1:8080) with the bearer token ROOTWARDEN_API_TOKEN (or
ROOTWARDEN_API_TOKEN_FILE), the same token the server was started with.
States: open, ticketed, verifying, resolved, risk_accepted, active.`

func newCasesCmd() *cobra.Command {
	var o casesOptions
	cmd := &cobra.Command{Use: "cases", Short: "List or show cases through the case API (cases list | cases show ID | cases unchecked)",
		Long: casesLong, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.list(cmd) }}
	list := &cobra.Command{Use: "list", Short: "List cases (the default)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.list(cmd) }}
	show := &cobra.Command{Use: "show CASE-ID", Short: "Show one case and its history", Long: "Show one case and its history, e.g. rootwarden cases show 200000000001-1.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("needs one case id, like: rootwarden cases show 200000000001-1 (rootwarden cases list shows the ids)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return o.show(cmd, args[0]) }}
	unchecked := &cobra.Command{Use: "unchecked", Short: "List the accounts rootwarden cannot check, with the reason",
		Long: "List the accounts whose checks failed several times in a row (GET /api/v1/unchecked): root access keys there\n" +
			"would go unnoticed. Each has a reason group (no role, AccessDenied by an SCP, suspended or closed, …) and its last error.",
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error { return o.unchecked(cmd) }}
	for _, c := range []*cobra.Command{cmd, list, show, unchecked} {
		c.Flags().BoolVar(&o.json, "json", false, "print JSON (list: an array of objects; show: one object)")
		c.Flags().StringVar(&o.apiURL, "api-url", "", "case API base URL (ROOTWARDEN_API_URL)")
		_ = c.Flags().SetAnnotation("api-url", envAnnotation, []string{"ROOTWARDEN_API_URL"})
	}
	for _, c := range []*cobra.Command{cmd, list} {
		c.Flags().StringVar(&o.state, "state", "", "only cases in this state (open, ticketed, verifying, resolved, risk_accepted, active)")
		c.Flags().StringVar(&o.account, "account", "", "only cases of this account id (12 digits)")
		_ = c.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]string{"open", "ticketed", "verifying", "resolved", "risk_accepted", "active"}, cobra.ShellCompDirectiveNoFileComp))
	}
	cmd.AddCommand(list, show, unchecked)
	return cmd
}

// runCases runs `rootwarden cases args…` (tests call it).
func runCases(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, append([]string{"cases"}, args...), stdout, stderr)
}

type casesOptions struct {
	json                   bool
	state, account, apiURL string
}

// client is the API base and token, or an error already printed (exit 2).
func (o *casesOptions) client(cmd *cobra.Command) (base, token string, err error) {
	fail := func(format string, a ...any) error {
		fmt.Fprintf(cmd.ErrOrStderr(), "rootwarden cases: "+format+"\n", a...)
		return exitCode(2)
	}
	if base, err = apiURL(o.apiURL); err != nil {
		return "", "", fail("%v", err)
	}
	if token, err = config.Secret(os.Getenv, "ROOTWARDEN_API_TOKEN"); err != nil {
		return "", "", fail("%v", err)
	}
	if token == "" {
		return "", "", fail("ROOTWARDEN_API_TOKEN is not set: set it (or ROOTWARDEN_API_TOKEN_FILE) to the token rootwarden run was started with")
	}
	return base, token, nil
}

func (o *casesOptions) list(cmd *cobra.Command) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if o.account != "" && !isAccountID(o.account) {
		return usagef("--account %q is not an account id: give the 12-digit id (cases list shows them)", o.account)
	}
	base, token, err := o.client(cmd)
	if err != nil {
		return err
	}
	q := url.Values{}
	if o.state != "" {
		q.Set("state", o.state)
	}
	if o.account != "" {
		q.Set("account", o.account)
	}
	path := "/api/v1/cases"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	raw, err := apiGet(cmd.Context(), base, path, token)
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden cases: %v\n", err)
		return exitCode(2)
	}
	var list struct {
		Cases []json.RawMessage `json:"cases"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		fmt.Fprintf(stderr, "rootwarden cases: decode the API answer: %v\n", err)
		return exitCode(2)
	}
	if o.json {
		if list.Cases == nil {
			list.Cases = []json.RawMessage{} // scripts read an array, never null
		}
		return writeJSON(stdout, list.Cases)
	}
	cases := make([]apiCase, 0, len(list.Cases))
	for _, c := range list.Cases {
		var ac apiCase
		if err := json.Unmarshal(c, &ac); err != nil {
			fmt.Fprintf(stderr, "rootwarden cases: decode the API answer: %v\n", err)
			return exitCode(2)
		}
		cases = append(cases, ac)
	}
	if len(cases) == 0 {
		fmt.Fprintln(stdout, "no cases")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tACCOUNT\tNAME\tSTATE\tSEVERITY\tTICKET\tOPENED\tUPDATED")
	for _, c := range cases {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.AccountID, dash(escape.Log(c.AccountName)), c.State, c.Severity,
			ticketText(c), c.OpenedAt.UTC().Format(time.RFC3339), c.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func (o *casesOptions) show(cmd *cobra.Command, id string) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	base, token, err := o.client(cmd)
	if err != nil {
		return err
	}
	raw, err := apiGet(cmd.Context(), base, "/api/v1/cases/"+url.PathEscape(id), token)
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden cases: %v\n", err)
		return exitCode(2)
	}
	if o.json {
		if code := writeRaw(stdout, raw, stderr); code != 0 {
			return exitCode(code)
		}
		return nil
	}
	var c apiCase
	if err := json.Unmarshal(raw, &c); err != nil {
		fmt.Fprintf(stderr, "rootwarden cases: decode the API answer: %v\n", err)
		return exitCode(2)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "case:\t%s\naccount:\t%s %s\nstate:\t%s\nseverity:\t%s\nticket:\t%s\nopened:\t%s\nupdated:\t%s\n",
		c.ID, c.AccountID, escape.Log(c.AccountName), c.State, c.Severity, ticketText(c),
		c.OpenedAt.UTC().Format(time.RFC3339), c.UpdatedAt.UTC().Format(time.RFC3339))
	if c.Risk != nil {
		fmt.Fprintf(tw, "risk accepted:\tuntil %s: %s\n", c.Risk.Expires.UTC().Format(time.RFC3339), escape.Log(c.Risk.Reason))
	}
	if c.LastError != "" {
		fmt.Fprintf(tw, "last error:\t%s\n", escape.Log(c.LastError))
	}
	_ = tw.Flush()
	fmt.Fprintln(stdout, "\nhistory:")
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, h := range c.History {
		who := h.Actor.Name
		if who == "" {
			who = h.Actor.ID
		}
		if who == "" {
			who = h.Actor.Kind
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", h.Seq, h.At.UTC().Format(time.RFC3339), h.Type,
			dash(h.To), who, h.Reason)
	}
	return tw.Flush()
}

// uncheckedAccount is the part of GET /api/v1/unchecked's accounts the CLI prints.
type uncheckedAccount struct {
	AccountID   string    `json:"account_id"`
	Reason      string    `json:"reason"`
	Error       string    `json:"error"`
	Failures    int       `json:"failures"`
	Since       time.Time `json:"since"`
	LastFailure time.Time `json:"last_failure"`
}

func (o *casesOptions) unchecked(cmd *cobra.Command) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	base, token, err := o.client(cmd)
	if err != nil {
		return err
	}
	raw, err := apiGet(cmd.Context(), base, "/api/v1/unchecked", token)
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden cases: %v\n", err)
		return exitCode(2)
	}
	var ans struct {
		Accounts []json.RawMessage `json:"accounts"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil || ans.Accounts == nil {
		fmt.Fprintf(stderr, "rootwarden cases: decode the API answer: %v (a rootwarden older than this CLI answers without \"accounts\")\n", err)
		return exitCode(2)
	}
	if o.json {
		return writeJSON(stdout, ans.Accounts)
	}
	if len(ans.Accounts) == 0 {
		fmt.Fprintln(stdout, "no unchecked accounts: no account's checks are failing several times in a row")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tREASON\tFAILURES\tSINCE\tLAST FAILURE\tERROR")
	for _, r := range ans.Accounts {
		var u uncheckedAccount
		if err := json.Unmarshal(r, &u); err != nil {
			fmt.Fprintf(stderr, "rootwarden cases: decode the API answer: %v\n", err)
			return exitCode(2)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", u.AccountID, u.Reason, u.Failures, u.Since.UTC().Format(time.RFC3339),
			u.LastFailure.UTC().Format(time.RFC3339), tableCell(u.Error))
	}
	return tw.Flush()
}

// tableCell keeps a table row on one line whatever the text holds.
func tableCell(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func writeRaw(stdout io.Writer, raw []byte, stderr io.Writer) int {
	if _, err := stdout.Write(raw); err != nil {
		fmt.Fprintf(stderr, "rootwarden cases: %v\n", err)
		return 2
	}
	return 0
}

func ticketText(c apiCase) string {
	if c.Ticket == nil {
		return "-"
	}
	if c.Ticket.URL != "" && !strings.HasPrefix(c.Ticket.URL, "rootwarden:") {
		return c.Ticket.ID + " " + c.Ticket.URL
	}
	return c.Ticket.ID
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// apiURL is flag, else ROOTWARDEN_API_URL, else derived from ROOTWARDEN_HTTP_ADDR, else the default.
func apiURL(flag string) (string, error) {
	u := flag
	if u == "" {
		u = os.Getenv("ROOTWARDEN_API_URL")
	}
	if u != "" {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return "", fmt.Errorf("ROOTWARDEN_API_URL %q is not an http(s) URL", u)
		}
		return strings.TrimRight(u, "/"), nil
	}
	return apiURLFromAddr(os.Getenv("ROOTWARDEN_HTTP_ADDR"))
}

// apiURLFromAddr is the http:// URL of a listen address (host:port; an unspecified
// host is this machine), or the default http://127.0.0.1:8080 for "".
func apiURLFromAddr(addr string) (string, error) {
	if addr == "" {
		return "http://127.0.0.1:8080", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("ROOTWARDEN_HTTP_ADDR %q is not host:port", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

func apiGet(ctx context.Context, base, path, token string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("call the case API at %s: %v (is rootwarden run or remediator running there? set ROOTWARDEN_API_URL or --api-url)", base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read the case API answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("case API: HTTP %d: %s", resp.StatusCode, e.Error)
		}
		return nil, fmt.Errorf("case API: HTTP %d", resp.StatusCode)
	}
	return raw, nil
}
