package detector

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

// trigger is a CloudTrail event that calls for an immediate check of an account.
type trigger struct {
	Account string
	Event   model.TrailEvent
}

// skip says why a message causes no check. Malformed messages are logged as
// warnings; irrelevant ones (someone else's event, a console sign-in) at debug.
type skip struct {
	Malformed bool
	Reason    string
}

// eventBridge is the envelope EventBridge puts on SQS.
type eventBridge struct {
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Detail     json.RawMessage `json:"detail"`
}

// trailRecord is the part of a CloudTrail record the detector reads.
type trailRecord struct {
	EventID            string `json:"eventID"`
	EventName          string `json:"eventName"`
	EventSource        string `json:"eventSource"`
	EventTime          string `json:"eventTime"`
	AWSRegion          string `json:"awsRegion"`
	SourceIPAddress    string `json:"sourceIPAddress"`
	UserAgent          string `json:"userAgent"`
	RecipientAccountID string `json:"recipientAccountId"`
	UserIdentity       struct {
		Type           string          `json:"type"`
		AccountID      string          `json:"accountId"`
		AccessKeyID    string          `json:"accessKeyId"`
		InvokedBy      string          `json:"invokedBy"`
		SessionContext json.RawMessage `json:"sessionContext"`
	} `json:"userIdentity"`
	RequestParameters json.RawMessage `json:"requestParameters"`
	ResponseElements  json.RawMessage `json:"responseElements"`
}

const (
	detailTypeAPICall = "AWS API Call via CloudTrail"
	iamSource         = "iam.amazonaws.com"
	signinSource      = "signin.amazonaws.com"
)

var accountIDRE = regexp.MustCompile(`^\d{12}$`)

// parseEvent classifies an SQS body. It returns a trigger for a root access-key event
// (CreateAccessKey, UpdateAccessKey or DeleteAccessKey of the root user's own keys,
// or any call signed with a root access key), otherwise why it is skipped. Reasons
// never quote the body.
func parseEvent(body []byte) (*trigger, *skip) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !json.Valid(body) {
		return nil, &skip{Malformed: true, Reason: "body is not a JSON object"}
	}
	var env eventBridge
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, &skip{Malformed: true, Reason: "body is not an EventBridge event"}
	}
	raw := env.Detail
	switch {
	case len(raw) > 0 && !bytes.Equal(raw, []byte("null")):
		if !isCloudTrailDetailType(env.DetailType) {
			return nil, &skip{Malformed: true, Reason: "not a CloudTrail event (detail-type " + quoteShort(env.DetailType) + ")"}
		}
	default:
		raw = body // a bare CloudTrail record
	}
	var rec trailRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, &skip{Malformed: true, Reason: "CloudTrail record does not decode"}
	}
	if rec.EventID == "" || rec.EventName == "" || rec.EventSource == "" {
		return nil, &skip{Malformed: true, Reason: "not a CloudTrail event (no eventID, eventName or eventSource)"}
	}
	account := firstNonEmpty(rec.RecipientAccountID, env.Account, rec.UserIdentity.AccountID)
	if !accountIDRE.MatchString(account) {
		return nil, &skip{Malformed: true, Reason: "CloudTrail event " + quoteShort(rec.EventID) + " has no 12-digit account id"}
	}
	if rec.EventSource == signinSource || strings.HasPrefix(rec.EventName, "ConsoleLogin") {
		return nil, &skip{Reason: "console sign-in, not an access key"}
	}

	root := strings.EqualFold(rec.UserIdentity.Type, "Root")
	signedWithRootKey := root && strings.HasPrefix(rec.UserIdentity.AccessKeyID, "AKIA") &&
		isEmptyJSON(rec.UserIdentity.SessionContext) && rec.UserIdentity.InvokedBy == ""
	keyID, aboutRootKey := rootKeyManagement(rec, root)
	if !signedWithRootKey && !aboutRootKey {
		return nil, &skip{Reason: "not a root access-key event (" + quoteShort(rec.EventSource) + " " + quoteShort(rec.EventName) + ")"}
	}
	ev := model.TrailEvent{
		EventID:     rec.EventID,
		EventName:   rec.EventName,
		EventSource: rec.EventSource,
		EventTime:   parseEventTime(rec.EventTime, env.Time),
		Region:      firstNonEmpty(rec.AWSRegion, env.Region),
		SourceIP:    rec.SourceIPAddress,
		UserAgent:   rec.UserAgent,
		KeyInUse:    signedWithRootKey,
	}
	if aboutRootKey && keyID != "" {
		ev.AccessKeyID = keyID
	} else if signedWithRootKey {
		ev.AccessKeyID = rec.UserIdentity.AccessKeyID
	}
	return &trigger{Account: account, Event: ev}, nil
}

func isCloudTrailDetailType(t string) bool {
	switch t {
	case detailTypeAPICall, "AWS Console Sign In via CloudTrail", "AWS Console Signin via CloudTrail",
		"AWS Service Event via CloudTrail":
		return true
	}
	return false
}

// rootKeyManagement reports whether rec creates, updates or deletes one of the root
// user's own access keys (made by root, no userName in the request), and which key.
func rootKeyManagement(rec trailRecord, root bool) (keyID string, ok bool) {
	if !root || rec.EventSource != iamSource {
		return "", false
	}
	switch rec.EventName {
	case "CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey":
	default:
		return "", false
	}
	var req struct {
		UserName    string `json:"userName"`
		AccessKeyID string `json:"accessKeyId"`
	}
	if !isEmptyJSON(rec.RequestParameters) {
		_ = json.Unmarshal(rec.RequestParameters, &req)
	}
	if req.UserName != "" {
		return "", false // root acting on an IAM user's key
	}
	if rec.EventName == "CreateAccessKey" {
		var resp struct {
			AccessKey struct {
				AccessKeyID string `json:"accessKeyId"`
			} `json:"accessKey"`
		}
		if !isEmptyJSON(rec.ResponseElements) {
			_ = json.Unmarshal(rec.ResponseElements, &resp)
		}
		return resp.AccessKey.AccessKeyID, true
	}
	return req.AccessKeyID, true
}

// parseEventTime reads CloudTrail's eventTime (RFC 3339), falling back to the
// envelope's time; zero when neither reads.
func parseEventTime(values ...string) time.Time {
	for _, v := range values {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

func isEmptyJSON(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null")) || bytes.Equal(t, []byte("{}"))
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// quoteShort quotes s for a log reason, cut to 64 bytes of printable text.
func quoteShort(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + s + `"`
}
