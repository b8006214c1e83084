package remediator

// The case API (read-only): GET /api/v1/cases, GET /api/v1/cases/{id} and GET
// /api/v1/unchecked (the accounts that cannot be checked: unchecked.go), bearer
// ROOTWARDEN_API_TOKEN compared in constant time; without a token the API is off (404).
//
// The listing shows the current case of every account, read from the rw_cases bucket
// (one per account: an account whose last case was resolved shows that resolved
// case); ?account=X reads that one key only. last_checked_at is written rarely when
// nothing else changes (steady.go); last_seen_at is the newest observation this
// instance applied (after a restart, for one account, the newest on RW_FINDINGS), and
// for one account checked_in_sweep names the later sweep that found it unchanged. Older cases are not listed; GET /api/v1/cases/{id} shows any case, past ones
// too, rebuilt from the audit log (RW_CASES: the last event's snapshot) with its full
// history in order.

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// CaseView is a case as the API shows it.
type CaseView struct {
	model.Case
	// LastSeenAt is the newest observation of the account this instance applied,
	// when it is newer than last_checked_at (which an unchanged sweep writes only
	// every few hours: steady.go). After a restart, views of one account (?account=X,
	// /cases/{id}) read it from RW_FINDINGS; the full listing omits it until the next
	// sweep.
	LastSeenAt *time.Time `json:"last_seen_at,omitempty"`
	// CheckedInSweep (views of one account): a sweep that checked the account after
	// last_seen_at and found it unchanged; the last check happened after its start.
	CheckedInSweep *model.SweepRef `json:"checked_in_sweep,omitempty"`
	History        []HistoryEntry  `json:"history,omitempty"`
}

// HistoryEntry is one case event without its snapshot.
type HistoryEntry struct {
	ID       string              `json:"id"`
	Seq      int                 `json:"seq"`
	Type     model.CaseEventType `json:"type"`
	From     model.State         `json:"from,omitempty"`
	To       model.State         `json:"to"`
	Actor    model.Actor         `json:"actor"`
	At       time.Time           `json:"at"`
	Reason   string              `json:"reason"`
	ActionID string              `json:"action_id,omitempty"`
}

// CaseList is the answer of GET /api/v1/cases.
type CaseList struct {
	Cases []CaseView `json:"cases"`
}

// APIError is every error answer of the API.
type APIError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// APIHandler serves the case API.
func (r *Remediator) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cases", r.auth(r.listCases))
	mux.HandleFunc("GET /api/v1/cases/{id}", r.auth(r.showCase))
	mux.HandleFunc("GET /api/v1/unchecked", r.auth(func(w http.ResponseWriter, req *http.Request) {
		l, err := r.UncheckedAccounts(req.Context())
		if err != nil {
			writeCodeErr(w, err)
			return
		}
		u := map[string]string{}
		for _, a := range l {
			u[a.AccountID] = a.Error
		}
		// unchecked: account → failure (the first form of this answer); accounts: the same
		// with the failure's group, count and times.
		writeJSON(w, http.StatusOK, map[string]any{"unchecked": u, "accounts": l})
	}))
	r.evidenceRoutes(mux)
	mux.HandleFunc("/api/v1/", r.auth(func(w http.ResponseWriter, req *http.Request) {
		writeErr(w, http.StatusNotFound, model.CodeNotFound, "no such API endpoint: "+req.Method+" "+req.URL.Path)
	}))
	return mux
}

func (r *Remediator) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if r.cfg.APIToken == "" {
			writeErr(w, http.StatusNotFound, model.CodeNotFound, "the case API is off: set ROOTWARDEN_API_TOKEN to turn it on")
			return
		}
		h := req.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(r.cfg.APIToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rootwarden"`)
			writeErr(w, http.StatusUnauthorized, model.CodeUnauthorized, "missing or wrong bearer token")
			return
		}
		next(w, req)
	}
}

func (r *Remediator) listCases(w http.ResponseWriter, req *http.Request) {
	state := model.State(req.URL.Query().Get("state"))
	account := req.URL.Query().Get("account")
	switch state {
	case "", model.StateOpen, model.StateTicketed, model.StateVerifying, model.StateResolved, model.StateRiskAccepted:
	case "active":
	default:
		writeErr(w, http.StatusBadRequest, model.CodeInvalid, "unknown state "+string(state)+
			" (open, ticketed, verifying, resolved, risk_accepted, active)")
		return
	}
	var recs []*record
	var err error
	if account != "" {
		// One account is one key: read it, not the whole bucket.
		var rec *record
		if rec, _, err = r.load(req.Context(), account); rec != nil {
			recs = []*record{rec}
		}
	} else {
		recs, err = r.records(req.Context())
	}
	if err != nil {
		writeCodeErr(w, err)
		return
	}
	out := CaseList{Cases: []CaseView{}}
	for _, rec := range recs {
		c := rec.Case
		if account != "" && c.AccountID != account {
			continue
		}
		if state == "active" && !c.State.Active() || state != "" && state != "active" && c.State != state {
			continue
		}
		v := r.withSeen(view(c, nil))
		if account != "" {
			v = r.withStoredSeen(req.Context(), v)
		}
		out.Cases = append(out.Cases, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Remediator) showCase(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	i := strings.IndexByte(id, '-') // <account>-<number>-<opened> (older cases: <account>-<number>)
	if i <= 0 || i == len(id)-1 {
		writeErr(w, http.StatusBadRequest, model.CodeInvalid, "case id "+id+" is not <account>-<number>-<opened>")
		return
	}
	account := id[:i]
	ctx := req.Context()
	rec, _, err := r.load(ctx, account)
	if err != nil {
		writeCodeErr(w, err)
		return
	}
	if rec != nil && strings.HasPrefix(rec.ID, id+"-") {
		id = rec.ID // "<account>-<n>" names the account's current case "<account>-<n>-<opened>"
	}
	events, err := r.History(ctx, account, id)
	if err != nil {
		writeCodeErr(w, err)
		return
	}
	var c model.Case
	switch {
	case rec != nil && rec.ID == id:
		c = rec.Case
		// Events stored with the state but not published yet (the outbox) are part of
		// the history already: the state the caller sees has them.
		last := 0
		if len(events) > 0 {
			last = events[len(events)-1].Seq
		}
		for _, ev := range rec.Outbox {
			if ev.CaseID == id && ev.Seq > last {
				events = append(events, ev)
				last = ev.Seq
			}
		}
	case len(events) > 0:
		c = events[len(events)-1].Case
	default:
		writeErr(w, http.StatusNotFound, model.CodeNotFound, "case "+id+" not found")
		return
	}
	v := view(c, events)
	if rec != nil && rec.ID == id {
		v = r.withStoredSeen(ctx, r.withSeen(v))
	}
	writeJSON(w, http.StatusOK, v)
}

// withSeen adds the newest observation this instance applied, when it is newer.
func (r *Remediator) withSeen(v CaseView) CaseView {
	if at := r.seen.get(v.AccountID); at.After(v.LastCheckedAt) {
		v.LastSeenAt = &at
	}
	return v
}

// withStoredSeen is for views of one account: the account's last check
// (internal/bus LastCheck). When this instance has applied no observation newer than
// last_checked_at (after a restart), last_seen_at is the account's newest
// observation on RW_FINDINGS; checked_in_sweep is the later sweep that found the
// account unchanged (a sweep publishes only what changed: detector/unchanged.go).
func (r *Remediator) withStoredSeen(ctx context.Context, v CaseView) CaseView {
	if !v.State.Active() {
		return v
	}
	lc, err := r.b.LastCheck(ctx, v.AccountID)
	if err != nil || lc.Observation == nil {
		return v
	}
	if at := lc.Observation.ObservedAt; v.LastSeenAt == nil && at.After(v.LastCheckedAt) {
		v.LastSeenAt = &at
	}
	if lc.Sweep != nil && (v.LastSeenAt == nil || lc.Sweep.StartedAt.After(*v.LastSeenAt)) {
		v.CheckedInSweep = &model.SweepRef{ID: lc.Sweep.ID, StartedAt: lc.Sweep.StartedAt}
	}
	return v
}

func view(c model.Case, events []model.CaseEvent) CaseView {
	c.ActionIDs = nil
	v := CaseView{Case: c}
	for _, e := range events {
		v.History = append(v.History, HistoryEntry{ID: e.ID, Seq: e.Seq, Type: e.Type, From: e.From, To: e.To,
			Actor: e.Actor, At: e.At, Reason: e.Reason, ActionID: e.ActionID})
	}
	return v
}

// History reads a case's events from the audit log (RW_CASES), in order, once each.
func (r *Remediator) History(ctx context.Context, account, caseID string) ([]model.CaseEvent, error) {
	return readEvents(ctx, r.b, account, caseID)
}

// readEvents reads an account's case events (of one case, or all when caseID is empty)
// without leaving anything on the server (bus.CaseEvents).
func readEvents(ctx context.Context, b *bus.Bus, account, caseID string) ([]model.CaseEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := b.CaseEvents(ctx, account, caseID)
	if err != nil {
		return nil, model.Wrap(model.CodeTransient, err, "read the audit log of %s", account)
	}
	if caseID != "" {
		slices.SortStableFunc(out, func(a, b model.CaseEvent) int { return a.Seq - b.Seq })
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code model.Code, msg string) {
	writeJSON(w, status, APIError{Error: msg, Code: string(code)})
}

// writeCodeErr maps an error's code to an HTTP status: the one place for the API.
func writeCodeErr(w http.ResponseWriter, err error) {
	code := model.ErrorCode(err)
	status := map[model.Code]int{
		model.CodeInvalid: http.StatusBadRequest, model.CodeUnauthorized: http.StatusForbidden,
		model.CodeNotFound: http.StatusNotFound, model.CodeConflict: http.StatusConflict,
		model.CodeTransient: http.StatusServiceUnavailable,
	}[code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeErr(w, status, code, err.Error())
}
