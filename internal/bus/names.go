package bus

import "strings"

// Every subject, stream, consumer and bucket name of rootwarden lives in this file.

const (
	// StreamFindings keeps observations for a while; dedupe by Nats-Msg-Id.
	StreamFindings  = "RW_FINDINGS"
	SubjectFindings = "rootwarden.findings." // + account

	// StreamActions is a work queue of human requests for the remediator.
	StreamActions  = "RW_ACTIONS"
	SubjectActions = "rootwarden.actions." // + account

	// StreamCases is the audit log: every case transition, kept long.
	StreamCases  = "RW_CASES"
	SubjectCases = "rootwarden.cases." // + account

	// StreamScan is the work queue of per-account sweep jobs shared by detectors.
	StreamScan  = "RW_SCAN"
	SubjectScan = "rootwarden.scan." // + account

	// SubjectCheck is the on-demand check (request/reply, queue group QueueCheck).
	SubjectCheck = "rootwarden.detector.check"
	QueueCheck   = "rootwarden-detector"

	// Durable consumers.
	ConsumerDetectorScan     = "detector-scan"       // RW_SCAN
	ConsumerRemediatorFind   = "remediator-findings" // RW_FINDINGS
	ConsumerRemediatorAction = "remediator-actions"  // RW_ACTIONS
	ConsumerNotifierCases    = "notifier-cases"      // RW_CASES
	ConsumerNotifierPager    = "notifier-pagerduty"  // RW_CASES: PagerDuty incidents of critical cases

	// Key-value buckets.
	BucketCases   = "rw_cases"   // key = account id → model.Case (current case)
	BucketSlack   = "rw_slack"   // key = case id → channel + ts of the case's message
	BucketTickets = "rw_tickets" // built-in tickets, key = ticket id
	BucketSched   = "rw_sched"   // durable timers and leases (sweep schedule, reminders)
)

// FindingSubject is the subject of an account's observations.
func FindingSubject(account string) string { return SubjectFindings + token(account) }

// ActionSubject is the subject of an account's actions.
func ActionSubject(account string) string { return SubjectActions + token(account) }

// CaseSubject is the subject of an account's case events.
func CaseSubject(account string) string { return SubjectCases + token(account) }

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
