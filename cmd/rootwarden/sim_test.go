package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/testutil"
)

// startSimEnv runs `rootwarden sim` with args, waits for its env file and sets every
// variable it writes, as `set -a; . ./sim.env` does. It returns those variables.
func startSimEnv(t *testing.T, args ...string) map[string]string {
	t.Helper()
	scanSim(t, 0) // clears AWS_* and ROOTWARDEN_* variables for the test
	envFile := filepath.Join(t.TempDir(), "sim.env")
	out := &testutil.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, append([]string{"sim", "--addr", freeAddr(t), "--env-file", envFile, "--rootwarden-addr", freeAddr(t)}, args...), out, io.Discard)
	}()
	t.Cleanup(func() { cancel(); <-done })
	var env []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if env, err = os.ReadFile(envFile); err == nil && bytes.Contains(env, []byte("ROOTWARDEN_DATA_DIR")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no env file; sim printed %q", out)
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
	t.Setenv("ROOTWARDEN_SCAN_INTERVAL", "1h")
	return vars
}

// startSimRun runs `rootwarden run` with the environment as it is, until /readyz is 200;
// stop ends it and waits for it to exit.
func startSimRun(t *testing.T) (logs *testutil.LogBuffer, stop func()) {
	t.Helper()
	logs = &testutil.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- dispatch(ctx, []string{"run"}, io.Discard, logs) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + os.Getenv("ROOTWARDEN_HTTP_ADDR") + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return logs, stop
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("run not ready; logs:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// simSlackMessages reads the local Slack's channel as `curl $ROOTWARDEN_SIM_URL/_sim/slack/messages` does.
func simSlackMessages(t *testing.T) []simMessage {
	t.Helper()
	var msgs []simMessage
	resp, err := http.Get(os.Getenv("ROOTWARDEN_SIM_URL") + "/_sim/slack/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	return msgs
}

func waitMessages(t *testing.T, n int, logs *testutil.LogBuffer) []simMessage {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		msgs := simSlackMessages(t)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages in the local Slack, want %d; logs:\n%s", len(msgs), n, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The slash command, the App Home and a risk acceptance, tried locally as the README
// shows: each request signed as Slack signs it, each answer what Slack would show.
func TestSimSlashHomeAndRiskAcceptance(t *testing.T) {
	startSimEnv(t, "--accounts", "3", "--root-keys", "2", "--seed", "9", "--data-dir", t.TempDir())
	logs, _ := startSimRun(t)
	waitMessages(t, 2, logs)

	t.Run("sim slash status", func(t *testing.T) {
		code, out, errOut := runCLI(t, "sim", "slash", "status")
		if code != 0 || !strings.Contains(out, "2 active cases") {
			t.Fatalf("exit %d, %q %q", code, out, errOut)
		}
	})
	t.Run("sim slash case takes the short id and the account", func(t *testing.T) {
		for _, typed := range []string{"200000000001-1", "200000000001"} {
			code, out, errOut := runCLI(t, "sim", "slash", "case "+typed)
			if code != 0 || !strings.Contains(out, "*Case `200000000001-1-") || !strings.Contains(out, "*History*") {
				t.Errorf("case %s: exit %d, %q %q", typed, code, out, errOut)
			}
		}
	})
	t.Run("sim slash check follows through response_url", func(t *testing.T) {
		code, out, errOut := runCLI(t, "sim", "slash", "check 200000000003", "--wait", "20s")
		if code != 0 || !strings.Contains(out, "Checking account 200000000003") || !strings.Contains(out, "has no root access keys") {
			t.Fatalf("exit %d, %q %q", code, out, errOut)
		}
	})
	t.Run("sim home prints the published tab", func(t *testing.T) {
		code, out, errOut := runCLI(t, "sim", "home", simApprover)
		if code != 0 || !strings.Contains(out, "App Home of "+simApprover) || !strings.Contains(out, "200000000001") ||
			!strings.Contains(out, "[Approve remediation]") {
			t.Fatalf("exit %d, %q %q", code, out, errOut)
		}
		code, out, _ = runCLI(t, "sim", "home", simApprover, "--json")
		var v map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["type"] != "home" {
			t.Fatalf("--json: exit %d, %q", code, out)
		}
	})
	t.Run("sim submit-risk refusals are shown", func(t *testing.T) {
		code, _, errOut := runCLI(t, "sim", "submit-risk", "200000000002-1", "--user", simOther, "--reason", "x", "--until", time.Now().AddDate(0, 0, 10).Format("2006-01-02"))
		if code != 2 || !strings.Contains(errOut, "only to "+simOther) {
			t.Errorf("a non-approver: exit %d, %q", code, errOut)
		}
		code, _, errOut = runCLI(t, "sim", "submit-risk", "200000000002-1", "--reason", "x", "--until", time.Now().AddDate(1, 0, 0).Format("2006-01-02"))
		if code != 2 || !strings.Contains(errOut, "At most 90 days") {
			t.Errorf("a year: exit %d, %q", code, errOut)
		}
	})
	t.Run("sim submit-risk accepts the risk", func(t *testing.T) {
		until := time.Now().AddDate(0, 0, 30).Format("2006-01-02")
		code, out, errOut := runCLI(t, "sim", "submit-risk", "200000000002-1", "--reason", "closed next month (FIN-1234)", "--until", until)
		if code != 0 || !strings.Contains(out, "submitted") {
			t.Fatalf("exit %d, %q %q", code, out, errOut)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			var m simMessage
			for _, x := range simSlackMessages(t) {
				if strings.HasPrefix(x.CaseID, "200000000002-1-") {
					m = x
				}
			}
			if strings.Contains(m.Text, "risk accepted until "+until) && len(m.Buttons) == 1 && m.Buttons[0].Text == "Revoke acceptance" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the case's message is %+v; logs:\n%s", m, logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// sim.env sets a data dir, so restarting run (which the walk-through invites) posts no
// case again; and sim.env, which holds tokens, is ignored by git.
func TestSimEnvKeepsCasesAcrossRestartsOfRun(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "rw-data")
	vars := startSimEnv(t, "--accounts", "2", "--root-keys", "2", "--seed", "3", "--data-dir", dataDir)
	if vars["ROOTWARDEN_DATA_DIR"] != dataDir {
		t.Fatalf("sim.env sets ROOTWARDEN_DATA_DIR=%q, want %q", vars["ROOTWARDEN_DATA_DIR"], dataDir)
	}
	logs, stop := startSimRun(t)
	first := waitMessages(t, 2, logs)
	stop()
	logs, _ = startSimRun(t)
	time.Sleep(3 * time.Second) // the start-up sweep and scan of cases, had they posted
	if got := simSlackMessages(t); len(got) != len(first) {
		t.Fatalf("after a restart of run the local Slack has %d messages, before %d; logs:\n%s", len(got), len(first), logs)
	}
	if strings.Contains(logs.String(), "ROOTWARDEN_DATA_DIR is not set") {
		t.Errorf("run warns of a missing data dir with sim.env sourced:\n%s", logs)
	}

	ignore, err := os.ReadFile("../../.gitignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sim.env", "/rootwarden-data/"} {
		if !strings.Contains("\n"+string(ignore)+"\n", "\n"+want+"\n") {
			t.Errorf(".gitignore lacks %s", want)
		}
	}
}
