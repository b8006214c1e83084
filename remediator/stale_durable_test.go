package remediator

import (
	"context"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

// An observation older than one another remediator (a second replica, or this one
// before a restart) applied without writing anything must not undo it (issue 19 item
// 5, review §3). The case is open; O1 "no keys" (t+15m) is not applied yet (its
// delivery failed and was NAK'd with a delay); O2 "keys present" (t+16m) is applied by
// r1, which writes nothing (the case already says so); O1 is redelivered to r2, which
// has never seen O2. r2 must not resolve the case: a resolve would close the ticket
// and the PagerDuty incident while the key exists, and unchanged sweeps would then
// hide it for 6–12 h. Both orders of O1 and O2 on RW_FINDINGS are tried: a late
// publish puts the older observation last.
func TestOlderObservationOnAnotherReplicaDoesNotUndoANewerOne(t *testing.T) {
	for _, tc := range []struct {
		name          string
		olderLastSent bool
	}{
		{"published in observation order", false},
		{"the older one published last", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bustest.New(t)
			b2 := bustest.Connect(t, b) // the second replica's own connection
			clk := newClock()
			ctx := ctxT(t)
			r1 := newRem(t, b, clk, nil)
			r2 := newRem(t, b2, clk, nil)
			publish := func(o model.Observation) {
				t.Helper()
				if _, err := b.PublishJSON(ctx, bus.FindingSubject(o.AccountID), o.ID, o); err != nil {
					t.Fatal(err)
				}
			}

			first := observation(acct, true, model.SourceSweep, clk.Now())
			publish(first)
			if err := r1.HandleFinding(ctx, first); err != nil {
				t.Fatal(err)
			}
			r1.work(ctx, acct)
			opened := waitState(t, r1, acct, model.StateOpen)
			_, rev, err := r1.load(ctx, acct)
			if err != nil {
				t.Fatal(err)
			}

			o1 := observation(acct, false, model.SourceSweep, t0.Add(15*time.Minute))
			o2 := observation(acct, true, model.SourceSweep, t0.Add(16*time.Minute))
			if tc.olderLastSent {
				publish(o2)
				publish(o1)
			} else {
				publish(o1)
				publish(o2)
			}
			clk.Add(17 * time.Minute)
			if err := r1.HandleFinding(ctx, o2); err != nil {
				t.Fatal(err)
			}
			if _, now, _ := r1.load(ctx, acct); now != rev {
				t.Fatalf("O2 (unchanged) was written: revision %d → %d; the test needs it unwritten", rev, now)
			}

			if err := r2.HandleFinding(ctx, o1); err != nil {
				t.Fatal(err)
			}
			rec := getCase(t, r2, acct)
			if rec.ID != opened.ID || rec.State != model.StateOpen {
				t.Fatalf("the older O1 redelivered to r2 moved case %s to %s (%s); O2, newer, says the keys are present",
					rec.ID, rec.State, rec.LastError)
			}
			if rec.LastCheckedAt.After(opened.LastCheckedAt) {
				t.Fatalf("last_checked_at moved to O1's %v", rec.LastCheckedAt)
			}
			// The control: a newer "no keys" still resolves on r2.
			o3 := observation(acct, false, model.SourceSweep, t0.Add(20*time.Minute))
			publish(o3)
			if err := r2.HandleFinding(context.Background(), o3); err != nil {
				t.Fatal(err)
			}
			if rec := getCase(t, r2, acct); rec.State != model.StateResolved {
				t.Fatalf("a newer no-keys observation left the case %s", rec.State)
			}
		})
	}
}
