package detector_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

// TestBenchSweep10k measures a sweep of a large simulated organization. It is a
// benchmark, not a test: it runs only with ROOTWARDEN_BENCH=1.
//
//	ROOTWARDEN_BENCH=1 go test -run TestBenchSweep10k -v -timeout 20m ./detector/
//
// Knobs: ROOTWARDEN_BENCH_ACCOUNTS (10000), ROOTWARDEN_BENCH_LATENCY (50ms per AWS
// call), ROOTWARDEN_BENCH_CONCURRENCY (256). 1% of the accounts have a root key
// (their checks also read the credential report). The simulator (AWS's published
// Organizations and STS rates on) and the NATS server run in the same process, so the
// memory figures include them.
func TestBenchSweep10k(t *testing.T) {
	if os.Getenv("ROOTWARDEN_BENCH") != "1" {
		t.Skip("benchmark: set ROOTWARDEN_BENCH=1 to run")
	}
	accounts := benchEnvInt("ROOTWARDEN_BENCH_ACCOUNTS", 10000)
	conc := benchEnvInt("ROOTWARDEN_BENCH_CONCURRENCY", 256)
	latency := 50 * time.Millisecond
	if v, err := time.ParseDuration(os.Getenv("ROOTWARDEN_BENCH_LATENCY")); err == nil {
		latency = v
	}

	w := newWorld(t, accounts-1, true, awssim.Options{})
	for i := 1; i < accounts; i += 100 {
		w.sim.CreateRootKey(member(i), w.clock.Now().Add(-time.Hour))
	}
	w.sim.SetLatency(latency)
	w.sim.SetRateLimits(true) // AWS's published rates, as in every benchmark
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.Concurrency = conc
	cfg.AccountTimeout = 60 * time.Second

	type row struct {
		name               string
		wall               time.Duration
		calls, pages       int
		heapInuse, sysPeak uint64
		checked            int
		cpu                time.Duration
	}
	var rows []row
	measure := func(name string, procs int, run func()) {
		w.sim.ResetCalls()
		runtime.GC()
		stop := sampleMemory()
		cpu0 := cpuTime()
		start := time.Now()
		run()
		wall := time.Since(start)
		cpu := cpuTime() - cpu0
		heap, sys := stop()
		calls := 0
		for _, n := range w.sim.Calls() {
			calls += n
		}
		rows = append(rows, row{name: name, wall: wall, calls: calls, pages: w.sim.Calls()["Organizations.ListAccounts"] + w.sim.Calls()["Organizations.ListAccountsForParent"],
			heapInuse: heap, sysPeak: sys, checked: accounts, cpu: cpu})
		_ = procs
	}

	scan := func() {
		sc, err := detector.NewScanner(cfg, nil, w.awsConfig())
		if err != nil {
			t.Fatal(err)
		}
		obs, err := sc.Scan(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		benchAssert(t, obs, accounts)
	}
	measure(fmt.Sprintf("Scanner (rootwarden scan), concurrency %d", conc), 1, scan)

	// The same scan with 1000 accounts per ListAccounts page (only the simulator can:
	// AWS returns at most 20), to show the checks alone against the ideal.
	w.sim.SetPageSize(1000)
	w.clock.Add(48 * time.Hour)
	measure(fmt.Sprintf("Scanner, concurrency %d, 1000-account pages (simulator only)", conc), 1, scan)
	w.sim.SetPageSize(20)

	for _, procs := range []int{1, 2} {
		b := bustest.New(t)
		w.clock.Add(48 * time.Hour) // fresh credential reports are not reused across runs
		measure(fmt.Sprintf("Detector sweep over JetStream, %d process(es) x %d", procs, conc), procs, func() {
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for i := range procs {
				pb := b
				if i > 0 {
					pb = bustest.Connect(t, b)
				}
				d, err := detector.New(cfg, nil, pb, w.awsConfig())
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() { defer wg.Done(); _ = d.Run(ctx) }()
			}
			waitCount(t, b, accounts)
			cancel()
			wg.Wait()
		})
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "run\taccounts\twall\taccounts/s\tAWS calls\tideal (calls x %s / %d)\tlist pages x latency\tpeak HeapInuse\tpeak Sys\tCPU (all in-process)\t\n", latency, conc)
	for _, r := range rows {
		ideal := time.Duration(r.calls) * latency / time.Duration(conc)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%d\t%s (%.0f%%)\t%s\t%d MiB\t%d MiB\t%s\t\n", r.name, r.checked, r.wall.Round(time.Millisecond),
			float64(r.checked)/r.wall.Seconds(), r.calls, ideal.Round(time.Millisecond), 100*ideal.Seconds()/r.wall.Seconds(),
			(time.Duration(r.pages) * latency).Round(time.Millisecond), r.heapInuse>>20, r.sysPeak>>20, r.cpu.Round(100*time.Millisecond))
	}
	_ = tw.Flush()
}

func benchAssert(t *testing.T, obs []model.Observation, accounts int) {
	t.Helper()
	withKeys, failed := 0, 0
	for _, o := range obs {
		if o.Failed() {
			failed++
		}
		if o.RootKeysPresent {
			withKeys++
		}
	}
	if len(obs) != accounts || failed != 0 || withKeys != (accounts+98)/100 {
		t.Fatalf("%d observations, %d failed, %d with keys", len(obs), failed, withKeys)
	}
}

// waitCount waits until the findings stream holds n messages.
func waitCount(t *testing.T, b *bus.Bus, n int) {
	t.Helper()
	ctx := context.Background()
	s, err := b.JS.Stream(ctx, bus.StreamFindings)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Minute)
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if int(info.State.Msgs) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d findings after 15 minutes, want %d", info.State.Msgs, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sampleMemory samples HeapInuse and Sys every 50ms until the returned func is called;
// that func returns the peaks.
func sampleMemory() func() (heapInuse, sys uint64) {
	var heap, sysMax atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > heap.Load() {
			heap.Store(ms.HeapInuse)
		}
		if ms.Sys > sysMax.Load() {
			sysMax.Store(ms.Sys)
		}
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		wg.Wait()
		sample()
		return heap.Load(), sysMax.Load()
	}
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
