package notifier_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rootwarden/rootwarden/internal/bus"
)

// /rootwarden case reads the case's history without leaving a consumer on RW_CASES
// (each read used to leave an ordered consumer for 5 minutes: about 1,000 reads in 5
// minutes broke every audit-log read, issue 19 item 9).
func TestSlashCaseLeavesNoConsumer(t *testing.T) {
	o := newOnCallEnv(t, false, nil)
	o.run()
	c := o.openCase()
	ctx := context.Background()
	s, err := o.b.JS.Stream(ctx, bus.StreamCases)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		t.Helper()
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	before := count()
	for range 5 {
		if got := o.text("case " + c.ID); !strings.Contains(got, "*History*") || !strings.Contains(got, "opened") {
			t.Fatalf("/rootwarden case answers\n%s", got)
		}
	}
	if after := count(); after != before {
		t.Fatalf("RW_CASES has %d consumers after 5 reads of a case, %d before", after, before)
	}
}
