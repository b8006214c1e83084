package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/config"
	"github.com/rootwarden/rootwarden/internal/httpx"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/remediator"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = dispatch(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// allCommands lists the path of every command of the tree (["scan"], ["cases", "show"], …).
func allCommands(c *cobra.Command, prefix []string) [][]string {
	var out [][]string
	for _, sub := range c.Commands() {
		p := append(append([]string{}, prefix...), sub.Name())
		out = append(out, p)
		out = append(out, allCommands(sub, p)...)
	}
	return out
}

// The contract of the command line, for every subcommand: --help and help CMD print
// the usage on stdout and exit 0 without starting anything (a server would hold the
// HTTP address, a scan would call AWS); an unknown flag exits 2 naming it.
func TestCLIContractForEveryCommand(t *testing.T) {
	scanSim(t, 0)
	// If a command started a server or called AWS, these would show it: the HTTP
	// address is one the test holds, AWS answers nothing but the test's recorder.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	awsCalls := 0
	aws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { awsCalls++; w.WriteHeader(500) }))
	defer aws.Close()
	t.Setenv("AWS_ENDPOINT_URL", aws.URL)
	t.Setenv("ROOTWARDEN_HTTP_ADDR", held.Addr().String())
	for k, v := range map[string]string{"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "ROOTWARDEN_SLACK_CHANNEL": "C0X",
		"ROOTWARDEN_API_TOKEN": "t", "ROOTWARDEN_CONFIG": ""} {
		t.Setenv(k, v)
	}

	cmds := allCommands(newRoot(io.Discard, io.Discard), nil)
	if len(cmds) < 12 {
		t.Fatalf("only %d commands found: %v", len(cmds), cmds)
	}
	for _, path := range cmds {
		name := strings.Join(path, " ")
		t.Run(name+" --help", func(t *testing.T) {
			code, out, errOut := runCLI(t, append(path, "--help")...)
			if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, path[len(path)-1]) {
				t.Fatalf("exit %d, stdout %q, stderr %q: want exit 0 and the usage on stdout", code, out, errOut)
			}
		})
		t.Run("help "+name, func(t *testing.T) {
			code, out, _ := runCLI(t, append([]string{"help"}, path...)...)
			if code != 0 || !strings.Contains(out, "Usage:") {
				t.Fatalf("exit %d, stdout %q", code, out)
			}
		})
		t.Run(name+" --no-such-flag", func(t *testing.T) {
			code, out, errOut := runCLI(t, append(path, "--no-such-flag")...)
			if code != 2 || !strings.Contains(errOut, "--no-such-flag") || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q: want exit 2 naming the flag", code, out, errOut)
			}
		})
	}
	if awsCalls != 0 {
		t.Errorf("help or a bad flag called AWS %d times", awsCalls)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout for 0, in stderr otherwise
	}{
		{[]string{"--help"}, 0, "Available Commands"},
		{[]string{"help"}, 0, "Available Commands"},
		{[]string{}, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, 2, `unknown help topic "frobnicate"`},
		{[]string{"sim", "extra"}, 2, `"extra"`},
		{[]string{"cases", "show"}, 2, "needs one case id"},
		{[]string{"cases", "--account", "member-2"}, 2, "12-digit id"},
		{[]string{"scan", "--format", "xml"}, 2, "--format"},
		{[]string{"--version"}, 0, "rootwarden "},
		{[]string{"version"}, 0, "commit "},
		{[]string{"completion", "bash"}, 0, "bash completion"},
		{[]string{"completion", "zsh"}, 0, "compdef"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			where := out
			if tc.code != 0 {
				where = errOut
			}
			if code != tc.code || !strings.Contains(where, tc.want) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q: want %q", code, tc.code, out, errOut, tc.want)
			}
		})
	}
}

// scan reads the same configuration as run: with the organization role only in the
// YAML file it checks every account (it used to check the caller's alone and exit 0
// while a member had a root key). A flag beats the environment, which beats the file.
func TestScanReadsTheRunConfiguration(t *testing.T) {
	sim := scanSim(t, 2)
	sim.CreateRootKey("200000000002", time.Now().AddDate(0, -1, 0))
	yml := filepath.Join(t.TempDir(), "rootwarden.yaml")
	if err := os.WriteFile(yml, []byte("org_role_name: OrganizationAccountAccessRole\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("ROOTWARDEN_CONFIG", func(t *testing.T) {
		t.Setenv("ROOTWARDEN_CONFIG", yml)
		if code, out, errOut := runScanT(t); code != 1 || !strings.Contains(out, "200000000002") {
			t.Fatalf("exit %d, want 1 (a member has a key)\n%s\n%s", code, out, errOut)
		}
	})
	t.Run("--config", func(t *testing.T) {
		t.Setenv("ROOTWARDEN_CONFIG", "")
		if code, out, errOut := runScanT(t, "--config", yml); code != 1 {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
		}
	})
	t.Run("a file that does not exist", func(t *testing.T) {
		code, _, errOut := runScanT(t, "--config", filepath.Join(t.TempDir(), "missing.yaml"))
		if code != 2 || !strings.Contains(errOut, "ROOTWARDEN_CONFIG") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("a misspelt variable is named, with the closest known one", func(t *testing.T) {
		t.Setenv("ROOTWARDEN_CONFIG", "")
		t.Setenv("ROOTWARDEN_ORG_ROLE", "OrganizationAccountAccessRole")
		// The role meant is unset: the scan would check one account, not the
		// Organization, and say all is well. It stops instead.
		code, _, errOut := runScanT(t)
		if code != 2 || !strings.Contains(errOut, "ROOTWARDEN_ORG_ROLE is not a variable; did you mean ROOTWARDEN_ORG_ROLE_NAME (which is unset)?") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
		// Set, the near name makes the misspelt one a warning.
		code, _, errOut = runScanT(t, "--org-role", "OrganizationAccountAccessRole")
		if code != 1 || !strings.Contains(errOut, "ROOTWARDEN_ORG_ROLE is not a rootwarden variable and is ignored (did you mean ROOTWARDEN_ORG_ROLE_NAME?)") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("environment beats the file, the flag beats the environment", func(t *testing.T) {
		t.Setenv("ROOTWARDEN_CONFIG", yml)
		t.Setenv("ROOTWARDEN_ORG_ROLE_NAME", "NoSuchRole")
		if code, _, _ := runScanT(t); code != 2 {
			t.Errorf("env role NoSuchRole: exit %d, want 2 (every member denied)", code)
		}
		if code, out, errOut := runScanT(t, "--org-role", "OrganizationAccountAccessRole"); code != 1 {
			t.Errorf("flag role: exit %d, want 1\n%s\n%s", code, out, errOut)
		}
	})
}

func TestScanOutputFormats(t *testing.T) {
	sim := scanSim(t, 3)
	sim.CreateRootKey("200000000003", time.Now().AddDate(-1, 0, 0))
	k := sim.CreateRootKey("200000000002", time.Now().AddDate(-2, 0, 0))
	sim.UseRootKey("200000000002", k, time.Now().Add(-time.Hour), "eu-west-1", "s3")
	const role = "OrganizationAccountAccessRole"

	t.Run("table: findings first, critical first, severity column", func(t *testing.T) {
		code, out, _ := runScanT(t, "--org-role", role)
		lines := strings.Split(out, "\n")
		if code != 1 || !strings.HasPrefix(lines[0], "ACCOUNT") || !strings.Contains(lines[0], "SEVERITY") {
			t.Fatalf("exit %d\n%s", code, out)
		}
		if !strings.HasPrefix(lines[1], "200000000002") || !strings.Contains(lines[1], "critical") ||
			!strings.HasPrefix(lines[2], "200000000003") || !strings.Contains(lines[2], "high") {
			t.Errorf("findings are not first, critical before high:\n%s", out)
		}
		if strings.Contains(lines[0], "ERROR") {
			t.Errorf("ERROR column without errors:\n%s", out)
		}
		if !strings.Contains(lines[1], "yes, 1 active key") {
			t.Errorf("keys cell: %q", lines[1])
		}
	})
	t.Run("--only-findings", func(t *testing.T) {
		_, out, _ := runScanT(t, "--org-role", role, "--only-findings", "--json")
		var rows []scanRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 2 {
			t.Fatalf("%v: %d rows\n%s", err, len(rows), out)
		}
	})
	t.Run("csv", func(t *testing.T) {
		code, out, _ := runScanT(t, "--org-role", role, "--format", "csv")
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if code != 1 || err != nil || len(recs) != 5 || strings.Join(recs[0], ",") != strings.Join(csvHeader, ",") {
			t.Fatalf("exit %d, %v, %d records\n%s", code, err, len(recs), out)
		}
		if recs[1][0] != "200000000002" || recs[1][2] != "root_keys" || recs[1][3] != "critical" || recs[1][4] != "true" || recs[1][9] != "eu-west-1" {
			t.Errorf("first record %q", recs[1])
		}
	})
	t.Run("sarif", func(t *testing.T) {
		sim.SetAccessDenied("200000000001", true)
		defer sim.SetAccessDenied("200000000001", false)
		code, out, _ := runScanT(t, "--org-role", role, "-o", "sarif")
		var doc struct {
			Version string `json:"version"`
			Runs    []struct {
				Results []struct {
					RuleID, Level string
					Locations     []map[string]any
				} `json:"results"`
			} `json:"runs"`
		}
		if code != 2 || json.Unmarshal([]byte(out), &doc) != nil || doc.Version != "2.1.0" || len(doc.Runs) != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		got := map[string]int{}
		for _, r := range doc.Runs[0].Results {
			got[r.RuleID+"/"+r.Level]++
			if len(r.Locations) == 0 {
				t.Errorf("result without a location: %+v", r)
			}
		}
		if got["root-access-key/error"] != 2 || got["account-not-checked/warning"] != 1 || len(doc.Runs[0].Results) != 3 {
			t.Errorf("results %v", got)
		}
	})
	t.Run("ocsf", func(t *testing.T) {
		_, out, _ := runScanT(t, "--org-role", role, "--format", "ocsf")
		var all, fs []map[string]any
		if err := json.Unmarshal([]byte(out), &all); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, f := range all { // the root access key check; scanposture_test.go has the others
			if f["metadata"].(map[string]any)["event_code"] == "iam_no_root_access_key" {
				fs = append(fs, f)
			}
		}
		if len(fs) != 4 {
			t.Fatalf("%d root access key findings\n%s", len(fs), out)
		}
		status := map[string]int{}
		for _, f := range fs {
			if f["class_uid"] != float64(2004) || f["type_uid"] != float64(200401) {
				t.Errorf("not a Detection Finding: %v", f)
			}
			status[f["status_code"].(string)]++
		}
		if status["FAIL"] != 2 || status["PASS"] != 2 {
			t.Errorf("status codes %v", status)
		}
		if fs[0]["severity"] != "Critical" || fs[0]["cloud"].(map[string]any)["account"].(map[string]any)["uid"] != "200000000002" {
			t.Errorf("first finding %v", fs[0])
		}
	})
	t.Run("single account: management is unknown, and the summary says only one was checked", func(t *testing.T) {
		code, out, _ := runScanT(t, "--json")
		var rows []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0]["management"] != nil {
			t.Fatalf("exit %d\n%s", code, out)
		}
		_, out, _ = runScanT(t)
		if !strings.Contains(out, "1 account: 0 with root access keys") || !strings.Contains(out, "only the caller's account") {
			t.Errorf("summary:\n%s", out)
		}
	})
}

// Set-up mistakes that retrying cannot fix stop run with exit 2 and one line saying
// what to do, before any component starts.
func TestRunStopsOnPermanentSetupErrors(t *testing.T) {
	base := func(t *testing.T) {
		for k, v := range map[string]string{"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "ROOTWARDEN_SLACK_CHANNEL": "C0X",
			"ROOTWARDEN_HTTP_ADDR": "127.0.0.1:0", "ROOTWARDEN_CONFIG": "", "ROOTWARDEN_NATS_URL": "", "ROOTWARDEN_DATA_DIR": t.TempDir()} {
			t.Setenv(k, v)
		}
	}
	t.Run("no AWS credentials", func(t *testing.T) {
		scanSim(t, 0)
		base(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		code, _, errOut := runCLI(t, "detector")
		if code != 2 || !strings.Contains(errOut, "no credentials") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("organization role in an account outside an organization", func(t *testing.T) {
		scanSim(t, 0)
		base(t)
		t.Setenv("ROOTWARDEN_CONFIG", "")
		// A simulator with a standalone account.
		code, _, errOut := runStandalone(t, "detector", "--org-role", "Audit")
		if code != 2 || !strings.Contains(errOut, "not in an AWS Organization: unset it") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("organization role from a member account", func(t *testing.T) {
		sim := scanSim(t, 1)
		base(t)
		ak, sk := sim.AdminCredentials("200000000001")
		t.Setenv("AWS_ACCESS_KEY_ID", ak)
		t.Setenv("AWS_SECRET_ACCESS_KEY", sk)
		for _, cmd := range []string{"detector", "scan"} {
			code, _, errOut := runCLI(t, cmd, "--org-role", "OrganizationAccountAccessRole")
			if code != 2 || !strings.Contains(errOut, "management account or a delegated administrator") ||
				strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("%s: exit %d, stderr %q", cmd, code, errOut)
			}
		}
	})
	t.Run("Slack API URL that does not answer names ROOTWARDEN_SLACK_API_URL", func(t *testing.T) {
		sim := scanSim(t, 0)
		_ = sim
		base(t)
		t.Setenv("ROOTWARDEN_SLACK_API_URL", "http://"+freeAddr(t)+"/api/")
		code, _, errOut := runCLI(t, "notifier")
		if code != 2 || !strings.Contains(errOut, "ROOTWARDEN_SLACK_API_URL") || strings.Contains(errOut, "SLACK_BOT_TOKEN") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("Slack channel given by name", func(t *testing.T) {
		base(t)
		code, _, errOut := runCLI(t, "notifier", "--channel", "#security")
		if code != 2 || !strings.Contains(errOut, "ROOTWARDEN_SLACK_CHANNEL") || !strings.Contains(errOut, "not the name") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
}

// runStandalone runs the CLI against a simulator whose only account is in no
// organization.
func runStandalone(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	sim := newStandaloneSim(t)
	_ = sim
	return runCLI(t, args...)
}

// An AWS that fails in a way that may pass keeps the detector running but not
// ready: /readyz answers 503 and names AWS.
func TestReadyzNamesAFailingAWS(t *testing.T) {
	scanSim(t, 0)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	t.Setenv("AWS_ENDPOINT_URL", failing.URL)
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	addr := freeAddr(t)
	for k, v := range map[string]string{"ROOTWARDEN_HTTP_ADDR": addr, "ROOTWARDEN_CONFIG": "", "ROOTWARDEN_NATS_URL": "",
		"ROOTWARDEN_DATA_DIR": t.TempDir(), "ROOTWARDEN_LOG_LEVEL": "error"} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	logs := &testutil.LogBuffer{}
	go func() { done <- dispatch(ctx, []string{"detector"}, io.Discard, logs) }()
	defer func() { cancel(); <-done }()
	var code int
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /readyz; logs:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var m map[string]string
	if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &m) != nil || m["aws"] == "" || m["aws"] == "ok" || m["nats"] != "ok" {
		t.Fatalf("/readyz = %d %s, want 503 naming aws", code, body)
	}
}

// The whole first hour without Slack or AWS: sim prints (and writes) the variables,
// run works against them, and sim click presses a case's button as Slack would.
func TestSimRunAndClick(t *testing.T) {
	scanSim(t, 0) // clears AWS_* and ROOTWARDEN_* variables for the test
	simAddr, httpAddr := freeAddr(t), freeAddr(t)
	envFile := filepath.Join(t.TempDir(), "sim.env")
	simOut := &testutil.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	simDone := make(chan int, 1)
	go func() {
		simDone <- dispatch(ctx, []string{"sim", "--addr", simAddr, "--accounts", "2", "--root-keys", "1", "--seed", "7",
			"--env-file", envFile, "--rootwarden-addr", httpAddr}, simOut, io.Discard)
	}()
	defer func() { cancel(); <-simDone }()
	var env []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if env, err = os.ReadFile(envFile); err == nil && bytes.Contains(env, []byte("ROOTWARDEN_SIM_URL")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no env file; sim printed %q", simOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(env), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && strings.HasPrefix(line, "export ") {
			t.Setenv(k, v)
			vars[k] = v
		}
	}
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET",
		"ROOTWARDEN_SLACK_CHANNEL", "ROOTWARDEN_SLACK_API_URL", "ROOTWARDEN_APPROVERS", "ROOTWARDEN_API_TOKEN"} {
		if vars[k] == "" {
			t.Errorf("sim.env lacks %s", k)
		}
	}
	t.Run("--seed gives the same credentials on every start", func(t *testing.T) {
		o := simOptions{seed: 7}
		if got := "AKIA" + strings.ToUpper(o.secret("akid", 16)); got != vars["AWS_ACCESS_KEY_ID"] {
			t.Errorf("key id %s, then %s", vars["AWS_ACCESS_KEY_ID"], got)
		}
	})
	t.Setenv("ROOTWARDEN_SCAN_INTERVAL", "1h")
	t.Setenv("ROOTWARDEN_APPROVER", "U0TYPO") // misspelt: warned about
	t.Setenv("ROOTWARDEN_DATA_DIR", "")
	slackAddr := freeAddr(t)
	t.Setenv("ROOTWARDEN_SLACK_HTTP_ADDR", slackAddr) // sim click follows it
	logs := &testutil.LogBuffer{}
	runDone := make(chan int, 1)
	go func() { runDone <- dispatch(ctx, []string{"run"}, io.Discard, logs) }()
	defer func() { cancel(); <-runDone }()

	const caseID = "200000000001-1"
	var code int
	var out, errOut string
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, out, errOut = runCLI(t, "sim", "click", caseID, "approve")
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 0 || !strings.Contains(out, "clicked") {
		t.Fatalf("sim click: exit %d, %q %q; logs:\n%s", code, out, errOut, logs)
	}
	var c remediator.CaseView
	deadline = time.Now().Add(30 * time.Second)
	for c.State != model.StateTicketed {
		if time.Now().After(deadline) {
			t.Fatalf("case %+v not ticketed; logs:\n%s", c.Case, logs)
		}
		time.Sleep(100 * time.Millisecond)
		_, o, _ := runCLI(t, "cases", "show", caseID, "--json")
		_ = json.Unmarshal([]byte(o), &c)
	}
	t.Run("cases --json is an array of objects", func(t *testing.T) {
		code, out, errOut := runCLI(t, "cases", "--json")
		var list []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || !strings.HasPrefix(fmt.Sprint(list[0]["id"]), caseID+"-") { // <account>-<n>-<opened>
			t.Fatalf("exit %d, %q %q", code, out, errOut)
		}
	})
	t.Run("a button the message does not have is named with those it has", func(t *testing.T) {
		code, _, errOut := runCLI(t, "sim", "click", caseID, "approve", "--wait", "1s")
		if code != 2 || !strings.Contains(errOut, "deleted") {
			t.Errorf("exit %d, %q", code, errOut)
		}
	})
	t.Run("the Slack endpoint alone on its own port", func(t *testing.T) {
		for _, u := range []string{"http://" + slackAddr + "/metrics", "http://" + slackAddr + "/api/v1/cases"} {
			if resp, err := http.Get(u); err != nil || resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s: %v %v, want 404", u, resp.StatusCode, err)
			}
		}
		resp, err := http.Post("http://"+httpAddr+"/slack/interactions", "application/x-www-form-urlencoded", strings.NewReader("payload={}"))
		if err != nil || resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
			t.Errorf("POST /slack/interactions on the main port: %v %v, want it not served there", resp.StatusCode, err)
		}
	})
	for _, want := range []string{"ROOTWARDEN_DATA_DIR is not set", "did you mean ROOTWARDEN_APPROVERS"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), "is not a user of this Slack workspace") {
		t.Errorf("the sim's approver is reported unknown:\n%s", logs)
	}
	for _, want := range []string{} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), "ROOTWARDEN_SIM_URL is not") {
		t.Errorf("a variable sim.env sets is warned about:\n%s", logs)
	}
}

// One msg key per JSON line, even when a component logs an attribute named msg.
func TestLogHasOneMsgKey(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, config.Config{LogFormat: "json", LogLevel: "info"})
	log.With("msg", "from With").Warn("message refused", "msg", "finding 1234")
	line := buf.String()
	if strings.Count(line, `"msg"`) != 1 || !strings.Contains(line, `"msg":"message refused"`) || !strings.Contains(line, `"detail":"finding 1234"`) {
		t.Errorf("log line %s", line)
	}
}

// Whichever component logs, a duration is text and an error is under "err".
func TestLogConventions(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: logConventions}))
	log.Info("x", "remind_after", 30*time.Minute, "error", io.EOF, slog.Group("config", "sla", 24*time.Hour))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["remind_after"] != "30m0s" || m["err"] != "EOF" || m["error"] != nil || m["config"].(map[string]any)["sla"] != "24h0m0s" {
		t.Errorf("log line %s", buf.String())
	}
}

// newStandaloneSim starts a simulator whose one account is in no organization and
// points the SDK's variables at it.
func newStandaloneSim(t *testing.T) *awssim.Sim {
	t.Helper()
	sim := awssim.New(awssim.Options{})
	sim.AddAccount(awssim.Account{ID: "300000000000", Name: "standalone"})
	srv := sim.Start()
	t.Cleanup(srv.Close)
	ak, sk := sim.AdminCredentials("300000000000")
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", ak)
	t.Setenv("AWS_SECRET_ACCESS_KEY", sk)
	return sim
}

// Slack answering 5xx at start-up does not stop the process: it runs not ready, with
// /readyz naming Slack, and the notifier starts once Slack answers.
func TestSlackDownAtStartMakesItNotReady(t *testing.T) {
	scanSim(t, 0)
	sl := slackfake.New(slackfake.WithChannel("C0DOWN", "oncall"), slackfake.WithBotToken("xoxb-down"))
	sl.Start()
	t.Cleanup(sl.Close)
	var down atomic.Bool
	down.Store(true)
	target, _ := url.Parse(strings.TrimSuffix(sl.APIURL(), "/api/"))
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = stdlog.New(io.Discard, "", 0)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() && strings.HasSuffix(r.URL.Path, "/auth.test") {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	old := slackRetryDelay
	slackRetryDelay = 50 * time.Millisecond
	defer func() { slackRetryDelay = old }()

	addr := freeAddr(t)
	for k, v := range map[string]string{"SLACK_BOT_TOKEN": "xoxb-down", "SLACK_SIGNING_SECRET": "s", "ROOTWARDEN_SLACK_CHANNEL": "C0DOWN",
		"ROOTWARDEN_SLACK_API_URL": front.URL + "/api/", "ROOTWARDEN_HTTP_ADDR": addr, "ROOTWARDEN_CONFIG": "",
		"ROOTWARDEN_NATS_URL": "", "ROOTWARDEN_DATA_DIR": t.TempDir(), "ROOTWARDEN_LOG_LEVEL": "info",
		"ROOTWARDEN_APPROVERS": "U0NOBODY"} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	logs := &testutil.LogBuffer{}
	go func() { done <- dispatch(ctx, []string{"notifier"}, io.Discard, logs) }()
	defer func() { cancel(); <-done }()
	readyz := func() (int, map[string]string) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var m map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	testutil.EventuallyWithin(t, 20*time.Second, "/readyz 503 naming slack", func() bool {
		code, m := readyz()
		return code == http.StatusServiceUnavailable && m["slack"] != "" && m["slack"] != "ok"
	})
	if strings.Contains(logs.String(), "notifier running") {
		t.Fatalf("the notifier runs while Slack is down:\n%s", logs)
	}
	down.Store(false)
	testutil.EventuallyWithin(t, 20*time.Second, "ready once Slack answers, and the notifier running", func() bool {
		code, m := readyz()
		return code == http.StatusOK && m["slack"] == "ok" && strings.Contains(logs.String(), "notifier running")
	})
	if !strings.Contains(logs.String(), "U0NOBODY is not a user of this Slack workspace") {
		t.Errorf("an approver Slack does not know is not warned about:\n%s", logs)
	}
}

// sim on every interface prints an address a client can use and warns that its
// control endpoints have no authentication.
func TestSimOnEveryInterfaceWarns(t *testing.T) {
	scanSim(t, 0)
	out, errb := &testutil.LogBuffer{}, &testutil.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- dispatch(ctx, []string{"sim", "--addr", "0.0.0.0:0"}, out, errb) }()
	defer func() { cancel(); <-done }()
	testutil.EventuallyWithin(t, 10*time.Second, "the sim's variables", func() bool {
		return strings.Contains(out.String(), "ROOTWARDEN_SIM_URL")
	})
	if !strings.Contains(out.String(), "AWS_ENDPOINT_URL=http://127.0.0.1:") || strings.Contains(out.String(), "[::]") {
		t.Errorf("printed %s", out)
	}
	if !strings.Contains(errb.String(), "no authentication") {
		t.Errorf("no warning on stderr: %q", errb)
	}
}

// ROOTWARDEN_MAX_REMINDERS=0 reaches the notifier as "none" (it reads 0 as its
// default of 3); unset reaches it as 3.
func TestMaxRemindersZeroMeansNone(t *testing.T) {
	for env, want := range map[string]int{"0": -1, "": 3, "5": 5} {
		cfg, err := config.Load(func(k string) string {
			if k == "ROOTWARDEN_MAX_REMINDERS" {
				return env
			}
			return ""
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := notifierMaxReminders(cfg); got != want {
			t.Errorf("ROOTWARDEN_MAX_REMINDERS=%q: notifier gets %d, want %d", env, got, want)
		}
	}
}

// TestMainProcessHelper is not a test: run as a child with RW_TEST_MAIN=1, it is the
// rootwarden binary with the arguments after "--".
func TestMainProcessHelper(t *testing.T) {
	if os.Getenv("RW_TEST_MAIN") != "1" {
		t.Skip("helper process")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Args = append([]string{"rootwarden"}, args...)
	main()
}

// `rootwarden demo | head` closes the demo's stdout early: the demo must still clean
// up its temporary data directory (SIGPIPE used to kill it first).
func TestDemoIntoAClosedPipeLeavesNothingBehind(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcessHelper$", "--", "demo")
	cmd.Env = append(os.Environ(), "RW_TEST_MAIN=1", "TMPDIR="+tmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_, _ = io.ReadAtLeast(stdout, buf, 1) // like head: read a little, then close
	stdout.Close()
	_ = cmd.Wait()
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "rootwarden") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// fakeTracker answers every call with err.
type fakeTracker struct{ err error }

func (f *fakeTracker) Open(context.Context, model.Case, string) (model.TicketRef, error) {
	return model.TicketRef{}, f.err
}
func (f *fakeTracker) Comment(context.Context, model.TicketRef, string) error { return f.err }
func (f *fakeTracker) Close(context.Context, model.TicketRef, string) error   { return f.err }
func (f *fakeTracker) Reopen(context.Context, model.TicketRef, string) error  { return f.err }
func (f *fakeTracker) Status(context.Context, model.TicketRef) (model.TicketStatus, error) {
	return model.TicketStatus{}, f.err
}

// A tracker that fails in a way that may pass makes /readyz name it until a call
// works; a refusal of one request (not found) is an answer, so it stays ready.
func TestReadyzNamesAFailingTracker(t *testing.T) {
	srv := httpx.New(slog.New(slog.DiscardHandler), nil)
	f := &fakeTracker{}
	tr := readyTracker{Tracker: f, report: srv.Reporter("tracker")}
	readyz := func() (int, string) {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	f.err = model.Wrap(model.CodeTransient, io.ErrUnexpectedEOF, "jira: get issue RW-1")
	if _, err := tr.Status(context.Background(), model.TicketRef{ID: "RW-1"}); err == nil {
		t.Fatal("the error is not passed on")
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, `"tracker":"jira: get issue RW-1`) {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	f.err = model.Errorf(model.CodeNotFound, "no such issue")
	_ = tr.Comment(context.Background(), model.TicketRef{ID: "RW-2"}, "x")
	if code, body := readyz(); code != http.StatusOK || !strings.Contains(body, `"tracker":"ok"`) {
		t.Fatalf("/readyz after an answer = %d %s", code, body)
	}
}
