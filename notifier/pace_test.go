package notifier

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestPacerServesByPriorityThenArrival(t *testing.T) {
	p := newPacer(func(string) Rate { return Rate{Every: 100 * time.Millisecond, Burst: 1} })
	ctx := context.Background()
	if err := p.wait(ctx, "k"); err != nil { // takes the burst
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []priority
	var wg sync.WaitGroup
	start := func(pr priority) {
		wg.Go(func() {
			if err := p.wait(withPrio(ctx, pr), "k"); err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, pr)
			mu.Unlock()
		})
	}
	for _, pr := range []priority{prioHigh, prioBackground, prioHigh, prioCritical} {
		start(pr)
	}
	// All four wait (the bucket is empty) before the one a person waits for arrives.
	for {
		p.mu.Lock()
		n := p.buckets["k"].waiters.Len()
		p.mu.Unlock()
		if n == 4 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	start(prioHuman)
	wg.Wait()
	want := []priority{prioHuman, prioCritical, prioHigh, prioHigh, prioBackground}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("served %v, want %v", order, want)
		}
	}
}

func TestPacerHonoursRetryAfterAndContext(t *testing.T) {
	p := newPacer(func(string) Rate { return Rate{Every: time.Millisecond, Burst: 5} })
	p.block("k", time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.wait(ctx, "k"); err == nil {
		t.Fatal("a blocked bucket handed out a token")
	}
	if n := p.buckets["k"].waiters.Len(); n != 0 {
		t.Errorf("a cancelled waiter stayed queued (%d)", n)
	}
	if err := p.wait(context.Background(), "other"); err != nil {
		t.Errorf("another bucket is not blocked: %v", err)
	}
}
