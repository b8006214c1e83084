// Package wait holds the one way rootwarden's loops pause: for a duration, or until
// their context ends, whichever comes first; the one way a handler does something
// every so often while it works (a heartbeat, a claim's renewal); and how periodic
// work for many keys is spread over time. Standard library only.
package wait

import (
	"context"
	"hash/fnv"
	"sync"
	"time"
)

// Sleep waits for d or until ctx ends; it reports whether the full d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Spread is base plus a share of base fixed per key, in [base, 2·base): periodic work
// for many keys started at once (one sweep's cases) comes due spread out, not at once.
func Spread(base time.Duration, key string) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return base + time.Duration(uint64(h.Sum32())%1024)*base/1024
}

// Every calls f every d on a goroutine of its own until f returns false or stop is
// called; stop returns once f is not running and will not run again, so that what f
// last did is settled when it returns.
func Every(d time.Duration, f func() bool) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if !f() {
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}
