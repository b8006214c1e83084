package model

import "time"

// Root activity: a use of the root identity (console sign-in, password change or
// recovery, MFA device removed, signing certificate uploaded, an AssumeRoot session
// rootwarden did not start). Each is a question to the account's owner — "was this
// you?" — answered yes (with a reason) or no; no answer in time counts as no. The
// remediator keeps one question per account at a time (KV rw_sched,
// "activity.<account>"), beside the account's root-credential case in rw_cases: see
// docs/activity.md for why it is a question of its own and not a second case kind in
// rw_cases.

// ActivityKind names one kind of root activity.
type ActivityKind string

const (
	ActivityConsoleLogin        ActivityKind = "console_login"         // root signed in to the console
	ActivityConsoleLoginFailed  ActivityKind = "console_login_failed"  // failed root sign-ins above the threshold
	ActivityPasswordChanged     ActivityKind = "password_changed"      // PasswordUpdated
	ActivityPasswordRecovery    ActivityKind = "password_recovery"     // PasswordRecoveryRequested/Completed
	ActivityMFARemoved          ActivityKind = "mfa_removed"           // DeactivateMFADevice, DeleteVirtualMFADevice
	ActivitySigningCertUploaded ActivityKind = "signing_cert_uploaded" // UploadSigningCertificate
	ActivityAssumeRoot          ActivityKind = "assume_root"           // sts:AssumeRoot not started by rootwarden
)

// ActivityItem is one root activity event as the detector read it from CloudTrail.
type ActivityItem struct {
	Kind      ActivityKind `json:"kind"`
	EventID   string       `json:"event_id"`
	EventName string       `json:"event_name"`
	Source    string       `json:"event_source"`
	At        time.Time    `json:"at"`
	Region    string       `json:"region,omitempty"`
	SourceIP  string       `json:"source_ip,omitempty"`
	UserAgent string       `json:"user_agent,omitempty"`
	// MFAUsed is CloudTrail's additionalEventData.MFAUsed of a console sign-in ("Yes",
	// "No"); empty for other events.
	MFAUsed string `json:"mfa_used,omitempty"`
	// Principal is who started an AssumeRoot session (the caller's ARN), or for a
	// member account's root the account's root ARN.
	Principal string `json:"principal,omitempty"`
	// Failures is the number of failed sign-ins this item stands for (console_login_failed).
	Failures int `json:"failures,omitempty"`
}

// ActivityReport is the detector's message about root activity in one account,
// published on bus.ActivitySubject (never a presence finding: it says nothing about
// root keys).
type ActivityReport struct {
	SchemaVersion int               `json:"schema_version"`
	ID            string            `json:"id"` // "activity-<event id>"; the Nats-Msg-Id
	AccountID     string            `json:"account_id"`
	AccountName   string            `json:"account_name,omitempty"`
	OUPath        string            `json:"ou_path,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	Management    bool              `json:"management,omitempty"`
	Item          ActivityItem      `json:"item"`
}

// ActivityState of a question.
type ActivityState string

const (
	ActivityAsked     ActivityState = "asked"     // waiting for the owner's answer
	ActivityConfirmed ActivityState = "confirmed" // "yes, it was me"
	ActivityEscalated ActivityState = "escalated" // "no", or no answer in time: critical
)

// Activity is one "was this you?" question: every root activity of an account within
// a short window (coalesced), its deadline and its outcome. The remediator is its
// only writer.
type Activity struct {
	ID          string            `json:"id"` // "<account>-a<n>-<opened, base 36>"
	Number      int               `json:"number"`
	AccountID   string            `json:"account_id"`
	AccountName string            `json:"account_name,omitempty"`
	OUPath      string            `json:"ou_path,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Management  bool              `json:"management,omitempty"`
	State       ActivityState     `json:"state"`
	Items       []ActivityItem    `json:"items"`
	OpenedAt    time.Time         `json:"opened_at"`
	// AnswerBy is when no answer counts as "no" (escalation); the due-time index fires it.
	AnswerBy time.Time `json:"answer_by"`
	// AnsweredAt, By and Reason record the outcome (By is System for an expiry).
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	By         *Actor     `json:"by,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	// RootCaseID links the account's root-credential case active when the question
	// was asked (the case message links back through the case's account).
	RootCaseID string   `json:"root_case_id,omitempty"`
	Seq        int      `json:"seq"`
	ActionIDs  []string `json:"action_ids,omitempty"`
}

// Open reports whether the question still waits for an answer.
func (a Activity) Open() bool { return a.State == ActivityAsked }

// Case event types of an activity question (CaseEvent.Activity is set).
const (
	EventActivityAsked     CaseEventType = "activity_asked"     // a new question
	EventActivityAdded     CaseEventType = "activity_added"     // more activity coalesced into the open question
	EventActivityConfirmed CaseEventType = "activity_confirmed" // "yes, it was me"
	EventActivityEscalated CaseEventType = "activity_escalated" // "no", or no answer in time
)

// Actions answering an activity question.
const (
	ActionActivityConfirm ActionKind = "activity_confirm" // "Yes, it was me" (Reason required)
	ActionActivityDeny    ActionKind = "activity_deny"    // "No, I don't recognise this"
)
