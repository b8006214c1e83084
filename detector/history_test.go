package detector_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// A sweep leaves its coverage on the retained history: how many accounts were
// listed, how many checked, which could not be checked and why (a code, no message),
// and how many had root credentials, by type.
func TestSweepCoverageIsRecordedOnTheHistory(t *testing.T) {
	const members = 6
	w := newWorld(t, members, true, awssim.Options{})
	w.sim.CreateRootKey(member(2), w.clock.Now())
	w.sim.SetAccessDenied(member(4), true)
	b := bustest.New(t)
	d := newDetector(t, w, w.config("OrganizationAccountAccessRole"), b)
	runDetector(t, d)

	var listed, checked *model.SweepHistory
	testutil.EventuallyWithin(t, 30*time.Second, "the sweep's history records", func() bool {
		listed, checked = nil, nil
		for _, h := range readSweepHistory(t, b) {
			switch h.Kind {
			case "listed":
				listed = &h
			case "checked":
				checked = &h
			}
		}
		return listed != nil && checked != nil
	})
	if listed.Listed != members+1 || listed.SweepID != checked.SweepID {
		t.Errorf("listed %+v", listed)
	}
	if checked.Checked != members+1 || checked.WithRootCredentials["access_keys"] != 1 ||
		len(checked.Unchecked) != 1 || checked.Unchecked[member(4)] != "AccessDenied" {
		t.Errorf("checked %+v", checked)
	}
}

func readSweepHistory(t *testing.T, b *bus.Bus) []model.SweepHistory {
	t.Helper()
	ctx := t.Context()
	s, err := b.JS.Stream(ctx, bus.StreamHistory)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []model.SweepHistory
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		var h model.SweepHistory
		if json.Unmarshal(m.Data, &h) == nil && h.Kind != "" {
			out = append(out, h)
		}
	}
	return out
}
