package notifier_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rootwarden/rootwarden/internal/bus"
)

// Upgrades keep the past: a case event exactly as the previous release published it
// (no "activity" field) is projected by this release as a case message, with its
// buttons, and nothing is asked of anyone.
func TestCaseEventOfThePreviousReleaseRendersAsBefore(t *testing.T) {
	e := newEnv(t, nil)
	e.run()
	const caseID = account + "-1-smx4g0"
	const oldCase = `{"schema_version":1,"id":"` + caseID + `","number":1,"account_id":"` + account + `","account_name":"prod","management":false,"org_member":true,"state":"open","severity":"critical","keys":[{"slot":1,"active":true}],"found_by":"event","last_checked_at":"2026-11-27T12:00:00Z","opened_at":"2026-11-27T12:00:00Z","updated_at":"2026-11-27T12:00:00Z","seq":1}`
	const oldEvent = `{"schema_version":1,"id":"` + caseID + `/1","type":"opened","case_id":"` + caseID + `","account_id":"` + account + `","seq":1,"to":"open","actor":{"kind":"system","id":"system","name":"rootwarden"},"at":"2026-11-27T12:00:00Z","reason":"root access keys found (seen by event)","case":` + oldCase + `}`
	ctx := context.Background()
	if _, err := e.b.Cases.Put(ctx, account, []byte(oldCase)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.JS.Publish(ctx, bus.CaseSubject(account), []byte(oldEvent)); err != nil {
		t.Fatal(err)
	}
	e.rendered(caseID, 1)
	m, ok := e.messageOf(caseID)
	if !ok || !strings.Contains(m.AllText(), "prod") || len(m.Buttons()) == 0 {
		t.Fatalf("old case message: %v %q %+v", ok, m.AllText(), m.Buttons())
	}
	if e.fake.Calls("conversations.open") != 0 {
		t.Fatal("an old case event asked someone a root activity question")
	}
}
