package remediator

import (
	"strings"
	"testing"

	"github.com/rootwarden/rootwarden/internal/model"
)

// The detector publishes presence first (KeyDetailsPending, no keys) and the key
// details after. The presence must not wipe the keys the case knows; the details,
// stamped with the same time, then update the case.
func TestPresenceWithDetailsPendingKeepsKnownKeys(t *testing.T) {
	c := caseIn(model.StateOpen)
	o := observation(acct, true, model.SourceEvent, t0)
	o.Keys, o.KeyDetailsPending = []model.KeyDetail{}, true
	d, err := Apply(c, Input{At: t0, Finding: &o})
	if err != nil {
		t.Fatal(err)
	}
	next := c
	if d.Changed() {
		next = d.Case
	}
	if len(next.Keys) != 1 || len(d.Events) != 0 {
		t.Fatalf("presence with details pending: keys %+v events %v, want the known key and no event", next.Keys, eventTypes(d.Events))
	}
	full := o
	full.KeyDetailsPending = false
	full.Keys = []model.KeyDetail{{Slot: 1, Active: true}, {Slot: 2, Active: false}}
	d, err = Apply(next, Input{At: t0, Finding: &full})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Case.Keys) != 2 || len(d.Events) != 1 || !strings.Contains(d.Events[0].Reason, "details refreshed") {
		t.Fatalf("details: keys %+v events %+v", d.Case.Keys, d.Events)
	}
}
