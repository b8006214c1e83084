package detector

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

func TestASweepIsOneLogLineWithItsCounts(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tally := newSweepTally(func() time.Time { return now })
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))

	for i := range 3000 {
		o := model.Observation{SweepID: "s1", AccountID: "x"}
		switch {
		case i%1000 == 0:
			o.RootKeysPresent = true
		case i%1500 == 1:
			o.Error, o.ErrorCode = "denied", "AccessDenied"
		}
		tally.add(o, false)
		now = now.Add(time.Millisecond)
	}
	tally.add(model.Observation{AccountID: "y"}, false) // an event or check: not a sweep's

	tally.flush(log, sweepQuiet, 15*time.Minute)
	if buf.Len() != 0 {
		t.Fatalf("a sweep still checking was logged: %s", buf.String())
	}
	now = now.Add(sweepQuiet)
	tally.flush(log, sweepQuiet, 15*time.Minute)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line for 3,000 accounts, got %d:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"level=WARN", `msg="sweep checked"`, "sweep=s1", "accounts=3000", "with_root_keys=3", "failed=2", "took=2.999s", "next_sweep=2026-12-01T10:15:00Z"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("summary line lacks %s: %s", want, lines[0])
		}
	}
	buf.Reset()
	tally.flush(log, 0, 15*time.Minute)
	if buf.Len() != 0 {
		t.Errorf("a sweep was logged twice: %s", buf.String())
	}
}

// D24: took is the sweep's duration from its start (named in its id), not the span
// between this detector's first and last check.
func TestSweepLineTookCountsFromTheSweepsStart(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	now := start.Add(4 * time.Second) // the listing took 4s before the first check here
	tally := newSweepTally(func() time.Time { return now })
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	id := start.Format("20060102T150405Z") + "-abcd1234"
	for range 10 {
		tally.add(model.Observation{SweepID: id, AccountID: "x"}, false)
		now = now.Add(100 * time.Millisecond)
	}
	now = now.Add(sweepQuiet)
	tally.flush(log, sweepQuiet, 15*time.Minute)
	if !strings.Contains(buf.String(), "took=4.9s") || !strings.Contains(buf.String(), "next_sweep=2026-12-01T10:15:00Z") {
		t.Errorf("line %s: want took=4.9s (from the sweep's start to its last check) and the next sweep an interval after the start", buf.String())
	}
}
