// Package model holds rootwarden's domain: the observation a detector publishes, the
// case the remediator owns, the actions the notifier sends, the case events that are
// the audit log, and the small interfaces between them. It imports only the standard
// library: no AWS, Slack or NATS type may appear here.
package model

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// SchemaVersion is written into every message on the bus. Readers accept any version
// up to this one and ignore unknown fields.
const SchemaVersion = 1

// Source says how an observation came about.
type Source string

const (
	SourceSweep Source = "sweep" // periodic sweep of every account
	SourceEvent Source = "event" // a CloudTrail event arrived through SQS
	SourceCheck Source = "check" // an on-demand check (verification, re-check)
	// SourceSecurityHub: a Security Hub finding (IAM.4/6/9 FAILED) made the detector
	// check the account (detector/securityhub.go).
	SourceSecurityHub Source = "securityhub"
)

// KeyDetail is one root access key as the credential report describes it. AWS names
// root keys by slot (1 or 2); the report carries no key id.
type KeyDetail struct {
	Slot            int        `json:"slot"`
	Active          bool       `json:"active"`
	LastRotated     *time.Time `json:"last_rotated,omitempty"`
	LastUsedAt      *time.Time `json:"last_used_at,omitempty"`
	LastUsedRegion  string     `json:"last_used_region,omitempty"`
	LastUsedService string     `json:"last_used_service,omitempty"`
}

// TrailEvent is the CloudTrail record that triggered an event observation.
type TrailEvent struct {
	EventID     string    `json:"event_id"`
	EventName   string    `json:"event_name"`
	EventSource string    `json:"event_source"`
	EventTime   time.Time `json:"event_time"`
	Region      string    `json:"region,omitempty"`
	SourceIP    string    `json:"source_ip,omitempty"`
	UserAgent   string    `json:"user_agent,omitempty"`
	// AccessKeyID is the key the call was signed with, or for CreateAccessKey /
	// UpdateAccessKey / DeleteAccessKey the key the call was about.
	AccessKeyID string `json:"access_key_id,omitempty"`
	// KeyInUse is true when the call itself was signed with a root access key: the
	// most urgent kind of finding.
	KeyInUse bool `json:"key_in_use"`
	// Calls > 1: this event stands for that many calls signed with the key within the
	// detector's event window (coalesced), with their API names and source IPs.
	Calls      int      `json:"calls,omitempty"`
	EventNames []string `json:"event_names,omitempty"`
	SourceIPs  []string `json:"source_ips,omitempty"`
}

// Observation is the result of checking one account once. It is the finding message
// on the bus, the reply of an on-demand check and one row of `rootwarden scan --json`.
type Observation struct {
	SchemaVersion int    `json:"schema_version"`
	ID            string `json:"id"` // unique per check; the Nats-Msg-Id
	AccountID     string `json:"account_id"`
	AccountName   string `json:"account_name"`
	// Management is true for the organization's management account (or the single
	// account when no organization is swept). AssumeRoot never targets it.
	Management bool `json:"management"`
	// OrgMember is true for a member account of an AWS Organization.
	OrgMember bool `json:"org_member"`
	// OUPath is the account's place in the organization, e.g. "Root/Prod/Payments"
	// (names of the organizational units from the root down); empty outside one.
	OUPath string `json:"ou_path,omitempty"`
	// Tags are the account's Organizations tags (routing and owner lookups use them).
	Tags            map[string]string `json:"tags,omitempty"`
	Source          Source            `json:"source"`
	ObservedAt      time.Time         `json:"observed_at"`
	RootKeysPresent bool              `json:"root_keys_present"`
	// RootCredentials: every root credential the account summary reports (keys,
	// signing certificates, password, MFA); nil in a finding of an older detector
	// and when the check failed. Cases still open on RootKeysPresent alone.
	RootCredentials *RootCredentials `json:"root_credentials,omitempty"`
	Keys            []KeyDetail      `json:"keys"`
	// KeyDetailsPending: presence is decided (RootKeysPresent, from the account
	// summary) but the key details are still being read from the credential report;
	// they follow in a second observation with the same ObservedAt. Keys says
	// nothing then (it is not "no keys").
	KeyDetailsPending bool        `json:"key_details_pending,omitempty"`
	Event             *TrailEvent `json:"event,omitempty"`
	ReportAt          *time.Time  `json:"credential_report_at,omitempty"`
	SweepID           string      `json:"sweep_id,omitempty"`
	RequestID         string      `json:"request_id,omitempty"` // the check request it answers
	Error             string      `json:"error"`                // empty when the check worked
	ErrorCode         string      `json:"error_code,omitempty"` // e.g. AccessDenied, Throttling
	// RoutingError: the account's tags or OU path (what routes its case and names its
	// owner) could not be read in time; OUPath and Tags are what was known before, and
	// the case is routed with them. Empty when they were read (or are not needed).
	RoutingError string `json:"routing_error,omitempty"`
}

// Failed reports whether the check could not decide presence.
func (o Observation) Failed() bool { return o.Error != "" }

// SweepRef names a sweep (rw_sched "sweep", written by the detector, names the
// current sweep and its predecessor).
type SweepRef struct {
	ID        string    `json:"id"`
	StartedAt time.Time `json:"started_at"`
	// Complete (of a predecessor): every job of the sweep was done when the next
	// sweep started, so it checked every account of the inventory.
	Complete bool `json:"complete,omitempty"`
}

// CheckRequest asks the detector to check one account now (request/reply).
type CheckRequest struct {
	SchemaVersion int    `json:"schema_version"`
	RequestID     string `json:"request_id"`
	AccountID     string `json:"account_id"`
	Reason        string `json:"reason,omitempty"`
}

// Severity of a case.
type Severity string

const (
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// RecentUse is how recent a root key's last use must be for the case to be critical.
const RecentUse = 7 * 24 * time.Hour

// SeverityOf rates an observation: critical when a root key was seen in use (a call
// signed with it) or used within RecentUse of now, high otherwise.
func SeverityOf(o Observation, now time.Time) Severity {
	if o.Event != nil && o.Event.KeyInUse {
		return SeverityCritical
	}
	for _, k := range o.Keys {
		if k.LastUsedAt != nil && now.Sub(*k.LastUsedAt) <= RecentUse {
			return SeverityCritical
		}
	}
	return SeverityHigh
}

// State of a case. The transitions live in remediator's state machine.
type State string

const (
	StateOpen         State = "open"
	StateTicketed     State = "ticketed"
	StateVerifying    State = "verifying"
	StateResolved     State = "resolved"
	StateRiskAccepted State = "risk_accepted"
)

// Active reports whether the case still needs someone.
func (s State) Active() bool { return s != StateResolved && s != "" }

// ActorKind says who did something.
type ActorKind string

const (
	ActorSlack  ActorKind = "slack"  // a Slack user
	ActorTicket ActorKind = "ticket" // a ticket's assignee
	ActorSystem ActorKind = "system" // rootwarden itself
	ActorAPI    ActorKind = "api"    // a caller of rootwarden's API or CLI
)

// Actor is who caused a transition.
type Actor struct {
	Kind ActorKind `json:"kind"`
	ID   string    `json:"id,omitempty"`   // Slack user id, ticket assignee login
	Name string    `json:"name,omitempty"` // human-readable
}

// System is the actor for rootwarden's own transitions.
var System = Actor{Kind: ActorSystem, ID: "system", Name: "rootwarden"}

// String renders the actor for logs and messages.
func (a Actor) String() string {
	switch {
	case a.Name != "" && a.ID != "" && a.Name != a.ID:
		return a.Name + " (" + a.ID + ")"
	case a.Name != "":
		return a.Name
	case a.ID != "":
		return a.ID
	}
	return string(a.Kind)
}

// ActionKind is what a human asked for.
type ActionKind string

const (
	ActionApprove        ActionKind = "approve"           // approve remediation: open a ticket
	ActionAcceptRisk     ActionKind = "accept_risk"       // accept the risk until Expires
	ActionRevokeAccept   ActionKind = "revoke_acceptance" // undo an acceptance
	ActionConfirmDeleted ActionKind = "confirm_deleted"   // "I deleted the keys"
	ActionRecheck        ActionKind = "recheck"           // check AWS now
)

// Action is a request to the remediator, published on rootwarden.actions.<account>.
type Action struct {
	SchemaVersion int        `json:"schema_version"`
	ID            string     `json:"id"` // unique per click; the Nats-Msg-Id
	Kind          ActionKind `json:"kind"`
	AccountID     string     `json:"account_id"`
	CaseID        string     `json:"case_id"`
	Actor         Actor      `json:"actor"`
	At            time.Time  `json:"at"`
	Reason        string     `json:"reason,omitempty"`
	Expires       *time.Time `json:"expires,omitempty"` // accept_risk only
	Origin        string     `json:"origin,omitempty"`  // slack, ticket, api, demo
}

// TicketRef points at the ticket of a case.
type TicketRef struct {
	System string `json:"system"` // builtin, jira, github
	ID     string `json:"id"`
	URL    string `json:"url"` // empty for the built-in tracker
}

// TicketStatus is what the tracker says about a ticket.
type TicketStatus struct {
	Done     bool   `json:"done"`
	Assignee string `json:"assignee,omitempty"`
	State    string `json:"state,omitempty"` // the tracker's own word
	// ClosedAt is the tracker's own time of the current closure, verbatim (GitHub
	// closed_at, Jira statuscategorychangedate): it tells one closure from the next.
	ClosedAt string `json:"closed_at,omitempty"`
}

// RiskAcceptance records an accepted risk.
type RiskAcceptance struct {
	Reason  string    `json:"reason"`
	Expires time.Time `json:"expires"`
	By      Actor     `json:"by"`
	At      time.Time `json:"at"`
}

// Case is one account's root-key case. The remediator is its only writer.
type Case struct {
	SchemaVersion int               `json:"schema_version"`
	ID            string            `json:"id"` // "<account>-<n>-<opened>" (remediator.CaseID)
	Number        int               `json:"number"`
	AccountID     string            `json:"account_id"`
	AccountName   string            `json:"account_name"`
	Management    bool              `json:"management"`
	OrgMember     bool              `json:"org_member"`
	OUPath        string            `json:"ou_path,omitempty"` // from the latest observation
	Tags          map[string]string `json:"tags,omitempty"`    // from the latest observation
	State         State             `json:"state"`
	Severity      Severity          `json:"severity"`
	Keys          []KeyDetail       `json:"keys"`
	FoundBy       Source            `json:"found_by"`
	Event         *TrailEvent       `json:"event,omitempty"`        // the latest CloudTrail event seen
	LastError     string            `json:"last_error,omitempty"`   // the last check failure (request ids stripped)
	TicketError   string            `json:"ticket_error,omitempty"` // the last ticket failure, apart from check errors
	LastCheckedAt time.Time         `json:"last_checked_at"`
	RoutingError  string            `json:"routing_error,omitempty"`
	Ticket        *TicketRef        `json:"ticket,omitempty"`
	Risk          *RiskAcceptance   `json:"risk,omitempty"`
	DeletedKeyIDs []string          `json:"deleted_key_ids,omitempty"` // by AssumeRoot
	OpenedAt      time.Time         `json:"opened_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	ResolvedAt    *time.Time        `json:"resolved_at,omitempty"`
	// VerifyingSince is when the case last entered verifying (the claim); a keys-present
	// observation made after it means the keys are still there.
	VerifyingSince *time.Time `json:"verifying_since,omitempty"`
	// CheckRequestedAt is when a human last asked for a check (re-check, "I deleted");
	// further requests within the remediator's cooldown are ignored.
	CheckRequestedAt *time.Time `json:"check_requested_at,omitempty"`
	// CheckRefusedAt is when an ignored check request was last recorded (a refused
	// event), so a throttle window records at most one.
	CheckRefusedAt *time.Time `json:"check_refused_at,omitempty"`
	Seq            int        `json:"seq"` // number of the last case event
	// Pending lists side effects the remediator still owes the case (open_ticket,
	// delete_keys, recheck). They are recorded before they run, so a crash resumes them.
	Pending []string `json:"pending,omitempty"`
	// ActionIDs are the ids of the most recent actions applied (bounded), so an action
	// delivered twice causes one transition.
	ActionIDs []string `json:"action_ids,omitempty"`
	// ActivityID is the latest root activity question of the account asked while
	// this case was active ("was this you?", Activity.RootCaseID links back).
	ActivityID string `json:"activity_id,omitempty"`
}

// CaseEventType names what happened to a case.
type CaseEventType string

const (
	EventOpened       CaseEventType = "opened"
	EventTicketed     CaseEventType = "ticketed"
	EventVerifying    CaseEventType = "verifying"
	EventResolved     CaseEventType = "resolved"
	EventStillPresent CaseEventType = "still_present" // verifying → ticketed
	EventRiskAccepted CaseEventType = "risk_accepted"
	EventReopened     CaseEventType = "reopened"     // revoke or expiry
	EventRefused      CaseEventType = "refused"      // an action that did not apply
	EventUpdated      CaseEventType = "updated"      // details, severity or error changed
	EventKeysDeleted  CaseEventType = "keys_deleted" // AssumeRoot deleted keys
	EventCheckFailed  CaseEventType = "check_failed"
)

// CaseEvent is one entry of the audit log, published on rootwarden.cases.<account>.
type CaseEvent struct {
	SchemaVersion int           `json:"schema_version"`
	ID            string        `json:"id"` // "<case id>/<seq>"; the Nats-Msg-Id
	Type          CaseEventType `json:"type"`
	CaseID        string        `json:"case_id"`
	AccountID     string        `json:"account_id"`
	Seq           int           `json:"seq"`
	From          State         `json:"from,omitempty"`
	To            State         `json:"to"`
	Actor         Actor         `json:"actor"`
	At            time.Time     `json:"at"`
	Reason        string        `json:"reason"`
	ActionID      string        `json:"action_id,omitempty"`
	Case          Case          `json:"case"` // snapshot after the event
	// Activity is set on the events of a root activity question (activity_*): the
	// question after the event. Case then carries only the account (id, name, OU,
	// tags, severity) for routing; CaseID is the question's id.
	Activity *Activity `json:"activity,omitempty"`
	// PrevHash chains an account's events (tamper evidence): ChainHash of the bytes of
	// the account's previous event as published, or ChainStart for the account's first
	// chained event. Events written before the chain existed have none.
	PrevHash string `json:"prev_hash,omitempty"`
}

// EvidenceExport records one evidence pack handed out (on the audit log, subject
// rootwarden.audit.evidence): what was asked for and the hash of what was given.
type EvidenceExport struct {
	SchemaVersion int       `json:"schema_version"`
	ID            string    `json:"id"`
	At            time.Time `json:"at"`
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	OU            string    `json:"ou,omitempty"`
	Format        string    `json:"format"`
	SHA256        string    `json:"sha256"`           // hex of the pack's bytes
	Signer        string    `json:"signer,omitempty"` // the signing public key, when signed
	Cases         int       `json:"cases"`
}

// SweepHistory is one record of a sweep on the retained history (RW_HISTORY, subject
// rootwarden.history.sweep.<sweep id>), written by the detector: "listed" by the
// detector that listed the accounts, "checked" by each detector for its share of the
// sweep's checks. A sweep's coverage is the sum of its records.
type SweepHistory struct {
	SchemaVersion int       `json:"schema_version"`
	Kind          string    `json:"kind"` // listed, checked
	SweepID       string    `json:"sweep_id"`
	StartedAt     time.Time `json:"started_at"`
	At            time.Time `json:"at"`
	Listed        int       `json:"listed,omitempty"`
	Error         string    `json:"error,omitempty"` // listing failed (after Listed accounts)
	Checked       int       `json:"checked,omitempty"`
	// WithRootCredentials counts the accounts found with root credentials, by type
	// ("access_keys"; more types as the detector reads them).
	WithRootCredentials map[string]int `json:"with_root_credentials,omitempty"`
	// Unchecked maps each account whose check failed to the error's code
	// (AccessDenied, Throttling…): codes only, never a message (no personal data).
	Unchecked map[string]string `json:"unchecked,omitempty"`
}

// PostureHistory is one change of an account's root-credential posture on the
// retained history (RW_HISTORY, subject rootwarden.history.posture.<account>),
// written by the remediator when a case opens, is resolved or reopens. Credentials
// maps a type ("access_keys") to "present" or "absent".
type PostureHistory struct {
	SchemaVersion int               `json:"schema_version"`
	AccountID     string            `json:"account_id"`
	At            time.Time         `json:"at"`
	Credentials   map[string]string `json:"credentials"`
	CaseID        string            `json:"case_id"`
	EventID       string            `json:"event_id"`
}

// ChainStart is the PrevHash of an account's first chained case event.
const ChainStart = "start"

// ChainHash is the hash of one case event's bytes as published on the bus:
// "sha256:" and the hex digest.
func ChainHash(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Tracker opens and follows the ticket for one case. One implementation per system.
type Tracker interface {
	// Open is idempotent per c.ID: it finds the case's ticket before creating one.
	Open(ctx context.Context, c Case, slackLink string) (TicketRef, error)
	Comment(ctx context.Context, ref TicketRef, text string) error
	Close(ctx context.Context, ref TicketRef, resolution string) error
	Reopen(ctx context.Context, ref TicketRef, text string) error
	Status(ctx context.Context, ref TicketRef) (TicketStatus, error)
}

// Checker checks one account now and returns the observation.
type Checker interface {
	Check(ctx context.Context, accountID, reason string) (Observation, error)
}

// SlackRef is where a case's Slack message lives (KV rw_slack, key = case id). The
// notifier writes it; the remediator reads it to link tickets back to Slack.
type SlackRef struct {
	CaseID    string `json:"case_id"`
	Channel   string `json:"channel"`
	TS        string `json:"ts"`
	Permalink string `json:"permalink,omitempty"`
}
