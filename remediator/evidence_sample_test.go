package remediator

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rootwarden/rootwarden/internal/bus"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/evidence"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

// A quarter of cases driven through the real remediator: the HTML report of it is
// one page with no script and no outside reference, and with
// ROOTWARDEN_EVIDENCE_SAMPLE=FILE it is written there (.ci/evidence-checks opens it
// in Chromium and takes the README's picture of it).
func TestEvidenceSampleQuarter(t *testing.T) {
	b := bustest.New(t)
	start := time.Date(2026, 9, 12, 8, 30, 0, 0, time.UTC)
	clk := testutil.NewClock(start)
	ctx := ctxT(t)
	// The detector's answer to a check, with the account's name and OU as a real
	// detector gives them.
	var mu sync.Mutex
	present, names, ous := map[string]bool{}, map[string]string{}, map[string]string{}
	sub, err := b.NC.QueueSubscribe(bus.SubjectCheck, bus.QueueCheck, func(m *nats.Msg) {
		var req model.CheckRequest
		if json.Unmarshal(m.Data, &req) != nil {
			return
		}
		mu.Lock()
		o := observation(req.AccountID, present[req.AccountID], model.SourceCheck, clk.Now())
		o.AccountName, o.OUPath, o.RequestID = names[req.AccountID], ous[req.AccountID], req.RequestID
		mu.Unlock()
		data, _ := json.Marshal(o)
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	set := func(account string, p bool) { mu.Lock(); present[account] = p; mu.Unlock() }
	r := newRem(t, b, clk, tracker.NewBuiltin(b), func(c *Config) {
		c.Evidence = EvidenceConfig{Token: evidenceTk, SLA: 24 * time.Hour, Generator: "rootwarden 0.1.0"}
	})
	type story struct {
		account, name, ou string
		src               model.Source
		at                time.Duration // after start
		flow              string        // fix:<ttr>, accept, open
		ttr               time.Duration
		who               string
	}
	day := 24 * time.Hour
	stories := []story{
		{"210000000000", "identity-prod", "Root/Prod", model.SourceSweep, 0, "fix", 5 * time.Hour, "maria.k"}, // before the period
		{"210000000001", "payments-prod", "Root/Prod/Payments", model.SourceEvent, 22 * day, "fix", 47 * time.Minute, "maria.k"},
		{"210000000002", "checkout-prod", "Root/Prod/Payments", model.SourceSweep, 29 * day, "fix", 3*time.Hour + 20*time.Minute, "dev.ops"},
		{"210000000003", "web-edge-prod", "Root/Prod/Web", model.SourceSweep, 35 * day, "fix", 6 * time.Hour, "maria.k"},
		{"210000000004", "data-lake-dev", "Root/Dev", model.SourceSweep, 41 * day, "accept", 0, "cso.anne"},
		{"210000000005", "search-prod", "Root/Prod/Web", model.SourceEvent, 50 * day, "fix", 25 * time.Minute, "sam.r"},
		{"210000000006", "ml-sandbox-17", "Root/Sandbox", model.SourceSweep, 58 * day, "fix", 2*day + 5*time.Hour, "sam.r"},
		{"210000000007", "ledger-prod", "Root/Prod/Payments", model.SourceSweep, 67 * day, "fix", 90 * time.Minute, "maria.k"},
		{"210000000008", "legacy-billing", "Root/Prod/Legacy", model.SourceSweep, 75 * day, "accept", 0, "cso.anne"},
		{"210000000009", "web-admin-prod", "Root/Prod/Web", model.SourceEvent, 83 * day, "fix", 4*time.Hour + 10*time.Minute, "dev.ops"},
		{"210000000010", "security-tools", "Root/Security", model.SourceSweep, 92 * day, "fix", 12 * time.Hour, "maria.k"},
		{"210000000011", "qa-sandbox-03", "Root/Sandbox", model.SourceSweep, 100 * day, "open", 0, "none"},
		{"210000000012", "payments-dr", "Root/Prod/Payments", model.SourceSweep, 106 * day, "open", 0, "none"},
	}
	for _, s := range stories {
		clk.Set(start.Add(s.at))
		mu.Lock()
		present[s.account], names[s.account], ous[s.account] = true, s.name, s.ou
		mu.Unlock()
		o := observation(s.account, true, s.src, clk.Now())
		o.AccountName, o.OUPath = s.name, s.ou
		if s.src == model.SourceEvent {
			o.Event = &model.TrailEvent{EventID: fmt.Sprintf("9c1e%08d-5a1b-4c2d-8e3f-%012d", s.at/day, s.at/day),
				EventName: "CreateAccessKey", EventSource: "iam.amazonaws.com", EventTime: clk.Now()}
		}
		if err := r.HandleFinding(ctx, o); err != nil {
			t.Fatal(err)
		}
		rec := getCase(t, r, s.account)
		actor := model.Actor{Kind: model.ActorSlack, ID: "U" + strings.ToUpper(s.who[:3]) + "42", Name: s.who}
		act := func(kind model.ActionKind, reason string, exp *time.Time) {
			a := action(kind, s.account, rec.ID)
			a.Actor, a.At, a.Reason, a.Expires = actor, clk.Now(), reason, exp
			if err := r.HandleAction(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		switch s.flow {
		case "fix":
			clk.Add(s.ttr / 4)
			act(model.ActionApprove, "", nil)
			r.work(ctx, s.account)
			clk.Add(s.ttr - s.ttr/4)
			set(s.account, false)
			act(model.ActionConfirmDeleted, "", nil)
			r.work(ctx, s.account)
			waitState(t, r, s.account, model.StateResolved)
		case "accept":
			clk.Add(40 * time.Minute)
			exp := clk.Now().Add(90 * day)
			act(model.ActionAcceptRisk, "vendor integration signs with the root key; migration to IAM Identity Center planned for Q1", &exp)
		}
	}
	// The detector's sweeps of the quarter, as it records them (detector/history.go):
	// every 6 hours, 212 to 214 accounts, one account denying access in December.
	for at := start; at.Before(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)); at = at.Add(6 * time.Hour) {
		id := at.Format("20060102T150405Z") + "-s"
		n := 212 + int(at.Sub(start)/(30*day))
		listed := model.SweepHistory{SchemaVersion: 1, Kind: "listed", SweepID: id, StartedAt: at, At: at, Listed: n}
		checked := model.SweepHistory{SchemaVersion: 1, Kind: "checked", SweepID: id, StartedAt: at, At: at.Add(40 * time.Second),
			Checked: n, WithRootCredentials: map[string]int{"access_keys": 1}}
		if at.Month() == time.December {
			checked.Unchecked = map[string]string{"210000000099": "AccessDenied"}
		}
		for _, h := range []model.SweepHistory{listed, checked} {
			if _, err := b.PublishJSON(ctx, bus.HistorySweepSubject(id), h.Kind+id, h); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.Set(time.Date(2027, 1, 2, 9, 0, 0, 0, time.UTC))
	from, to, _ := ParsePeriod("2026-10-01", "2026-12-31", clk.Now())
	pack, err := r.EvidencePack(ctx, from, to, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(pack.Cases) != len(stories)-1 || len(pack.Accounts) != len(stories) || pack.Summary.CasesResolved != 8 || pack.Summary.CasesRiskAccepted != 2 ||
		pack.Summary.SLABreaches != 3 || !pack.Integrity.OK || pack.Coverage == nil || pack.Coverage.AccountsListed != 215 {
		t.Fatalf("summary %+v integrity %+v coverage %+v", pack.Summary, pack.Integrity, pack.Coverage)
	}
	html, err := evidence.HTML(pack)
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	for _, bad := range []string{"<script", "http://", "<link", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("the report holds %q: it must be self-contained", bad)
		}
	}
	if out := os.Getenv("ROOTWARDEN_EVIDENCE_SAMPLE"); out != "" {
		if err := os.WriteFile(out, html, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
