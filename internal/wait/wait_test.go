package wait

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep on an ended context reported the full hour passed")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep of 1ms on a live context reported an early end")
	}
}

// Periodic work of many keys started at once comes due spread over [base, 2·base),
// the same for a key every time.
func TestSpread(t *testing.T) {
	const base = time.Hour
	seen := map[time.Duration]bool{}
	for i := range 1000 {
		key := "2000000" + string(rune('0'+i%10)) + string(rune('a'+i/10%26)) + string(rune('a'+i/260))
		d := Spread(base, key)
		if d < base || d >= 2*base || d != Spread(base, key) {
			t.Fatalf("Spread(%s, %q) = %s, want a fixed value in [1h, 2h)", base, key, d)
		}
		seen[d.Truncate(6*time.Minute)] = true
	}
	if len(seen) < 9 {
		t.Errorf("1,000 keys fell in %d of the 10 six-minute slices of the hour", len(seen))
	}
}

// Every calls its function until stopped, and not once stop has returned; a function
// that reports false is not called again.
func TestEvery(t *testing.T) {
	var mu sync.Mutex
	calls, stopped := 0, false
	stop := Every(time.Millisecond, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			t.Error("called after stop returned")
		}
		calls++
		return true
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := calls
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in 10 s at 1 ms", n)
		}
	}
	stop()
	mu.Lock()
	stopped = true
	mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	stop() // twice is harmless

	var once atomic.Int32
	stopOnce := Every(time.Millisecond, func() bool { once.Add(1); return false })
	time.Sleep(20 * time.Millisecond)
	stopOnce()
	if n := once.Load(); n != 1 {
		t.Fatalf("a function that reported false was called %d times, want 1", n)
	}
}
