package detector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/nats-io/nats.go"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awslimits"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
)

// TestPerfTable measures the detector against its floors and prints a table. It is a
// benchmark, not a test, and runs only when asked:
//
//	ROOTWARDEN_BENCH=short go test -run TestPerfTable -v ./detector/   # < 1 min: 1,000 accounts, 30 events
//	ROOTWARDEN_BENCH=1     go test -run TestPerfTable -v -timeout 60m ./detector/   # 1,000, 10,000 and 50,000 accounts
//	ROOTWARDEN_BENCH=1 ROOTWARDEN_BENCH_ACCOUNTS=50000 go test -run TestPerfTable -v -timeout 30m ./detector/
//
// Everything runs in one process: the simulator with AWS's published request rates
// (internal/awslimits: Organizations' bucket per operation, answering
// TooManyRequestsException beyond it; STS's 600/s; pages of 20) and 50 ms on every
// AWS call, an embedded NATS server and one detector at concurrency 256 using the
// default share (80 %) of those rates. Accounts sit in 10 OUs under the root, every
// one tagged with its owner; 1 % have a root key. Figures:
//
//   - sweep first: from the start until every account's finding is on the bus and
//     every finding with root keys carries its owner (its routing facts). Floor: the
//     largest of listing pages ÷ ListAccounts' rate, tags of the accounts with a
//     finding ÷ ListTagsForResource's rate, the checks' AWS calls × latency ÷
//     concurrency, and AssumeRole calls ÷ STS's rate (each at the detector's share).
//   - sweep later: the same for the next sweep (inventory dispatched at once,
//     sessions cached and renewed over half an hour): its floor has no listing.
//   - TooManyRequestsException: what the simulator refused beyond the published
//     rates in each sweep (the goal: none).
//   - event → finding: a CloudTrail event sent to SQS until its finding is on the
//     bus, one event at a time, each in another account whose key was just created.
//     Floor: two AWS round trips (presence, then the account's tags, not yet read),
//     measured in the same run (GetAccountSummary straight through the SDK), and no
//     less than one ListTagsForResource token (events back to back each read tags).
//   - check → answer: an on-demand check over request/reply (what a verification
//     waits for) of an account without keys. Floor: one round trip.
func TestPerfTable(t *testing.T) {
	mode := os.Getenv("ROOTWARDEN_BENCH")
	if mode != "short" && mode != "1" {
		t.Skip("benchmark: set ROOTWARDEN_BENCH=short (CI) or ROOTWARDEN_BENCH=1 (full) to run")
	}
	sizes, events := []int{1000}, 30
	if mode == "1" {
		sizes, events = []int{1000, 10000, 50000}, 200
	}
	if n := benchEnvInt("ROOTWARDEN_BENCH_ACCOUNTS", 0); n > 0 {
		sizes = []int{n}
	}
	const conc = 256
	const share = detector.DefaultOrgAPIShare
	type row struct{ what, figure, floor, ratio string }
	var rows []row
	add := func(what string, got, floor time.Duration) {
		r := "-"
		if floor > 0 {
			r = fmt.Sprintf("%.2f×", got.Seconds()/floor.Seconds())
		}
		rows = append(rows, row{what, got.Round(100 * time.Millisecond).String(), floor.Round(100 * time.Millisecond).String(), r})
	}
	// per is how long n calls take from a full bucket of that published rate and
	// burst at the detector's share: the burst at once, the rest at the rate.
	per := func(n int, b awslimits.Bucket) time.Duration {
		burst := max(1, int(float64(b.Burst)*share))
		return time.Duration(float64(max(0, n-burst)) / (b.Rate * share) * float64(time.Second))
	}
	refused := func(w *world) int {
		n := 0
		for _, v := range w.sim.RateLimited() {
			n += v
		}
		return n
	}

	for si, accounts := range sizes {
		w := newWorld(t, accounts-1, true, awssim.Options{})
		var ous []string
		for i := range 10 {
			ous = append(ous, w.sim.AddOU("", fmt.Sprintf("OU-%d", i)))
		}
		keys := 0
		for i := 1; i < accounts; i++ {
			w.sim.MoveAccount(member(i), ous[i%10])
			w.sim.SetAccountTags(member(i), map[string]string{"owner": fmt.Sprintf("owner-%d@example.com", i)})
			if i%100 == 1 {
				w.sim.CreateRootKey(member(i), w.clock.Now().Add(-time.Hour))
				keys++
			}
		}
		const latency = 50 * time.Millisecond
		w.sim.SetLatency(latency)
		w.sim.SetRateLimits(true)
		b := bustest.New(t)
		queue := w.sim.CreateQueue(mgmtID, "rootwarden-events")
		cfg := w.config("OrganizationAccountAccessRole")
		cfg.Concurrency, cfg.AccountTimeout, cfg.SQSQueueURL, cfg.ScanInterval = conc, time.Minute, queue, 15*time.Minute
		cfg.MaxBackoff = 0 // the SDK's

		rec := newRecorder(t, b)
		var log *slog.Logger
		if os.Getenv("ROOTWARDEN_BENCH_LOG") != "" {
			log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		d, err := detector.New(cfg, log, b, w.awsConfig())
		if err != nil {
			t.Fatal(err)
		}
		w.sim.ResetCalls()
		refused0 := refused(w)
		liveBefore := liveHeap()
		stop := sampleMemory()
		cpu0 := cpuTime()
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		first := rec.waitSweep(t, "", accounts)
		routed := rec.waitRouted(t, first, keys, 10*time.Minute)
		firstWall := rec.sweepEnd(first).Sub(start)
		firstCPU := cpuTime() - cpu0
		heap, sys := stop()
		calls := w.sim.Calls()
		floor := func(calls map[string]int, listing bool, tagged int) (time.Duration, string) {
			checkCalls := 0
			for k, n := range calls {
				if strings.HasPrefix(k, "IAM.") || strings.HasPrefix(k, "STS.") {
					checkCalls += n
				}
			}
			parts := []struct {
				what string
				d    time.Duration
			}{
				{fmt.Sprintf("checks %d calls × %s ÷ %d", checkCalls, latency, conc), time.Duration(checkCalls) * latency / conc},
				{fmt.Sprintf("tags of %d findings ÷ %.0f/s", tagged, 10*share), per(tagged, awslimits.Organizations["ListTagsForResource"])},
				{fmt.Sprintf("AssumeRole %d ÷ %.0f/s", calls["STS.AssumeRole"], 600*share), per(calls["STS.AssumeRole"], awslimits.STS)},
			}
			if listing {
				pages := (accounts + 19) / 20
				parts = append(parts, struct {
					what string
					d    time.Duration
				}{fmt.Sprintf("listing %d pages ÷ %.1f/s (ListAccounts)", pages, 8*share), per(pages, awslimits.Organizations["ListAccounts"])})
			}
			best, why := time.Duration(0), ""
			for _, p := range parts {
				if p.d > best {
					best, why = p.d, p.what
				}
			}
			return best, why
		}
		f, why := floor(calls, true, keys)
		add(fmt.Sprintf("sweep %d accounts, first (every account checked, %d findings with their owner)", accounts, routed), firstWall, f)
		rows = append(rows, row{"  first sweep's floor: " + why, "-", "-", "-"})
		rows = append(rows, row{"  TooManyRequestsException / Throttling in the first sweep (simulator)", fmt.Sprint(refused(w) - refused0), "0", "-"})
		rows = append(rows, row{"  CPU used by the first sweep (sim + NATS + detector)", firstCPU.Round(10 * time.Millisecond).String(), "-", "-"})

		// A later sweep: the inventory is dispatched at once, sessions are cached.
		for st := readSweep(t, b); st.ID != first || !st.Done; st = readSweep(t, b) {
			time.Sleep(10 * time.Millisecond) // the listing and the reconciliation end
		}
		w.clock.Add(cfg.ScanInterval + time.Second)
		w.sim.ResetCalls()
		refused0 = refused(w)
		cpu0 = cpuTime()
		start = time.Now()
		go func() { _, _, _ = d.MaybeSweep(ctx) }() // the scheduler may win it instead
		later := rec.waitSweep(t, first, accounts)
		routed = rec.waitRouted(t, later, keys, 10*time.Minute)
		laterWall := rec.sweepEnd(later).Sub(start)
		laterCPU := cpuTime() - cpu0
		// Its findings do not wait for the listing (it runs beside the checks of the
		// inventory), nor for tags read in the first sweep.
		f, why = floor(w.sim.Calls(), false, 0)
		add(fmt.Sprintf("sweep %d accounts, later (%d findings with their owner; listing beside)", accounts, routed), laterWall, f)
		rows = append(rows, row{"  later sweep's floor: " + why, "-", "-", "-"})
		rows = append(rows, row{"  TooManyRequestsException / Throttling in the later sweep (simulator)", fmt.Sprint(refused(w) - refused0), "0", "-"})
		rows = append(rows, row{"  CPU used by the later sweep (sim + NATS + detector)", laterCPU.Round(10 * time.Millisecond).String(), "-", "-"})
		rows = append(rows, row{fmt.Sprintf("  peak Go heap in use / Sys during the first sweep (sim + NATS + detector, %d accounts)", accounts),
			fmt.Sprintf("%d MiB / %d MiB", heap>>20, sys>>20), "-", "-"})
		liveAfter := liveHeap()
		rows = append(rows, row{"  live heap after GC: before the detector / after two sweeps (+ detector, its sessions in the sim, NATS caches)",
			fmt.Sprintf("%d MiB / %d MiB", liveBefore>>20, liveAfter>>20), "-", "-"})

		if si > 0 {
			continue // events once, in the smaller organization
		}
		for _, lat := range []time.Duration{0, latency} {
			w.sim.SetLatency(lat)
			// Two round trips (presence, the tags), and the events come back to back,
			// each needing a tags read: no more than ListTagsForResource's rate.
			rt := roundTrip(t, w)
			tagRate := awslimits.Organizations["ListTagsForResource"].Rate * share
			floor := max(2*rt, time.Duration(float64(time.Second)/tagRate))
			var got []time.Duration
			for i := range events {
				acct := member(2 + i*3 + int(lat/time.Millisecond)*7) // accounts with no key yet
				key := w.sim.CreateRootKey(acct, w.clock.Now())
				body := awssim.RootKeyCreatedEvent(acct, key, w.clock.Now())
				sent := time.Now()
				w.sim.SendMessage(queue, body)
				got = append(got, rec.waitEvent(t, acct).Sub(sent))
			}
			p50, p99 := pct(got, 50), pct(got, 99)
			addFine := func(what string, got, floor time.Duration) {
				rows = append(rows, row{what, got.Round(100 * time.Microsecond).String(), floor.Round(100 * time.Microsecond).String(), fmt.Sprintf("%.2f×", got.Seconds()/floor.Seconds())})
			}
			addFine(fmt.Sprintf("event → finding, AWS %s/call, p50 (%d events)", lat, events), p50, floor)
			addFine(fmt.Sprintf("event → finding, AWS %s/call, p99", lat), p99, floor)

			checker := bus.Checker{NC: b.NC}
			got = got[:0]
			for i := range events {
				t0 := time.Now()
				if o, err := checker.Check(context.Background(), member(3+i*3+int(lat/time.Millisecond)*7), "bench"); err != nil || o.Failed() {
					t.Fatalf("check: %+v %v", o, err)
				}
				got = append(got, time.Since(t0))
			}
			// A check of an account without keys: presence alone, one round trip.
			addFine(fmt.Sprintf("check → answer (verification), AWS %s/call, p50", lat), pct(got, 50), rt)
			addFine(fmt.Sprintf("check → answer (verification), AWS %s/call, p99", lat), pct(got, 99), rt)
		}
		w.sim.SetLatency(latency)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "measurement\tfigure\tfloor\tfigure ÷ floor\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.what, r.figure, r.floor, r.ratio)
	}
	_ = tw.Flush()
	var load [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		_, _ = fmt.Sscan(string(b), &load[0], &load[1], &load[2])
	}
	fmt.Printf("machine: %d CPUs, load average %.1f (1 min) at the end: wall figures above CPU ÷ share of the CPUs are the machine's, not rootwarden's\n", runtime.NumCPU(), load[0])
}

// liveHeap is the heap in use right after a full GC.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// roundTrip is the median of 20 GetAccountSummary calls straight through the SDK.
func roundTrip(t *testing.T, w *world) time.Duration {
	t.Helper()
	client := iam.NewFromConfig(w.awsConfig())
	var d []time.Duration
	for range 20 {
		t0 := time.Now()
		if _, err := client.GetAccountSummary(context.Background(), &iam.GetAccountSummaryInput{}); err != nil {
			t.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	return pct(d, 50)
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

// recorder timestamps every finding as it reaches the bus (core NATS subscription).
type recorder struct {
	mu     sync.Mutex
	routed map[string]int       // sweep id → findings with root keys and an owner tag
	sweeps map[string]int       // sweep id → findings
	last   map[string]time.Time // sweep id → arrival of its latest finding
	events map[string]time.Time // account → arrival of its first event finding
}

func newRecorder(t *testing.T, b *bus.Bus) *recorder {
	r := &recorder{routed: map[string]int{}, sweeps: map[string]int{}, last: map[string]time.Time{}, events: map[string]time.Time{}}
	sub, err := b.NC.Subscribe(bus.SubjectFindings+">", func(m *nats.Msg) {
		now := time.Now()
		var o struct {
			Account string            `json:"account_id"`
			Source  string            `json:"source"`
			SweepID string            `json:"sweep_id"`
			Keys    bool              `json:"root_keys_present"`
			Tags    map[string]string `json:"tags"`
		}
		_ = json.Unmarshal(m.Data, &o)
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case o.SweepID != "":
			r.sweeps[o.SweepID]++
			r.last[o.SweepID] = now
			if o.Keys && o.Tags["owner"] != "" {
				r.routed[o.SweepID]++
			}
		case o.Source == "event":
			if _, ok := r.events[o.Account]; !ok {
				r.events[o.Account] = now
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return r
}

// waitSweep waits for a sweep other than not with n findings and returns its id.
func (r *recorder) waitSweep(t *testing.T, not string, n int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Minute)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for id, c := range r.sweeps {
			if id != not && c >= n {
				r.mu.Unlock()
				return id
			}
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no sweep with %d findings", n)
	return ""
}

// waitRouted waits until the sweep's findings with root keys carrying an owner number
// n (at most within d) and returns how many there are.
func (r *recorder) waitRouted(t *testing.T, id string, n int, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r.mu.Lock()
		got := r.routed[id]
		r.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *recorder) sweepEnd(id string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[id]
}

func (r *recorder) waitEvent(t *testing.T, account string) time.Time {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		at, ok := r.events[account]
		r.mu.Unlock()
		if ok {
			return at
		}
		time.Sleep(200 * time.Microsecond)
	}
	t.Fatalf("no event finding for %s", account)
	return time.Time{}
}
