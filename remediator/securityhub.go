package remediator

// Security Hub out (opt-in, ROOTWARDEN_SECURITYHUB=out|both): a case's account's
// findings of the root-user controls follow the case (remediator/securityhub says
// how). What the case wants is derived from its state; what was last made so is
// remembered on the record (record.SecurityHub = "<case id>/<status>"), so a
// transition that changes what the case wants leaves work owed, found by the work
// after the transition and, should it fail, by the due-time index like any other
// owed work. The marking runs in the account's work, after the transition is stored,
// under a deadline: Security Hub being slow or down never holds up a case. Each
// change made in Security Hub is recorded as an "updated" case event (the audit
// log); a marking that fails for good (access denied) is recorded once and left to
// the next periodic sync.
//
// AWS puts a finding that fails again back to NEW. The periodic sync
// (SecurityHubSyncInterval) forgets the marker of every active or risk-accepted case,
// so the next work reads the findings again and marks what was reset.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/smithy-go"

	"github.com/rootwarden/rootwarden/internal/model"
)

// FindingMarker writes a case's state to the account's Security Hub findings
// (remediator/securityhub.Hub).
type FindingMarker interface {
	// Want is the workflow status case c asks of its findings ("" for none).
	Want(c model.Case) string
	// MarkCase makes the findings say it; idempotent. summary says what changed
	// ("" for nothing), also when err is set; with confirm, also findings that
	// already said so when nothing else changed (an earlier update whose answer was
	// lost, never recorded).
	MarkCase(ctx context.Context, c model.Case, confirm bool) (summary string, err error)
}

// syncPrefix marks a marker the periodic sync asked to read again.
const syncPrefix = "sync:"

// securityHubMarker is the marker of what the record's case last had Security Hub say.
func securityHubMarker(c model.Case, want string) string { return c.ID + "/" + want }

// shubOwed reports whether rec's findings do not yet say what its case wants.
func (r *Remediator) shubOwed(rec *record) bool {
	if r.cfg.SecurityHub == nil || rec == nil {
		return false
	}
	want := r.cfg.SecurityHub.Want(rec.Case)
	return want != "" && rec.SecurityHub != securityHubMarker(rec.Case, want)
}

// owes reports whether rec has side effects still to run, Security Hub included.
func (r *Remediator) owes(rec *record) bool { return owed(rec) || r.shubOwed(rec) }

// markSecurityHub runs the owed Security Hub marking of rec's case.
func (r *Remediator) markSecurityHub(ctx context.Context, rec *record) error {
	c := rec.Case
	want := r.cfg.SecurityHub.Want(c)
	mctx, cancel := context.WithTimeout(ctx, r.cfg.SecurityHubTimeout)
	// After a sync, findings that still say what was recorded need no second record.
	confirm := rec.SecurityHub != syncPrefix+securityHubMarker(c, want)
	summary, err := r.cfg.SecurityHub.MarkCase(mctx, c, confirm)
	cancel()
	final := err != nil && finalSecurityHubError(err)
	if final {
		summary = joinText(summary, "Security Hub: could not update the findings: "+StableError(err.Error()))
	}
	if summary != "" {
		if _, aerr := r.apply(ctx, c.AccountID, func(now time.Time) Input {
			return Input{At: now, SecurityHub: summary, SecurityHubCase: c.ID}
		}); aerr != nil {
			return errors.Join(err, aerr)
		}
	}
	if err != nil && !final {
		return fmt.Errorf("security hub for case %s: %w", c.ID, err)
	}
	if final {
		r.log.Warn("Security Hub update failed for good; the next sync tries again", "account", c.AccountID, "case", c.ID, "err", err)
	}
	return r.update(ctx, c.AccountID, func(rec *record) bool {
		if rec.ID != c.ID || r.cfg.SecurityHub.Want(rec.Case) != want || rec.SecurityHub == securityHubMarker(c, want) {
			return false
		}
		rec.SecurityHub = securityHubMarker(c, want)
		return true
	})
}

// finalSecurityHubError reports whether retrying err soon is pointless.
func finalSecurityHubError(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "AccessDeniedException", "InvalidAccessException", "InvalidInputException", "ValidationException", "ResourceNotFoundException":
		return true
	}
	return false
}

func joinText(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// syncSecurityHub forgets what the findings of every case still running were last
// made to say and runs the cases' work, which reads them again: a finding AWS put back
// to NEW is marked again.
func (r *Remediator) syncSecurityHub(ctx context.Context, wait bool) {
	if r.cfg.SecurityHub == nil {
		return
	}
	recs, err := r.records(ctx)
	if err != nil {
		r.log.Warn("Security Hub sync: read cases", "err", err)
		return
	}
	for _, rec := range recs {
		c := rec.Case
		if !c.State.Active() && c.State != model.StateRiskAccepted {
			continue
		}
		if err := r.update(ctx, c.AccountID, func(rec *record) bool {
			if rec.SecurityHub == "" || strings.HasPrefix(rec.SecurityHub, syncPrefix) {
				return false
			}
			rec.SecurityHub = syncPrefix + rec.SecurityHub
			return true
		}); err != nil {
			r.log.Warn("Security Hub sync", "account", c.AccountID, "err", err)
			continue
		}
		if wait {
			r.work(ctx, c.AccountID)
		} else {
			r.workAsync(ctx, c.AccountID)
		}
	}
}

// SyncSecurityHubNow runs one periodic Security Hub sync and waits for it. For
// operators and tests.
func (r *Remediator) SyncSecurityHubNow(ctx context.Context) { r.syncSecurityHub(ctx, true) }

// securityHubOnly reports whether o is an account Security Hub reports and the
// detector could not check (detector/securityhub.go): a blind spot known at once, so
// the account is unchecked on this one failure, not after UncheckedAfter sweeps.
func securityHubOnly(o model.Observation) bool { return strings.HasPrefix(o.ErrorCode, "SecurityHub/") }
