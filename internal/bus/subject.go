package bus

// Reading what a stream holds on one subject (an account's audit log on RW_CASES),
// for readers that answer a person or an API call, not for followers.
//
// Design: one "next message on this subject at or after seq" get per message
// (JetStream's STREAM.MSG.GET with next_by_subj), not a consumer. A consumer is
// server state: an ordered consumer is created per read and reaped only after 5
// minutes of inactivity, so about 1,000 reads in 5 minutes reach the stream's consumer
// limit (1,000 by default) and every further read fails (issue 19 item 9). Deleting
// the consumer after the read would leave it behind whenever the reader dies or its
// delete fails, and still costs a create and a delete per read (on a cluster, through
// the meta leader). A get leaves nothing: its cost is one request per message of the
// subject, which is bounded by the account's audit log (a few events per case).
// Without AllowDirect on the stream (RW_CASES has none) the stream's leader answers,
// so a read sees every event acknowledged before it; a direct get could be answered
// by a follower that lags.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/model"
)

// readTimeout bounds one subject read when the caller's context has no deadline.
const readTimeout = 20 * time.Second

// ReadSubject calls fn with every message stored on subject in stream, oldest first,
// until fn returns false. It creates no consumer. A subject with no message is not an
// error.
func (b *Bus) ReadSubject(ctx context.Context, stream, subject string, fn func(*jetstream.RawStreamMsg) bool) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readTimeout)
		defer cancel()
	}
	s, err := b.stream(ctx, stream)
	if err != nil {
		return err
	}
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("read %s from %s (seq %d): %w", subject, stream, seq, err)
		}
		if !fn(m) {
			return nil
		}
		seq = m.Sequence + 1
	}
}

// CaseEvents reads an account's case events from the audit log (RW_CASES) in the
// order they were stored: of one case, or of every case when caseID is empty. An event
// stored twice (a publish retried after its id left the duplicate window) is returned
// once; a message that does not decode is skipped.
func (b *Bus) CaseEvents(ctx context.Context, account, caseID string) ([]model.CaseEvent, error) {
	seen := map[string]bool{}
	var out []model.CaseEvent
	err := b.ReadSubject(ctx, StreamCases, CaseSubject(account), func(m *jetstream.RawStreamMsg) bool {
		var ev model.CaseEvent
		if json.Unmarshal(m.Data, &ev) != nil || (caseID != "" && ev.CaseID != caseID) || seen[ev.ID] {
			return true
		}
		seen[ev.ID] = true
		out = append(out, ev)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// stream is a handle on a stream, looked up once (a lookup is a STREAM.INFO request;
// a get names the stream, so the handle stays good).
func (b *Bus) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	if s, ok := b.streams.Load(name); ok {
		return s.(jetstream.Stream), nil
	}
	s, err := b.JS.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	b.streams.Store(name, s)
	return s, nil
}

// NewestObservedAt is the time of the newest observation of account on RW_FINDINGS
// that says something about the keys (a failed check says nothing), by ObservedAt,
// not by the order of publication (a late publish stores an older observation
// last). It reads every message of the account's subject: at most
// FindingsPerAccount. Zero when there is none.
func (b *Bus) NewestObservedAt(ctx context.Context, account string) (time.Time, error) {
	var newest time.Time
	err := b.ReadSubject(ctx, StreamFindings, FindingSubject(account), func(m *jetstream.RawStreamMsg) bool {
		var o model.Observation
		if json.Unmarshal(m.Data, &o) == nil && o.AccountID == account && !o.Failed() && o.ObservedAt.After(newest) {
			newest = o.ObservedAt
		}
		return true
	})
	return newest, err
}
