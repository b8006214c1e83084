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

func (o *oncallEnv) text(command string) string {
	o.t.Helper()
	status, m := o.command(outsider, command, "")
	if status != 200 || m["response_type"] != "ephemeral" {
		o.t.Fatalf("/rootwarden %s: %d %v", command, status, m)
	}
	return fmt.Sprint(m["text"])
}

func stampOf(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
