package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

const casesUsage = `usage: rootwarden cases [list] [--json] [--state S] [--account A]
       rootwarden cases show ID [--json]

Reads the case API at ROOTWARDEN_API_URL (default: derived from ROOTWARDEN_HTTP_ADDR,
else http://127.0.0.1:8080) with the bearer token ROOTWARDEN_API_TOKEN.
States: open, ticketed, verifying, resolved, risk_accepted, active.
`

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

// runCases lists or shows cases through the case API. Exit 0 on success, 2 on errors.
func runCases(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "rootwarden cases: "+format+"\n", a...)
		return 2
	}
	fs := flag.NewFlagSet("cases", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	state := fs.String("state", "", "only cases in this state")
	account := fs.String("account", "", "only cases of this account")
	// Flags may come before or after the positional words.
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, casesUsage)
				return 0
			}
			return fail("%v (see rootwarden cases --help)", err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	sub := "list"
	if len(pos) > 0 {
		sub = pos[0]
	}
	base, err := apiURL()
	if err != nil {
		return fail("%v", err)
	}
	token := os.Getenv("ROOTWARDEN_API_TOKEN")
	if token == "" {
		return fail("ROOTWARDEN_API_TOKEN is not set")
	}
	switch {
	case sub == "list" && len(pos) <= 1:
		q := url.Values{}
		if *state != "" {
			q.Set("state", *state)
		}
		if *account != "" {
			q.Set("account", *account)
		}
		path := "/api/v1/cases"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		raw, err := apiGet(ctx, base, path, token)
		if err != nil {
			return fail("%v", err)
		}
		if *asJSON {
			return writeRaw(stdout, raw, stderr)
		}
		var list struct {
			Cases []apiCase `json:"cases"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return fail("decode the API answer: %v", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CASE\tACCOUNT\tNAME\tSTATE\tSEVERITY\tTICKET\tOPENED\tUPDATED")
		for _, c := range list.Cases {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.AccountID, dash(c.AccountName), c.State, c.Severity,
				ticketText(c), c.OpenedAt.UTC().Format(time.RFC3339), c.UpdatedAt.UTC().Format(time.RFC3339))
		}
		_ = tw.Flush()
		if len(list.Cases) == 0 {
			fmt.Fprintln(stdout, "no cases")
		}
		return 0
	case sub == "show" && len(pos) == 2:
		raw, err := apiGet(ctx, base, "/api/v1/cases/"+url.PathEscape(pos[1]), token)
		if err != nil {
			return fail("%v", err)
		}
		if *asJSON {
			return writeRaw(stdout, raw, stderr)
		}
		var c apiCase
		if err := json.Unmarshal(raw, &c); err != nil {
			return fail("decode the API answer: %v", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "case:\t%s\naccount:\t%s %s\nstate:\t%s\nseverity:\t%s\nticket:\t%s\nopened:\t%s\nupdated:\t%s\n",
			c.ID, c.AccountID, c.AccountName, c.State, c.Severity, ticketText(c),
			c.OpenedAt.UTC().Format(time.RFC3339), c.UpdatedAt.UTC().Format(time.RFC3339))
		if c.Risk != nil {
			fmt.Fprintf(tw, "risk accepted:\tuntil %s: %s\n", c.Risk.Expires.UTC().Format(time.RFC3339), c.Risk.Reason)
		}
		if c.LastError != "" {
			fmt.Fprintf(tw, "last error:\t%s\n", c.LastError)
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
		_ = tw.Flush()
		return 0
	}
	return fail("unknown arguments %q (usage: rootwarden cases [list] [--json] [--state S] [--account A] | cases show ID [--json])",
		strings.Join(pos, " "))
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

// apiURL is ROOTWARDEN_API_URL, else derived from ROOTWARDEN_HTTP_ADDR, else the default.
func apiURL() (string, error) {
	if u := os.Getenv("ROOTWARDEN_API_URL"); u != "" {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return "", fmt.Errorf("ROOTWARDEN_API_URL %q is not an http(s) URL", u)
		}
		return strings.TrimRight(u, "/"), nil
	}
	if addr := os.Getenv("ROOTWARDEN_HTTP_ADDR"); addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", fmt.Errorf("ROOTWARDEN_HTTP_ADDR %q is not host:port", addr)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		return "http://" + net.JoinHostPort(host, port), nil
	}
	return "http://127.0.0.1:8080", nil
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
		return nil, fmt.Errorf("call the case API: %v", err)
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
