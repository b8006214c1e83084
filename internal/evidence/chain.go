package evidence

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/rootwarden/rootwarden/internal/model"
)

// isCaseEvent says whether an event on rootwarden.cases.<account> belongs to the
// account's case chain (and to the pack's cases). The root activity questions'
// events (remediator/activity.go: ev.Activity != nil) are published on the same
// subject from the question's own record, and are outside the chain until that
// writer chains its events: this is the one place that says so.
func isCaseEvent(ev model.CaseEvent) bool { return ev.Activity == nil }

// Report is the audit log's chain verification (`rootwarden evidence verify`).
type Report struct {
	OK       bool `json:"ok"`
	Accounts int  `json:"accounts"`
	Events   int  `json:"events"`
	Chained  int  `json:"events_chained"`
	// BeforeChain counts events written before the chain existed (no prev_hash):
	// they are reported, but nothing proves them unaltered.
	BeforeChain int `json:"events_before_chain"`
	// Outside counts events on the case subjects that are not case events (another
	// writer's, isCaseEvent): not verified.
	Outside  int       `json:"events_outside_chain,omitempty"`
	Problems []Problem `json:"problems"`
}

// Problem is one break of the chain, naming the message.
type Problem struct {
	Kind      string `json:"kind"` // missing, edited, unchained, restarted, unreadable, head
	Account   string `json:"account"`
	EventID   string `json:"event_id,omitempty"`
	StreamSeq uint64 `json:"stream_seq,omitempty"`
	Detail    string `json:"detail"`
}

func (p Problem) String() string {
	s := p.Kind + ": account " + p.Account
	if p.EventID != "" {
		s += ", event " + p.EventID
	}
	if p.StreamSeq != 0 {
		s += fmt.Sprintf(" (stream seq %d)", p.StreamSeq)
	}
	return s + ": " + p.Detail
}

// Head is an account's last published case event as the remediator's state records it.
type Head struct {
	EventID string `json:"event_id"`
	Hash    string `json:"hash"`
}

// VerifyChain checks the hash chain of every account's case events. msgs are the audit
// log's messages on rootwarden.cases.<account> (others are ignored); heads, when
// given, is each account's last PUBLISHED event as the remediator's state knows it,
// which finds the removal or the edit of an account's newest event.
func VerifyChain(msgs []Message, heads map[string]Head) Report {
	msgs = slices.Clone(msgs)
	slices.SortFunc(msgs, func(a, b Message) int { return cmpU(a.Seq, b.Seq) })
	byAcc := map[string][]Message{}
	var accs []string
	for _, m := range msgs {
		acc, ok := strings.CutPrefix(m.Subject, "rootwarden.cases.")
		if !ok {
			continue
		}
		if _, seen := byAcc[acc]; !seen {
			accs = append(accs, acc)
		}
		byAcc[acc] = append(byAcc[acc], m)
	}
	for acc := range heads {
		if _, ok := byAcc[acc]; !ok && heads[acc].Hash != "" {
			accs = append(accs, acc)
		}
	}
	slices.Sort(accs)
	r := Report{Accounts: len(accs), Problems: []Problem{}}
	for _, acc := range accs {
		verifyAccount(&r, acc, byAcc[acc], heads)
	}
	r.OK = len(r.Problems) == 0
	return r
}

func verifyAccount(r *Report, acc string, msgs []Message, heads map[string]Head) {
	add := func(kind string, m Message, id, detail string) {
		r.Problems = append(r.Problems, Problem{Kind: kind, Account: acc, EventID: id, StreamSeq: m.Seq, Detail: detail})
	}
	seen := map[string]string{} // event id → hash
	lastSeq := map[string]int{} // case → seq of its last event
	var prev *model.CaseEvent
	var prevMsg Message
	prevHash, started := "", false
	for _, m := range msgs {
		h := model.ChainHash(m.Data)
		var ev model.CaseEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.ID == "" {
			add("unreadable", m, "", "the message is not a case event")
			continue
		}
		if !isCaseEvent(ev) {
			r.Outside++
			continue
		}
		if old, dup := seen[ev.ID]; dup {
			if old != h {
				add("edited", m, ev.ID, "a second copy of the event with different content")
			}
			continue // the same event published again (an outbox after a crash)
		}
		seen[ev.ID] = h
		r.Events++
		gap := false
		if last, ok := lastSeq[ev.CaseID]; ok && ev.Seq != last+1 {
			gap = true
			add("missing", m, missingIDs(ev.CaseID, last+1, ev.Seq-1),
				fmt.Sprintf("%s of case %s not in the log (found %s after it)", span(last+1, ev.Seq-1), ev.CaseID, ev.ID))
		} else if !ok && started && ev.Seq != 1 {
			gap = true
			add("missing", m, missingIDs(ev.CaseID, 1, ev.Seq-1),
				fmt.Sprintf("%s of case %s not in the log (found %s after it)", span(1, ev.Seq-1), ev.CaseID, ev.ID))
		}
		lastSeq[ev.CaseID] = ev.Seq
		switch {
		case ev.PrevHash == "":
			if started {
				add("unchained", m, ev.ID, "an event without prev_hash after the account's chain began: written by something other than the remediator, or edited")
			} else {
				r.BeforeChain++
			}
		case ev.PrevHash == model.ChainStart:
			r.Chained++
			if started {
				add("restarted", m, ev.ID, "the account's chain starts again here: the remediator lost its state, or events before it were replaced")
			}
			started = true
		default:
			r.Chained++
			switch {
			case !started && prev == nil:
				add("missing", m, ev.ID, "the event before it is not in the log (deleted, or aged out of the log)")
			case ev.PrevHash != prevHash && !gap:
				if prev != nil {
					add("edited", prevMsg, prev.ID, fmt.Sprintf("changed after it was written: its hash is not the one %s (stream seq %d) recorded, or an event between them is missing", ev.ID, m.Seq))
				}
			}
			started = true
		}
		e := ev
		prev, prevMsg, prevHash = &e, m, h
	}
	want, ok := heads[acc]
	if !ok || want.Hash == "" || want.Hash == prevHash {
		return
	}
	if prev != nil && prev.ID == want.EventID {
		add("edited", prevMsg, prev.ID, "changed after it was written: its hash is not the one the remediator's state recorded for the account's last event")
		return
	}
	last := "none"
	if prev != nil {
		last = prev.ID
	}
	r.Problems = append(r.Problems, Problem{Kind: "missing", Account: acc, EventID: want.EventID, StreamSeq: prevMsg.Seq,
		Detail: "the account's newest events are not in the log: the last there is " + last + ", the remediator's state records " + want.EventID})
}

func span(from, to int) string {
	if from == to {
		return fmt.Sprintf("event %d is", from)
	}
	return fmt.Sprintf("events %d to %d are", from, to)
}

func missingIDs(caseID string, from, to int) string {
	var ids []string
	for i := from; i <= to && len(ids) < 5; i++ {
		ids = append(ids, fmt.Sprintf("%s/%d", caseID, i))
	}
	if to-from+1 > len(ids) {
		ids = append(ids, "…")
	}
	return strings.Join(ids, ", ")
}
