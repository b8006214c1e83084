package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/model"
)

// Exit codes of `rootwarden scan`.
const (
	scanClean = 0 // every account checked, no root access keys
	scanFound = 1 // root access keys found (and every account checked)
	scanError = 2 // set-up failed or at least one account could not be checked
)

// runScan checks the account (or, with --org-role, every ACTIVE account of the
// Organization) now, without NATS, and prints a table or --json.
func runScan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	envConcurrency, err := scanEnvInt("ROOTWARDEN_SCAN_CONCURRENCY", detector.DefaultConcurrency)
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden scan: %v\n", err)
		return scanError
	}
	envTimeout, err := scanEnvDuration("ROOTWARDEN_ACCOUNT_TIMEOUT", detector.DefaultAccountTimeout)
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden scan: %v\n", err)
		return scanError
	}
	fs := flag.NewFlagSet("rootwarden scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print a JSON array, one object per account")
	concurrency := fs.Int("concurrency", envConcurrency, "accounts checked at once")
	orgRole := fs.String("org-role", os.Getenv("ROOTWARDEN_ORG_ROLE_NAME"), "role to assume in every account of the Organization (empty: only the caller's account)")
	externalID := fs.String("external-id", os.Getenv("ROOTWARDEN_ORG_EXTERNAL_ID"), "external id for AssumeRole")
	timeout := fs.Duration("account-timeout", envTimeout, "time limit per account")
	verbose := fs.Bool("v", false, "log each account check on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rootwarden scan [--json] [--concurrency N] [--org-role NAME] [--external-id ID]")
		fmt.Fprintln(stderr, "exit 0: no root access keys; 1: root access keys found; 2: an account could not be checked or set-up failed")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return scanClean
		}
		return scanError
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rootwarden scan: unexpected argument %q\n", fs.Arg(0))
		return scanError
	}
	if *concurrency < 1 {
		fmt.Fprintln(stderr, "rootwarden scan: --concurrency must be at least 1")
		return scanError
	}

	level := slog.LevelError
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden scan: AWS configuration: %v\n", err)
		return scanError
	}
	sc, err := detector.NewScanner(detector.Config{
		OrgRoleName:    *orgRole,
		ExternalID:     *externalID,
		Concurrency:    *concurrency,
		AccountTimeout: *timeout,
	}, log, awsCfg)
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden scan: %s\n", scanOneLine(err))
		return scanError
	}
	obs, err := sc.Scan(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden scan: %s\n", scanOneLine(err))
		return scanError
	}

	if *asJSON {
		if obs == nil {
			obs = []model.Observation{} // scripts read an array, never null
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(obs); err != nil {
			fmt.Fprintf(stderr, "rootwarden scan: write JSON: %v\n", err)
			return scanError
		}
	} else {
		printScanTable(stdout, obs, time.Now())
	}

	code := scanClean
	failed := 0
	for _, o := range obs {
		switch {
		case o.Failed():
			failed++
		case o.RootKeysPresent && code == scanClean:
			code = scanFound
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "rootwarden scan: %d of %d accounts could not be checked\n", failed, len(obs))
		return scanError
	}
	return code
}

// printScanTable writes one row per account and a summary line.
func printScanTable(w io.Writer, obs []model.Observation, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tNAME\tROOT KEYS\tKEY AGE\tLAST USED\tERROR")
	withKeys, failed := 0, 0
	for _, o := range obs {
		keys, age, used := "no", "-", "-"
		switch {
		case o.Failed():
			keys = "?"
			failed++
		case o.RootKeysPresent:
			withKeys++
			keys = scanDescribeKeys(o.Keys)
			age, used = scanKeyAge(o.Keys, now), scanLastUsed(o.Keys)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.AccountID, scanOrDash(o.AccountName), keys, age, used,
			scanOrDash(scanErrorCell(o)))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\n%d accounts: %d with root access keys, %d could not be checked\n", len(obs), withKeys, failed)
}

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
	return fmt.Sprintf("yes (%d, %d active)", len(keys), active)
}

// scanKeyAge is the age of the oldest key, in days.
func scanKeyAge(keys []model.KeyDetail, now time.Time) string {
	var oldest *time.Time
	for _, k := range keys {
		if k.LastRotated != nil && (oldest == nil || k.LastRotated.Before(*oldest)) {
			oldest = k.LastRotated
		}
	}
	if oldest == nil {
		return "?"
	}
	return strconv.Itoa(int(now.Sub(*oldest).Hours()/24)) + "d"
}

// scanLastUsed is the most recent use of any key: date, region and service.
func scanLastUsed(keys []model.KeyDetail) string {
	var last *model.KeyDetail
	for i := range keys {
		k := &keys[i]
		if k.LastUsedAt != nil && (last == nil || k.LastUsedAt.After(*last.LastUsedAt)) {
			last = k
		}
	}
	if last == nil {
		return "never"
	}
	s := last.LastUsedAt.UTC().Format("2006-01-02")
	if where := strings.TrimSpace(last.LastUsedRegion + " " + last.LastUsedService); where != "" {
		s += " (" + where + ")"
	}
	return s
}

func scanErrorCell(o model.Observation) string {
	if !o.Failed() {
		return ""
	}
	msg := o.Error
	if o.ErrorCode != "" && !strings.Contains(msg, o.ErrorCode) {
		msg = o.ErrorCode + ": " + msg
	}
	if r := []rune(msg); len(r) > 160 {
		msg = string(r[:160]) + "…"
	}
	return msg
}

func scanOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func scanOneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

// scanEnvInt reads a whole number of at least 1 from the environment; unset → def.
func scanEnvInt(name string, def int) (int, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s: %q is not a whole number of at least 1", name, v)
	}
	return n, nil
}

// scanEnvDuration reads a positive duration from the environment; unset → def.
func scanEnvDuration(name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive duration like 30s or 2m", name, v)
	}
	return d, nil
}
