// Package wait holds the one way rootwarden's loops pause: for a duration, or until
// their context ends, whichever comes first. Standard library only.
package wait

import (
	"context"
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
