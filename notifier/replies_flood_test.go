package notifier_test

import (
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

// replySeqs counts the thread replies of a case message by the event seq in their
// metadata.
func replySeqs(m slackfake.Message) map[int]int {
	out := map[int]int{}
	for _, r := range m.Replies {
		if r.Metadata == nil || r.Metadata.EventType != notifier.MetadataCaseEvent {
			continue
		}
		if seq, ok := r.Metadata.EventPayload["seq"].(float64); ok {
			out[int(seq)]++
		}
	}
	return out
}

// Behind a flood, a click's event (delivered at once by the urgent consumer) is
// projected before an older event of the same case still queued in the stream. The
// older event's thread reply must still be posted when it comes, exactly once, and
// the click's reply must not be posted again when the main consumer delivers it.
func TestAnOlderEventBehindAFloodStillGetsItsReply(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) {
		c.PostRate = notifier.Rate{Every: 200 * time.Millisecond, Burst: 1}
		c.MaxInFlight = 8
		c.AckWait = 500 * time.Millisecond
	})
	e.run()
	first := floodCase(0, e.clock.Now())
	e.publish(first, model.EventOpened, "", model.System, "found")
	e.rendered(first.ID, 1)
	const n = 60
	for i := 1; i <= n; i++ {
		e.publish(floodCase(i, e.clock.Now()), model.EventOpened, "", model.System, "found")
	}
	// A system event of the first case (seq 2), then an approval (seq 3), both behind
	// the flood.
	c := first
	e.publish(c, model.EventUpdated, model.StateOpen, model.System, "details refreshed")
	c.State = model.StateTicketed
	e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
	e.rendered(c.ID, 3)
	testutil.EventuallyWithin(t, 60*time.Second, "every case in Slack", func() bool { return len(caseMessages(e)) == n+1 })
	testutil.EventuallyWithin(t, 30*time.Second, "the flood acknowledged", func() bool {
		r, w := e.n.Backlog()
		return r+w == 0 && replySeqs(e.onlyMessageOf(c.ID))[2] > 0
	})
	got := replySeqs(e.onlyMessageOf(c.ID))
	if got[2] != 1 || got[3] != 1 || len(got) != 2 {
		t.Errorf("thread replies by seq = %v, want one for seq 2 and one for seq 3", got)
	}
}
