package remediator

import (
	"strings"
	"testing"

	"github.com/rootwarden/rootwarden/internal/model"
)

// A case posted before its account's tags could be read (the finding's RoutingError)
// learns its owner from a later finding: the change is a "details refreshed" event,
// which re-renders the case's message with the owner, and the routing error is cleared.
func TestAnOwnerLearnedAfterThePostRefreshesTheCase(t *testing.T) {
	c := caseIn(model.StateOpen)
	o := observation(acct, true, model.SourceSweep, t0)
	o.Tags, o.RoutingError = nil, "the account's tags could not be read"
	d, err := Apply(c, Input{At: t0, Finding: &o})
	if err != nil {
		t.Fatal(err)
	}
	next := c
	if d.Changed() {
		next = d.Case
	}
	if next.RoutingError == "" {
		t.Fatalf("the case does not say its routing facts are missing: %+v", next)
	}
	later := o
	later.RoutingError = ""
	later.Tags = map[string]string{"owner": "alice@example.com"}
	d, err = Apply(next, Input{At: t0, Finding: &later})
	if err != nil {
		t.Fatal(err)
	}
	if d.Case.Tags["owner"] != "alice@example.com" || d.Case.RoutingError != "" {
		t.Fatalf("case after the owner was read: tags %v, routing error %q", d.Case.Tags, d.Case.RoutingError)
	}
	if len(d.Events) != 1 || d.Events[0].Type != model.EventUpdated || !strings.Contains(d.Events[0].Reason, "details refreshed") {
		t.Fatalf("events = %+v, want one details refreshed", d.Events)
	}
}
