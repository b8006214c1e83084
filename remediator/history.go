package remediator

// The retained history of posture (RW_HISTORY, internal/bus names.go): the remediator
// decides when an account's root credentials are present (a case opens or reopens
// after resolution) or absent (AWS verified: resolved), so it records each change as
// one small model.PostureHistory, right after the case events that carry it are
// published. A record lost to a crash at that point is not lost to the evidence: the
// case events (RW_CASES, hash-chained) say the same and the pack reads both.

import (
	"context"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// postureOf is the posture an event states, "" when it changes none.
func postureOf(ev model.CaseEvent) string {
	switch {
	case ev.Type == model.EventOpened, ev.From == model.StateResolved && ev.To.Active():
		return "present"
	case ev.Type == model.EventResolved:
		return "absent"
	}
	return ""
}

func (r *Remediator) recordPosture(ctx context.Context, events []model.CaseEvent) {
	for _, ev := range events {
		state := postureOf(ev)
		if state == "" {
			continue
		}
		h := model.PostureHistory{SchemaVersion: model.SchemaVersion, AccountID: ev.AccountID, At: ev.At.UTC(),
			Credentials: map[string]string{"access_keys": state}, CaseID: ev.CaseID, EventID: ev.ID}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := r.b.PublishJSON(pctx, bus.HistoryPostureSubject(ev.AccountID), "posture-"+ev.ID, h); err != nil {
			r.log.Warn("could not record the posture change on the history", "account", ev.AccountID, "event", ev.ID, "err", err)
		}
		cancel()
	}
}
