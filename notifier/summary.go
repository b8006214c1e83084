package notifier

// Burst summaries. When BurstThreshold or more cases open within BurstWindow (a first
// sweep of an organization with legacy keys), the channel gets one summary message
// first: how many cases and accounts, how many critical, the oldest key, how many are
// in Slack yet and in which states. Every case still gets its own top-level message
// with its buttons and thread (posted critical first, paced); the summary is edited
// as those cases move, at most once every SummaryEvery, on the Tier 3 budget. A burst
// ends when no case has opened for BurstWindow; the next burst gets a new summary.
//
// The summary's state lives in KV rw_slack under summaryKey, written before every
// Slack call, with the same posting intent as a case message: a crash between the
// post and the save is found in the history and adopted, never posted twice.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/model"
)

// summaryKey is the KV rw_slack key of the current burst summary (not a case id).
const summaryKey = "summary.current"

// MetadataSummary is the metadata event type of a burst summary (payload {"summary_id"}).
const MetadataSummary = "rootwarden_summary"

// Defaults of the burst summary.
const (
	DefaultBurstThreshold = 10
	DefaultBurstWindow    = time.Minute
	DefaultSummaryEvery   = 10 * time.Second
)

// member is what the summary knows of one case of the burst, in memory only: the KV
// value holds the figures (summaryCounts), never the members, so that it stays a few
// hundred bytes however many cases a burst has (NATS refuses values over max_payload,
// 1 MiB by default: about 7,500 members at ~140 bytes each).
type member struct {
	Account  string         `json:"account"`
	Severity model.Severity `json:"severity"`
	State    model.State    `json:"state"`
	Oldest   *time.Time     `json:"oldest,omitempty"` // oldest key's rotation (creation) date
	Posted   bool           `json:"posted,omitempty"`
}

// summaryCounts are the figures of a burst summary: all that is stored and shown.
type summaryCounts struct {
	Cases         int                 `json:"cases"`
	Accounts      int                 `json:"accounts"`
	Critical      int                 `json:"critical"`
	Posted        int                 `json:"posted"`
	States        map[model.State]int `json:"states,omitempty"`
	Oldest        *time.Time          `json:"oldest,omitempty"`
	OldestAccount string              `json:"oldest_account,omitempty"`
}

// summary is the stored state of one burst.
type summary struct {
	ID           string        `json:"id"`
	Channel      string        `json:"channel,omitempty"`
	TS           string        `json:"ts,omitempty"`
	PostingSince *time.Time    `json:"posting_since,omitempty"`
	Started      time.Time     `json:"started"`
	LastOpen     time.Time     `json:"last_open"`
	Counts       summaryCounts `json:"counts"`
	// Seq is the stream sequence of the newest opening counted: an opening delivered
	// again after a restart (at or below it) is a member already counted.
	Seq      uint64 `json:"seq,omitempty"`
	Rendered string `json:"rendered,omitempty"` // text last sent to Slack
	// Legacy is the member list of a value saved by an older version: read once
	// (folded into Counts), never written.
	Legacy map[string]*member `json:"members,omitempty"`

	members  map[string]*member // this process's view of the burst's cases
	accounts map[string]bool
}

func newSummary(id string, started time.Time) *summary {
	return &summary{ID: id, Started: started, LastOpen: started, Counts: summaryCounts{States: map[model.State]int{}},
		members: map[string]*member{}, accounts: map[string]bool{}}
}

// add counts a new member of the burst.
func (s *summary) add(id string, m *member) {
	if _, ok := s.members[id]; ok {
		return
	}
	s.members[id] = m
	c := &s.Counts
	c.Cases++
	if !s.accounts[m.Account] {
		s.accounts[m.Account] = true
		c.Accounts++
	}
	if m.Severity == model.SeverityCritical {
		c.Critical++
	}
	if m.Posted {
		c.Posted++
	}
	c.States[m.State]++
	if m.Oldest != nil && (c.Oldest == nil || m.Oldest.Before(*c.Oldest) ||
		m.Oldest.Equal(*c.Oldest) && m.Account < c.OldestAccount) {
		t := *m.Oldest
		c.Oldest, c.OldestAccount = &t, m.Account
	}
}

// move applies a member's new state, severity and posting to the figures.
func (s *summary) move(m *member, state model.State, sev model.Severity) {
	c := &s.Counts
	if !m.Posted {
		m.Posted = true
		c.Posted++
	}
	if state != "" && state != m.State {
		if c.States[m.State]--; c.States[m.State] <= 0 {
			delete(c.States, m.State)
		}
		c.States[state]++
		m.State = state
	}
	if sev != "" && sev != m.Severity {
		if m.Severity == model.SeverityCritical {
			c.Critical--
		}
		if sev == model.SeverityCritical {
			c.Critical++
		}
		m.Severity = sev
	}
}

type burst struct {
	mu    sync.Mutex
	early map[string]earlyOpen // cases opened within the window, before a burst
	cur   *summary             // the latest burst: kept in step until the next one
	dirty chan struct{}
	// failed is the id of the burst whose summary failed for good (a permanent
	// error): it is not tried again; the next burst gets its own.
	failed string
}

type earlyOpen struct {
	at time.Time
	m  *member
}

func newBurst() *burst {
	return &burst{early: map[string]earlyOpen{}, dirty: make(chan struct{}, 1)}
}

func memberOf(c model.Case) *member {
	m := &member{Account: c.AccountID, Severity: c.Severity, State: c.State}
	for _, k := range c.Keys {
		if k.LastRotated != nil && (m.Oldest == nil || k.LastRotated.Before(*m.Oldest)) {
			t := *k.LastRotated
			m.Oldest = &t
		}
	}
	return m
}

// burstOf is the id of the burst the case belongs to ("" when none).
func (b *burst) burstOf(caseID string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil && b.cur.members[caseID] != nil {
		return b.cur.ID
	}
	return ""
}

func (b *burst) poke() {
	select {
	case b.dirty <- struct{}{}:
	default:
	}
}

// opened counts a new case (its first delivery) towards a burst; sseq is the
// event's stream sequence (0 when unknown).
func (n *Notifier) opened(ev model.CaseEvent, sseq uint64) {
	if n.cfg.BurstThreshold < 0 {
		return
	}
	b, now := n.burst, n.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil && now.Sub(b.cur.LastOpen) <= n.cfg.BurstWindow {
		if sseq != 0 && sseq <= b.cur.Seq {
			if b.cur.members[ev.CaseID] == nil { // counted before a restart
				b.cur.members[ev.CaseID] = memberOf(ev.Case)
				b.cur.accounts[ev.AccountID] = true
			}
		} else {
			b.cur.add(ev.CaseID, memberOf(ev.Case))
			b.cur.Seq = sseq
		}
		b.cur.LastOpen = now
		b.poke()
		return
	}
	for id, e := range b.early {
		if now.Sub(e.at) > n.cfg.BurstWindow {
			delete(b.early, id)
		}
	}
	if _, ok := b.early[ev.CaseID]; !ok {
		b.early[ev.CaseID] = earlyOpen{at: now, m: memberOf(ev.Case)}
	}
	if len(b.early) < n.cfg.BurstThreshold {
		return
	}
	s := newSummary(fmt.Sprintf("burst-%d", now.UnixMilli()), now)
	s.Seq = sseq
	for id, e := range b.early {
		s.add(id, e.m)
		if e.at.Before(s.Started) {
			s.Started = e.at
		}
	}
	b.cur, b.early = s, map[string]earlyOpen{}
	n.log.Info("burst of new cases: posting a summary", "cases", s.Counts.Cases, "window", n.cfg.BurstWindow)
	b.poke()
}

// afterProjected keeps the summary in step with its cases. before is the case's
// record as it was before this event (nil when unknown): after a restart, it tells
// that a case this process never saw open belongs to the burst (record.Burst) and
// what the figures counted for it.
func (n *Notifier) afterProjected(_ context.Context, ev model.CaseEvent, before *record) {
	b := n.burst
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		m := b.cur.members[ev.CaseID]
		if m == nil && before != nil && before.Burst == b.cur.ID {
			// A member from before a restart, counted in the saved figures as the
			// record last stood.
			m = &member{Account: before.AccountID, Severity: before.Severity, State: before.State, Posted: before.TS != ""}
			b.cur.members[ev.CaseID] = m
			b.cur.accounts[m.Account] = true
		}
		if m != nil {
			b.cur.move(m, ev.Case.State, ev.Case.Severity)
			b.poke()
			return
		}
	}
	if m := b.early[ev.CaseID].m; m != nil { // may join a burst yet
		m.Posted = true
		if ev.Case.State != "" {
			m.State = ev.Case.State
		}
		if ev.Case.Severity != "" {
			m.Severity = ev.Case.Severity
		}
	}
}

// summaryLoop posts and edits the summary; the only writer of summaryKey.
func (n *Notifier) summaryLoop(ctx context.Context) {
	if n.cfg.BurstThreshold < 0 {
		return
	}
	n.loadSummary(ctx)
	ctx = withPrio(ctx, prioSummary)
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.burst.dirty:
		}
		if wait := n.cfg.SummaryEvery - time.Since(last); !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		for {
			err := n.flushSummary(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if cl, _ := classify(err); cl == classPermanent {
				// Term-like: retrying cannot help (a value over max_payload, a channel
				// that is gone). Said once; the next burst gets a summary of its own.
				n.log.Error("burst summary failed for good: not tried again for this burst", "err", err)
				n.burst.giveUp()
				break
			}
			n.log.Warn("burst summary not in Slack yet: retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(n.cfg.RetryMax):
			}
		}
		last = time.Now()
	}
}

// snapshot copies the current summary's stored part (nil when there is none, or
// when it failed for good).
func (b *burst) snapshot() *summary {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil || b.cur.ID == b.failed {
		return nil
	}
	s := *b.cur
	s.members, s.accounts, s.Legacy = nil, nil, nil
	s.Counts.States = maps.Clone(b.cur.Counts.States)
	return &s
}

// giveUp marks the current burst's summary as failed for good.
func (b *burst) giveUp() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		b.failed = b.cur.ID
	}
}

func (n *Notifier) flushSummary(ctx context.Context) error {
	s := n.burst.snapshot()
	if s == nil {
		return nil
	}
	text := summaryText(*s)
	blocks := summaryBlocks(*s)
	stored, rev, err := n.loadSummaryRecord(ctx)
	if err != nil {
		return err
	}
	if stored != nil && stored.ID == s.ID {
		s.TS, s.Channel, s.PostingSince, s.Rendered = stored.TS, stored.Channel, stored.PostingSince, stored.Rendered
	} else {
		rev = 0
	}
	if s.TS == "" {
		if s.PostingSince != nil { // an earlier attempt may have posted it
			if ch, ts, found, err := n.findSummary(ctx, s); err != nil {
				return err
			} else if found {
				s.Channel, s.TS = ch, ts
			}
		}
		if s.TS == "" {
			now := time.Now()
			s.PostingSince = &now
			if rev, err = n.saveSummary(ctx, s, rev); err != nil {
				return err
			}
			ch, ts, err := n.postMsg(ctx, n.cfg.Channel, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...),
				slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataSummary,
					EventPayload: map[string]any{"summary_id": s.ID}}))
			if err != nil {
				return fmt.Errorf("chat.postMessage of burst summary %s: %w", s.ID, err)
			}
			s.Channel, s.TS, s.PostingSince, s.Rendered = ch, ts, nil, text
			_, err = n.saveSummary(ctx, s, rev)
			return err
		}
	}
	if s.Rendered == text {
		return nil
	}
	if err := n.updateMsg(ctx, s.Channel, s.TS, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...)); err != nil {
		return fmt.Errorf("chat.update of burst summary %s: %w", s.ID, err)
	}
	s.Rendered, s.PostingSince = text, nil
	_, err = n.saveSummary(ctx, s, rev)
	return err
}

func (n *Notifier) findSummary(ctx context.Context, s *summary) (string, string, bool, error) {
	params := &slack.GetConversationHistoryParameters{ChannelID: n.cfg.Channel, Limit: 200, IncludeAllMetadata: true,
		Oldest: fmt.Sprintf("%d.000000", s.PostingSince.Add(-historyMargin).Unix())}
	for page := 0; page < n.cfg.HistoryPages; page++ {
		resp, err := n.history(ctx, params)
		if err != nil {
			return "", "", false, fmt.Errorf("conversations.history for burst summary %s: %w", s.ID, err)
		}
		for _, m := range resp.Messages {
			if id, _ := m.Metadata.EventPayload["summary_id"].(string); m.Metadata.EventType == MetadataSummary && id == s.ID {
				return n.cfg.Channel, m.Timestamp, true, nil
			}
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			break
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
	return "", "", false, nil
}

func (n *Notifier) loadSummaryRecord(ctx context.Context) (*summary, uint64, error) {
	e, err := n.b.Slack.Get(ctx, summaryKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read burst summary: %w", err)
	}
	var s summary
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return nil, e.Revision(), nil // unreadable: replaced by the next one
	}
	return &s, e.Revision(), nil
}

// saveSummary writes s at revision rev (0 → whatever is there) and returns the new one.
func (n *Notifier) saveSummary(ctx context.Context, s *summary, rev uint64) (uint64, error) {
	data, _ := json.Marshal(s)
	var err error
	var nrev uint64
	if rev == 0 {
		nrev, err = n.b.Slack.Put(ctx, summaryKey, data)
	} else {
		nrev, err = n.b.Slack.Update(ctx, summaryKey, data, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("save burst summary %s: %w", s.ID, err)
	}
	return nrev, nil
}

// loadSummary resumes a burst that was under way when the process stopped.
func (n *Notifier) loadSummary(ctx context.Context) {
	s, _, err := n.loadSummaryRecord(ctx)
	if err != nil || s == nil {
		return
	}
	legacy := s.Legacy
	s.Legacy, s.members, s.accounts = nil, map[string]*member{}, map[string]bool{}
	if s.Counts.States == nil {
		s.Counts.States = map[model.State]int{}
	}
	for id, m := range legacy { // an older version's value: its figures from its members
		if m != nil {
			s.add(id, m)
		}
	}
	b := n.burst
	b.mu.Lock()
	if b.cur == nil {
		b.cur = s
	}
	b.mu.Unlock()
	b.poke()
}
