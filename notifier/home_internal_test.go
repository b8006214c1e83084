package notifier

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// An opening by a user whose tab is already on its way is dropped, and so is one
// beyond homeMaxQueued waiting openings: neither builds a tab nor calls Slack.
func TestHomeOpeningsAreCappedAndRepeatsDropped(t *testing.T) {
	n, fake := newInternal(t, nil)
	fake.AddUser("U0A", "a")
	ctx := context.Background()
	n.home.mu.Lock()
	n.home.opening["U0A"] = true // a, still on its way
	n.home.mu.Unlock()
	if err := n.HomeOpened(ctx, "U0A"); err != nil {
		t.Fatalf("a repeat: %v, want dropped without an error", err)
	}
	n.home.mu.Lock()
	for i := range homeMaxQueued {
		n.home.opening[fmt.Sprintf("U0Q%03d", i)] = true
	}
	n.home.mu.Unlock()
	if err := n.HomeOpened(ctx, "U0B"); !errors.Is(err, errHomeBusy) {
		t.Fatalf("an opening beyond %d waiting: %v, want errHomeBusy", homeMaxQueued, err)
	}
	if k := fake.Calls("views.publish"); k != 0 {
		t.Errorf("views.publish calls = %d, want 0", k)
	}
}
