package bus

import (
	"strings"
	"time"
)

const day = 24 * time.Hour

// Every subject, stream, consumer and bucket name of rootwarden lives in this file.

// Every stream and bucket is bounded twice: by design (what is written at all) and
// by configuration (the limits below, applied by Open to new and existing
// deployments alike). Beside each limit: why it is that, and why hitting it drops
// nothing that still matters.
//
//   - Streams that keep history (RW_FINDINGS, RW_CASES) discard their OLDEST messages
//     at a limit; a limit is set where every message it can drop is superseded.
//   - Work queues (RW_ACTIONS, RW_SCAN) discard NEW messages at a limit: the publish
//     fails, so the publisher knows and retries (a Slack click is answered "try
//     again", a sweep job makes the sweep fail and be retried after a minute);
//     nothing queued is ever dropped.
//   - KV buckets refuse a write that would pass MaxBytes (discard new): the writer gets
//     an error and retries (the remediator Naks the message that caused it); a value
//     is never dropped to make room. Their history is the number of revisions kept.
const (
	// StreamFindings keeps observations for a while; dedupe by Nats-Msg-Id.
	// Design: a sweep publishes an account's observation only when it says something
	// new (detector/unchanged.go), at least every 6–12 h, plus events and checks.
	// FindingsPerAccount: the oldest observation of an account goes once 4 newer ones
	// of the SAME account are stored, so the stream holds at most ≈ 4 × 0.55 KB per
	// account. That drops an observation the remediator has not applied only when it
	// is 4 observations (4 changes, or a day of 6-hourly repeats) behind on that
	// account; the 4 newer ones it still applies carry the account's current
	// state (presence, keys, the report's last use and so the severity), and an older
	// observation arriving after them would be ignored as stale anyway. What such a
	// drop can lose is an intermediate step: a CloudTrail event's details (IP, user
	// agent) on the case, or a resolve that a later sweep undid. FindingsMaxBytes is a
	// ceiling for about 400,000 accounts; FindingsMaxAge prunes accounts that left.
	StreamFindings     = "RW_FINDINGS"
	SubjectFindings    = "rootwarden.findings." // + account
	FindingsPerAccount = 4
	FindingsMaxBytes   = 1 << 30
	FindingsMaxAge     = 14 * day
	// FindingsDuplicates is how long the server remembers a finding's id (and refuses
	// the same id again): long enough for a publisher's retries and an SQS message
	// redelivered after a crash, short because it is memory held per observation
	// (10,000 accounts: ~1 MB per sweep). A repeat after it is applied once more,
	// idempotently: it changes nothing on the case.
	FindingsDuplicates = 2 * time.Minute

	// StreamActions is a work queue of human requests for the remediator.
	// Design: one message per click or API call, removed when the remediator acks it.
	// ActionsMaxMsgs/Bytes: far beyond any human backlog; at the limit the publish
	// fails (discard new) and the person is told to try again. ActionsMaxAge: a request
	// no remediator took in 7 days is void (the case has moved on).
	StreamActions   = "RW_ACTIONS"
	SubjectActions  = "rootwarden.actions." // + account
	ActionsMaxMsgs  = 100_000
	ActionsMaxBytes = 256 << 20
	ActionsMaxAge   = 7 * day

	// StreamCases is the audit log: every case transition, kept long.
	// Design: an event only when a reader sees a change (an unchanged sweep publishes
	// none). CasesMaxAge: 3 years of audit. CasesMaxBytes: a ceiling (~5 M events of
	// ~3 KB); only the oldest audit events would go, the current state is in rw_cases
	// and the notifier reads the newest end of the log.
	StreamCases   = "RW_CASES"
	SubjectCases  = "rootwarden.cases." // + account
	CasesMaxAge   = 3 * 365 * day
	CasesMaxBytes = 16 << 30
	// SubjectEvidence (on RW_CASES, outside rootwarden.cases.> so no case reader sees
	// it): one model.EvidenceExport per evidence pack handed out.
	SubjectEvidence = "rootwarden.audit.evidence"

	// StreamHistory is the retained record of coverage and posture (evidence packs).
	// Design: one small message per sweep share (model.SweepHistory: counts, and the
	// unchecked accounts with an error code) and one per account posture change
	// (model.PostureHistory); no observation, no snapshot, no personal data. Its age
	// limit is ROOTWARDEN_HISTORY_RETENTION (HistoryMaxAge by default: 3 years);
	// HistoryMaxBytes is a ceiling (hourly sweeps of 10,000 accounts with a few
	// hundred unchecked write well under 1 GiB in 3 years), at which the oldest go.
	StreamHistory         = "RW_HISTORY"
	SubjectHistorySweep   = "rootwarden.history.sweep."   // + sweep id
	SubjectHistoryPosture = "rootwarden.history.posture." // + account
	HistoryMaxAge         = 3 * 365 * day
	HistoryMaxBytes       = 4 << 30
	HistoryDuplicates     = 30 * time.Minute

	// StreamScan is the work queue of per-account sweep jobs shared by detectors.
	// Design: one job per account per sweep, removed when checked; no new sweep starts
	// while jobs are queued. ScanMaxMsgs/Bytes: room for 2 sweeps of 250,000 accounts;
	// at the limit the job's publish fails (discard new) and the sweep is retried.
	// ScanMaxAge: a job no detector ran in a day is void (a newer sweep covers it).
	StreamScan   = "RW_SCAN"
	SubjectScan  = "rootwarden.scan." // + account
	ScanMaxMsgs  = 500_000
	ScanMaxBytes = 512 << 20
	ScanMaxAge   = day
	// ScanDuplicates covers a sweep's enumeration retried after a failure (seconds to
	// a minute later); a job published again after it costs one more check.
	ScanDuplicates = 2 * time.Minute

	// SubjectCheck is the on-demand check (request/reply, queue group QueueCheck).
	SubjectCheck = "rootwarden.detector.check"
	QueueCheck   = "rootwarden-detector"

	// Durable consumers.
	ConsumerDetectorScan     = "detector-scan"       // RW_SCAN
	ConsumerRemediatorFind   = "remediator-findings" // RW_FINDINGS
	ConsumerRemediatorAction = "remediator-actions"  // RW_ACTIONS
	ConsumerNotifierCases    = "notifier-cases"      // RW_CASES
	// ConsumerNotifierUrgent reads RW_CASES from its end for the events a person waits
	// for (a click's outcome), so that they never queue behind a flood of new cases.
	ConsumerNotifierUrgent = "notifier-cases-urgent" // RW_CASES
	ConsumerNotifierPager  = "notifier-pagerduty"    // RW_CASES: PagerDuty incidents of critical cases

	// Key-value buckets (one key per account or case: bounded by the organization).
	// History is revisions kept per key; MaxBytes refuses writes past it (see above).

	// BucketCases: key = account id → model.Case (current case). Written only when a
	// reader sees a change (steady state). 8 revisions for post-mortems; a record is
	// a few KB (action ids, outbox and ticket ops are bounded; 1 MiB at most), so 8 GiB
	// holds 8 revisions of 500,000 accounts. At the limit writes fail and the
	// findings are retried (and after an hour given up, with an error logged).
	BucketCases       = "rw_cases"
	CasesHistory      = 8
	CasesBucketBytes  = 8 << 30
	CasesMaxValueSize = 1 << 20
	// BucketSlack: key = case id → channel + ts of the case's message (+ reminders).
	// One key per case ever opened (resolved cases' keys stay): bounded by the number
	// of cases, not by design; 1 GiB is about 500,000 cases at 4 revisions.
	BucketSlack      = "rw_slack"
	SlackHistory     = 4
	SlackBucketBytes = 1 << 30
	// BucketTickets: built-in tickets, key = ticket id (one per case ticketed, kept).
	BucketTickets      = "rw_tickets"
	TicketsHistory     = 8
	TicketsBucketBytes = 1 << 30
	// BucketSched: durable timers and leases (sweep schedule, reminders; each
	// detector's presence under SchedDetectorPrefix, detector/replicas.go).
	BucketSched      = "rw_sched"
	SchedHistory     = 2
	SchedBucketBytes = 128 << 20
	// BucketDue: the remediator's due-time index (remediator/due.go): key =
	// "<minute>.<kind>.<account>". One entry per thing owed at a time, deleted when
	// it fires; DueMaxAge drops forgotten entries and delete markers (the remediator
	// rebuilds the index from the cases at start-up, and never schedules further
	// ahead than a day).
	BucketDue      = "rw_due"
	DueHistory     = 1
	DueBucketBytes = 128 << 20
	DueMaxAge      = 8 * day
	// BucketAccounts: the detector's inventory, key = account id → the account's name,
	// OU path and tags as the last sweep listed them. One key per ACTIVE account (an
	// account that left is deleted): bounded by the organization; an entry is under
	// 1 KB, so 512 MiB holds 500,000 accounts. One revision: only the latest matters.
	BucketAccounts      = "rw_accounts"
	AccountsHistory     = 1
	AccountsBucketBytes = 512 << 20
)

// FindingSubject is the subject of an account's observations.
func FindingSubject(account string) string { return SubjectFindings + token(account) }

// ActivitySubject is the subject of an account's root activity reports
// (model.ActivityReport): on RW_FINDINGS, beside but apart from the account's
// observations (FindingSubject), so that a reader of observations never takes one for
// the other and each keeps its own FindingsPerAccount.
func ActivitySubject(account string) string { return SubjectFindings + token(account) + ".activity" }

// ActionSubject is the subject of an account's actions.
func ActionSubject(account string) string { return SubjectActions + token(account) }

// CaseSubject is the subject of an account's case events.
func CaseSubject(account string) string { return SubjectCases + token(account) }

// HistorySweepSubject is the subject of a sweep's history records.
func HistorySweepSubject(sweepID string) string { return SubjectHistorySweep + token(sweepID) }

// HistoryPostureSubject is the subject of an account's posture changes.
func HistoryPostureSubject(account string) string { return SubjectHistoryPosture + token(account) }

// ScanSubject is the subject of an account's sweep jobs.
func ScanSubject(account string) string { return SubjectScan + token(account) }

// token makes s safe as one subject token (account ids are digits; this is defence).
func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

// SchedDetectorPrefix starts the rw_sched key each detector process renews while it
// runs ("detectors.<instance>"): the detectors divide AWS's request rates by how many
// there are (detector/pace.go).
const SchedDetectorPrefix = "detectors."
