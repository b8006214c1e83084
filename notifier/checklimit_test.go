package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

// checkCounter is a detector that counts the checks it is asked for, per account.
type checkCounter struct {
	mu sync.Mutex
	by map[string]int
}

func (c *checkCounter) Check(_ context.Context, account, _ string) (model.Observation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[string]int{}
	}
	c.by[account]++
	return model.Observation{AccountID: account}, nil
}

func (c *checkCounter) total() (n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.by {
		n += k
	}
	return n
}

func (c *checkCounter) of(account string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.by[account]
}

func (o *oncallEnv) sweepRecord(id string, started time.Time, accounts int) {
	o.t.Helper()
	sweep, _ := json.Marshal(map[string]any{"id": id, "started_at": started, "done": true, "accounts": accounts})
	if _, err := o.b.Sched.Put(context.Background(), "sweep", sweep); err != nil {
		o.t.Fatal(err)
	}
}

func (o *oncallEnv) textAs(user, cmd string) string {
	o.t.Helper()
	_, m := o.command(user, cmd, "")
	return fmt.Sprint(m["text"])
}

// The review's reproduction: a person who is no approver sends 300 `check <id>` with
// distinct ids. Half are in the inventory: they cost at most the person's budget of
// detector checks; half are not: they are answered from the inventory and cost
// nothing. Each refusal says why and when to try again.
func TestSlashCheckSpendsAtMostThePersonsBudget(t *testing.T) {
	det := &checkCounter{}
	o := newOnCallEnv(t, false, func(c *notifier.Config) { c.Checker = det })
	o.run()
	o.sweepRecord("20261207T120000Z-abc", o.clock.Now().Add(-10*time.Minute), 150)
	var listed, unlisted []string
	for i := range 150 {
		listed = append(listed, fmt.Sprintf("5%011d", i))
		unlisted = append(unlisted, fmt.Sprintf("6%011d", i))
	}
	o.list(listed...)

	accepted, refusedUser, notListed := 0, 0, 0
	for i := range 150 {
		for _, id := range []string{listed[i], unlisted[i]} {
			switch txt := o.textAs(outsider, "check "+id); {
			case strings.Contains(txt, "Checking account "+id):
				accepted++
			case strings.Contains(txt, "You have used your checks") && strings.Contains(txt, "Try again in"):
				refusedUser++
			case strings.Contains(txt, "not listed in the organization as of the sweep `20261207T120000Z-abc`"):
				notListed++
			default:
				t.Fatalf("check %s answered %q", id, txt)
			}
		}
	}
	budget := notifier.DefaultCheckPerUser.Burst
	if accepted != budget || refusedUser != 150-budget || notListed != 150 {
		t.Fatalf("%d checks accepted, %d refused for the person's budget, %d answered as not listed; want %d, %d, 150",
			accepted, refusedUser, notListed, budget, 150-budget)
	}
	testutil.Eventually(t, "the accepted checks reach the detector", func() bool { return det.total() == accepted })
	for _, id := range unlisted {
		if det.of(id) != 0 {
			t.Fatalf("the detector was asked about %s, which is not listed", id)
		}
	}

	// Forcing a check of an unlisted account is for approvers; for them it is a check.
	if txt := o.textAs(outsider, "check "+unlisted[0]+" force"); !strings.Contains(txt, "is for approvers") {
		t.Fatalf("a forced check by a non-approver answered %q", txt)
	}
	if txt := o.textAs(approverUser, "check "+unlisted[0]+" force"); !strings.Contains(txt, "Checking account "+unlisted[0]) {
		t.Fatalf("a forced check by an approver answered %q", txt)
	}
	testutil.Eventually(t, "the forced check reaches the detector", func() bool { return det.of(unlisted[0]) == 1 })

	// Everyone together: many people, one check each, reach the global budget.
	global, refusedGlobal := 0, 0
	for i := range 30 {
		switch txt := o.textAs(fmt.Sprintf("U0PERSON%02d", i), "check "+listed[100+i]); {
		case strings.Contains(txt, "Checking account"):
			global++
		case strings.Contains(txt, "answering many checks right now") && strings.Contains(txt, "Try again in"):
			refusedGlobal++
		default:
			t.Fatalf("check answered %q", txt)
		}
	}
	if max := notifier.DefaultCheckGlobal.Burst - budget - 1; global != max || refusedGlobal != 30-max {
		t.Fatalf("%d more checks accepted, %d refused for everyone's budget; want %d and %d", global, refusedGlobal, max, 30-max)
	}
}

// The limits forget what no longer limits anything, and an unlisted account's answer
// says when the next sweep is due.
func TestSlashCheckLimitsShrinkAndTheNextSweepIsNamed(t *testing.T) {
	det := &checkCounter{}
	o := newOnCallEnv(t, false, func(c *notifier.Config) {
		c.Checker = det
		c.SweepEvery = 15 * time.Minute
		c.CheckGlobal = notifier.Rate{Every: time.Millisecond, Burst: 1000}
	})
	o.run()
	started := o.clock.Now().Add(-10 * time.Minute)
	o.sweepRecord("s1", started, 300)
	var ids []string
	for i := range 300 {
		ids = append(ids, fmt.Sprintf("7%011d", i))
	}
	o.list(ids...)
	for i, id := range ids {
		o.textAs(fmt.Sprintf("U0P%03d", i%60), "check "+id)
	}
	accounts, users := o.n.CheckLimitSizes()
	if accounts == 0 || users != 60 {
		t.Fatalf("after the checks: %d account slots, %d user buckets; want some and 60", accounts, users)
	}
	o.clock.Add(48 * time.Hour)
	o.textAs(outsider, "check "+ids[0])
	if accounts, users := o.n.CheckLimitSizes(); accounts > 1 || users > 1 {
		t.Fatalf("48 h later: %d account slots, %d user buckets; want the last check's only", accounts, users)
	}

	o.clock.Set(started.Add(10 * time.Minute))
	txt := o.textAs(outsider, "check 888888888888")
	want := "The next sweep starts at " + started.Add(15*time.Minute).UTC().Format("2006-01-02 15:04 UTC") + " (in 5m)"
	if !strings.Contains(txt, "not listed in the organization as of the sweep `s1`") || !strings.Contains(txt, want) ||
		!strings.Contains(txt, "`/rootwarden check 888888888888 force`") {
		t.Fatalf("an unlisted account's answer %q does not say %q and how to force a check", txt, want)
	}
	if det.of("888888888888") != 0 {
		t.Fatal("the detector was asked about an unlisted account")
	}
}
