// Package wait holds the one way rootwarden's loops pause: for a duration, or until
// their context ends, whichever comes first, and how periodic work for many keys is
// spread over time. Standard library only.
package wait

import (
	"context"
	"hash/fnv"
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
