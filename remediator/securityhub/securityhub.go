// Package securityhub writes a case's state back to AWS Security Hub: the account's
// findings of the root-user controls (IAM.4 root access key, IAM.6 hardware MFA for
// root, IAM.9 MFA for root) get a Workflow.Status and a Note naming the case. It is
// the remediator's adapter for Security Hub, as remediator/tracker is for tickets:
// the remediator (the single writer of case state) decides what a case wants, this
// package makes Security Hub say it.
//
// What a case wants (Want):
//   - open, ticketed, verifying: NOTIFIED, on the FAILED findings of the three controls;
//   - risk_accepted: SUPPRESSED on the same (restored to NOTIFIED when the acceptance
//     ends, because the case is open again);
//   - resolved (AWS verified the removal): RESOLVED on IAM.4, and on IAM.6/IAM.9
//     only once AWS itself says PASSED (they also cover the root password and MFA,
//     which deleting the keys does not prove).
//
// Every Mark first reads the findings (GetFindings, lookup before write) and updates
// only those not already at the wanted status with the case's note: a repeat, a
// retry after a lost answer, or a second replica changes nothing twice. AWS puts a
// re-failing finding back to NEW; the next Mark (the remediator's periodic sync)
// marks it again. Updates go ≤ 100 findings per BatchUpdateFindings call, paced;
// UnprocessedFindings are retried once and then reported. Each call has its own
// deadline. With OCSF on, the new Security Hub's findings are handled the same way
// through GetFindingsV2 and BatchUpdateFindingsV2 (status_id, comment).
//
// It never decides a case, never calls IAM, and never blocks a transition: the
// remediator calls it from its owed work, after the transition is stored.
package securityhub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/rootwarden/rootwarden/internal/model"
)

// Controls are the Security Hub controls about the root user.
var Controls = []string{"IAM.4", "IAM.6", "IAM.9"}

// Workflow statuses (ASFF Workflow.Status).
const (
	StatusNew        = "NEW"
	StatusNotified   = "NOTIFIED"
	StatusResolved   = "RESOLVED"
	StatusSuppressed = "SUPPRESSED"
)

// OCSF status_id of the new Security Hub for each workflow status.
var ocsfStatus = map[string]int32{StatusNew: 1, StatusNotified: 2, StatusSuppressed: 3, StatusResolved: 4}

// maxBatch is the most findings BatchUpdateFindings takes in one call.
const maxBatch = 100

// API is the part of the Security Hub client this package calls.
type API interface {
	GetFindings(context.Context, *securityhub.GetFindingsInput, ...func(*securityhub.Options)) (*securityhub.GetFindingsOutput, error)
	BatchUpdateFindings(context.Context, *securityhub.BatchUpdateFindingsInput, ...func(*securityhub.Options)) (*securityhub.BatchUpdateFindingsOutput, error)
	GetFindingsV2(context.Context, *securityhub.GetFindingsV2Input, ...func(*securityhub.Options)) (*securityhub.GetFindingsV2Output, error)
	BatchUpdateFindingsV2(context.Context, *securityhub.BatchUpdateFindingsV2Input, ...func(*securityhub.Options)) (*securityhub.BatchUpdateFindingsV2Output, error)
}

var _ API = (*securityhub.Client)(nil)

// Config of a Hub.
type Config struct {
	// CallTimeout bounds one call with the SDK's retries (default 30s).
	CallTimeout time.Duration
	// Pace is the least time between two update calls (default 250ms).
	Pace time.Duration
	// OCSF also updates the new Security Hub's OCSF findings (V2 operations).
	OCSF bool
	// CaseURL, when set, is the case link: "%s" is replaced by the case id.
	CaseURL string
}

// Hub marks findings. Safe for concurrent use.
type Hub struct {
	cfg Config
	api API

	mu   sync.Mutex
	last time.Time
}

// New returns a Hub over api.
func New(cfg Config, api API) *Hub {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.Pace <= 0 {
		cfg.Pace = 250 * time.Millisecond
	}
	return &Hub{cfg: cfg, api: api}
}

// Want is the workflow status a case asks of its account's findings ("" for none).
func Want(c model.Case) string {
	switch {
	case c.State == model.StateRiskAccepted:
		return StatusSuppressed
	case c.State == model.StateResolved && c.ResolvedAt != nil:
		return StatusResolved
	case c.State.Active():
		return StatusNotified
	}
	return ""
}

// Result says what one Mark changed.
type Result struct {
	Status  string
	Updated []string // finding ids (or OCSF metadata.uid) set to Status
	Already []string // those that already said so, with the case's note
}

// Summary is the audit text of a Result.
func (r Result) Summary() string {
	if len(r.Updated) == 0 {
		return ""
	}
	return fmt.Sprintf("Security Hub: %d finding(s) set to %s (%s)", len(r.Updated), r.Status, strings.Join(r.Updated, ", "))
}

// Note is the note a finding gets for case c at status.
func (h *Hub) Note(c model.Case, status string) string {
	var what string
	switch status {
	case StatusNotified:
		what = "open; the on-call approvers are notified"
	case StatusSuppressed:
		what = "risk accepted"
		if c.Risk != nil {
			what += " until " + c.Risk.Expires.UTC().Format(time.RFC3339)
		}
	case StatusResolved:
		what = "resolved: AWS (iam:GetAccountSummary) verified the root access keys are gone"
	}
	n := "rootwarden case " + c.ID + ": " + what
	if h.cfg.CaseURL != "" {
		n += " " + strings.ReplaceAll(h.cfg.CaseURL, "%s", c.ID)
	}
	if len(n) > 512 {
		n = n[:512]
	}
	return n
}

// Mark makes the account's root-control findings say what case c wants (Want). It
// is idempotent; an error leaves the rest to the next call.
func (h *Hub) Mark(ctx context.Context, c model.Case) (Result, error) {
	status := Want(c)
	res := Result{Status: status}
	if status == "" {
		return res, nil
	}
	note := h.Note(c, status)
	fs, err := h.findings(ctx, c.AccountID)
	if err != nil {
		return res, err
	}
	var ids []types.AwsSecurityFindingIdentifier
	for _, f := range fs {
		if !wanted(status, aws.ToString(f.Compliance.SecurityControlId), string(f.Compliance.Status)) {
			continue
		}
		if f.Workflow != nil && string(f.Workflow.Status) == status && f.Note != nil && aws.ToString(f.Note.Text) == note {
			res.Already = append(res.Already, aws.ToString(f.Id))
			continue // already says so
		}
		ids = append(ids, types.AwsSecurityFindingIdentifier{Id: f.Id, ProductArn: f.ProductArn})
	}
	var errs []error
	for chunk := range slices.Chunk(ids, maxBatch) {
		done, err := h.update(ctx, chunk, status, note)
		res.Updated = append(res.Updated, done...)
		errs = append(errs, err)
	}
	if h.cfg.OCSF {
		done, already, err := h.markV2(ctx, c.AccountID, status, note)
		res.Updated = append(res.Updated, done...)
		res.Already = append(res.Already, already...)
		errs = append(errs, err)
	}
	sort.Strings(res.Updated)
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("mark Security Hub findings of %s %s for case %s: %w", c.AccountID, status, c.ID, err)
	}
	return res, nil
}

// wanted says whether a finding of control (compliance status) takes status.
func wanted(status, control, compliance string) bool {
	switch status {
	case StatusResolved:
		return control == "IAM.4" || compliance == "PASSED" || compliance == "Pass"
	default:
		return compliance == "FAILED" || compliance == "Fail"
	}
}

// findings reads the ACTIVE findings of the root controls for account.
func (h *Hub) findings(ctx context.Context, account string) ([]types.AwsSecurityFinding, error) {
	var ctrl []types.StringFilter
	for _, c := range Controls {
		ctrl = append(ctrl, types.StringFilter{Value: aws.String(c), Comparison: types.StringFilterComparisonEquals})
	}
	in := &securityhub.GetFindingsInput{
		Filters: &types.AwsSecurityFindingFilters{
			AwsAccountId:                []types.StringFilter{{Value: aws.String(account), Comparison: types.StringFilterComparisonEquals}},
			ComplianceSecurityControlId: ctrl,
			RecordState:                 []types.StringFilter{{Value: aws.String("ACTIVE"), Comparison: types.StringFilterComparisonEquals}},
		},
		MaxResults: aws.Int32(100),
	}
	var out []types.AwsSecurityFinding
	for page := 0; page < 50; page++ {
		cctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
		resp, err := h.api.GetFindings(cctx, in)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("get findings of %s: %w", account, err)
		}
		for _, f := range resp.Findings {
			if f.Compliance != nil {
				out = append(out, f)
			}
		}
		if aws.ToString(resp.NextToken) == "" {
			break
		}
		in.NextToken = resp.NextToken
	}
	return out, nil
}

// pace waits until the next update call may go.
func (h *Hub) pace(ctx context.Context) error {
	h.mu.Lock()
	next := h.last.Add(h.cfg.Pace)
	now := time.Now()
	if next.Before(now) {
		next = now
	}
	h.last = next
	h.mu.Unlock()
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// update sets status and note on ids (≤ 100), retrying the unprocessed ones once.
func (h *Hub) update(ctx context.Context, ids []types.AwsSecurityFindingIdentifier, status, note string) ([]string, error) {
	var done []string
	for attempt := 0; attempt < 2 && len(ids) > 0; attempt++ {
		if err := h.pace(ctx); err != nil {
			return done, err
		}
		cctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
		out, err := h.api.BatchUpdateFindings(cctx, &securityhub.BatchUpdateFindingsInput{
			FindingIdentifiers: ids,
			Workflow:           &types.WorkflowUpdate{Status: types.WorkflowStatus(status)},
			Note:               &types.NoteUpdate{Text: aws.String(note), UpdatedBy: aws.String("rootwarden")},
		})
		cancel()
		if err != nil {
			return done, fmt.Errorf("batch update findings: %w", err)
		}
		for _, p := range out.ProcessedFindings {
			done = append(done, aws.ToString(p.Id))
		}
		ids = ids[:0:0]
		var why []string
		for _, u := range out.UnprocessedFindings {
			if u.FindingIdentifier != nil && aws.ToString(u.ErrorCode) != "FindingNotFound" {
				ids = append(ids, *u.FindingIdentifier)
			}
			why = append(why, aws.ToString(u.ErrorCode)+": "+aws.ToString(u.ErrorMessage))
		}
		if len(ids) > 0 && attempt == 1 {
			return done, fmt.Errorf("%d finding(s) unprocessed: %s", len(ids), strings.Join(why, "; "))
		}
	}
	return done, nil
}

// ocsfFinding is the part of an OCSF finding this package reads.
type ocsfFinding struct {
	Metadata struct {
		UID string `document:"uid"`
	} `document:"metadata"`
	Compliance struct {
		Control string `document:"control"`
		Status  string `document:"status"`
	} `document:"compliance"`
	StatusID int32  `document:"status_id"`
	Comment  string `document:"comment"`
}

// markV2 does Mark's work on the new Security Hub's OCSF findings.
func (h *Hub) markV2(ctx context.Context, account, status, note string) (done, already []string, err error) {
	var ctrl []types.OcsfStringFilter
	for _, c := range Controls {
		ctrl = append(ctrl, types.OcsfStringFilter{FieldName: types.OcsfStringFieldComplianceControl,
			Filter: &types.StringFilter{Value: aws.String(c), Comparison: types.StringFilterComparisonEquals}})
	}
	in := &securityhub.GetFindingsV2Input{Filters: &types.OcsfFindingFilters{
		CompositeOperator: types.AllowedOperatorsAnd,
		CompositeFilters: []types.CompositeFilter{
			{Operator: types.AllowedOperatorsAnd, StringFilters: []types.OcsfStringFilter{{FieldName: types.OcsfStringFieldCloudAccountUid,
				Filter: &types.StringFilter{Value: aws.String(account), Comparison: types.StringFilterComparisonEquals}}}},
			{Operator: types.AllowedOperatorsOr, StringFilters: ctrl},
		},
	}, MaxResults: aws.Int32(100)}
	var uids []string
	for page := 0; page < 50; page++ {
		cctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
		resp, err := h.api.GetFindingsV2(cctx, in)
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("get OCSF findings of %s: %w", account, err)
		}
		for _, d := range resp.Findings {
			var f ocsfFinding
			if d == nil || d.UnmarshalSmithyDocument(&f) != nil || f.Metadata.UID == "" {
				continue
			}
			if !wanted(status, f.Compliance.Control, f.Compliance.Status) {
				continue
			}
			if f.StatusID == ocsfStatus[status] && f.Comment == note {
				already = append(already, f.Metadata.UID)
				continue
			}
			uids = append(uids, f.Metadata.UID)
		}
		if aws.ToString(resp.NextToken) == "" {
			break
		}
		in.NextToken = resp.NextToken
	}
	for chunk := range slices.Chunk(uids, maxBatch) {
		if err := h.pace(ctx); err != nil {
			return done, already, err
		}
		cctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
		out, err := h.api.BatchUpdateFindingsV2(cctx, &securityhub.BatchUpdateFindingsV2Input{
			MetadataUids: chunk, StatusId: aws.Int32(ocsfStatus[status]), Comment: aws.String(note)})
		cancel()
		if err != nil {
			return done, already, fmt.Errorf("batch update OCSF findings: %w", err)
		}
		for _, p := range out.ProcessedFindings {
			done = append(done, aws.ToString(p.MetadataUid))
		}
		if n := len(out.UnprocessedFindings); n > 0 {
			u := out.UnprocessedFindings[0]
			return done, already, fmt.Errorf("%d OCSF finding(s) unprocessed: %s: %s", n, u.ErrorCode, aws.ToString(u.ErrorMessage))
		}
	}
	return done, already, nil
}

// Want is the package's Want (for the remediator's FindingMarker).
func (h *Hub) Want(c model.Case) string { return Want(c) }

// MarkCase is Mark with its result as audit text (for the remediator's FindingMarker).
// With confirm, findings that already said so (a lost answer's update took effect)
// are reported too when nothing else changed.
func (h *Hub) MarkCase(ctx context.Context, c model.Case, confirm bool) (string, error) {
	res, err := h.Mark(ctx, c)
	if s := res.Summary(); s != "" || !confirm || len(res.Already) == 0 {
		return s, err
	}
	slices.Sort(res.Already)
	return fmt.Sprintf("Security Hub: %d finding(s) already %s (%s)", len(res.Already), res.Status, strings.Join(res.Already, ", ")), err
}
