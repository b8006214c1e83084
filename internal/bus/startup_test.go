package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
)

// Six processes (two replicas each of detector, remediator and notifier) starting
// together on a fresh three-server cluster all end with every stream and bucket, with
// no error. The start-up time is printed, not asserted (docs/reliability.md states the
// measured bound); the 20 s limit below is only a hang guard.
func TestClusterConcurrentStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := bustest.NewCluster(t, 3)
	const procs = 6
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	buses := make([]*bus.Bus, procs)
	errs := make([]error, procs)
	took := make([]time.Duration, procs)
	var wg sync.WaitGroup
	for i := range procs {
		// Each process lists every server but starts on a different one, as pods behind
		// a headless service do.
		var urls []string
		for j := range c.Servers {
			urls = append(urls, c.Servers[(i+j)%len(c.Servers)].ClientURL())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buses[i], errs[i] = bus.Open(ctx, bus.Config{URL: strings.Join(urls, ","), Name: fmt.Sprintf("proc-%d", i)}, nil)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	all := time.Since(start)
	for _, b := range buses {
		if b != nil {
			defer b.Close()
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("process %d: open after %v: %v", i, took[i].Round(time.Millisecond), err)
		}
	}
	for i, b := range buses {
		if b.Replicas != 3 {
			t.Fatalf("process %d: replicas %d, want 3", i, b.Replicas)
		}
		for _, sc := range b.Streams() {
			st, err := b.JS.Stream(ctx, sc.Name)
			if err != nil {
				t.Fatalf("process %d: stream %s: %v", i, sc.Name, err)
			}
			if r := st.CachedInfo().Config.Replicas; r != 3 {
				t.Fatalf("process %d: stream %s replicas %d", i, sc.Name, r)
			}
		}
		for _, kc := range bus.Buckets() {
			kv, err := b.JS.KeyValue(ctx, kc.Bucket)
			if err != nil {
				t.Fatalf("process %d: bucket %s: %v", i, kc.Bucket, err)
			}
			if _, err := kv.Status(ctx); err != nil {
				t.Fatalf("process %d: bucket %s status: %v", i, kc.Bucket, err)
			}
		}
		if b.Cases == nil || b.Slack == nil || b.Tickets == nil || b.Sched == nil || b.Due == nil || b.Accounts == nil {
			t.Fatalf("process %d: a bucket handle is nil", i)
		}
	}
	var each []string
	for _, d := range took {
		each = append(each, d.Round(10*time.Millisecond).String())
	}
	t.Logf("%d processes on a fresh 3-server cluster: all started in %v (each: %s)", procs, all.Round(10*time.Millisecond), strings.Join(each, " "))
	if all > 20*time.Second {
		t.Errorf("start-up took %v: hang guard is 20 s", all)
	}
}
