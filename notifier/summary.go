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

type member struct {
	Account  string         `json:"account"`
	Severity model.Severity `json:"severity"`
	State    model.State    `json:"state"`
	Oldest   *time.Time     `json:"oldest,omitempty"` // oldest key's rotation (creation) date
	Posted   bool           `json:"posted,omitempty"`
}

// summary is the stored state of one burst.
type summary struct {
	ID           string             `json:"id"`
	Channel      string             `json:"channel,omitempty"`
	TS           string             `json:"ts,omitempty"`
	PostingSince *time.Time         `json:"posting_since,omitempty"`
	Started      time.Time          `json:"started"`
	LastOpen     time.Time          `json:"last_open"`
	Members      map[string]*member `json:"members"`
	Rendered     string             `json:"rendered,omitempty"` // text last sent to Slack
}

type burst struct {
	mu    sync.Mutex
	early map[string]earlyOpen // cases opened within the window, before a burst
	cur   *summary             // the latest burst: kept in step until the next one
	dirty chan struct{}
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

func (b *burst) poke() {
	select {
	case b.dirty <- struct{}{}:
	default:
	}
}

// opened counts a new case (its first delivery) towards a burst.
func (n *Notifier) opened(ev model.CaseEvent) {
	if n.cfg.BurstThreshold < 0 {
		return
	}
	b, now := n.burst, n.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil && now.Sub(b.cur.LastOpen) <= n.cfg.BurstWindow {
		if _, ok := b.cur.Members[ev.CaseID]; !ok {
			b.cur.Members[ev.CaseID] = memberOf(ev.Case)
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
	s := &summary{ID: fmt.Sprintf("burst-%d", now.UnixMilli()), Started: now, LastOpen: now, Members: map[string]*member{}}
	for id, e := range b.early {
		s.Members[id] = e.m
		if e.at.Before(s.Started) {
			s.Started = e.at
		}
	}
	b.cur, b.early = s, map[string]earlyOpen{}
	n.log.Info("burst of new cases: posting a summary", "cases", len(s.Members), "window", n.cfg.BurstWindow)
	b.poke()
}

// afterProjected keeps the summary in step with its cases.
func (n *Notifier) afterProjected(_ context.Context, ev model.CaseEvent) {
	b := n.burst
	b.mu.Lock()
	defer b.mu.Unlock()
	var m *member
	if b.cur != nil {
		m = b.cur.Members[ev.CaseID]
	}
	inBurst := m != nil
	if m == nil {
		m = b.early[ev.CaseID].m // may join a burst yet
	}
	if m == nil {
		return
	}
	m.Posted = true
	if ev.Case.State != "" {
		m.State = ev.Case.State
	}
	if ev.Case.Severity != "" {
		m.Severity = ev.Case.Severity
	}
	if inBurst {
		b.poke()
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
			if cl, _ := classify(err); cl == classPermanent || ctx.Err() != nil {
				n.log.Warn("burst summary", "err", err)
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

// snapshot copies the current summary (nil when there is none).
func (b *burst) snapshot() *summary {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return nil
	}
	data, _ := json.Marshal(b.cur)
	var s summary
	_ = json.Unmarshal(data, &s)
	return &s
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
	if s.Members == nil {
		s.Members = map[string]*member{}
	}
	b := n.burst
	b.mu.Lock()
	if b.cur == nil {
		b.cur = s
	}
	b.mu.Unlock()
	b.poke()
}
