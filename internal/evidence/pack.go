// Package evidence builds the evidence pack an auditor receives: from the audit log
// (RW_CASES, raw messages in stream order) it rebuilds, for a period and optionally an
// OU, every case's timeline, each account's root-credential posture at the start and
// end of the period, a summary and the control map; renders it as JSON (the stable,
// versioned form: docs/evidence.md), CSV or one self-contained HTML page; signs it in
// OpenSSH's SSHSIG format (`ssh-keygen -Y verify`); and verifies the audit log's hash
// chain. It reads no bus and no clock: the caller hands it messages and times.
package evidence

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

// SchemaVersion of the pack's JSON. Fields are only ever added within a version;
// readers ignore fields they do not know (later: root-credential and root-activity
// rows).
const SchemaVersion = 1

// Kind names the document.
const Kind = "rootwarden.evidence"

// Message is one stored message of the audit log, as the bus returned it.
type Message struct {
	Seq     uint64    // stream sequence
	Subject string    // rootwarden.cases.<account>
	Time    time.Time // when the server stored it
	Data    []byte
}

// Options of one pack.
type Options struct {
	From, To  time.Time     // the period [From, To)
	OU        string        // only accounts at or under this OU path ("Root/Prod"); "" for all
	SLA       time.Duration // time to remediate beyond which a case breached (ROOTWARDEN_SLA)
	Generated time.Time     // when the pack was made
	Generator string        // rootwarden's version
	// RecordBegins is the time of the oldest message kept in the audit log (zero when
	// it is empty): a period before it cannot be reported in full.
	RecordBegins time.Time
	// RoutedTo names where a case was posted (the Slack channel), "" when unknown.
	RoutedTo func(caseID string) string
	// Integrity is the audit log's chain verification, included as it is.
	Integrity *Report
	// Sweeps and Posture are the retained history (RW_HISTORY), nil when none.
	Sweeps  []model.SweepHistory
	Posture []model.PostureHistory
}

// Pack is the evidence pack (schema_version 1).
type Pack struct {
	SchemaVersion int       `json:"schema_version"`
	Kind          string    `json:"kind"`
	Generator     string    `json:"generator"`
	GeneratedAt   time.Time `json:"generated_at"`
	Period        Period    `json:"period"`
	OU            string    `json:"ou,omitempty"`
	// Completeness says what the pack cannot show (a period before the record began,
	// events before the hash chain); empty when nothing is missing.
	Completeness []string `json:"completeness"`
	Summary      Summary  `json:"summary"`
	// Coverage is what the sweeps of the period covered (RW_HISTORY); nil when the
	// history holds no sweep of the period.
	Coverage  *Coverage `json:"coverage,omitempty"`
	Cases     []Case    `json:"cases"`
	Accounts  []Account `json:"accounts"`
	Controls  []Control `json:"controls"`
	Integrity *Report   `json:"integrity,omitempty"`
}

// Coverage sums the sweeps that started in the period.
type Coverage struct {
	Sweeps        int       `json:"sweeps"`
	HistoryBegins time.Time `json:"history_begins"`
	// AccountsListed: by the last sweep of the period; Min/Max over its sweeps.
	AccountsListed    int `json:"accounts_listed"`
	AccountsListedMin int `json:"accounts_listed_min"`
	AccountsListedMax int `json:"accounts_listed_max"`
	// Checks: every account check of the period's sweeps; Unchecked: failed checks by
	// error code; UncheckedAccounts: each account that failed at least once, with
	// its last code.
	Checks            int               `json:"checks"`
	Unchecked         map[string]int    `json:"unchecked_by_reason"`
	UncheckedAccounts map[string]string `json:"unchecked_accounts"`
	SweepList         []SweepRow        `json:"sweep_list"`
}

// SweepRow is one sweep of the period.
type SweepRow struct {
	SweepID             string         `json:"sweep_id"`
	StartedAt           time.Time      `json:"started_at"`
	Listed              int            `json:"listed"`
	ListError           string         `json:"list_error,omitempty"`
	Checked             int            `json:"checked"`
	Unchecked           int            `json:"unchecked"`
	WithRootCredentials map[string]int `json:"with_root_credentials"`
}

// Period is the half-open interval the pack covers.
type Period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Summary is what an auditor reads first.
type Summary struct {
	AccountsWithCases int `json:"accounts_with_cases"`
	CasesInPeriod     int `json:"cases_in_period"` // open at some time in the period
	CasesOpened       int `json:"cases_opened"`
	CasesResolved     int `json:"cases_resolved"`
	CasesRiskAccepted int `json:"cases_risk_accepted"` // a risk acceptance was given in the period
	OpenAtEnd         int `json:"open_at_end"`
	// Time to remediate (opened → AWS verified no keys) of the cases resolved in the
	// period, in seconds; 0 when none was.
	TTRMedianSeconds int64 `json:"ttr_median_seconds"`
	TTRP90Seconds    int64 `json:"ttr_p90_seconds"`
	SLASeconds       int64 `json:"sla_seconds"`
	SLABreaches      int   `json:"sla_breaches"`
}

// Case is one case and its full timeline up to the end of the period.
type Case struct {
	CaseID      string `json:"case_id"`
	AccountID   string `json:"account_id"`
	AccountName string `json:"account_name"`
	OUPath      string `json:"ou_path,omitempty"`
	Severity    string `json:"severity"`
	StateAtEnd  string `json:"state_at_end"`
	// Credential is the root credential type the case is about.
	Credential string            `json:"credential"`
	Detected   Detection         `json:"detected"`
	RoutedTo   string            `json:"routed_to,omitempty"`
	Approved   *Step             `json:"approved,omitempty"`
	Risk       []RiskAcceptance  `json:"risk_acceptances"`
	Ticket     *model.TicketRef  `json:"ticket,omitempty"`
	Removed    *Removal          `json:"removed,omitempty"`
	Verified   *Verification     `json:"verified,omitempty"`
	TTRSeconds *int64            `json:"time_to_remediate_seconds,omitempty"`
	SLABreach  bool              `json:"sla_breached"`
	Timeline   []TimelineEntry   `json:"timeline"`
	Tags       map[string]string `json:"-"`
}

// Detection is how the case began.
type Detection struct {
	By string    `json:"by"` // sweep, event, check
	At time.Time `json:"at"`
	// CloudTrail event that triggered it, when one did.
	EventID   string `json:"cloudtrail_event_id,omitempty"`
	EventName string `json:"cloudtrail_event_name,omitempty"`
	KeyInUse  bool   `json:"key_in_use,omitempty"`
}

// Step is a human decision.
type Step struct {
	By     model.Actor `json:"by"`
	At     time.Time   `json:"at"`
	Reason string      `json:"reason,omitempty"`
}

// RiskAcceptance is one acceptance and how it ended.
type RiskAcceptance struct {
	By      model.Actor `json:"by"`
	At      time.Time   `json:"at"`
	Reason  string      `json:"reason"`
	Expires time.Time   `json:"expires"`
	// Ended: "revoked", "expired", "resolved" or "" while it runs.
	Ended   string     `json:"ended,omitempty"`
	EndedAt *time.Time `json:"ended_at,omitempty"`
}

// Removal is how the credential was removed.
type Removal struct {
	// How: "assume_root" (rootwarden deleted it through sts:AssumeRoot after an
	// approval), "person" (someone said they deleted it: the button or the ticket),
	// "not_recorded" (AWS reported it gone without a claim first).
	How string       `json:"how"`
	By  *model.Actor `json:"by,omitempty"`
	At  time.Time    `json:"at"`
	// KeyIDs deleted through AssumeRoot.
	KeyIDs []string `json:"key_ids,omitempty"`
	// SessionName of the AssumeRoot session: AssumeRoot takes none, so it is the
	// caller's in CloudTrail; empty here.
	SessionName string `json:"session_name,omitempty"`
	Detail      string `json:"detail,omitempty"`
}

// Verification is AWS's answer that closed the case.
type Verification struct {
	Answer string    `json:"answer"` // e.g. "no root access keys (seen by check)"
	Source string    `json:"source"` // GetAccountSummary by a check, a sweep, an event
	At     time.Time `json:"at"`
}

// TimelineEntry is one case event of the audit log, one to one.
type TimelineEntry struct {
	EventID   string      `json:"event_id"`
	StreamSeq uint64      `json:"stream_seq"`
	Seq       int         `json:"seq"`
	At        time.Time   `json:"at"`
	Type      string      `json:"type"`
	From      string      `json:"from,omitempty"`
	To        string      `json:"to"`
	Actor     model.Actor `json:"actor"`
	Reason    string      `json:"reason"`
	ActionID  string      `json:"action_id,omitempty"`
	InPeriod  bool        `json:"in_period"`
}

// Account is one account's root-credential posture. Posture maps a credential type
// ("access_keys"; later "signing_certificates", "password", "mfa") to
// "present", "absent" or "unknown".
type Account struct {
	AccountID     string            `json:"account_id"`
	AccountName   string            `json:"account_name"`
	OUPath        string            `json:"ou_path,omitempty"`
	PostureAtFrom map[string]string `json:"posture_at_start"`
	PostureAtTo   map[string]string `json:"posture_at_end"`
	Changes       []PostureChange   `json:"changes"`
}

// PostureChange is one change of one credential type.
type PostureChange struct {
	At         time.Time `json:"at"`
	Credential string    `json:"credential"`
	State      string    `json:"state"`
	CaseID     string    `json:"case_id"`
	EventID    string    `json:"event_id"`
}

// Credential types and posture states.
const (
	CredAccessKeys = "access_keys"
	Present        = "present"
	Absent         = "absent"
	Unknown        = "unknown"
)

type parsed struct {
	model.CaseEvent
	streamSeq uint64
}

// Build makes the pack from the audit log's messages (any order; repeats of an event
// id count once).
func Build(msgs []Message, o Options) Pack {
	events := decode(msgs)
	// The record begins with its oldest event (by the event's own time), or with the
	// oldest message the log keeps, whichever is earlier.
	for _, e := range events {
		if o.RecordBegins.IsZero() || e.At.Before(o.RecordBegins) {
			o.RecordBegins = e.At
		}
	}
	p := Pack{SchemaVersion: SchemaVersion, Kind: Kind, Generator: o.Generator, GeneratedAt: o.Generated.UTC(),
		Period: Period{From: o.From.UTC(), To: o.To.UTC()}, OU: o.OU, Completeness: []string{},
		Cases: []Case{}, Accounts: []Account{}, Controls: Controls(), Integrity: o.Integrity}
	if o.RecordBegins.IsZero() || o.From.Before(o.RecordBegins) {
		begins := "the audit log holds no events"
		if !o.RecordBegins.IsZero() {
			begins = "the audit log begins at " + o.RecordBegins.UTC().Format(time.RFC3339)
		}
		p.Completeness = append(p.Completeness, begins+": the part of the period before it cannot be reported in full")
	}
	if o.Integrity != nil && o.Integrity.BeforeChain > 0 {
		p.Completeness = append(p.Completeness,
			"events written before the hash chain existed cannot be proven unaltered: "+itoa(o.Integrity.BeforeChain)+" in the log")
	}
	p.Coverage = coverage(o)
	switch {
	case p.Coverage == nil:
		p.Completeness = append(p.Completeness,
			"the retained history holds no sweep of the period: coverage (accounts listed and checked) cannot be shown, only accounts with a case")
	case p.Coverage.HistoryBegins.After(o.From):
		p.Completeness = append(p.Completeness, "the retained history of sweeps begins at "+
			p.Coverage.HistoryBegins.UTC().Format(time.RFC3339)+": coverage before it cannot be shown")
	}

	byCase := map[string][]parsed{}
	var order []string
	for _, e := range events {
		if !e.At.Before(o.To) || !underOU(e.Case.OUPath, o.OU) {
			continue
		}
		if _, ok := byCase[e.CaseID]; !ok {
			order = append(order, e.CaseID)
		}
		byCase[e.CaseID] = append(byCase[e.CaseID], e)
	}
	accounts := map[string]*Account{}
	var ttrs []int64
	for _, id := range order {
		evs := byCase[id]
		// Within a case, Seq orders (an outbox published again may interleave).
		slices.SortStableFunc(evs, func(a, b parsed) int { return a.Seq - b.Seq })
		c, ok := buildCase(evs, o)
		acc := accounts[evs[0].AccountID]
		if acc == nil {
			acc = &Account{AccountID: evs[0].AccountID, PostureAtFrom: map[string]string{CredAccessKeys: Unknown},
				PostureAtTo: map[string]string{CredAccessKeys: Unknown}, Changes: []PostureChange{}}
			accounts[acc.AccountID] = acc
		}
		posture(acc, evs, o)
		if !ok {
			continue // the case was over before the period
		}
		p.Cases = append(p.Cases, c)
		s := &p.Summary
		s.CasesInPeriod++
		if !c.Detected.At.Before(o.From) {
			s.CasesOpened++
		}
		if c.Verified != nil && !c.Verified.At.Before(o.From) {
			s.CasesResolved++
			if c.TTRSeconds != nil {
				ttrs = append(ttrs, *c.TTRSeconds)
			}
		}
		for _, r := range c.Risk {
			if !r.At.Before(o.From) {
				s.CasesRiskAccepted++
				break
			}
		}
		if c.StateAtEnd != string(model.StateResolved) {
			s.OpenAtEnd++
		}
		if c.SLABreach {
			s.SLABreaches++
		}
	}
	foldPosture(accounts, o)
	for _, a := range accounts {
		if a.PostureAtTo[CredAccessKeys] == Unknown && len(a.Changes) == 0 && len(a.PostureAtTo) == 1 {
			continue
		}
		p.Accounts = append(p.Accounts, *a)
	}
	slices.SortFunc(p.Accounts, func(a, b Account) int { return strings.Compare(a.AccountID, b.AccountID) })
	slices.SortStableFunc(p.Cases, func(a, b Case) int { return a.Detected.At.Compare(b.Detected.At) })
	p.Summary.AccountsWithCases = len(p.Accounts)
	p.Summary.SLASeconds = int64(o.SLA / time.Second)
	p.Summary.TTRMedianSeconds = percentile(ttrs, 50)
	p.Summary.TTRP90Seconds = percentile(ttrs, 90)
	return p
}

// decode parses the case events, once per event id, in stream order.
func decode(msgs []Message) []parsed {
	msgs = slices.Clone(msgs)
	slices.SortFunc(msgs, func(a, b Message) int { return cmpU(a.Seq, b.Seq) })
	seen := map[string]bool{}
	var out []parsed
	for _, m := range msgs {
		var ev model.CaseEvent
		if json.Unmarshal(m.Data, &ev) != nil || ev.ID == "" || ev.CaseID == "" || seen[ev.ID] || !isCaseEvent(ev) {
			continue
		}
		seen[ev.ID] = true
		out = append(out, parsed{CaseEvent: ev, streamSeq: m.Seq})
	}
	return out
}

// buildCase rebuilds one case from its events up to the period's end; ok is false
// when the case ended before the period began.
func buildCase(evs []parsed, o Options) (Case, bool) {
	last := evs[len(evs)-1]
	snap := last.Case
	c := Case{CaseID: last.CaseID, AccountID: last.AccountID, AccountName: snap.AccountName, OUPath: snap.OUPath,
		Severity: string(snap.Severity), StateAtEnd: string(last.To), Credential: CredAccessKeys,
		Risk: []RiskAcceptance{}, Ticket: snap.Ticket, Tags: snap.Tags}
	if last.To == model.StateResolved && last.At.Before(o.From) {
		return c, false
	}
	first := evs[0]
	c.Detected = Detection{By: string(first.Case.FoundBy), At: first.Case.OpenedAt.UTC()}
	if c.Detected.At.IsZero() {
		c.Detected.At = first.At.UTC()
	}
	if ev := first.Case.Event; ev != nil {
		c.Detected.EventID, c.Detected.EventName, c.Detected.KeyInUse = ev.EventID, ev.EventName, ev.KeyInUse
	}
	if o.RoutedTo != nil {
		c.RoutedTo = o.RoutedTo(c.CaseID)
	}
	var claim *Removal
	for _, e := range evs {
		c.Timeline = append(c.Timeline, TimelineEntry{EventID: e.ID, StreamSeq: e.streamSeq, Seq: e.Seq, At: e.At.UTC(),
			Type: string(e.Type), From: string(e.From), To: string(e.To), Actor: e.Actor, Reason: e.Reason,
			ActionID: e.ActionID, InPeriod: !e.At.Before(o.From)})
		at := e.At.UTC()
		switch e.Type {
		case model.EventTicketed:
			if c.Approved == nil {
				c.Approved = &Step{By: e.Actor, At: at, Reason: e.Reason}
			}
		case model.EventRiskAccepted:
			r := RiskAcceptance{By: e.Actor, At: at, Reason: e.Reason}
			if e.Case.Risk != nil {
				r.Reason, r.Expires = e.Case.Risk.Reason, e.Case.Risk.Expires.UTC()
			}
			c.Risk = append(c.Risk, r)
		case model.EventReopened, model.EventResolved:
			if n := len(c.Risk); n > 0 && c.Risk[n-1].Ended == "" && e.From == model.StateRiskAccepted {
				end := "expired"
				switch {
				case e.Type == model.EventResolved:
					end = "resolved"
				case e.Actor.Kind != model.ActorSystem:
					end = "revoked"
				}
				c.Risk[n-1].Ended, c.Risk[n-1].EndedAt = end, &at
			}
		case model.EventKeysDeleted:
			claim = &Removal{How: "assume_root", At: at, KeyIDs: e.Case.DeletedKeyIDs, Detail: e.Reason}
		case model.EventVerifying:
			if claim == nil || claim.How != "assume_root" || e.Actor.Kind != model.ActorSystem {
				a := e.Actor
				claim = &Removal{How: "person", By: &a, At: at, Detail: e.Reason}
			}
		case model.EventStillPresent:
			claim = nil // the claim was wrong: AWS still reported keys
		}
		if e.Type == model.EventResolved {
			removed := claim
			if removed == nil {
				removed = &Removal{How: "not_recorded", At: at, Detail: "AWS reported no root access keys without a claim of deletion first"}
			}
			c.Removed = removed
			c.Verified = &Verification{Answer: e.Reason, Source: verifySource(e.Reason), At: at}
			ttr := int64(at.Sub(c.Detected.At) / time.Second)
			c.TTRSeconds = &ttr
		} else if e.To.Active() && e.From == model.StateResolved {
			c.Removed, c.Verified, c.TTRSeconds = nil, nil, nil
		}
	}
	if o.SLA > 0 {
		end := o.To
		if c.Verified != nil {
			end = c.Verified.At
		}
		c.SLABreach = end.Sub(c.Detected.At) > o.SLA && c.StateAtEnd != string(model.StateRiskAccepted)
	}
	return c, true
}

func verifySource(reason string) string {
	for _, s := range []string{"check", "sweep", "event"} {
		if strings.Contains(reason, "seen by "+s) {
			return "iam:GetAccountSummary (" + s + ")"
		}
	}
	return "iam:GetAccountSummary"
}

// posture folds a case's events into its account's posture.
func posture(a *Account, evs []parsed, o Options) {
	for _, e := range evs {
		if a.AccountName == "" || e.Case.AccountName != "" {
			a.AccountName = e.Case.AccountName
		}
		if e.Case.OUPath != "" {
			a.OUPath = e.Case.OUPath
		}
		state := ""
		switch {
		case e.Type == model.EventOpened || (e.From == model.StateResolved && e.To.Active()):
			state = Present
		case e.Type == model.EventResolved:
			state = Absent
		default:
			continue
		}
		if e.At.Before(o.From) {
			a.PostureAtFrom[CredAccessKeys] = state
			a.PostureAtTo[CredAccessKeys] = state
			continue
		}
		a.PostureAtTo[CredAccessKeys] = state
		a.Changes = append(a.Changes, PostureChange{At: e.At.UTC(), Credential: CredAccessKeys, State: state,
			CaseID: e.CaseID, EventID: e.ID})
	}
}

// underOU reports whether path is ou or below it ("" matches all).
func underOU(path, ou string) bool {
	ou = strings.TrimSuffix(ou, "/")
	return ou == "" || path == ou || strings.HasPrefix(path, ou+"/")
}

func percentile(v []int64, p int) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	// nearest rank
	i := (p*len(s) + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func itoa(n int) string { return strconv.Itoa(n) }

// coverage sums the history's sweep records of sweeps that started in the period.
func coverage(o Options) *Coverage {
	if len(o.Sweeps) == 0 {
		return nil
	}
	c := &Coverage{Unchecked: map[string]int{}, UncheckedAccounts: map[string]string{}, SweepList: []SweepRow{}}
	rows := map[string]*SweepRow{}
	for _, h := range o.Sweeps {
		if c.HistoryBegins.IsZero() || h.StartedAt.Before(c.HistoryBegins) {
			c.HistoryBegins = h.StartedAt.UTC()
		}
		if h.StartedAt.Before(o.From) || !h.StartedAt.Before(o.To) {
			continue
		}
		r := rows[h.SweepID]
		if r == nil {
			r = &SweepRow{SweepID: h.SweepID, StartedAt: h.StartedAt.UTC(), WithRootCredentials: map[string]int{}}
			rows[h.SweepID] = r
		}
		switch h.Kind {
		case "listed":
			r.Listed, r.ListError = h.Listed, h.Error
		case "checked":
			r.Checked += h.Checked
			r.Unchecked += len(h.Unchecked)
			for k, n := range h.WithRootCredentials {
				r.WithRootCredentials[k] += n
			}
			c.Checks += h.Checked
			for acc, code := range h.Unchecked {
				c.Unchecked[code]++
				c.UncheckedAccounts[acc] = code
			}
		}
	}
	if len(rows) == 0 {
		return nil
	}
	for _, r := range rows {
		c.SweepList = append(c.SweepList, *r)
	}
	slices.SortFunc(c.SweepList, func(a, b SweepRow) int { return a.StartedAt.Compare(b.StartedAt) })
	c.Sweeps = len(c.SweepList)
	c.AccountsListedMin = -1
	for _, r := range c.SweepList {
		if r.Listed == 0 && r.ListError == "" {
			continue // listed by a detector whose record is missing
		}
		c.AccountsListed = r.Listed
		c.AccountsListedMax = max(c.AccountsListedMax, r.Listed)
		if c.AccountsListedMin < 0 || r.Listed < c.AccountsListedMin {
			c.AccountsListedMin = r.Listed
		}
	}
	if c.AccountsListedMin < 0 {
		c.AccountsListedMin = 0
	}
	return c
}

// foldPosture adds the history's posture records: credential types the case events
// do not carry, and accounts the audit log no longer holds.
func foldPosture(accounts map[string]*Account, o Options) {
	recs := slices.Clone(o.Posture)
	slices.SortStableFunc(recs, func(a, b model.PostureHistory) int { return a.At.Compare(b.At) })
	for _, h := range recs {
		if !h.At.Before(o.To) {
			continue
		}
		a := accounts[h.AccountID]
		fromCases := a != nil
		if !fromCases && o.OU != "" {
			continue // the record names no OU
		}
		if a == nil {
			a = &Account{AccountID: h.AccountID, PostureAtFrom: map[string]string{CredAccessKeys: Unknown},
				PostureAtTo: map[string]string{CredAccessKeys: Unknown}, Changes: []PostureChange{}}
			accounts[h.AccountID] = a
		}
		for typ, state := range h.Credentials {
			if fromCases && typ == CredAccessKeys {
				continue // the case events say it, chained
			}
			if h.At.Before(o.From) {
				a.PostureAtFrom[typ] = state
			} else {
				a.Changes = append(a.Changes, PostureChange{At: h.At.UTC(), Credential: typ, State: state, CaseID: h.CaseID, EventID: h.EventID})
			}
			a.PostureAtTo[typ] = state
		}
	}
}
