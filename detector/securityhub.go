package detector

// Security Hub in (ROOTWARDEN_SECURITYHUB=in|both). A FAILED finding of the
// root-user controls (IAM.4 root access key, IAM.6 hardware MFA for root, IAM.9 MFA
// for root), of Security Hub CSPM (ASFF, "Security Hub Findings - Imported") or of
// the new Security Hub (OCSF, "Findings Imported V2"), is a hint, never a verdict:
// the detector checks the account with AWS (iam:GetAccountSummary, the check every
// other source uses) and publishes that observation, source "securityhub". The
// remediator decides from the observation as from any other: an IAM.4 finding for
// an account whose root has no keys opens no case; one for an account whose case is
// resolved opens a new case only when the keys are back.
//
// Why the events, on the SQS queue the detector already reads, rather than polling
// GetFindings: the central stack's EventBridge rule gains a pattern (the queue, its
// policy, its consumers and its dead-letter handling are already there); an event
// costs one check of one account when Security Hub evaluates the control, where a
// poll would read every FAILED finding of the Organization on a schedule (10,000
// accounts: up to 30,000 findings); and the controls are periodic (12–24 h), so the
// events are as fresh as Security Hub itself. The events reach the central account's
// bus when Security Hub's delegated administrator is the central account, or through
// a rule in the administrator account forwarding them (docs/securityhub.md).
// GetFindings stays the remediator's lookup before it writes (remediator/securityhub).
//
// An account Security Hub reports but this detector cannot check (not in the
// Organization it reads, or its role denies) is not dropped: the observation carries
// the failure with an error code naming Security Hub as its source
// ("SecurityHub/UnknownAccount", "SecurityHub/AccessDenied"), so the account shows as
// unchecked: coverage, not silence.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rootwarden/rootwarden/internal/model"
)

const (
	securityHubSource     = "aws.securityhub"
	detailTypeSHImported  = "Security Hub Findings - Imported"
	detailTypeSHV2        = "Findings Imported V2"
	maxSecurityHubAccount = 100 // accounts checked per event, at most (an event holds one finding, or up to 100)
)

// securityHubControls are the controls about the root user.
var securityHubControls = []string{"IAM.4", "IAM.6", "IAM.9"}

// shHint is a Security Hub event's call for checks: the accounts with a FAILED
// root-control finding, and what Security Hub said of each.
type shHint struct {
	EventID  string
	Accounts []string          // distinct, in order
	Controls map[string]string // account → "IAM.4 (finding id)" for the log and the error text
}

// asffFinding is the part of an ASFF finding read here.
type asffFinding struct {
	ID           string `json:"Id"`
	AwsAccountID string `json:"AwsAccountId"`
	RecordState  string `json:"RecordState"`
	Compliance   struct {
		Status            string `json:"Status"`
		SecurityControlID string `json:"SecurityControlId"`
	} `json:"Compliance"`
	ProductFields map[string]string `json:"ProductFields"`
}

// ocsfFinding is the part of an OCSF finding (new Security Hub) read here.
type ocsfFinding struct {
	Metadata struct {
		UID string `json:"uid"`
	} `json:"metadata"`
	Cloud struct {
		Account struct {
			UID string `json:"uid"`
		} `json:"account"`
	} `json:"cloud"`
	Compliance struct {
		Control string `json:"control"`
		Status  string `json:"status"`
	} `json:"compliance"`
}

// parseSecurityHubEvent classifies an SQS body: ok is false when it is not a Security
// Hub event (parseEvent reads it then). Otherwise exactly one of hint and skip is set.
func parseSecurityHubEvent(body []byte) (hint *shHint, sk *skip, ok bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, nil, false
	}
	var env struct {
		ID         string `json:"id"`
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
		Detail     struct {
			Findings []json.RawMessage `json:"findings"`
		} `json:"detail"`
	}
	if json.Unmarshal(body, &env) != nil || env.Source != securityHubSource {
		return nil, nil, false
	}
	v2 := false
	switch env.DetailType {
	case detailTypeSHImported:
	case detailTypeSHV2:
		v2 = true
	default:
		return nil, &skip{Reason: "Security Hub event of another kind (" + quoteShort(env.DetailType) + ")"}, true
	}
	if env.ID == "" || len(env.Detail.Findings) == 0 {
		return nil, &skip{Malformed: true, Reason: "Security Hub event without an id or findings"}, true
	}
	h := &shHint{EventID: env.ID, Controls: map[string]string{}}
	for _, raw := range env.Detail.Findings {
		var account, control, status, id, state string
		if v2 {
			var f ocsfFinding
			if json.Unmarshal(raw, &f) != nil {
				continue
			}
			account, control, status, id = f.Cloud.Account.UID, f.Compliance.Control, f.Compliance.Status, f.Metadata.UID
		} else {
			var f asffFinding
			if json.Unmarshal(raw, &f) != nil {
				continue
			}
			account, control, status, id, state = f.AwsAccountID, f.Compliance.SecurityControlID, f.Compliance.Status, f.ID, f.RecordState
			if control == "" { // accounts without consolidated control findings
				control = f.ProductFields["ControlId"]
			}
		}
		if !slices.Contains(securityHubControls, control) || !failed(status) || strings.EqualFold(state, "ARCHIVED") {
			continue
		}
		if !accountIDRE.MatchString(account) {
			continue
		}
		if _, seen := h.Controls[account]; !seen {
			if len(h.Accounts) == maxSecurityHubAccount {
				break
			}
			h.Accounts = append(h.Accounts, account)
			h.Controls[account] = control + " (" + quoteShort(id) + ")"
		}
	}
	if len(h.Accounts) == 0 {
		return nil, &skip{Reason: "no FAILED finding of IAM.4, IAM.6 or IAM.9"}, true
	}
	return h, nil, true
}

func failed(status string) bool {
	switch strings.ToUpper(status) {
	case "FAILED", "FAIL":
		return true
	}
	return false
}

// handleSecurityHub checks each account a Security Hub event names and publishes the
// observations, then deletes the message (kept when publishing failed, as for
// CloudTrail events).
func (d *Detector) handleSecurityHub(ctx context.Context, m sqstypes.Message, h *shHint, sk *skip, log *slog.Logger) {
	switch {
	case sk != nil && sk.Malformed:
		d.e.met.ignored.WithLabelValues("malformed").Inc()
		log.Warn("deleting malformed Security Hub message", "reason", sk.Reason)
		d.deleteMessage(ctx, m, log)
		return
	case sk != nil:
		d.e.met.ignored.WithLabelValues("irrelevant").Inc()
		log.Debug("deleting irrelevant Security Hub message", "reason", sk.Reason)
		d.deleteMessage(ctx, m, log)
		return
	case !d.e.cfg.SecurityHubIn:
		d.e.met.ignored.WithLabelValues("irrelevant").Inc()
		log.Debug("deleting a Security Hub finding: ROOTWARDEN_SECURITYHUB is not in or both")
		d.deleteMessage(ctx, m, log)
		return
	}
	for _, account := range h.Accounts {
		alog := log.With("account", account, "security_hub", h.Controls[account])
		alog.Info("Security Hub reports a failed root control; checking the account with AWS")
		obs, _ := d.checkByID(ctx, account, model.SourceSecurityHub)
		obs.ID = "securityhub-" + h.EventID + "-" + account
		if obs.ErrorCode != "" {
			// Coverage, not silence: the account shows as unchecked, and why.
			obs.Error = "Security Hub reports " + h.Controls[account] + " FAILED, and rootwarden could not check the account: " + obs.Error
			obs.ErrorCode = "SecurityHub/" + obs.ErrorCode
		}
		if ctx.Err() != nil {
			return // shutting down: the message comes back
		}
		if err := d.publish(ctx, obs); err != nil {
			n, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
			if n < maxReceives {
				alog.Error("publish Security Hub finding failed; the message will come back", "err", safeError(err), "receives", n)
				return
			}
			alog.Error("publish Security Hub finding failed too often; deleting the message", "err", safeError(err), "receives", n)
			break
		}
	}
	d.deleteMessage(ctx, m, log)
}
