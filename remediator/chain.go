package remediator

// The audit log is tamper-evident: every case event carries the hash of the bytes of
// its account's previous event (model.CaseEvent.PrevHash), so an event edited or
// removed afterwards breaks the chain at the next one (`rootwarden evidence verify`,
// internal/evidence). The hash is fixed when the event is decided, before it is
// stored in the outbox with the state: a publication repeated after a crash carries
// the same bytes, and the remediator, the single writer of an account's events,
// keeps the head of the chain in the account's record (ChainHead).

import (
	"encoding/json"

	"github.com/rootwarden/rootwarden/internal/model"
)

// chain links events (new, in order) to rec's chain and moves its head.
func chain(rec *record, events []model.CaseEvent) error {
	for i := range events {
		events[i].PrevHash = rec.ChainHead
		if events[i].PrevHash == "" {
			events[i].PrevHash = model.ChainStart
		}
		data, err := json.Marshal(events[i]) // the bytes bus.PublishJSON sends
		if err != nil {
			return model.Wrap(model.CodeInternal, err, "encode case event %s", events[i].ID)
		}
		rec.ChainHead = model.ChainHash(data)
	}
	return nil
}
