package detector

// The retained history of coverage (RW_HISTORY, internal/bus names.go): the detector
// is the one that knows what a sweep covered, so it writes it. The detector that
// lists the accounts records how many it listed; each detector records its share of
// the checks when its tally of the sweep goes quiet (sweeplog.go): how many it
// checked, how many had root credentials by type, and each unchecked account with
// its error code (never the message). Records are small and idempotent (Nats-Msg-Id);
// a record that cannot be written is logged and dropped: history is evidence, not
// the case path.

import (
	"context"
	"strconv"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// maxUncheckedKept bounds the unchecked accounts one share names (the count of
// failures is kept whole in the log line; a share beyond this names the first ones).
const maxUncheckedKept = 5000

func orUnknown(code string) string {
	if code == "" {
		return "Unknown"
	}
	return code
}

// checkedShare is a detector's share of a sweep as a history record.
func checkedShare(id string, c *sweepCount, now time.Time) model.SweepHistory {
	return model.SweepHistory{SchemaVersion: model.SchemaVersion, Kind: "checked", SweepID: id,
		StartedAt: c.start.UTC(), At: now.UTC(), Checked: c.accounts,
		WithRootCredentials: map[string]int{"access_keys": c.withKeys}, Unchecked: c.unchecked}
}

// recordSweeps writes the shares to the history.
func (d *Detector) recordSweeps(ctx context.Context, shares []model.SweepHistory) {
	for _, h := range shares {
		id := "sweep-checked-" + h.SweepID + "-" + strconv.FormatInt(h.At.UnixNano(), 36)
		d.recordHistory(ctx, h, id)
	}
}

// recordListed writes how many accounts the sweep listed.
func (d *Detector) recordListed(ctx context.Context, sweepID string, started time.Time, n int, listErr string) {
	h := model.SweepHistory{SchemaVersion: model.SchemaVersion, Kind: "listed", SweepID: sweepID,
		StartedAt: started.UTC(), At: d.e.cfg.Now().UTC(), Listed: n, Error: listErr}
	d.recordHistory(context.WithoutCancel(ctx), h, "sweep-listed-"+sweepID)
}

func (d *Detector) recordHistory(ctx context.Context, h model.SweepHistory, msgID string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.b.PublishJSON(ctx, bus.HistorySweepSubject(h.SweepID), msgID, h); err != nil {
		d.log.Warn("could not record the sweep on the history", "sweep", h.SweepID, "kind", h.Kind, "err", safeError(err))
	}
}
