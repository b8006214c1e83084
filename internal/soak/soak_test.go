package soak_test

// Steady-state soak (opt-in): ROOTWARDEN_SOAK=1 go test -run TestSoak -v -timeout 60m ./internal/soak/
//
//	ROOTWARDEN_SOAK_ACCOUNTS  accounts in the organization, each with a root key (default 1000)
//	ROOTWARDEN_SOAK_SWEEPS    sweeps (default 20)
//	ROOTWARDEN_SOAK_HEAPPROFILE  a file to write the heap profile to at the end
//	ROOTWARDEN_SOAK_PACE      least real time from one sweep's start to the next (default 0)
//
// This process runs what `rootwarden run` runs apart from the notifier: an embedded
// nats-server with its store on disk, one detector and one remediator. The AWS
// simulator runs in a child process (this test binary again), so the RSS measured is
// rootwarden's. The sweep interval is compressed: the test clock (here and in the
// simulator, moved over a control request) moves one ScanInterval and the next sweep
// starts as soon as the last one is applied, or after ROOTWARDEN_SOAK_PACE. The
// remediator's timers tick every second (real time), so each sweep's row includes
// about as many timer passes as it lasted.
//
// NATS keeps the ids of published messages for its 10-minute duplicate window
// (internal/bus/names.go): in production that is the last sweep's, here every sweep
// of the last 10 real minutes. ROOTWARDEN_SOAK_PACE=60s makes the soak hold about as
// many as a 10-minute sweep interval would.
//
// Per sweep it prints: wall time; the bytes each stream and bucket stores (stream
// state) and the store's size on disk; the process RSS (VmRSS: simulator, NATS and
// rootwarden together) and Go HeapInuse, both the peak while the sweep ran, and the
// live heap after a GC at its end;
// rw_cases reads (direct gets), listings and writes; rw_due reads and writes; case
// events published. A last row is an idle period without sweeps.

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/remediator"
)

const mgmtID = "100000000000"

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

type row struct {
	name             string
	wall             time.Duration
	stored           map[string]uint64
	disk             int64
	rss, heap, live  uint64
	caseReads        int64
	caseLists        int64
	caseWrites       uint64
	dueReads         int64
	dueWrites        uint64
	events, findings uint64
	jobs             uint64 // sweep jobs queued (one per account checked)
}

func TestSoak(t *testing.T) {
	if os.Getenv("ROOTWARDEN_SOAK") != "1" {
		t.Skip("soak benchmark: set ROOTWARDEN_SOAK=1 to run")
	}
	accounts := envInt("ROOTWARDEN_SOAK_ACCOUNTS", 1000)
	sweeps := envInt("ROOTWARDEN_SOAK_SWEEPS", 20)
	const interval = 15 * time.Minute

	clk := testutil.NewClock(soakStart)
	sim := startSimChild(t, accounts)
	awsCfg, err := awssim.SDKConfig(context.Background(), sim.URL, credentials.NewStaticCredentialsProvider(sim.AccessKey, sim.Secret, ""))
	if err != nil {
		t.Fatal(err)
	}
	advance := func(d time.Duration) {
		clk.Add(d)
		sim.advance(t, d)
	}
	pace := envDuration("ROOTWARDEN_SOAK_PACE", 0)

	dir := t.TempDir()
	b := bustest.NewAt(t, dir)
	d, err := detector.New(detector.Config{OrgRoleName: "OrganizationAccountAccessRole", ScanInterval: interval,
		Concurrency: 64, AccountTimeout: 60 * time.Second, MaxBackoff: 20 * time.Millisecond, Now: clk.Now}, nil, b, awsCfg)
	if err != nil {
		t.Fatal(err)
	}
	rem, err := remediator.New(remediator.Config{Now: clk.Now, ExpiryScanInterval: time.Second, TicketPollInterval: time.Second},
		nil, b, bus.Checker{NC: b.NC}, nil)
	if err != nil {
		t.Fatal(err)
	}
	caseKV := bustest.CountKV(t, b, bus.BucketCases)
	dueKV := bustest.CountKV(t, b, bus.BucketDue)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{d.Run, rem.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	names := []string{bus.StreamFindings, bus.StreamCases, bus.StreamScan, bus.StreamActions}
	for _, bk := range bus.Buckets() {
		names = append(names, "KV_"+bk.Bucket)
	}
	info := func(name string) jetstream.StreamState {
		s, err := b.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		si, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return si.State
	}
	settled := func() bool {
		if info(bus.StreamScan).Msgs != 0 {
			return false
		}
		c, err := b.JS.Consumer(ctx, bus.StreamFindings, bus.ConsumerRemediatorFind)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	}

	var rows []row
	measure := func(name string, run func()) {
		r := row{name: name, stored: map[string]uint64{}}
		reads0, lists0, dreads0 := caseKV.Reads(), caseKV.Listings(), dueKV.Reads()
		writes0, _ := caseKV.Writes(ctx)
		dwrites0, _ := dueKV.Writes(ctx)
		ev0, f0, j0 := info(bus.StreamCases).LastSeq, info(bus.StreamFindings).LastSeq, info(bus.StreamScan).LastSeq
		stop := sampleMemory()
		start := time.Now()
		run()
		r.wall = time.Since(start)
		r.rss, r.heap = stop()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		r.live = ms.HeapAlloc
		time.Sleep(200 * time.Millisecond) // let the counting connection catch up
		r.caseReads, r.caseLists, r.dueReads = caseKV.Reads()-reads0, caseKV.Listings()-lists0, dueKV.Reads()-dreads0
		w, _ := caseKV.Writes(ctx)
		dw, _ := dueKV.Writes(ctx)
		r.caseWrites, r.dueWrites = w-writes0, dw-dwrites0
		r.events, r.findings = info(bus.StreamCases).LastSeq-ev0, info(bus.StreamFindings).LastSeq-f0
		r.jobs = info(bus.StreamScan).LastSeq - j0
		for _, n := range names {
			r.stored[n] = info(n).Bytes
		}
		r.disk = du(filepath.Join(dir, "nats"))
		rows = append(rows, r)
		t.Logf("%s: %s, %d accounts checked, %d findings, %d case events, %d case reads, %d case writes", name,
			r.wall.Round(time.Millisecond), r.jobs, r.findings, r.events, r.caseReads, r.caseWrites)
	}

	var lastStart time.Time
	for i := 1; i <= sweeps; i++ {
		if i > 1 && pace > 0 {
			time.Sleep(time.Until(lastStart.Add(pace)))
		}
		lastStart = time.Now()
		measure(fmt.Sprintf("sweep %d", i), func() {
			if i > 1 {
				advance(interval)
			}
			// A sweep queues one job per account and publishes only what changed
			// (detector/unchanged.go): it is done when every job is and the
			// remediator has applied what was published.
			j0 := info(bus.StreamScan).LastSeq
			deadline := time.Now().Add(20 * time.Minute)
			for started := false; !started; {
				_, started, err = d.MaybeSweep(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !started { // the detector's own scheduler may have won it
					started = info(bus.StreamScan).LastSeq > j0
				}
				time.Sleep(10 * time.Millisecond)
			}
			for info(bus.StreamScan).LastSeq-j0 < uint64(accounts) || !settled() {
				if time.Now().After(deadline) {
					t.Fatalf("sweep %d not applied within 20 minutes", i)
				}
				// On a loaded machine the listing can fail (a timeout); the detector
				// retries it a minute later by its clock, which only the test moves.
				if e, err := b.Sched.Get(ctx, "sweep"); err == nil && strings.Contains(string(e.Value()), `"error"`) &&
					info(bus.StreamScan).Msgs == 0 {
					t.Logf("sweep %d: listing failed (%s); retrying it", i, e.Value())
					advance(time.Minute)
					if _, _, err := d.MaybeSweep(ctx); err != nil {
						t.Logf("sweep %d retry: %v", i, err)
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	measure("idle 10 s (timers only)", func() { time.Sleep(10 * time.Second) })
	if path := os.Getenv("ROOTWARDEN_SOAK_HEAPPROFILE"); path != "" {
		runtime.GC()
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		_ = pprof.WriteHeapProfile(f)
		_ = f.Close()
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	short := map[string]string{}
	for _, n := range names {
		short[n] = strings.TrimPrefix(n, "KV_")
	}
	fmt.Fprintf(tw, "%d accounts, all with a root key; stored KiB per stream/bucket; RSS = detector, remediator and embedded NATS (the simulator runs in a child process), peak\n", accounts)
	fmt.Fprint(tw, "run\twall\tchecked\tfindings\tcase events\tcases reads\tcases lists\tcases writes\tdue reads\tdue writes\t")
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t", short[n])
	}
	fmt.Fprint(tw, "store on disk\tRSS peak\theap peak\tlive heap after\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t", r.name, r.wall.Round(100*time.Millisecond), r.jobs, r.findings, r.events,
			r.caseReads, r.caseLists, r.caseWrites, r.dueReads, r.dueWrites)
		for _, n := range names {
			fmt.Fprintf(tw, "%d\t", r.stored[n]>>10)
		}
		fmt.Fprintf(tw, "%.1f MiB\t%d MiB\t%d MiB\t%d MiB\t\n", float64(r.disk)/(1<<20), r.rss>>20, r.heap>>20, r.live>>20)
	}
	_ = tw.Flush()

	// The goals, as checks a regression would trip (after the first sweep, which
	// opens every case).
	for _, r := range rows[1:] {
		if r.events != 0 || r.caseWrites != 0 || r.findings != 0 || r.caseReads != 0 {
			t.Errorf("%s: %d findings, %d case events, %d case reads and %d case writes for an unchanged organization, want 0",
				r.name, r.findings, r.events, r.caseReads, r.caseWrites)
		}
	}
}

// du is the size on disk of the files under dir.
func du(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// sampleMemory samples VmRSS and HeapInuse every 100ms until the returned func is
// called; that func returns the peaks.
func sampleMemory() func() (rss, heap uint64) {
	var rssMax, heapMax atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > heapMax.Load() {
			heapMax.Store(ms.HeapInuse)
		}
		if r := vmRSS(); r > rssMax.Load() {
			rssMax.Store(r)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		wg.Wait()
		sample()
		return rssMax.Load(), heapMax.Load()
	}
}

// vmRSS is this process's resident set size (Linux), 0 elsewhere.
func vmRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
