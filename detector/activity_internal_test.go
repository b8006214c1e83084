package detector

//   go test -run '^$' -fuzz '^FuzzParseActivity$' -fuzztime 30s ./detector

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/model"
)

func TestRootActivityEventsAreRecognised(t *testing.T) {
	at := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	const acct, mgmt = "222222222222", "111111111111"
	cases := []struct {
		name    string
		body    string
		want    bool
		kind    model.ActivityKind
		account string
		failed  bool
	}{
		{"root console sign-in with MFA", awssim.RootConsoleLoginEvent(acct, "198.51.100.7", true, true, at), true, model.ActivityConsoleLogin, acct, false},
		{"failed root console sign-in is counted", awssim.RootConsoleLoginEvent(acct, "198.51.100.7", false, false, at), true, model.ActivityConsoleLoginFailed, acct, true},
		{"root password changed", awssim.RootPasswordEvent(acct, "PasswordUpdated", "198.51.100.7", at), true, model.ActivityPasswordChanged, acct, false},
		{"root password recovery requested", awssim.RootPasswordEvent(acct, "PasswordRecoveryRequested", "198.51.100.7", at), true, model.ActivityPasswordRecovery, acct, false},
		{"root password recovery completed", awssim.RootPasswordEvent(acct, "PasswordRecoveryCompleted", "198.51.100.7", at), true, model.ActivityPasswordRecovery, acct, false},
		{"root MFA deactivated", awssim.RootMFARemovedEvent(acct, "DeactivateMFADevice", at), true, model.ActivityMFARemoved, acct, false},
		{"root virtual MFA deleted", awssim.RootMFARemovedEvent(acct, "DeleteVirtualMFADevice", at), true, model.ActivityMFARemoved, acct, false},
		{"root signing certificate uploaded", awssim.RootSigningCertUploadedEvent(acct, at), true, model.ActivitySigningCertUploaded, acct, false},
		{"AssumeRoot by someone else is about the target member", awssim.AssumeRootEvent(mgmt, "Admin", "alice", acct, at), true, model.ActivityAssumeRoot, acct, false},
		{"AssumeRoot by rootwarden's own case session is not asked about", awssim.AssumeRootEvent(mgmt, "rootwarden", RootSessionPrefix+"222222222222-1-abc", acct, at), false, "", "", false},
		{"a root key event is not activity", awssim.RootKeyCreatedEvent(acct, "AKIAEXAMPLEEXAMPLE01", at), false, "", "", false},
		{"an IAM user's MFA removal is not root activity", strings.Replace(awssim.RootMFARemovedEvent(acct, "DeactivateMFADevice", at), `"serialNumber"`, `"userName":"bob","serialNumber"`, 1), false, "", "", false},
		{"malformed", "{", false, "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, ok := parseActivity([]byte(c.body))
			if ok != c.want {
				t.Fatalf("parseActivity = %v, want %v", ok, c.want)
			}
			if !ok {
				return
			}
			if ev.Item.Kind != c.kind || ev.Account != c.account || ev.Failed != c.failed || ev.Item.EventID == "" || !ev.Item.At.Equal(at) {
				t.Fatalf("got %+v", ev)
			}
		})
	}
	ev, _ := parseActivity([]byte(awssim.RootConsoleLoginEvent(acct, "198.51.100.7", true, false, at)))
	if ev.Item.MFAUsed != "No" || ev.Item.SourceIP != "198.51.100.7" || !strings.Contains(ev.Item.UserAgent, "Mozilla") {
		t.Fatalf("sign-in details lost: %+v", ev.Item)
	}
}

func TestFailedSignInsAskOncePerAccountAndHour(t *testing.T) {
	var f failedLogins
	at := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	reports := 0
	for i := range 2 * FailedLoginThreshold {
		if _, ok := f.add("222222222222", at.Add(time.Duration(i)*time.Minute)); ok {
			reports++
		}
	}
	if reports != 1 {
		t.Fatalf("%d reports for %d failures in an hour, want 1", reports, 2*FailedLoginThreshold)
	}
	if _, ok := f.add("333333333333", at); ok {
		t.Fatal("another account's first failure reported")
	}
	for i := range FailedLoginThreshold {
		if _, ok := f.add("222222222222", at.Add(time.Hour+time.Duration(i)*time.Second)); ok != (i == FailedLoginThreshold-1) {
			t.Fatalf("next hour, failure %d: report %v", i+1, ok)
		}
	}
}

func FuzzParseActivity(f *testing.F) {
	at := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	const acct = "222222222222"
	for _, s := range []string{
		awssim.RootConsoleLoginEvent(acct, "198.51.100.7", true, true, at),
		awssim.RootConsoleLoginEvent(acct, "198.51.100.7", false, false, at),
		awssim.RootPasswordEvent(acct, "PasswordUpdated", "198.51.100.7", at),
		awssim.RootPasswordEvent(acct, "PasswordRecoveryRequested", "198.51.100.7", at),
		awssim.RootMFARemovedEvent(acct, "DeleteVirtualMFADevice", at),
		awssim.RootSigningCertUploadedEvent(acct, at),
		awssim.AssumeRootEvent("111111111111", "Admin", "alice", acct, at),
		awssim.AssumeRootEvent("111111111111", "Admin", "alice", "arn:aws:iam::"+acct+":root", at),
		`{"detail-type":"AWS Console Sign In via CloudTrail","detail":{"eventID":"x","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","userIdentity":{"type":"Root"},"responseElements":"oops"}}`,
		`{}`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, ok := parseActivity(body)
		if !ok {
			return
		}
		// Whatever is reported names a 12-digit account, a known kind and an event id.
		if !accountIDRE.MatchString(ev.Account) || ev.Item.EventID == "" || ev.Item.Kind == "" {
			t.Fatalf("accepted without an account, kind or event id: %+v", ev)
		}
		if ev.Failed != (ev.Item.Kind == model.ActivityConsoleLoginFailed) {
			t.Fatalf("failed flag and kind disagree: %+v", ev)
		}
		_ = utf8.ValidString(ev.Item.UserAgent)
		// A body that is activity is never also a key trigger: the two paths never both act.
		if trig, _ := parseEvent(body); trig != nil && ev.Item.Kind != model.ActivityAssumeRoot {
			t.Fatalf("both activity and a key trigger: %+v / %+v", ev, trig)
		}
	})
}
