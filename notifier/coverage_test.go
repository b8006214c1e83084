package notifier_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

const (
	scpDenied  = "AccessDenied: iam:GetAccountSummary: AccessDenied: User: arn:aws:sts::200000000003:assumed-role/x is not authorized to perform: iam:GetAccountSummary with an explicit deny in a service control policy"
	roleDenied = "AccessDenied: sts:AssumeRole: AccessDenied: User: arn:aws:iam::111111111111:user/rw is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::200000000004:role/rootwarden"
)

// putUnchecked writes an account's run of failed checks as the remediator does
// (remediator/unchecked.go): reported once it is long enough.
func (e *env) putUnchecked(account, failure string, failures int, last time.Time) {
	e.t.Helper()
	u := bus.UncheckedRecord{Since: last.Add(-time.Hour), Last: last, Failures: failures, Error: failure}
	if failures >= 3 {
		u.Reported = failure
	}
	data, _ := json.Marshal(u)
	if _, err := e.b.Sched.Put(context.Background(), bus.UncheckedKeyPrefix+account, data); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) putSweep(accounts int, started time.Time) {
	e.t.Helper()
	data, _ := json.Marshal(map[string]any{"id": "s2", "started_at": started, "done": true, "accounts": accounts,
		"prev": map[string]any{"id": "s1", "started_at": started.Add(-15 * time.Minute), "complete": true}})
	if _, err := e.b.Sched.Put(context.Background(), bus.SchedSweepKey, data); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) putInventory(account, name, ou string) {
	e.t.Helper()
	data, _ := json.Marshal(map[string]any{"account_id": account, "account_name": name, "ou_path": ou})
	if _, err := e.b.Accounts.Put(context.Background(), account, data); err != nil {
		e.t.Fatal(err)
	}
}

// /rootwarden status and the App Home say how many listed accounts are decided and how
// many could not be checked, grouped by reason (issue 19 item 12, newcomer D7: status
// said "every listed account checked" while one failed every check).
func TestStatusAndHomeSayWhichAccountsCouldNotBeChecked(t *testing.T) {
	o := newOnCallEnv(t, false, nil)
	o.run()
	now := o.clock.Now()
	o.putSweep(6, now.Add(-5*time.Minute))
	if got := o.text("status"); !strings.Contains(got, "Coverage: 6 of 6 listed accounts decided (root access keys present or absent); none failed its last check.") {
		t.Fatalf("with every check answered, /rootwarden status answers\n%s", got)
	}
	o.putUnchecked("200000000003", scpDenied, 6, now.Add(-time.Minute))
	o.putUnchecked("200000000004", roleDenied, 3, now.Add(-2*time.Minute))
	o.putUnchecked("200000000009", roleDenied, 9, now.Add(-48*time.Hour)) // left: no sweep checks it any more
	want := ":warning: Coverage: 4 of 6 listed accounts decided; 2 could not be checked (" +
		"AccessDenied by an SCP: 1 (`200000000003`) · no role (AssumeRole denied: the role is missing or does not trust rootwarden): 1 (`200000000004`))" +
		": root access keys there would go unnoticed. `rootwarden cases unchecked` lists them."
	var got string
	testutil.Eventually(t, "status to show the two accounts", func() bool {
		got = o.text("status")
		return strings.Contains(got, want)
	})
	if strings.Contains(got, "every listed account checked") || strings.Contains(got, "200000000009") {
		t.Fatalf("/rootwarden status answers\n%s", got)
	}
	if err := o.n.HomeOpened(context.Background(), outsider); err != nil {
		t.Fatal(err)
	}
	h, ok := o.fake.Home(outsider)
	if !ok || !strings.Contains(h.AllText(), want) {
		t.Fatalf("App Home lacks the coverage line %q:\n%s", want, h.AllText())
	}
}

// Once a day each routed channel gets a summary of its own accounts that could not be
// checked, and the default channel the rest; only when there is something to say, and
// once per day across restarts.
func TestDailyCoverageSummaryPerChannel(t *testing.T) {
	const prod = "C0PROD0001"
	routes := func(c *notifier.Config) { c.Routes = []notifier.Route{{OU: "Root/Prod", Channel: prod}} }
	e := newEnvWith(t, []slackfake.Option{slackfake.WithChannel(prod, "prod-alerts")}, routes)
	ctx := context.Background()
	day := e.clock.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	e.clock.Set(day.Add(8 * time.Hour)) // before the summary is due
	now := e.clock.Now()
	e.putSweep(5, now.Add(-10*time.Minute))
	e.putInventory("200000000003", "payments-prod", "Root/Prod/Payments")
	e.putInventory("200000000004", "<!channel> sandbox", "Root/Dev")
	e.putInventory("200000000005", "flaky", "Root/Prod")
	e.putUnchecked("200000000003", scpDenied, 4, now)
	e.putUnchecked("200000000004", roleDenied, 3, now)
	e.putUnchecked("200000000005", scpDenied, 1, now) // one failure: not yet unchecked

	if err := e.n.CoverageSummary(ctx); err != nil || len(e.fake.Messages(prod))+len(e.fake.Messages(channelID)) != 0 {
		t.Fatalf("before 09:00 UTC: %v, %d + %d messages", err, len(e.fake.Messages(prod)), len(e.fake.Messages(channelID)))
	}
	e.clock.Set(day.Add(9*time.Hour + time.Minute))
	if err := e.n.CoverageSummary(ctx); err != nil {
		t.Fatal(err)
	}
	pm, dm := e.fake.Messages(prod), e.fake.Messages(channelID)
	if len(pm) != 1 || len(dm) != 1 {
		t.Fatalf("messages: %d in the routed channel, %d in the default one; want 1 and 1", len(pm), len(dm))
	}
	if txt := pm[0].AllText(); !strings.Contains(txt, "rootwarden could not check 1 account in this channel's scope") ||
		!strings.Contains(txt, "AccessDenied by an SCP* (1): `200000000003` payments-prod") || strings.Contains(txt, "200000000004") ||
		strings.Contains(txt, "200000000005") {
		t.Errorf("routed channel's summary:\n%s", txt)
	}
	if txt := dm[0].AllText(); !strings.Contains(txt, "rootwarden could not check 1 account that no route sends elsewhere") ||
		!strings.Contains(txt, "`200000000004` &lt;!channel&gt; sandbox") || strings.Contains(txt, "200000000003") {
		t.Errorf("default channel's summary:\n%s", txt)
	}

	// Once per day, also for a notifier started afresh (a restart, a replica).
	e.clock.Add(time.Hour)
	if err := e.n.CoverageSummary(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := notifier.New(e.cfg, nil, e.b, e.api)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.CoverageSummary(ctx); err != nil {
		t.Fatal(err)
	}
	if p, d := len(e.fake.Messages(prod)), len(e.fake.Messages(channelID)); p != 1 || d != 1 {
		t.Fatalf("the same day again: %d and %d messages, want 1 and 1", p, d)
	}

	// The next day: the routed channel's account works again; only the default
	// channel has something to say.
	if err := e.b.Sched.Delete(ctx, bus.UncheckedKeyPrefix+"200000000003"); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(24 * time.Hour)
	e.putSweep(5, e.clock.Now().Add(-10*time.Minute))
	e.putUnchecked("200000000004", roleDenied, 99, e.clock.Now())
	if err := again.CoverageSummary(ctx); err != nil {
		t.Fatal(err)
	}
	if p, d := len(e.fake.Messages(prod)), len(e.fake.Messages(channelID)); p != 1 || d != 2 {
		t.Fatalf("the next day: %d and %d messages, want 1 and 2", p, d)
	}
}
