package detector

// Coalescing of CloudTrail events per account. A script running with a root key makes
// a CloudTrail event per API call; checking the account and updating the case for
// each one floods Slack and spends the member account's IAM quota. So the first event
// of a key in use is checked at once (as is every key-management event, and the
// first call signed with a key not yet seen in the window), and further calls signed
// with the same key within EventWindow are folded: one check at the end of the window,
// whose observation carries the latest event with how many calls, which API names and
// from which source IPs (TrailEvent.Calls, EventNames, SourceIPs). The SQS messages
// of folded events are deleted only after that observation is published, so a crash
// loses none of them: they come back after their visibility timeout and fold again.

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rootwarden/rootwarden/internal/model"
)

// DefaultEventWindow is Config.EventWindow's default.
const DefaultEventWindow = 30 * time.Second

type coalescer struct {
	window time.Duration
	mu     sync.Mutex
	accts  map[string]*eventWindow
}

type eventWindow struct {
	ctx     context.Context
	keys    map[string]bool // keys whose use was checked in this window
	seen    map[string]bool // event ids checked or pending
	pending []folded
	timer   *time.Timer
}

type folded struct {
	ev  model.TrailEvent
	msg sqstypes.Message
}

func newCoalescer(window time.Duration) *coalescer {
	if window == 0 {
		window = DefaultEventWindow
	}
	return &coalescer{window: window, accts: map[string]*eventWindow{}}
}

// coalesce reports whether the event was taken care of here (folded into the
// account's next check, or a repeat of an event already covered); false → check the
// account now, as for a first event.
func (d *Detector) coalesce(ctx context.Context, trig *trigger, m sqstypes.Message, log *slog.Logger) bool {
	c := d.coal
	if c == nil || c.window < 0 {
		return false
	}
	ev := trig.Event
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.accts[trig.Account]
	if w == nil {
		w = &eventWindow{ctx: ctx, keys: map[string]bool{}, seen: map[string]bool{}}
		c.accts[trig.Account] = w
		w.timer = time.AfterFunc(c.window, func() { d.flushEvents(trig.Account) })
	}
	if w.seen[ev.EventID] {
		for i := range w.pending {
			if w.pending[i].ev.EventID == ev.EventID {
				// Back after its visibility timeout while still folded: keep the new
				// receipt handle, with which it is deleted after the flush.
				w.pending[i].msg = m
				return true
			}
		}
		d.deleteMessage(ctx, m, log)
		return true // SQS or EventBridge delivered it twice
	}
	w.seen[ev.EventID] = true
	if !ev.KeyInUse || ev.AccessKeyID == "" || !w.keys[ev.AccessKeyID] {
		if ev.KeyInUse && ev.AccessKeyID != "" {
			w.keys[ev.AccessKeyID] = true
		}
		return false // the first call of a key, or a key created/deleted: at once
	}
	w.pending = append(w.pending, folded{ev: ev, msg: m})
	log.Debug("root access-key event folded into the account's next check", "pending", len(w.pending))
	return true
}

// forgetEvent: the event's check was not published; when its message comes back it
// is checked again, not taken for a repeat.
func (d *Detector) forgetEvent(trig *trigger) {
	c := d.coal
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.accts[trig.Account]; w != nil {
		delete(w.seen, trig.Event.EventID)
		delete(w.keys, trig.Event.AccessKeyID)
	}
}

// flushEvents runs at the end of an account's window: one check for the events
// folded in it, then the next window; an idle window ends.
func (d *Detector) flushEvents(account string) {
	c := d.coal
	c.mu.Lock()
	w := c.accts[account]
	if w == nil {
		c.mu.Unlock()
		return
	}
	batch := w.pending
	w.pending = nil
	if len(batch) == 0 {
		delete(c.accts, account)
		c.mu.Unlock()
		return
	}
	ctx := w.ctx
	w.timer = time.AfterFunc(c.window, func() { d.flushEvents(account) })
	c.mu.Unlock()
	if ctx.Err() != nil {
		return // shutting down: the messages come back after their visibility timeout
	}

	ev := coalesced(batch)
	log := d.log.With("account", account, "event_id", ev.EventID, "event_name", ev.EventName, "calls", ev.Calls)
	log.Info("root access-key events coalesced; checking the account once")
	obs, details := d.checkByID(ctx, account, model.SourceEvent)
	obs.ID = "event-" + ev.EventID
	obs.Event = &ev
	err := ctx.Err()
	if err == nil && obs.ErrorCode != "UnknownAccount" {
		err = d.publish(ctx, obs)
		if err == nil && details != nil {
			// Presence first; the key details follow (sqs.go).
			if full, ok := details(ctx); ok {
				full.ID, full.Event = obs.ID+"-details", &ev
				err = d.publish(ctx, full)
			}
		}
	}
	if err != nil {
		log.Error("publish coalesced event finding failed; the messages will come back", "error", safeError(err))
		c.mu.Lock()
		for _, f := range batch {
			delete(w.seen, f.ev.EventID) // fold again when they come back
		}
		c.mu.Unlock()
		return
	}
	for _, f := range batch {
		d.deleteMessage(ctx, f.msg, log)
	}
}

// coalesced is the latest event of the batch, with the batch's count, names and IPs.
func coalesced(batch []folded) model.TrailEvent {
	latest := batch[0].ev
	names, ips := map[string]bool{}, map[string]bool{}
	for _, f := range batch {
		if f.ev.EventTime.After(latest.EventTime) || f.ev.EventTime.Equal(latest.EventTime) && f.ev.EventID > latest.EventID {
			latest = f.ev
		}
		names[f.ev.EventName] = true
		if f.ev.SourceIP != "" {
			ips[f.ev.SourceIP] = true
		}
	}
	out := latest
	out.Calls = len(batch)
	out.EventNames = sortedKeys(names)
	out.SourceIPs = sortedKeys(ips)
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
