package detector_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
)

// An id Organizations does not know costs one DescribeAccount per 10 minutes, not
// one per request: a stream of checks of made-up ids does not spend the management
// account's Organizations quota that sweeps share.
func TestUnknownAccountsAreAskedOnceAWhile(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	b := bustest.New(t)
	d := newDetector(t, w, w.config("OrganizationAccountAccessRole"), b)
	runDetector(t, d)
	checker := bus.Checker{NC: bustest.Connect(t, b).NC}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	check := func(id string) {
		t.Helper()
		o, err := checker.Check(ctx, id, "slash command")
		if err != nil || o.ErrorCode != "UnknownAccount" {
			t.Fatalf("check of %s: %+v %v, want UnknownAccount", id, o, err)
		}
	}
	describes := func() int { return w.sim.Calls()["Organizations.DescribeAccount"] }

	check("999999999999")
	first := describes()
	if first == 0 {
		t.Fatal("the first check of an unknown id did not ask Organizations")
	}
	for range 20 {
		check("999999999999")
	}
	if n := describes(); n != first {
		t.Fatalf("%d DescribeAccount calls after 20 more checks of the same unknown id, want %d", n, first)
	}
	w.clock.Add(11 * time.Minute)
	check("999999999999")
	if n := describes(); n != first+1 {
		t.Fatalf("%d DescribeAccount calls after the negative cache expired, want %d", n, first+1)
	}
	for i := range 5 {
		check(fmt.Sprintf("9999999990%02d", i))
	}
	if n := describes(); n != first+6 {
		t.Fatalf("%d DescribeAccount calls for 5 new unknown ids, want %d", n, first+6)
	}
}
