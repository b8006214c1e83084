package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// publishCheck puts an observation of the account on RW_FINDINGS, as the detector does.
func (e *env) publishCheck(o model.Observation) {
	e.t.Helper()
	if _, err := e.b.PublishJSON(context.Background(), bus.FindingSubject(o.AccountID), o.ID, o); err != nil {
		e.t.Fatal(err)
	}
}

// /rootwarden case says what the account's newest check found, failed checks
// included, and without any check on the stream it gives the case's own time as
// "on record", never as the latest; /rootwarden status says how many checks of
// the last sweep are still to do.
func TestSlashCaseTellsTheLastCheck(t *testing.T) {
	o := newOnCallEnv(t, false, nil)
	o.run()
	c := o.openCase()
	if got, want := o.text("case "+c.ID), "Last check on record: "+stampOf(c.LastCheckedAt)+" (0m ago); later checks that changed nothing are not recorded"; !strings.Contains(got, want) {
		t.Errorf("with no check on the stream, /rootwarden case answers\n%s\nwant %q", got, want)
	}

	o.clock.Add(40 * time.Minute)
	checked := o.clock.Now()
	o.clock.Add(5 * time.Minute)
	o.publishCheck(model.Observation{SchemaVersion: model.SchemaVersion, ID: "chk-1", AccountID: account, Source: model.SourceCheck,
		ObservedAt: checked, Error: "sts:AssumeRole: AccessDenied", ErrorCode: "AccessDenied"})
	if got, want := o.text("case "+c.ID), "Last check: "+stampOf(checked)+" (5m ago) by an on-demand check: :warning: the check failed: sts:AssumeRole: AccessDenied"; !strings.Contains(got, want) {
		t.Errorf("/rootwarden case answers\n%s\nwant %q", got, want)
	}

	sweep, _ := json.Marshal(map[string]any{"id": "20261201T100000Z-abc", "started_at": o.clock.Now().Add(-3 * time.Minute),
		"done": true, "accounts": 3})
	if _, err := o.b.Sched.Put(context.Background(), "sweep", sweep); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"333333333333", "444444444444"} { // two jobs still queued
		if _, err := o.b.PublishJSON(context.Background(), bus.ScanSubject(a), "job-"+a, map[string]any{"sweep_id": "20261201T100000Z-abc"}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := o.text("status"), "3 accounts listed; 2 checks still to do"; !strings.Contains(got, want) {
		t.Errorf("/rootwarden status answers\n%s\nwant %q", got, want)
	}
}

// A sweep that finds an account unchanged publishes nothing (detector/unchanged.go):
// /rootwarden case then names the sweep that last checked the account — the current
// one once its job of the account is done, else the previous one if it was complete
// — and what was found since when. An account outside the inventory was not swept.
func TestSlashCaseTellsTheSweepThatFoundNothingNew(t *testing.T) {
	o := newOnCallEnv(t, false, nil)
	o.run()
	c := o.openCase()
	ctx := context.Background()
	seen := o.clock.Now()
	o.publishCheck(model.Observation{SchemaVersion: model.SchemaVersion, ID: "sweep-1-" + account, AccountID: account,
		Source: model.SourceSweep, SweepID: "s1", ObservedAt: seen, RootKeysPresent: true, Keys: []model.KeyDetail{{Slot: 1, Active: true}}})
	putSweep := func(st map[string]any) {
		t.Helper()
		data, _ := json.Marshal(st)
		if _, err := o.b.Sched.Put(ctx, bus.SchedSweepKey, data); err != nil {
			t.Fatal(err)
		}
	}
	o.clock.Add(15 * time.Minute)
	s2 := o.clock.Now()
	putSweep(map[string]any{"id": "s2", "started_at": s2, "done": true, "accounts": 1,
		"prev": map[string]any{"id": "s1", "started_at": seen, "complete": true}})
	o.clock.Add(2 * time.Minute)
	if got, want := o.text("case "+c.ID), "Last check: "+stampOf(seen)+" (17m ago) by a sweep: root access keys present"; !strings.Contains(got, want) {
		t.Errorf("for an account outside the inventory /rootwarden case answers\n%s\nwant %q", got, want)
	}
	if _, err := o.b.Accounts.Put(ctx, account, []byte(`{"id":"`+account+`"}`)); err != nil {
		t.Fatal(err)
	}
	want := "Last check: in the sweep `s2` started " + stampOf(s2) + " (2m ago): root access keys present, unchanged since " + stampOf(seen) + " by a sweep"
	if got := o.text("case " + c.ID); !strings.Contains(got, want) {
		t.Errorf("after an unchanged sweep /rootwarden case answers\n%s\nwant %q", got, want)
	}

	o.clock.Add(15 * time.Minute) // s3 started; the account's job is still queued
	putSweep(map[string]any{"id": "s3", "started_at": o.clock.Now(), "done": true, "accounts": 1,
		"prev": map[string]any{"id": "s2", "started_at": s2, "complete": true}})
	if _, err := o.b.PublishJSON(ctx, bus.ScanSubject(account), "job-s3-"+account, map[string]any{"sweep_id": "s3"}); err != nil {
		t.Fatal(err)
	}
	if got := o.text("case " + c.ID); !strings.Contains(got, "Last check: in the sweep `s2` started "+stampOf(s2)) {
		t.Errorf("with the current sweep's job queued /rootwarden case answers\n%s\nwant the previous sweep s2", got)
	}
}

func (o *oncallEnv) text(command string) string {
	o.t.Helper()
	status, m := o.command(outsider, command, "")
	if status != 200 || m["response_type"] != "ephemeral" {
		o.t.Fatalf("/rootwarden %s: %d %v", command, status, m)
	}
	return fmt.Sprint(m["text"])
}

func stampOf(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
