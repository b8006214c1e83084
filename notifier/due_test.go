package notifier

import (
	"testing"
	"time"
)

// The watch of rw_slack delivers writes late. A reminder claim (due again in 30
// minutes) given back at once (due now) must stay due when the watch then delivers
// the claim: otherwise the reminder that failed is not retried on the next pass.
func TestDueIndexIgnoresAWatchUpdateOlderThanItsOwnWrite(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d := newDueIndex()
	const id, acct = "222222222222-1-x", "222222222222"
	d.set(id, acct, now, true, 5) // from the watch: due now
	// The claim: tracked before its write, written at revision 6.
	d.set(id, acct, now.Add(30*time.Minute), true, 0)
	d.wrote(id, 6)
	// The send fails; the claim is given back: tracked, written at revision 7.
	d.set(id, acct, now, true, 0)
	d.wrote(id, 7)
	// Now the watch catches up: revision 6 (the claim), then 7.
	d.set(id, acct, now.Add(30*time.Minute), true, 6)
	if got := d.dueBy(now); len(got) != 1 || got[0] != acct {
		t.Fatalf("after the late watch update of the claim: due %v, want %s (the claim was given back)", got, acct)
	}
	d.set(id, acct, now, true, 7)
	// A newer write by another replica (revision 8: reminded) still applies.
	d.set(id, acct, now.Add(30*time.Minute), true, 8)
	if got := d.dueBy(now); len(got) != 0 {
		t.Fatalf("after another replica's newer claim: due %v, want nothing", got)
	}
	// A deletion keeps its revision: an older put arriving later does not revive it.
	d.set(id, "", time.Time{}, false, 9)
	d.set(id, acct, now, true, 8)
	if got := d.dueBy(now); len(got) != 0 {
		t.Fatalf("after the record's deletion: due %v, want nothing", got)
	}
}
