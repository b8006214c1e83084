package detector

// Steady state on the findings stream. A sweep's check that finds an account exactly
// as its newest observation on RW_FINDINGS says (same presence, keys and their last
// use, name, OU, tags, membership; the check worked) publishes nothing: an unchanged
// sweep costs the AWS calls and nothing else — no write to RW_FINDINGS (nor the
// per-account pruning and block compaction each write causes), no observation for the
// remediator to read a case for. The job is acknowledged and counted as checked.
//
// What the newest observation is comes from the stream itself, not from what this
// process published: an ordered consumer replays RW_FINDINGS' last message per account
// at start-up and then follows every new one, whoever published it (another detector
// replica, an event, an on-demand check). A fingerprint per account stays in memory
// (one word and a time: about 0.1 MB for 10,000 accounts).
//
// Always published, changed or not: a failed check (the remediator counts failures in
// a row), every event and on-demand check, and an unchanged observation once its
// predecessor is RepublishEvery old (spread over [d, 2d) per account), so that a case
// that missed an observation (a message the remediator gave up on, a case record
// restored from a backup) is corrected within hours, and the case's coarse
// LastCheckedAt moves (remediator/steady.go). Where the exact last check is asked for
// (Slack's /rootwarden case, the case API), internal/bus LastCheck answers it from the
// sweep that checked the account.

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/wait"
)

// DefaultRepublishEvery is how old (at least) the newest observation of an account may
// be before a sweep publishes an unchanged one again.
const DefaultRepublishEvery = 6 * time.Hour

// republishEvery is the age for account: base plus a per-account share of base.
func republishEvery(base time.Duration, account string) time.Duration {
	if base <= 0 {
		base = DefaultRepublishEvery
	}
	return wait.Spread(base, account)
}

// fingerprint is a hash of what an observation says about its account: everything
// but its identity (id, sweep, request), its time, what made it and the credential
// report's generation time.
func fingerprint(o model.Observation) uint64 {
	o.ID, o.SweepID, o.RequestID, o.Source = "", "", "", ""
	o.ObservedAt, o.ReportAt = time.Time{}, nil
	b, _ := json.Marshal(o)
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

type lastSeen struct {
	fp uint64
	at time.Time // ObservedAt of the newest observation
}

// newest is the fingerprint of each account's newest observation on RW_FINDINGS.
type newest struct {
	mu sync.Mutex
	m  map[string]lastSeen
}

func (n *newest) note(o model.Observation) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[string]lastSeen{}
	}
	if cur, ok := n.m[o.AccountID]; ok && o.ObservedAt.Before(cur.at) {
		return // an older observation published late: the newer one stands
	}
	n.m[o.AccountID] = lastSeen{fp: fingerprint(o), at: o.ObservedAt}
}

// unchanged reports whether publishing o would tell nothing new: o worked, says what
// the account's newest observation says, and that one is not yet due to be repeated.
func (n *newest) unchanged(o model.Observation, every time.Duration) bool {
	if o.Failed() || o.KeyDetailsPending || every < 0 {
		return false
	}
	n.mu.Lock()
	cur, ok := n.m[o.AccountID]
	n.mu.Unlock()
	return ok && cur.fp == fingerprint(o) && o.ObservedAt.Sub(cur.at) < republishEvery(every, o.AccountID)
}

// followFindings keeps d.newest current: RW_FINDINGS' last message per account, then
// every new one. ready is closed once the replay is done.
func (d *Detector) followFindings(ctx context.Context, ready chan<- struct{}) error {
	cons, err := d.b.JS.OrderedConsumer(ctx, bus.StreamFindings, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.SubjectFindings + ">"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("follow %s: %w", bus.StreamFindings, err)
	}
	once := sync.OnceFunc(func() { close(ready) })
	defer once()
	if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 {
		once()
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var o model.Observation
		if json.Unmarshal(m.Data(), &o) == nil && o.AccountID != "" && m.Subject() == bus.FindingSubject(o.AccountID) {
			d.newest.note(o)
			d.e.posture.note(o) // every replica's metrics count every account (rootaccess.go)
		}
		if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
			once()
		}
	})
	if err != nil {
		return fmt.Errorf("follow %s: %w", bus.StreamFindings, err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}
