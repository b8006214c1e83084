package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/slackfake"
)

// TestMemoryTable measures the peak RSS of `rootwarden run` holding N accounts, every
// one with a root key (N open cases) unless told otherwise, against the goal of its
// memory limit (128 MiB by default), and prints a markdown table. It is a benchmark,
// not a test, and runs only when asked:
//
//	ROOTWARDEN_BENCH=memory go test -run TestMemoryTable -v -timeout 30m ./cmd/rootwarden
//	# 50,000 accounts, 500 open cases, in 256 MiB (the simulator at AWS's published rates):
//	ROOTWARDEN_BENCH=memory ROOTWARDEN_BENCH_ACCOUNTS=50000 ROOTWARDEN_BENCH_ROOT_KEYS=500 \
//	  ROOTWARDEN_BENCH_MEMLIMIT=256 ROOTWARDEN_BENCH_MINUTES=12 ROOTWARDEN_BENCH_INTERVAL=15 \
//	  go test -run TestMemoryTable -v -timeout 30m ./cmd/rootwarden
//
//	ROOTWARDEN_BENCH_ACCOUNTS   accounts (default 10000)
//	ROOTWARDEN_BENCH_ROOT_KEYS  accounts with a root key: open cases (default all)
//	ROOTWARDEN_BENCH_MINUTES    how long `run` is sampled (default 7)
//	ROOTWARDEN_BENCH_INTERVAL   minutes between sweeps (default 1)
//	ROOTWARDEN_BENCH_MEMLIMIT   MiB: run it in a memory cgroup of that limit, as a container
//	                            (root only; cgroup v1 or v2), 0 → no limit (default 128)
//	ROOTWARDEN_BENCH_HOME       App Home openings (signed app_home_opened events) spread over
//	                            one minute, by the sim's approver and its other user in turn,
//	                            from minute ROOTWARDEN_BENCH_HOME_AT (default 50 from minute 3,
//	                            after the first sweep opened every case); 0 → none
//	ROOTWARDEN_BENCH_LOG        a path: the run's log is copied there at the end
//
// The binary is built and run as a child process, as in production (detector,
// remediator, notifier, embedded NATS with its store on disk); `rootwarden sim` in
// another process is the organization and Slack. In a cgroup the binary is copied
// inside it first, so that its pages are charged to it as in a container. Sampled
// every second from /proc/PID/status.
func TestMemoryTable(t *testing.T) {
	if os.Getenv("ROOTWARDEN_BENCH") != "memory" {
		t.Skip("a benchmark: ROOTWARDEN_BENCH=memory go test -run TestMemoryTable -v -timeout 30m ./cmd/rootwarden")
	}
	accounts := envInt(t, "ROOTWARDEN_BENCH_ACCOUNTS", 10000)
	minutes := envInt(t, "ROOTWARDEN_BENCH_MINUTES", 7)
	limit := envInt(t, "ROOTWARDEN_BENCH_MEMLIMIT", 128)
	homeOpens, homeAt := envInt(t, "ROOTWARDEN_BENCH_HOME", 50), envInt(t, "ROOTWARDEN_BENCH_HOME_AT", 3)
	withKeys := envInt(t, "ROOTWARDEN_BENCH_ROOT_KEYS", accounts)
	interval := max(1, envInt(t, "ROOTWARDEN_BENCH_INTERVAL", 1))
	goalMiB := int64(128)
	if limit > 0 {
		goalMiB = int64(limit)
	}
	bin := buildBinary(t)
	dir := t.TempDir()

	simAddr, runAddr := freeAddr(t), freeAddr(t)
	envFile := filepath.Join(dir, "sim.env")
	sim := exec.Command(bin, "sim", "--accounts", strconv.Itoa(accounts), "--root-keys", strconv.Itoa(withKeys),
		"--addr", simAddr, "--rootwarden-addr", runAddr, "--env-file", envFile, "--seed", "7")
	sim.Stdout, sim.Stderr = io.Discard, io.Discard
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Process.Kill(); _ = sim.Wait() })
	waitHTTP(t, "http://"+simAddr+"/_sim/calls")

	env := append(os.Environ(), readEnvFile(t, envFile)...)
	env = append(env, "ROOTWARDEN_DATA_DIR="+filepath.Join(dir, "data"), fmt.Sprintf("ROOTWARDEN_SCAN_INTERVAL=%dm", interval),
		"ROOTWARDEN_LOG_LEVEL=info")
	logPath := filepath.Join(dir, "run.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	var run *exec.Cmd
	cg := ""
	if limit > 0 {
		cg = memoryCgroup(t, limit)
		// The shell joins the cgroup, copies the binary inside it and becomes it.
		run = exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && cp "$2" "$2.cg" && exec "$2.cg" run`, "sh", cg, bin)
	} else {
		run = exec.Command(bin, "run")
	}
	run.Env, run.Stdout, run.Stderr = env, logFile, logFile
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	t.Cleanup(func() { _ = run.Process.Signal(syscall.SIGTERM); <-exited })

	var homeOK, homeFailed atomic.Int64
	if homeOpens > 0 {
		go openHomes(env, runAddr, time.Duration(homeAt)*time.Minute, homeOpens, &homeOK, &homeFailed)
	}
	var peakAnon, peakFile, hwm int64
	gone := ""
	deadline := time.Now().Add(time.Duration(minutes) * time.Minute)
	for time.Now().Before(deadline) && gone == "" {
		select {
		case err := <-exited:
			gone = fmt.Sprintf("exited: %v", err)
			exited <- err
		case <-time.After(time.Second):
			st, err := procStatus(run.Process.Pid)
			if err != nil {
				continue // between the shell's exec and the binary's start
			}
			peakAnon, peakFile = max(peakAnon, st["RssAnon"]), max(peakFile, st["RssFile"])
			hwm = max(hwm, st["VmHWM"])
		}
	}
	gc, cpu := metricValue(runAddr, "go_gc_duration_seconds_count"), metricValue(runAddr, "process_cpu_seconds_total")
	if keep := os.Getenv("ROOTWARDEN_BENCH_LOG"); keep != "" {
		if b, err := os.ReadFile(logPath); err == nil {
			_ = os.WriteFile(keep, b, 0o644)
		}
	}
	sweeps, took := sweepLines(t, logPath)
	oom := ""
	if cg != "" {
		oom = cgroupOOM(cg)
	}

	where := "no memory limit (Go's default pacing)"
	if limit > 0 {
		where = fmt.Sprintf("in a %d MiB memory cgroup (Go's soft limit 70 %% of it)", limit)
	}
	goal := "met"
	if hwm>>10 > goalMiB || gone != "" {
		goal = "**not met**"
	}
	fmt.Printf("\n%d accounts, %d open cases, sweeps every %d min, sampled %d min\n\n", accounts, withKeys, interval, minutes)
	home := "none"
	if homeOpens > 0 {
		logText, _ := os.ReadFile(logPath)
		home = fmt.Sprintf("%d in a minute from minute %d: %d answered 200, %d not; %d tabs not published", homeOpens, homeAt,
			homeOK.Load(), homeFailed.Load(), strings.Count(string(logText), "App Home not published"))
	}
	fmt.Printf("| configuration | App Home openings | peak RSS (VmHWM) | peak anonymous / file | sweeps (took) | GC cycles, CPU s | OOM kills | goal ≤ %d MiB |\n", goalMiB)
	fmt.Println("|---|---|---|---|---|---|---|---|")
	fmt.Printf("| %s | %s | %d MiB | %d / %d MiB | %d (%s) | %s, %s | %s | %s |\n", where, home, hwm>>10, peakAnon>>10, peakFile>>10,
		sweeps, strings.Join(took, ", "), gc, cpu, orDash(oom), goal)
	if gone != "" {
		t.Errorf("rootwarden run %s before the end (log: %s)", gone, logPath)
	}
	// A sweep ends when both listings do: the tree's ListAccountsForParent pages at 4
	// a second (80 % of AWS's published 5) in the simulator.
	listing := (accounts/20/4)/60 + 1
	if want := max(1, minutes/max(interval, listing)-2); sweeps < want {
		t.Errorf("%d sweeps in %d minutes of sweeping every %d minutes, want at least %d", sweeps, minutes, interval, want)
	}
}

// openHomes sends n signed app_home_opened events to rootwarden's /slack/events,
// spread over one minute from after on, by the sim's two users in turn (the sim's
// Slack knows no others): each publishes a full tab (the approver sees every case,
// the other user as a member of the case channel).
func openHomes(env []string, runAddr string, after time.Duration, n int, ok, failed *atomic.Int64) {
	secret := ""
	for _, kv := range env {
		if v, found := strings.CutPrefix(kv, "SLACK_SIGNING_SECRET="); found {
			secret = v
		}
	}
	time.Sleep(after)
	users := []string{simApprover, simOther}
	for i := range n {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			status, _, err := slackfake.DeliverJSON(ctx, "http://"+runAddr+"/slack/events", secret, slackfake.AppHomeOpened(users[i%len(users)]))
			if err == nil && status == http.StatusOK {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		}()
		time.Sleep(time.Minute / time.Duration(n))
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
	}
	t.Fatalf("%s did not answer within a minute", url)
}

// readEnvFile reads the `export K=V` lines rootwarden sim writes.
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export "); ok {
			out = append(out, line)
		}
	}
	return out
}

// procStatus reads the kB fields of /proc/PID/status.
func procStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(b), "Name:\trootwarden") {
		return nil, fmt.Errorf("not rootwarden yet")
	}
	out := map[string]int64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			out[k], _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	return out, nil
}

func metricValue(addr, name string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return strconv.FormatFloat(f, 'f', 0, 64)
			}
		}
	}
	return "?"
}

var tookRE = regexp.MustCompile(`msg="sweep checked".* accounts=(\d+) .*took=(\S+)`)

// sweepLines counts the sweeps the log says were checked (a sweep interrupted by a
// restart logs its parts; here there is none) and how long each took.
func sweepLines(t *testing.T, path string) (int, []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var took []string
	for _, m := range tookRE.FindAllStringSubmatch(string(b), -1) {
		if n, _ := strconv.Atoi(m[1]); n > 1 {
			took = append(took, m[2])
		}
	}
	return len(took), took
}

// memoryCgroup makes a memory cgroup limited to mib MiB (v1 or v2) and removes it at
// the end; it skips the test when there is none to make (not root, no controller).
func memoryCgroup(t *testing.T, mib int) string {
	t.Helper()
	name := fmt.Sprintf("rootwarden-bench-%d", os.Getpid())
	limit := strconv.Itoa(mib << 20)
	for _, c := range []struct{ dir, file string }{
		{"/sys/fs/cgroup/memory", "memory.limit_in_bytes"}, // v1
		{"/sys/fs/cgroup", "memory.max"},                   // v2
	} {
		if _, err := os.Stat(filepath.Join(c.dir, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(c.dir, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, c.file), []byte(limit), 0o644); err != nil {
			_ = os.Remove(dir)
			continue
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for ctx.Err() == nil && os.Remove(dir) != nil { // empty once the child has exited
				time.Sleep(100 * time.Millisecond)
			}
		})
		return dir
	}
	t.Skip("no memory cgroup can be made here (root and a cgroup memory controller are needed); ROOTWARDEN_BENCH_MEMLIMIT=0 measures without a limit")
	return ""
}

// cgroupOOM is the cgroup's count of OOM kills.
func cgroupOOM(dir string) string {
	for _, f := range []string{"memory.oom_control", "memory.events"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
				return v
			}
		}
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
