package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
)

// Builtin keeps tickets in the rw_tickets bucket: the default when no external
// tracker is configured. Keys: "ticket.RW-<n>" → BuiltinTicket, "case.<case id>" →
// ticket id (the label lookup that makes Open idempotent), "seq" → last number.
type Builtin struct {
	kv  jetstream.KeyValue
	Now func() time.Time
}

var _ model.Tracker = (*Builtin)(nil)

// BuiltinTicket is a built-in ticket.
type BuiltinTicket struct {
	ID        string           `json:"id"` // RW-<n>
	CaseID    string           `json:"case_id"`
	AccountID string           `json:"account_id"`
	Label     string           `json:"label"`
	Title     string           `json:"title"`
	Body      string           `json:"body"`
	State     string           `json:"state"` // open | done
	Assignee  string           `json:"assignee,omitempty"`
	Comments  []BuiltinComment `json:"comments,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
	ClosedAt  *time.Time       `json:"closed_at,omitempty"` // when it was last marked done
}

// BuiltinComment is a comment on a built-in ticket.
type BuiltinComment struct {
	At   time.Time `json:"at"`
	Text string    `json:"text"`
}

// NewBuiltin builds the built-in tracker on the bus's rw_tickets bucket.
func NewBuiltin(b *bus.Bus) *Builtin { return &Builtin{kv: b.Tickets, Now: time.Now} }

func ticketKey(id string) string   { return "ticket." + id }
func caseKey(caseID string) string { return "case." + caseID }

func (t *Builtin) ref(id string) model.TicketRef {
	return model.TicketRef{System: "builtin", ID: id} // no URL: it lives in rootwarden (KV rw_tickets)
}

// Open finds the case's ticket or creates it.
func (t *Builtin) Open(ctx context.Context, c model.Case, slackLink string) (model.TicketRef, error) {
	for attempt := 0; attempt < 20; attempt++ {
		e, err := t.kv.Get(ctx, caseKey(c.ID))
		switch {
		case err == nil:
			id := string(e.Value())
			if err := t.ensure(ctx, id, c, slackLink); err != nil {
				return model.TicketRef{}, err
			}
			return t.ref(id), nil
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return model.TicketRef{}, model.Wrap(model.CodeTransient, err, "find built-in ticket of case %s", c.ID)
		}
		n, err := t.next(ctx)
		if err != nil {
			return model.TicketRef{}, err
		}
		id := "RW-" + strconv.FormatUint(n, 10)
		if _, err := t.kv.Create(ctx, caseKey(c.ID), []byte(id)); err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // someone else claimed the case first; use theirs
			}
			return model.TicketRef{}, model.Wrap(model.CodeTransient, err, "claim built-in ticket of case %s", c.ID)
		}
		if err := t.ensure(ctx, id, c, slackLink); err != nil {
			return model.TicketRef{}, err
		}
		return t.ref(id), nil
	}
	return model.TicketRef{}, model.Errorf(model.CodeConflict, "open built-in ticket of case %s: too much contention", c.ID)
}

// ensure writes the ticket if it does not exist yet.
func (t *Builtin) ensure(ctx context.Context, id string, c model.Case, slackLink string) error {
	now := t.Now()
	tk := BuiltinTicket{ID: id, CaseID: c.ID, AccountID: c.AccountID, Label: Label(c.ID), Title: Title(c),
		Body: Markdown(c, slackLink), State: "open", CreatedAt: now, UpdatedAt: now}
	data, _ := json.Marshal(tk)
	if _, err := t.kv.Create(ctx, ticketKey(id), data); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return model.Wrap(model.CodeTransient, err, "create built-in ticket %s", id)
	}
	return nil
}

func (t *Builtin) next(ctx context.Context) (uint64, error) {
	for attempt := 0; attempt < 50; attempt++ {
		e, err := t.kv.Get(ctx, "seq")
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := t.kv.Create(ctx, "seq", []byte("1")); err == nil {
				return 1, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return 0, model.Wrap(model.CodeTransient, err, "number built-in ticket")
			}
			continue
		}
		if err != nil {
			return 0, model.Wrap(model.CodeTransient, err, "number built-in ticket")
		}
		n, _ := strconv.ParseUint(string(e.Value()), 10, 64)
		n++
		if _, err := t.kv.Update(ctx, "seq", []byte(strconv.FormatUint(n, 10)), e.Revision()); err == nil {
			return n, nil
		} else if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return 0, model.Wrap(model.CodeTransient, err, "number built-in ticket")
		}
	}
	return 0, model.Errorf(model.CodeConflict, "number built-in ticket: too much contention")
}

// Get reads a built-in ticket.
func (t *Builtin) Get(ctx context.Context, id string) (BuiltinTicket, uint64, error) {
	e, err := t.kv.Get(ctx, ticketKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return BuiltinTicket{}, 0, model.Errorf(model.CodeNotFound, "built-in ticket %s not found", id)
	}
	if err != nil {
		return BuiltinTicket{}, 0, model.Wrap(model.CodeTransient, err, "read built-in ticket %s", id)
	}
	var tk BuiltinTicket
	if err := json.Unmarshal(e.Value(), &tk); err != nil {
		return BuiltinTicket{}, 0, model.Wrap(model.CodeInternal, err, "decode built-in ticket %s", id)
	}
	return tk, e.Revision(), nil
}

// List returns every built-in ticket, in key order.
func (t *Builtin) List(ctx context.Context) ([]BuiltinTicket, error) {
	keys, err := t.kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, model.Wrap(model.CodeTransient, err, "list built-in tickets")
	}
	var out []BuiltinTicket
	for _, k := range keys {
		if len(k) > 7 && k[:7] == "ticket." {
			tk, _, err := t.Get(ctx, k[7:])
			if err != nil {
				return nil, err
			}
			out = append(out, tk)
		}
	}
	return out, nil
}

func (t *Builtin) modify(ctx context.Context, id string, f func(*BuiltinTicket)) error {
	for attempt := 0; attempt < 20; attempt++ {
		tk, rev, err := t.Get(ctx, id)
		if err != nil {
			return err
		}
		f(&tk)
		tk.UpdatedAt = t.Now()
		data, _ := json.Marshal(tk)
		_, err = t.kv.Update(ctx, ticketKey(id), data, rev)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return model.Wrap(model.CodeTransient, err, "update built-in ticket %s", id)
		}
	}
	return model.Errorf(model.CodeConflict, "update built-in ticket %s: too much contention", id)
}

func (t *Builtin) comment(tk *BuiltinTicket, text string) {
	if text != "" {
		tk.Comments = append(tk.Comments, BuiltinComment{At: t.Now(), Text: escape.Plain(text)})
	}
}

// Comment adds a comment.
func (t *Builtin) Comment(ctx context.Context, ref model.TicketRef, text string) error {
	return t.modify(ctx, ref.ID, func(tk *BuiltinTicket) { t.comment(tk, text) })
}

// Close comments with the resolution and marks the ticket done.
func (t *Builtin) Close(ctx context.Context, ref model.TicketRef, resolution string) error {
	return t.modify(ctx, ref.ID, func(tk *BuiltinTicket) { t.comment(tk, resolution); t.done(tk) })
}

// Reopen comments and marks the ticket open again.
func (t *Builtin) Reopen(ctx context.Context, ref model.TicketRef, text string) error {
	return t.modify(ctx, ref.ID, func(tk *BuiltinTicket) { t.comment(tk, text); tk.State = "open"; tk.ClosedAt = nil })
}

// MarkDone marks a ticket done by assignee, as a person closing it would (tests, demo).
func (t *Builtin) MarkDone(ctx context.Context, id, assignee string) error {
	return t.modify(ctx, id, func(tk *BuiltinTicket) { t.done(tk); tk.Assignee = assignee })
}

// done marks a ticket done; a ticket already done keeps its closure time.
func (t *Builtin) done(tk *BuiltinTicket) {
	if tk.State != "done" || tk.ClosedAt == nil {
		now := t.Now()
		tk.ClosedAt = &now
	}
	tk.State = "done"
}

// Status reads the ticket's state and assignee.
func (t *Builtin) Status(ctx context.Context, ref model.TicketRef) (model.TicketStatus, error) {
	tk, _, err := t.Get(ctx, ref.ID)
	if err != nil {
		return model.TicketStatus{}, fmt.Errorf("status of built-in ticket: %w", err)
	}
	st := model.TicketStatus{Done: tk.State == "done", Assignee: tk.Assignee, State: tk.State}
	if tk.ClosedAt != nil && st.Done {
		st.ClosedAt = tk.ClosedAt.UTC().Format(time.RFC3339Nano)
	}
	return st, nil
}
