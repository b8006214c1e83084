package detector

// Native fuzz targets for the two inputs the detector reads from outside: the
// EventBridge/CloudTrail event on SQS and the credential report CSV.
//   go test -run '^$' -fuzz '^FuzzParseEvent$' -fuzztime 30s ./detector
//   go test -run '^$' -fuzz '^FuzzParseRootKeys$' -fuzztime 30s ./detector

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

func FuzzParseEvent(f *testing.F) {
	at := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	const acct, key = "222222222222", "AKIAEXAMPLEEXAMPLE01"
	used := awssim.RootKeyUsedEvent(acct, key, "ListBuckets", at)
	var env map[string]json.RawMessage
	_ = json.Unmarshal([]byte(used), &env)
	for _, s := range []string{
		awssim.RootKeyCreatedEvent(acct, key, at),
		awssim.RootKeyDeletedEvent(acct, key, at),
		used,
		awssim.RootKeyUsedEvent(acct, key, "UpdateAccessKey", at),
		awssim.RootKeyUsedEvent(acct, key, "ConsoleLogin", at),
		string(env["detail"]), // a bare CloudTrail record
		strings.Replace(used, acct, "12345", -1),
		strings.Replace(used, `"Root"`, `"IAMUser"`, 1),
		strings.Replace(used, "AWS API Call via CloudTrail", "EC2 Instance State-change Notification", 1),
		`{"detail-type":"AWS API Call via CloudTrail","detail":null}`,
		`{"eventID":"e","eventName":"DeleteAccessKey","eventSource":"iam.amazonaws.com","recipientAccountId":"222222222222","userIdentity":{"type":"Root"},"requestParameters":{"accessKeyId":"AKIA1"}}`,
		`{"eventID":"e","eventName":"CreateAccessKey","eventSource":"iam.amazonaws.com","recipientAccountId":"222222222222","userIdentity":{"type":"Root"},"requestParameters":{"userName":"bob"}}`,
		`{"detail":{"eventID":1}}`,
		`[]`, `null`, ``, `{`, "\ufeff{}", `{"detail":"x","detail-type":"AWS API Call via CloudTrail"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		trig, sk := parseEvent(body)
		if !bytes.Equal(orig, body) {
			t.Fatal("parseEvent modified its input")
		}
		if (trig == nil) == (sk == nil) {
			t.Fatalf("want exactly one of trigger and skip, got %+v and %+v", trig, sk)
		}
		if sk != nil {
			if sk.Reason == "" {
				t.Fatal("a skip without a reason")
			}
			// Reasons never quote the body at length (it may hold secrets or junk).
			if len(sk.Reason) > 300 {
				t.Fatalf("reason of %d bytes: %q", len(sk.Reason), sk.Reason)
			}
			return
		}
		if !accountIDRE.MatchString(trig.Account) {
			t.Fatalf("accepted event with account %q: not 12 digits", trig.Account)
		}
		ev := trig.Event
		if ev.EventID == "" || ev.EventName == "" || ev.EventSource == "" {
			t.Fatalf("accepted event without id, name or source: %+v", ev)
		}
		if ev.KeyInUse && ev.AccessKeyID == "" {
			t.Fatalf("a root key in use without a key id: %+v", ev)
		}
		if !ev.EventTime.IsZero() && ev.EventTime.Location() != time.UTC {
			t.Fatalf("event time %v is not UTC", ev.EventTime)
		}
		// Deterministic: the same body gives the same answer.
		again, _ := parseEvent(body)
		if again == nil || again.Account != trig.Account || !reflect.DeepEqual(again.Event, trig.Event) {
			t.Fatalf("second parse differs: %+v vs %+v", again, trig)
		}
	})
}

func FuzzParseRootKeys(f *testing.F) {
	noKey := "false,N/A,N/A,N/A,N/A"
	for _, s := range []string{
		reportHeader + "\n" + rootRow(noKey, noKey),
		reportHeader + "\n" + rootRow("true,2024-05-01T10:00:00+00:00,2024-06-02T08:30:00+00:00,us-east-1,s3", noKey),
		reportHeader + "\n" + rootRow("TRUE,2024-05-01T10:00:00+00:00,N/A,N/A,N/A", "FALSE,2024-05-02T10:00:00+00:00,no_information,N/A,N/A"),
		"\ufeff" + reportHeader + "\r\n" + rootRow(noKey, "false,2022-03-04T05:06:07+00:00,N/A,N/A,N/A") + "\r\n",
		"user,access_key_2_active,access_key_1_active\n<root_account>,true,false\n",
		"user\n<root_account>\n",
		reportHeader + "\nalice,arn\n",
		"arn,password_enabled\nx,y\n",
		`user,"access_key_1_active` + "\n",
		"", "\n", ",,,\n,,,",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		keys, err := parseRootKeys(content)
		if err != nil {
			if keys != nil {
				t.Fatalf("error %v with partial result %+v", err, keys)
			}
			if !strings.HasPrefix(err.Error(), "credential report") {
				t.Fatalf("error does not name the operation: %v", err)
			}
			return
		}
		if len(keys) > 2 {
			t.Fatalf("%d root keys: at most 2", len(keys))
		}
		for i, k := range keys {
			if k.Slot != 1 && k.Slot != 2 {
				t.Fatalf("slot %d", k.Slot)
			}
			if i > 0 && keys[i-1].Slot >= k.Slot {
				t.Fatalf("slots out of order: %+v", keys)
			}
			if !k.Active && k.LastRotated == nil {
				t.Fatalf("slot %d is neither active nor rotated but reported as a key", k.Slot)
			}
			for _, tm := range []*time.Time{k.LastRotated, k.LastUsedAt} {
				if tm != nil && tm.Location() != time.UTC {
					t.Fatalf("time %v is not UTC", tm)
				}
			}
		}
	})
}
