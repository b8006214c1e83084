package soak_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// The simulator of the soak runs in a child process: this test binary started with
// simChildEnv set serves it and prints where, then lives until its stdin closes.
const simChildEnv = "ROOTWARDEN_SOAK_SIM_CHILD"

var soakStart = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	if n := os.Getenv(simChildEnv); n != "" {
		os.Exit(serveSimChild(n))
	}
	os.Exit(m.Run())
}

type simChild struct {
	URL, AccessKey, Secret string
}

// advance moves the simulator's clock with the test's.
func (c simChild) advance(t *testing.T, d time.Duration) {
	t.Helper()
	resp, err := http.PostForm(c.URL+"/_soak/advance", url.Values{"by": {d.String()}})
	if err != nil {
		t.Fatalf("advance the simulator's clock: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("advance the simulator's clock: HTTP %d", resp.StatusCode)
	}
}

// startSimChild starts the simulator with the organization in a child process.
func startSimChild(t *testing.T, accounts int) simChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", simChildEnv, accounts))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		t.Fatalf("simulator child: %v", err)
	}
	var c simChild
	if err := json.Unmarshal(line, &c); err != nil {
		t.Fatalf("simulator child said %q: %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return c
}

func serveSimChild(n string) int {
	var accounts int
	if _, err := fmt.Sscan(n, &accounts); err != nil || accounts < 1 {
		fmt.Fprintln(os.Stderr, "soak simulator: bad account count", n)
		return 2
	}
	clk := testutil.NewClock(soakStart)
	sim := awssim.New(awssim.Options{Now: clk.Now})
	sim.AddAccount(awssim.Account{ID: mgmtID, Name: "management", Management: true})
	for i := 1; i < accounts; i++ {
		id := fmt.Sprintf("2%011d", i)
		sim.AddAccount(awssim.Account{ID: id, Name: fmt.Sprintf("member-%d", i)})
		sim.CreateRootKey(id, clk.Now().Add(-time.Hour))
	}
	sim.CreateRootKey(mgmtID, clk.Now().Add(-time.Hour))
	sim.EnableOrganization(mgmtID)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak simulator:", err)
		return 2
	}
	base := "http://" + ln.Addr().String()
	sim.SetBaseURL(base)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_soak/advance", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.FormValue("by"))
		if err != nil || d < 0 {
			http.Error(w, "by: a positive duration", http.StatusBadRequest)
			return
		}
		clk.Add(d)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/", sim.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	ak, sk := sim.AdminCredentials(mgmtID)
	line, _ := json.Marshal(simChild{URL: base, AccessKey: ak, Secret: sk})
	fmt.Println(string(line))
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it or dies
	_ = srv.Shutdown(context.Background())
	return 0
}
