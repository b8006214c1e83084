package remediator

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/trackerfake"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

// A Jira project that requires a field rootwarden does not send: the case says which
// field and which setting, and the work run again does not send the create again.
func TestJiraRequiredFieldRefusalIsOnTheCase(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	startResponder(t, b, clk)
	jira := trackerfake.NewJira(trackerfake.WithJiraRequiredFields(map[string]string{"customfield_10010": "Team is required."}))
	jira.Start()
	t.Cleanup(jira.Close)
	tr, err := tracker.NewJira(tracker.JiraConfig{BaseURL: jira.URL(), Email: "bot@example.com", APIToken: "t", Project: "SEC",
		SearchLag: 10 * time.Millisecond, Retry: tracker.Retry{Base: time.Millisecond, MaxDelay: 10 * time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newRem(t, b, clk, tr)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := r.HandleAction(ctx, action(model.ActionApprove, acct, caseID(acct, 1))); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	r.work(ctx, acct) // the retry of the work
	c := getCase(t, r, acct)
	for _, want := range []string{"could not open ticket", "customfield_10010", "Team is required", "ROOTWARDEN_JIRA_EXTRA_FIELDS"} {
		if !strings.Contains(c.TicketError, want) {
			t.Errorf("ticket error %q does not say %q", c.TicketError, want)
		}
	}
	if !slices.Contains(c.Pending, PendingOpenTicket) {
		t.Errorf("pending %v: the intent must stay for a restart with the settings fixed", c.Pending)
	}
	if n := jira.Count(http.MethodPost, "/rest/api/3/issue"); n != 1 {
		t.Errorf("%d creates sent, want 1", n)
	}
}
