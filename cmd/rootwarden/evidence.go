package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rootwarden/rootwarden/internal/config"
	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/evidence"
	"github.com/rootwarden/rootwarden/remediator"
)

const evidenceLong = `Export the evidence pack of a period for an auditor, or verify the audit log.

It reads the evidence API of a running rootwarden at ROOTWARDEN_API_URL (default:
derived from ROOTWARDEN_HTTP_ADDR, else http://127.0.0.1:8080) with the read-only
token ROOTWARDEN_EVIDENCE_TOKEN (not the case API's). --from and --to are days
(both included) or RFC 3339 times. With --file, the pack is written there and,
when the server signs packs, its SSH signature beside it (FILE.sig), which
  ssh-keygen -Y verify -f allowed_signers -I rootwarden -n rootwarden-evidence -s FILE.sig < FILE
checks. docs/evidence.md describes the pack.`

type evidenceOptions struct {
	from, to, ou, format, file, apiURL string
	json                               bool
}

func newEvidenceCmd() *cobra.Command {
	var o evidenceOptions
	cmd := &cobra.Command{Use: "evidence", Short: "Export the signed evidence pack of a period (evidence | evidence verify)",
		Long: evidenceLong, Args: cobra.NoArgs,
		Example: "  rootwarden evidence --from 2026-10-01 --to 2026-12-31 --ou Root/Prod -o html --file q4.html",
		RunE:    func(cmd *cobra.Command, args []string) error { return o.export(cmd) }}
	cmd.Flags().StringVar(&o.from, "from", "", "first day of the period (2026-10-01) or an RFC 3339 time")
	cmd.Flags().StringVar(&o.to, "to", "", "last day of the period, included (default: now)")
	cmd.Flags().StringVar(&o.ou, "ou", "", "only accounts at or under this OU path (Root/Prod)")
	cmd.Flags().StringVarP(&o.format, "output", "o", "json", "format: json, csv or html")
	cmd.Flags().StringVar(&o.file, "file", "", "write the pack to FILE and its signature to FILE.sig (default: the pack on stdout)")
	verify := &cobra.Command{Use: "verify", Short: "Check the audit log's hash chain: every gap or edit, named (exit 1 if any)",
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error { return o.verify(cmd) }}
	verify.Flags().BoolVar(&o.json, "json", false, "print the report as JSON")
	for _, c := range []*cobra.Command{cmd, verify} {
		c.Flags().StringVar(&o.apiURL, "api-url", "", "API base URL (ROOTWARDEN_API_URL)")
		_ = c.Flags().SetAnnotation("api-url", envAnnotation, []string{"ROOTWARDEN_API_URL"})
	}
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(evidence.Formats, cobra.ShellCompDirectiveNoFileComp))
	cmd.AddCommand(verify)
	return cmd
}

func (o *evidenceOptions) client(cmd *cobra.Command) (base, token string, err error) {
	fail := func(format string, a ...any) error {
		fmt.Fprintf(cmd.ErrOrStderr(), "rootwarden evidence: "+format+"\n", a...)
		return exitCode(2)
	}
	if base, err = apiURL(o.apiURL); err != nil {
		return "", "", fail("%v", err)
	}
	if token, err = config.Secret(os.Getenv, "ROOTWARDEN_EVIDENCE_TOKEN"); err != nil {
		return "", "", fail("%v", err)
	}
	if token == "" {
		return "", "", fail("ROOTWARDEN_EVIDENCE_TOKEN is not set: set it (or ROOTWARDEN_EVIDENCE_TOKEN_FILE) to the evidence token the server was started with")
	}
	return base, token, nil
}

func (o *evidenceOptions) export(cmd *cobra.Command) error {
	if _, _, err := remediator.ParsePeriod(o.from, o.to, time.Now()); err != nil {
		return usagef("--%v", err)
	}
	switch o.format {
	case "json", "csv", "html":
	default:
		return usagef("-o %q: the format is json, csv or html", o.format)
	}
	base, token, err := o.client(cmd)
	if err != nil {
		return err
	}
	q := url.Values{"from": {o.from}, "format": {o.format}}
	if o.to != "" {
		q.Set("to", o.to)
	}
	if o.ou != "" {
		q.Set("ou", o.ou)
	}
	body, hdr, err := evidenceGet(cmd.Context(), base, "/api/v1/evidence?"+q.Encode(), token)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "rootwarden evidence: %v\n", err)
		return exitCode(2)
	}
	var sig []byte
	if s := hdr.Get(remediator.HeaderSignature); s != "" {
		if sig, err = base64.StdEncoding.DecodeString(s); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "rootwarden evidence: the signature header is not base64: %v\n", err)
			return exitCode(2)
		}
		if _, err := evidence.VerifySignature(body, sig); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "rootwarden evidence: the pack does not match its signature: %v\n", err)
			return exitCode(2)
		}
	}
	if o.file == "" {
		_, err := cmd.OutOrStdout().Write(body)
		if sig != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "rootwarden evidence: the pack is signed; give --file to keep its signature")
		}
		return err
	}
	if err := os.WriteFile(o.file, body, 0o600); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "rootwarden evidence: %v\n", err)
		return exitCode(2)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (sha256 %s)\n", o.file, escape.Log(hdr.Get(remediator.HeaderEvidenceSHA256)))
	if sig == nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "not signed: the server has no ROOTWARDEN_EVIDENCE_SIGNING_KEY")
		return nil
	}
	if err := os.WriteFile(o.file+".sig", sig, 0o644); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "rootwarden evidence: %v\n", err)
		return exitCode(2)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s.sig, signed by %s\n", o.file, escape.Log(hdr.Get(remediator.HeaderSigner)))
	return nil
}

func (o *evidenceOptions) verify(cmd *cobra.Command) error {
	base, token, err := o.client(cmd)
	if err != nil {
		return err
	}
	body, _, err := evidenceGet(cmd.Context(), base, "/api/v1/evidence/verify", token)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "rootwarden evidence verify: %v\n", err)
		return exitCode(2)
	}
	var rep evidence.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "rootwarden evidence verify: decode the answer: %v\n", err)
		return exitCode(2)
	}
	out := cmd.OutOrStdout()
	if o.json {
		if err := writeJSON(out, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "%d accounts, %d events: %d chained, %d before the chain (not provable)\n",
			rep.Accounts, rep.Events, rep.Chained, rep.BeforeChain)
		for _, p := range rep.Problems {
			fmt.Fprintln(out, escape.Log(p.String()))
		}
		if rep.OK {
			fmt.Fprintln(out, "ok: no gap and no edit in the audit log")
		}
	}
	if !rep.OK {
		return exitCode(1)
	}
	return nil
}

func evidenceGet(ctx context.Context, base, path, token string) ([]byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("call the evidence API at %s: %v (is rootwarden run or remediator running there? set ROOTWARDEN_API_URL or --api-url)", base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("read the evidence API answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return nil, nil, fmt.Errorf("evidence API: HTTP %d: %s", resp.StatusCode, escape.Log(e.Error))
		}
		return nil, nil, fmt.Errorf("evidence API: HTTP %d", resp.StatusCode)
	}
	return raw, resp.Header, nil
}
