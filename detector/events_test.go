package detector

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

// mutate decodes an EventBridge event, lets f change it and encodes it again.
func mutate(t *testing.T, body string, f func(ev map[string]any, detail map[string]any, id map[string]any)) string {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		t.Fatal(err)
	}
	detail := ev["detail"].(map[string]any)
	f(ev, detail, detail["userIdentity"].(map[string]any))
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseEventTriggers(t *testing.T) {
	at := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	const acct = "222222222222"
	const key = "AKIAEXAMPLEEXAMPLE01"
	tests := []struct {
		name      string
		body      string
		eventName string
		keyID     string
		inUse     bool
	}{
		{"root creates its own access key in the console", awssim.RootKeyCreatedEvent(acct, key, at), "CreateAccessKey", key, false},
		{"root deletes its own access key", awssim.RootKeyDeletedEvent(acct, key, at), "DeleteAccessKey", key, false},
		{"a call signed with a root access key", awssim.RootKeyUsedEvent(acct, key, "ListBuckets", at), "ListBuckets", key, true},
		{"root deactivates its key with the key itself", mutate(t, awssim.RootKeyUsedEvent(acct, "AKIASIGNINGKEY000001", "UpdateAccessKey", at),
			func(_, d, _ map[string]any) {
				d["requestParameters"] = map[string]any{"accessKeyId": key, "status": "Inactive"}
			}),
			"UpdateAccessKey", key, true},
		{"a bare CloudTrail record without the EventBridge envelope", func() string {
			var ev map[string]json.RawMessage
			_ = json.Unmarshal([]byte(awssim.RootKeyUsedEvent(acct, key, "DescribeInstances", at)), &ev)
			return string(ev["detail"])
		}(), "DescribeInstances", key, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trig, sk := parseEvent([]byte(tt.body))
			if sk != nil {
				t.Fatalf("skipped: %+v", sk)
			}
			ev := trig.Event
			if trig.Account != acct || ev.EventName != tt.eventName || ev.AccessKeyID != tt.keyID || ev.KeyInUse != tt.inUse {
				t.Errorf("trigger = %s %+v", trig.Account, ev)
			}
			if ev.EventID == "" || !ev.EventTime.Equal(at) || ev.Region != "us-east-1" || ev.SourceIP == "" || ev.UserAgent == "" || ev.EventSource == "" {
				t.Errorf("event fields missing: %+v", ev)
			}
		})
	}
}

func TestParseEventSkips(t *testing.T) {
	at := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	used := awssim.RootKeyUsedEvent("222222222222", "AKIAEXAMPLEEXAMPLE01", "ListBuckets", at)
	created := awssim.RootKeyCreatedEvent("222222222222", "AKIAEXAMPLEEXAMPLE01", at)
	tests := []struct {
		name      string
		body      string
		malformed bool
		reason    string
	}{
		{"not JSON", "hello <root>", true, "not a JSON object"},
		{"truncated JSON", used[:len(used)/2], true, "not a JSON object"},
		{"a JSON array", `[1,2]`, true, "not a JSON object"},
		{"JSON but not CloudTrail", `{"hello":"world"}`, true, "not a CloudTrail event"},
		{"another EventBridge detail type", `{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{"state":"running"}}`, true, "not a CloudTrail event"},
		{"CloudTrail without an account id", mutate(t, used, func(ev, d, id map[string]any) {
			delete(ev, "account")
			delete(d, "recipientAccountId")
			delete(id, "accountId")
		}), true, "no 12-digit account id"},
		{"detail is a string", `{"detail-type":"AWS API Call via CloudTrail","detail":"x"}`, true, "does not decode"},
		{"root console sign-in", mutate(t, used, func(ev, d, id map[string]any) {
			ev["detail-type"] = "AWS Console Sign In via CloudTrail"
			d["eventSource"], d["eventName"] = "signin.amazonaws.com", "ConsoleLogin"
		}), false, "console sign-in"},
		{"root console sign-in, other spelling", mutate(t, used, func(ev, d, id map[string]any) {
			ev["detail-type"] = "AWS Console Signin via CloudTrail"
			d["eventSource"], d["eventName"] = "signin.amazonaws.com", "ConsoleLogin"
		}), false, "console sign-in"},
		{"a call from a root console session (ASIA key, sessionContext)", mutate(t, used, func(_, _, id map[string]any) {
			id["accessKeyId"] = "ASIAEXAMPLEEXAMPLE01"
			id["sessionContext"] = map[string]any{"attributes": map[string]any{"mfaAuthenticated": "true"}}
		}), false, "not a root access-key event"},
		{"an IAM user's call", mutate(t, used, func(_, _, id map[string]any) { id["type"] = "IAMUser" }), false, "not a root access-key event"},
		{"a call an AWS service made for root", mutate(t, used, func(_, _, id map[string]any) { id["invokedBy"] = "cloudformation.amazonaws.com" }), false, "not a root access-key event"},
		{"root creates a key for an IAM user", mutate(t, created, func(_, d, _ map[string]any) {
			d["requestParameters"] = map[string]any{"userName": "alice"}
		}), false, "not a root access-key event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trig, sk := parseEvent([]byte(tt.body))
			if sk == nil {
				t.Fatalf("not skipped: %+v", trig)
			}
			if sk.Malformed != tt.malformed || !strings.Contains(sk.Reason, tt.reason) {
				t.Errorf("skip = %+v, want malformed=%v reason containing %q", sk, tt.malformed, tt.reason)
			}
			if strings.Contains(sk.Reason, "AKIA") || strings.Contains(sk.Reason, "hello <root>") {
				t.Errorf("reason quotes the body: %q", sk.Reason)
			}
		})
	}
}

func TestConfigValidateNamesTheVariable(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{SQSQueueURL: "not a url"}, "ROOTWARDEN_SQS_QUEUE_URL"},
		{Config{SQSQueueURL: "ftp://sqs.us-east-1.amazonaws.com/1/q"}, "ROOTWARDEN_SQS_QUEUE_URL"},
		{Config{SQSQueueURL: "https://sqs.us-east-1.amazonaws.com"}, "ROOTWARDEN_SQS_QUEUE_URL"},
		{Config{SQSQueueURL: "https://user:pw@sqs.us-east-1.amazonaws.com/1/q"}, "ROOTWARDEN_SQS_QUEUE_URL"},
		{Config{SQSQueueURL: "%zz"}, "ROOTWARDEN_SQS_QUEUE_URL"},
		{Config{Concurrency: -1}, "ROOTWARDEN_SCAN_CONCURRENCY"},
		{Config{ScanInterval: -time.Minute}, "ROOTWARDEN_SCAN_INTERVAL"},
		{Config{AccountTimeout: time.Millisecond}, "ROOTWARDEN_ACCOUNT_TIMEOUT"},
		{Config{OrgRoleName: "bad role name!"}, "ROOTWARDEN_ORG_ROLE_NAME"},
		{Config{ExternalID: "abc"}, "ROOTWARDEN_ORG_EXTERNAL_ID"},
		{Config{MaxAttempts: -2}, "AWS_MAX_ATTEMPTS"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tt.want+":") {
			t.Errorf("Validate(%+v) = %v, want an error starting with %s:", tt.cfg, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("error repeats the URL's password: %v", err)
		}
	}
	ok := Config{SQSQueueURL: "https://sqs.us-east-1.amazonaws.com/111111111111/rootwarden-events",
		OrgRoleName: "OrganizationAccountAccessRole", ExternalID: "rootwarden-1"}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
