package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/config"
	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
)

// Exit codes of `rootwarden scan`.
const (
	scanClean = 0 // every account checked, no root access keys
	scanFound = 1 // root access keys found (and every account checked)
	scanError = 2 // set-up failed or at least one account could not be checked
)

// scanSchemaVersion is the version of scanRow's JSON; docs/scan.md documents it.
const scanSchemaVersion = 2

// scanRow is one account in `scan`'s JSON and CSV output. It is an output type, not
// model.Observation: fields a script tests have one meaning each, and a value that
// is not known is null, never a default that reads as an answer.
type scanRow struct {
	SchemaVersion int    `json:"schema_version"`
	AccountID     string `json:"account_id"`
	AccountName   string `json:"account_name"`
	// Status is "root_keys" (a finding), "clean", or "error" (could not be checked).
	Status string `json:"status"`
	// RootKeysPresent is null when the account could not be checked.
	RootKeysPresent *bool `json:"root_keys_present"`
	// Severity is "critical" (a key used in the last 7 days) or "high"; null unless
	// root keys are present.
	Severity *string           `json:"severity"`
	Keys     []model.KeyDetail `json:"-"`
	// JSONKeys are Keys as the JSON shows them: every field on every key.
	JSONKeys []scanKey `json:"keys"`
	// Management is null when no organization was listed (--org-role unset): the
	// caller's account alone says nothing about it.
	Management *bool      `json:"management"`
	OrgMember  bool       `json:"org_member"`
	OUPath     string     `json:"ou_path,omitempty"`
	ObservedAt time.Time  `json:"observed_at"`
	ReportAt   *time.Time `json:"credential_report_at,omitempty"`
	Error      *string    `json:"error"`      // null when the check worked
	ErrorCode  *string    `json:"error_code"` // e.g. AccessDenied; null when none

	// Tags are the account's Organizations tags (the owner tag among them), read
	// for accounts with root keys only (with --org-role); absent otherwise.
	Tags map[string]string `json:"tags,omitempty"`

	// RootCredentials is every root credential the account summary reports (each
	// true, false, or null when AWS's answer did not say); null when the account
	// could not be checked (scanposture.go).
	RootCredentials *scanRootCreds `json:"root_credentials"`
}

func newScanRow(o model.Observation, orgMode bool, now time.Time) scanRow {
	r := scanRow{SchemaVersion: scanSchemaVersion, AccountID: o.AccountID, AccountName: o.AccountName,
		Keys: o.Keys, OrgMember: o.OrgMember, OUPath: o.OUPath, Tags: o.Tags, ObservedAt: o.ObservedAt.UTC(), ReportAt: o.ReportAt,
		RootCredentials: newScanRootCreds(o)}
	if r.Keys == nil {
		r.Keys = []model.KeyDetail{}
	}
	r.JSONKeys = make([]scanKey, 0, len(r.Keys))
	for _, k := range r.Keys {
		r.JSONKeys = append(r.JSONKeys, newScanKey(k))
	}
	if orgMode {
		m := o.Management
		r.Management = &m
	}
	switch {
	case o.Failed():
		r.Status = "error"
		e := o.Error
		r.Error = &e
		if o.ErrorCode != "" {
			c := o.ErrorCode
			r.ErrorCode = &c
		}
	case o.RootKeysPresent:
		r.Status = "root_keys"
		t := true
		r.RootKeysPresent = &t
		sev := string(model.SeverityOf(o, now))
		r.Severity = &sev
	default:
		r.Status = "clean"
		f := false
		r.RootKeysPresent = &f
	}
	return r
}

// scanKey is one root access key in scan's JSON. Every field is always there, null
// when not known or never: a key never used has last_used_at, last_used_region and
// last_used_service null (the credential report says "N/A").
type scanKey struct {
	Slot            int        `json:"slot"`
	Active          bool       `json:"active"`
	LastRotated     *time.Time `json:"last_rotated"`
	LastUsedAt      *time.Time `json:"last_used_at"`
	LastUsedRegion  *string    `json:"last_used_region"`
	LastUsedService *string    `json:"last_used_service"`
}

func newScanKey(k model.KeyDetail) scanKey {
	orNull := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	return scanKey{Slot: k.Slot, Active: k.Active, LastRotated: k.LastRotated, LastUsedAt: k.LastUsedAt,
		LastUsedRegion: orNull(k.LastUsedRegion), LastUsedService: orNull(k.LastUsedService)}
}

func (r scanRow) severity() string {
	if r.Severity == nil {
		return ""
	}
	return *r.Severity
}

// rank orders rows for people: findings first (critical, then high), then accounts
// that could not be checked, then clean ones.
func (r scanRow) rank() int {
	switch {
	case r.severity() == string(model.SeverityCritical):
		return 0
	case r.Status == "root_keys":
		return 1
	case r.Status == "error":
		return 2
	}
	return 3
}

const scanLong = `Check the account now (or, with --org-role, every ACTIVE account of the AWS
Organization) without NATS or Slack, print the result, and exit:
  0  every account checked, no root access keys
  1  root access keys found (every account checked)
  2  an account could not be checked, or set-up failed (the reason on stderr)

It reads the same configuration as run: the environment, the YAML file (--config or
ROOTWARDEN_CONFIG) and these flags, which beat both. For CI, build the binary
(go build -o rootwarden ./cmd/rootwarden): "go run" turns exit code 2 into 1.

Formats (--format): table (default; findings first), json (an array of objects, schema
in docs/scan.md), csv, sarif (SARIF 2.1.0, for code-scanning dashboards), ocsf (OCSF
Detection Finding objects, as Prowler emits, for Security Hub and SIEM import).`

func newScanCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "scan", Short: "Check AWS now and print the result (exit 0 none, 1 root keys, 2 error)",
		Long: scanLong, Args: cobra.NoArgs}
	ef := &envFlags{fs: cmd.Flags()}
	ef.add("ROOTWARDEN_ORG_ROLE_NAME", "role to assume in every account of the Organization (empty: only the caller's account)")
	ef.add("ROOTWARDEN_ORG_EXTERNAL_ID", "external id for that role")
	ef.add("ROOTWARDEN_SCAN_CONCURRENCY", "accounts checked at once (default 64)")
	ef.add("ROOTWARDEN_ACCOUNT_TIMEOUT", "time limit per account (default 60s)")
	ef.add("ROOTWARDEN_LOG_FORMAT", "format of the -v log on stderr: text or json")
	asJSON := cmd.Flags().Bool("json", false, "print JSON (the same as --format json)")
	format := cmd.Flags().StringP("format", "o", "table", "table, json, json-report, csv, sarif or ocsf")
	onlyFindings := cmd.Flags().Bool("only-findings", false, "print only accounts with root keys or that could not be checked")
	verbose := cmd.Flags().BoolP("verbose", "v", false, "log each account check, and progress, on stderr")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"table", "json", "json-report", "csv", "sarif", "ocsf"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f := *format
		if *asJSON {
			if cmd.Flags().Changed("format") && f != "json" {
				return usagef("--json and --format %s contradict each other", f)
			}
			f = "json"
		}
		if !scanFormats[f] {
			return usagef("--format %q is not one of table, json, json-report, csv, sarif, ocsf", f)
		}
		return exitCode(scan(cmd.Context(), ef.getenv(cmd, os.Getenv), scanOptions{format: f, onlyFindings: *onlyFindings,
			verbose: *verbose, checkEnviron: true}, cmd.OutOrStdout(), cmd.ErrOrStderr()))
	}
	cmd.Long += scanPostureLong
	return cmd
}

var scanFormats = map[string]bool{"table": true, "json": true, "json-report": true, "csv": true, "sarif": true, "ocsf": true}

// runScan runs `rootwarden scan args…` (tests call it).
func runScan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, append([]string{"scan"}, args...), stdout, stderr)
}

type scanOptions struct {
	format       string
	onlyFindings bool
	verbose      bool
	checkEnviron bool // warn about misspelt ROOTWARDEN_* variables in os.Environ
}

func scan(ctx context.Context, getenv func(string) string, opt scanOptions, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "rootwarden scan: "+format+"\n", a...)
		return scanError
	}
	cfg, err := config.Load(getenv)
	var warnings []string
	if err == nil && opt.checkEnviron {
		warnings, err = cfg.CheckEnviron(os.Environ(), getenv)
	}
	if err == nil {
		err = cfg.Validate(config.RoleDetector)
	}
	if err != nil {
		return fail("configuration: %s", oneLine(err))
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "rootwarden scan: warning: %s\n", w)
	}
	level := slog.LevelError
	if opt.verbose {
		level = slog.LevelDebug
	}
	hopts := &slog.HandlerOptions{Level: level, ReplaceAttr: logConventions}
	var log *slog.Logger
	if cfg.LogFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, hopts))
	} else {
		log = slog.New(slog.NewTextHandler(stderr, hopts))
	}

	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return fail("%s", oneLine(explainAWS(err, "")))
	}
	sc, err := detector.NewScanner(detector.Config{
		OrgRoleName:    cfg.OrgRoleName,
		ExternalID:     cfg.OrgExternalID,
		Concurrency:    cfg.Concurrency,
		AccountTimeout: cfg.AccountTimeout,
		OrgAPIShare:    float64(cfg.OrgAPIShare) / 100,
	}, log, awsCfg)
	if err != nil {
		return fail("%s", oneLine(err))
	}
	var progress io.Writer
	if opt.verbose || isTerminal(stderr) {
		progress = stderr
	}
	started := time.Now()
	obs, err := sc.Scan(ctx, progress)
	if err != nil {
		if ctx.Err() != nil {
			return fail("interrupted before every account was checked")
		}
		return fail("%s", oneLine(explainAWS(err, "")))
	}
	now := time.Now()
	orgMode := cfg.OrgRoleName != ""
	if orgMode && len(obs) == 0 {
		// An organization holds at least its management account: an empty listing
		// is a listing that did not work (moto answers a member account so), never
		// "no root keys".
		return fail("the organization's listing holds no ACTIVE account, not even the management account: " +
			"scan with the management account's credentials, or those of a delegated administrator for Organizations")
	}
	var ra model.OrgRootAccess
	if orgMode {
		ra, _ = sc.OrgRootAccess(ctx) // a refusal is an unknown posture, never an error
	}
	posture := newScanOrganization(obs, ra, orgMode)
	mgmt := ""
	rows := make([]scanRow, 0, len(obs))
	code, failed, withKeys := scanClean, 0, 0
	for _, o := range obs {
		if o.Management {
			mgmt = o.AccountID
		}
		r := newScanRow(o, orgMode, now)
		switch r.Status {
		case "error":
			failed++
		case "root_keys":
			withKeys++
			code = scanFound
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].rank() != rows[j].rank() {
			return rows[i].rank() < rows[j].rank()
		}
		return rows[i].AccountID < rows[j].AccountID
	})
	shown := rows
	if opt.onlyFindings {
		shown = make([]scanRow, 0, len(rows))
		for _, r := range rows {
			if r.Status != "clean" {
				shown = append(shown, r)
			}
		}
	}
	var werr error
	switch opt.format {
	case "json":
		werr = writeJSON(stdout, shown)
	case "json-report":
		werr = writeJSON(stdout, scanReport{SchemaVersion: scanSchemaVersion, Organization: posture, Accounts: shown})
	case "csv":
		werr = writeScanCSV(stdout, shown)
	case "sarif":
		var b bytes.Buffer
		if werr = writeScanSARIF(&b, shown); werr == nil {
			var doc []byte
			if doc, werr = addPostureSARIF(b.Bytes(), shown, posture); werr == nil {
				_, werr = stdout.Write(doc)
			}
		}
	case "ocsf":
		var b bytes.Buffer
		if werr = writeScanOCSF(&b, shown, now); werr == nil {
			var doc []byte
			if doc, werr = addPostureOCSF(b.Bytes(), shown, posture, now, mgmt); werr == nil {
				_, werr = stdout.Write(doc)
			}
		}
	default:
		printScanTable(stdout, shown, now)
		summary := fmt.Sprintf("\n%s: %d with root access keys, %d could not be checked", plural(len(rows), "account"), withKeys, failed)
		if !orgMode {
			summary += " (only the caller's account: set --org-role to check every account of the organization)"
		}
		fmt.Fprintf(stdout, "%s; took %s\n", summary, time.Since(started).Round(10*time.Millisecond))
		printPostureSummary(stdout, posture)
	}
	if werr != nil {
		return fail("write %s: %v", opt.format, werr)
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "rootwarden scan: %d of %s could not be checked%s\n", failed, plural(len(rows), "account"),
			scanFailureHint(rows, cfg.OrgRoleName))
		return scanError
	}
	return code
}

// scanFailureHint says in a few words what the commonest failures mean.
func scanFailureHint(rows []scanRow, role string) string {
	assume, denied, throttled := 0, 0, 0
	for _, r := range rows {
		if r.Status != "error" {
			continue
		}
		msg, code := *r.Error, ""
		if r.ErrorCode != nil {
			code = *r.ErrorCode
		}
		switch {
		case strings.Contains(msg, "AssumeRole") && strings.Contains(code+msg, "AccessDenied"):
			assume++
		case strings.Contains(code, "AccessDenied"):
			denied++
		case strings.Contains(code, "Throttl") || strings.Contains(code, "TooManyRequests"):
			throttled++
		}
	}
	var parts []string
	if assume > 0 {
		parts = append(parts, fmt.Sprintf("%d denied sts:AssumeRole on %s: check that the role exists in each member account and trusts this account's principal (and the external id, if set)", assume, role))
	}
	if denied > 0 {
		parts = append(parts, fmt.Sprintf("%d denied IAM reads: the role needs iam:GetAccountSummary, iam:GenerateCredentialReport and iam:GetCredentialReport", denied))
	}
	if throttled > 0 {
		parts = append(parts, fmt.Sprintf("%d throttled by AWS: lower --concurrency or retry", throttled))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// printScanTable writes one aligned row per account. The ERROR column appears only
// when an account could not be checked.
func printScanTable(w io.Writer, rows []scanRow, now time.Time) {
	anyErr := false
	for _, r := range rows {
		anyErr = anyErr || r.Status == "error"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "ACCOUNT\tNAME\tSEVERITY\tROOT KEYS\tKEY AGE\tLAST USED"
	if anyErr {
		header += "\tERROR"
	}

	header += "\tOTHER ROOT CREDENTIALS" // scanposture.go
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		keys, age, used, sev := "no", "-", "-", "-"
		switch r.Status {
		case "error":
			keys, sev = "?", "?"
		case "root_keys":
			keys, sev = scanDescribeKeys(r.Keys), r.severity()
			age, used = scanKeyAge(r.Keys, now), scanLastUsed(r.Keys)
		}
		// Names and errors come from AWS: no control character reaches the terminal.
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", r.AccountID, scanOrDash(escape.Log(r.AccountName)), sev, keys, age, used)
		if anyErr {
			line += "\t" + scanOrDash(escape.Log(scanErrorCell(r)))
		}

		line += "\t" + otherRootCreds(r)
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
}

// scanDescribeKeys says how many keys there are and how many are active.
func scanDescribeKeys(keys []model.KeyDetail) string {
	if len(keys) == 0 {
		return "yes"
	}
	active := 0
	for _, k := range keys {
		if k.Active {
			active++
		}
	}
	if len(keys) == 1 {
		if active == 1 {
			return "yes, 1 active key"
		}
		return "yes, 1 inactive key"
	}
	return fmt.Sprintf("yes, %d keys (%d active)", len(keys), active)
}

// scanKeyAge is the age of the oldest key, in days.
func scanKeyAge(keys []model.KeyDetail, now time.Time) string {
	if oldest := oldestKey(keys); oldest != nil {
		return strconv.Itoa(int(now.Sub(*oldest).Hours()/24)) + "d"
	}
	return "?"
}

func oldestKey(keys []model.KeyDetail) *time.Time {
	var oldest *time.Time
	for _, k := range keys {
		if k.LastRotated != nil && (oldest == nil || k.LastRotated.Before(*oldest)) {
			oldest = k.LastRotated
		}
	}
	return oldest
}

// lastUse is the most recently used key, or nil.
func lastUse(keys []model.KeyDetail) *model.KeyDetail {
	var last *model.KeyDetail
	for i := range keys {
		k := &keys[i]
		if k.LastUsedAt != nil && (last == nil || k.LastUsedAt.After(*last.LastUsedAt)) {
			last = k
		}
	}
	return last
}

// scanLastUsed is the most recent use of any key: date, region and service.
func scanLastUsed(keys []model.KeyDetail) string {
	last := lastUse(keys)
	if last == nil {
		return "never"
	}
	s := last.LastUsedAt.UTC().Format("2006-01-02")
	if where := strings.TrimSpace(last.LastUsedRegion + " " + last.LastUsedService); where != "" {
		s += " (" + where + ")"
	}
	return s
}

// scanErrorCell is the error, cut short enough for a table (the JSON has it whole).
func scanErrorCell(r scanRow) string {
	if r.Error == nil {
		return ""
	}
	msg := *r.Error
	if r.ErrorCode != nil && !strings.Contains(msg, *r.ErrorCode) {
		msg = *r.ErrorCode + ": " + msg
	}
	if rs := []rune(msg); len(rs) > 80 {
		msg = string(rs[:80]) + "…"
	}
	return msg
}

func scanOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// plural is "1 account", "2 accounts".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// isTerminal reports whether w is a terminal (progress lines are for people).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
