package awssim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

type event struct {
	Version    string `json:"version"`
	ID         string `json:"id"`
	DetailType string `json:"detail-type"`
	Source     string `json:"source"`
	Account    string `json:"account"`
	Time       string `json:"time"`
	Region     string `json:"region"`
	Detail     struct {
		UserIdentity struct {
			Type           string          `json:"type"`
			Arn            string          `json:"arn"`
			AccountID      string          `json:"accountId"`
			AccessKeyID    string          `json:"accessKeyId"`
			SessionContext json.RawMessage `json:"sessionContext"`
			InvokedBy      string          `json:"invokedBy"`
		} `json:"userIdentity"`
		EventTime          string          `json:"eventTime"`
		EventSource        string          `json:"eventSource"`
		EventName          string          `json:"eventName"`
		AWSRegion          string          `json:"awsRegion"`
		SourceIPAddress    string          `json:"sourceIPAddress"`
		UserAgent          string          `json:"userAgent"`
		RequestParameters  json.RawMessage `json:"requestParameters"`
		ResponseElements   json.RawMessage `json:"responseElements"`
		EventID            string          `json:"eventID"`
		RecipientAccountID string          `json:"recipientAccountId"`
	} `json:"detail"`
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func decodeEvent(t *testing.T, s string) event {
	t.Helper()
	var ev event
	if err := json.Unmarshal([]byte(s), &ev); err != nil {
		t.Fatalf("event is not JSON: %v\n%s", err, s)
	}
	d := ev.Detail
	if ev.DetailType != "AWS API Call via CloudTrail" || ev.Region != "us-east-1" || ev.Account != prodID ||
		ev.Time != "2024-06-01T12:00:00Z" || !uuidRE.MatchString(ev.ID) {
		t.Fatalf("envelope = %+v", ev)
	}
	if d.UserIdentity.Type != "Root" || d.UserIdentity.Arn != "arn:aws:iam::"+prodID+":root" || d.UserIdentity.AccountID != prodID ||
		d.EventTime != "2024-06-01T12:00:00Z" || d.AWSRegion != "us-east-1" || d.RecipientAccountID != prodID ||
		d.SourceIPAddress == "" || d.UserAgent == "" || !uuidRE.MatchString(d.EventID) || d.UserIdentity.InvokedBy != "" {
		t.Fatalf("detail = %+v", d)
	}
	return ev
}

func TestCloudTrailEvents(t *testing.T) {
	at := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	const key = "AKIAIOSFODNN7EXAMPLE"

	t.Run("root key used", func(t *testing.T) {
		ev := decodeEvent(t, awssim.RootKeyUsedEvent(prodID, key, "ListUsers", at))
		d := ev.Detail
		if ev.Source != "aws.iam" || d.EventSource != "iam.amazonaws.com" || d.EventName != "ListUsers" ||
			d.UserIdentity.AccessKeyID != key || d.UserIdentity.SessionContext != nil {
			t.Fatalf("used event = %+v", ev)
		}
	})
	t.Run("root key created", func(t *testing.T) {
		ev := decodeEvent(t, awssim.RootKeyCreatedEvent(prodID, key, at))
		d := ev.Detail
		if ev.Source != "aws.iam" || d.EventName != "CreateAccessKey" || string(d.RequestParameters) != "null" {
			t.Fatalf("created event = %+v", ev)
		}
		var resp struct {
			AccessKey struct{ AccessKeyID, Status, CreateDate string } `json:"accessKey"`
		}
		if err := json.Unmarshal(d.ResponseElements, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.AccessKey.AccessKeyID != key || resp.AccessKey.Status != "Active" || resp.AccessKey.CreateDate != "Jun 1, 2024, 12:00:00 PM" {
			t.Fatalf("responseElements = %s", d.ResponseElements)
		}
		if !strings.HasPrefix(d.UserIdentity.AccessKeyID, "ASIA") || d.UserIdentity.SessionContext == nil {
			t.Fatalf("console CreateAccessKey identity = %+v", d.UserIdentity)
		}
	})
	t.Run("root key deleted", func(t *testing.T) {
		ev := decodeEvent(t, awssim.RootKeyDeletedEvent(prodID, key, at))
		if ev.Detail.EventName != "DeleteAccessKey" || string(ev.Detail.RequestParameters) != `{"accessKeyId":"`+key+`"}` {
			t.Fatalf("deleted event = %+v", ev)
		}
	})
}

func TestControlSurface(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	url := e.sim.CreateQueue(mgmtID, "rootwarden-events")
	do := func(method, path, body string, want int) []byte {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx(t), method, e.url+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, b.String(), want)
		}
		return b.Bytes()
	}

	var created struct{ AccessKeyID, SecretAccessKey string }
	if err := json.Unmarshal(do("POST", "/_sim/accounts/"+prodID+"/root-keys", "", 201), &created); err != nil || created.SecretAccessKey == "" {
		t.Fatalf("create root key: %+v %v", created, err)
	}
	if got := summaryKeys(t, e.root(t, prodID, created.AccessKeyID)); got != 1 {
		t.Fatalf("summary after control create = %d", got)
	}
	do("POST", "/_sim/accounts/"+prodID+"/root-keys", `{"created":"2024-05-01T10:00:00Z"}`, 201)
	do("POST", "/_sim/accounts/"+prodID+"/root-keys", "", 409)
	var keys []awssim.RootKey
	_ = json.Unmarshal(do("GET", "/_sim/accounts/"+prodID+"/root-keys", "", 200), &keys)
	if len(keys) != 2 || !keys[1].Created.Equal(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("keys = %+v", keys)
	}
	if bytes.Contains(do("GET", "/_sim/accounts/"+prodID+"/root-keys", "", 200), []byte(created.SecretAccessKey)) {
		t.Fatal("listing root keys leaks a secret")
	}
	do("DELETE", "/_sim/accounts/"+prodID+"/root-keys/"+created.AccessKeyID, "", 204)
	do("DELETE", "/_sim/accounts/"+prodID+"/root-keys/"+created.AccessKeyID, "", 404)
	do("GET", "/_sim/accounts/999999999999/root-keys", "", 404)
	do("POST", "/_sim/accounts", `{"id":"777777777777","name":"new"}`, 201)
	do("POST", "/_sim/accounts/777777777777/faults", `{"accessDenied":true}`, 204)
	_, err := e.admin(t, "777777777777").iam.ListAccountAliases(ctx(t), nil)
	apiErr(t, err, "AccessDenied", 403)
	do("POST", "/_sim/faults", `{"latency":"1ms"}`, 204)
	do("POST", "/_sim/faults", `{"latency":"soon"}`, 400)
	do("POST", "/_sim/faults", `{}`, 400)
	do("POST", "/_sim/faults", `{"throttleShare":1.5}`, 400)
	do("POST", "/_sim/faults", `{"throttleShare":1,"seed":3}`, 204)
	_, err = e.admin(t, "777777777777").sts.GetCallerIdentity(ctx(t), nil)
	apiErr(t, err, "Throttling", 400)
	do("POST", "/_sim/faults", `{"throttleShare":0}`, 204)
	var byPrincipal struct {
		Calls []struct {
			Service, Action, Principal, Account string
			Calls                               int
		}
		Throttled int
	}
	_ = json.Unmarshal(do("GET", "/_sim/calls-by-principal", "", 200), &byPrincipal)
	found := false
	for _, c := range byPrincipal.Calls {
		if c.Service == "STS" && c.Action == "GetCallerIdentity" && c.Principal == "arn:aws:iam::777777777777:user/rootwarden-admin" && c.Calls >= 1 {
			found = true
		}
	}
	if !found || byPrincipal.Throttled == 0 {
		t.Fatalf("calls by principal = %+v", byPrincipal)
	}

	do("POST", "/_sim/queues/rootwarden-events/events", `{"kind":"used","account":"`+prodID+`","keyId":"AKIAIOSFODNN7EXAMPLE","eventName":"ListUsers","time":"2024-06-01T12:00:00Z"}`, 201)
	do("POST", "/_sim/queues/rootwarden-events/events", `{"kind":"bogus","account":"1","keyId":"2"}`, 400)
	do("POST", "/_sim/queues/rootwarden-events/messages", `raw body`, 201)
	do("POST", "/_sim/queues/nope/messages", `raw body`, 404)
	out, err := e.admin(t, mgmtID).sqs.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if err != nil || len(out.Messages) != 2 || aws.ToString(out.Messages[1].Body) != "raw body" {
		t.Fatalf("queued via control: %v %v", out, err)
	}
	decodeEvent(t, aws.ToString(out.Messages[0].Body))

	var calls map[string]int
	_ = json.Unmarshal(do("GET", "/_sim/calls", "", 200), &calls)
	if calls["SQS.ReceiveMessage"] != 1 || calls["IAM.GetAccountSummary"] != 1 {
		t.Fatalf("calls = %v", calls)
	}
	do("GET", "/_sim/nothing", "", 404)
}
