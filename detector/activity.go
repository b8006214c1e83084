package detector

// Root activity: uses of the root identity other than access keys, read from the same
// EventBridge → SQS queue as the key events and published as model.ActivityReport on
// bus.ActivitySubject (the remediator turns them into a "was this you?" question;
// docs/activity.md). The detector decides only what is root activity; it never
// checks the account for them (they say nothing about root keys).
//
// Event names and fields, checked against AWS's documentation and sample events:
//   - Console sign-in: eventSource signin.amazonaws.com, eventName ConsoleLogin,
//     eventType AwsConsoleSignIn, userIdentity.type "Root", responseElements
//     {"ConsoleLogin":"Success"|"Failure"}, additionalEventData.MFAUsed "Yes"/"No".
//     EventBridge: source aws.signin, detail-type "AWS Console Sign In via CloudTrail".
//     Delivered in the Region signed in to (the root user's sign-in is recorded in
//     us-east-1 unless a Regional sign-in endpoint was used): the rule must exist in
//     us-east-1 at least (deploy/aws/member.yaml).
//     https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-aws-console-sign-in-events.html
//     https://docs.aws.amazon.com/IAM/latest/UserGuide/cloudtrail-integration.html#cloudtrail-integration_examples-signin
//   - Root password: signin.amazonaws.com PasswordUpdated (Panther
//     AWS.CloudTrail.RootPasswordChanged), PasswordRecoveryRequested and
//     PasswordRecoveryCompleted (only the root user's "Forgot your password?" flow makes
//     these: Elastic rules/integrations/aws/initial_access_password_recovery.toml).
//   - Root MFA: iam.amazonaws.com DeactivateMFADevice, DeleteVirtualMFADevice made by
//     the root user for itself (no userName in requestParameters).
//   - Root signing certificate: iam.amazonaws.com UploadSigningCertificate by root for
//     itself (no userName).
//   - sts.amazonaws.com AssumeRoot (recorded in the CALLER's account: the management
//     account or the IAM delegated administrator; the member is
//     requestParameters.targetPrincipal, an account id or ARN).
//     https://docs.aws.amazon.com/IAM/latest/UserGuide/cloudtrail-track-privileged-tasks.html
//     AssumeRoot has no session-name parameter: rootwarden's own sessions are told by
//     the calling role session, named RootSessionPrefix+case (remediator/assumeroot.go).

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

// RootSessionPrefix starts the role session name (or source identity) from which
// rootwarden calls sts:AssumeRoot; AssumeRoot calls from such a session are not
// asked about.
const RootSessionPrefix = "rootwarden-"

// FailedLoginThreshold is how many failed root console sign-ins of one account within
// an hour make a question (one per account and hour).
const FailedLoginThreshold = 5

// activityRecord is the part of a CloudTrail record root activity needs.
type activityRecord struct {
	EventID            string `json:"eventID"`
	EventName          string `json:"eventName"`
	EventSource        string `json:"eventSource"`
	EventTime          string `json:"eventTime"`
	AWSRegion          string `json:"awsRegion"`
	SourceIPAddress    string `json:"sourceIPAddress"`
	UserAgent          string `json:"userAgent"`
	RecipientAccountID string `json:"recipientAccountId"`
	ErrorCode          string `json:"errorCode"`
	UserIdentity       struct {
		Type           string `json:"type"`
		ARN            string `json:"arn"`
		AccountID      string `json:"accountId"`
		SessionContext struct {
			SourceIdentity string `json:"sourceIdentity"`
		} `json:"sessionContext"`
	} `json:"userIdentity"`
	RequestParameters   json.RawMessage `json:"requestParameters"`
	ResponseElements    json.RawMessage `json:"responseElements"`
	AdditionalEventData json.RawMessage `json:"additionalEventData"`
}

var anyAccountRE = regexp.MustCompile(`\b\d{12}\b`)

// activityEvent is root activity read from an SQS body: the account it is about, the
// item, and failed says it is one failed sign-in (counted, not asked about alone).
type activityEvent struct {
	Account string
	Item    model.ActivityItem
	Failed  bool
}

// parseActivity reports whether body is root activity, and which. Anything else
// (malformed included) is false: parseEvent decides about it.
func parseActivity(body []byte) (activityEvent, bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return activityEvent{}, false
	}
	var env eventBridge
	if json.Unmarshal(body, &env) != nil {
		return activityEvent{}, false
	}
	raw := env.Detail
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = body
	} else if !isCloudTrailDetailType(env.DetailType) {
		return activityEvent{}, false
	}
	var rec activityRecord
	if json.Unmarshal(raw, &rec) != nil || rec.EventID == "" || rec.EventName == "" {
		return activityEvent{}, false
	}
	account := firstNonEmpty(rec.RecipientAccountID, env.Account, rec.UserIdentity.AccountID)
	root := strings.EqualFold(rec.UserIdentity.Type, "Root")
	var req struct {
		UserName        string `json:"userName"`
		TargetPrincipal string `json:"targetPrincipal"`
	}
	if !isEmptyJSON(rec.RequestParameters) {
		_ = json.Unmarshal(rec.RequestParameters, &req)
	}
	it := model.ActivityItem{EventID: rec.EventID, EventName: rec.EventName, Source: rec.EventSource,
		At: parseEventTime(rec.EventTime, env.Time), Region: firstNonEmpty(rec.AWSRegion, env.Region),
		SourceIP: rec.SourceIPAddress, UserAgent: rec.UserAgent}
	failed := false
	switch {
	case rec.EventSource == signinSource && rec.EventName == "ConsoleLogin" && root:
		var resp struct {
			ConsoleLogin string `json:"ConsoleLogin"`
		}
		var add struct {
			MFAUsed string `json:"MFAUsed"`
		}
		if !isEmptyJSON(rec.ResponseElements) {
			_ = json.Unmarshal(rec.ResponseElements, &resp)
		}
		if !isEmptyJSON(rec.AdditionalEventData) {
			_ = json.Unmarshal(rec.AdditionalEventData, &add)
		}
		it.MFAUsed = add.MFAUsed
		it.Kind = model.ActivityConsoleLogin
		if !strings.EqualFold(resp.ConsoleLogin, "Success") {
			it.Kind, failed = model.ActivityConsoleLoginFailed, true
		}
	case rec.EventSource == signinSource && rec.EventName == "PasswordUpdated" && root:
		it.Kind = model.ActivityPasswordChanged
	case rec.EventSource == signinSource && (rec.EventName == "PasswordRecoveryRequested" || rec.EventName == "PasswordRecoveryCompleted"):
		// Only the root user's "Forgot your password?" flow makes these.
		it.Kind = model.ActivityPasswordRecovery
	case rec.EventSource == iamSource && root && req.UserName == "" && rec.ErrorCode == "" &&
		(rec.EventName == "DeactivateMFADevice" || rec.EventName == "DeleteVirtualMFADevice"):
		it.Kind = model.ActivityMFARemoved
	case rec.EventSource == iamSource && root && req.UserName == "" && rec.ErrorCode == "" && rec.EventName == "UploadSigningCertificate":
		it.Kind = model.ActivitySigningCertUploaded
	case rec.EventSource == "sts.amazonaws.com" && rec.EventName == "AssumeRoot" && rec.ErrorCode == "":
		if ownRootSession(rec.UserIdentity.ARN, rec.UserIdentity.SessionContext.SourceIdentity) {
			return activityEvent{}, false
		}
		it.Kind = model.ActivityAssumeRoot
		it.Principal = rec.UserIdentity.ARN
		account = anyAccountRE.FindString(req.TargetPrincipal) // the member whose root it is
	default:
		return activityEvent{}, false
	}
	if !accountIDRE.MatchString(account) {
		return activityEvent{}, false
	}
	return activityEvent{Account: account, Item: it, Failed: failed}, true
}

// ownRootSession reports whether an AssumeRoot caller is rootwarden: a role session
// (or source identity) named RootSessionPrefix + case id.
func ownRootSession(arn, sourceIdentity string) bool {
	if strings.HasPrefix(sourceIdentity, RootSessionPrefix) {
		return true
	}
	// arn:aws:sts::111122223333:assumed-role/RoleName/session-name
	if i := strings.LastIndexByte(arn, '/'); i >= 0 && strings.Contains(arn, ":assumed-role/") {
		return strings.HasPrefix(arn[i+1:], RootSessionPrefix)
	}
	return false
}

// failedLogins counts failed root sign-ins per account and clock hour; one report
// per account and hour once FailedLoginThreshold is reached. Per detector replica:
// with several, each counts what it receives (docs/activity.md).
type failedLogins struct {
	mu sync.Mutex
	m  map[string]int // "<account>/<hour>" → failures
}

// add counts one failure; it returns the count when the threshold is reached now.
func (f *failedLogins) add(account string, at time.Time) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]int{}
	}
	hour := at.UTC().Truncate(time.Hour)
	key := account + "/" + hour.Format(time.RFC3339)
	f.m[key]++
	n := f.m[key]
	for k := range f.m { // forget hours gone by
		if i := strings.IndexByte(k, '/'); i >= 0 {
			if t, err := time.Parse(time.RFC3339, k[i+1:]); err == nil && hour.Sub(t) > time.Hour {
				delete(f.m, k)
			}
		}
	}
	return n, n == FailedLoginThreshold
}

// undo takes back the failure that reached the threshold (its report could not be
// published; the message comes back and counts again).
func (f *failedLogins) undo(account string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := account + "/" + at.UTC().Truncate(time.Hour).Format(time.RFC3339)
	if f.m[key] > 0 {
		f.m[key]--
	}
}
