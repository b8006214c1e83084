package detector_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/model"
)

func TestScanSingleAccount(t *testing.T) {
	w := newWorld(t, 0, false, awssim.Options{})

	t.Run("no root keys", func(t *testing.T) {
		got := w.scan(t, w.config(""))
		o, ok := got[mgmtID]
		if len(got) != 1 || !ok {
			t.Fatalf("observations = %+v, want one for %s", got, mgmtID)
		}
		if o.RootKeysPresent || len(o.Keys) != 0 || o.Failed() {
			t.Errorf("observation = %+v, want no keys and no error", o)
		}
		if o.AccountName != "acme-mgmt" || !o.Management || o.OrgMember || o.Source != model.SourceCheck {
			t.Errorf("account fields = name %q management %v member %v source %s", o.AccountName, o.Management, o.OrgMember, o.Source)
		}
		if !o.ObservedAt.Equal(w.clock.Now()) || o.ID == "" || o.SchemaVersion != model.SchemaVersion {
			t.Errorf("id/time/schema = %q %v %d", o.ID, o.ObservedAt, o.SchemaVersion)
		}
		if calls := w.sim.Calls(); calls["IAM.GenerateCredentialReport"]+calls["IAM.GetCredentialReport"] != 0 {
			t.Errorf("credential report read although the summary says 0: %v", calls)
		}
	})

	t.Run("root key present with details from the credential report", func(t *testing.T) {
		created := w.clock.Now().Add(-400 * 24 * time.Hour)
		k1 := w.sim.CreateRootKey(mgmtID, created)
		w.sim.UseRootKey(mgmtID, k1, w.clock.Now().Add(-2*time.Hour), "eu-west-1", "s3")
		k2 := w.sim.CreateRootKey(mgmtID, w.clock.Now().Add(-time.Hour))
		w.sim.SetRootKeyActive(mgmtID, k2, false)
		t.Cleanup(func() { w.sim.DeleteRootKey(mgmtID, k1); w.sim.DeleteRootKey(mgmtID, k2) })

		o := w.scan(t, w.config(""))[mgmtID]
		if !o.RootKeysPresent || o.Failed() || len(o.Keys) != 2 {
			t.Fatalf("observation = %+v, want 2 keys", o)
		}
		a, b := o.Keys[0], o.Keys[1]
		if a.Slot != 1 || !a.Active || a.LastRotated == nil || !a.LastRotated.Equal(created) ||
			a.LastUsedAt == nil || !a.LastUsedAt.Equal(w.clock.Now().Add(-2*time.Hour)) || a.LastUsedRegion != "eu-west-1" || a.LastUsedService != "s3" {
			t.Errorf("key 1 = %+v", a)
		}
		if b.Slot != 2 || b.Active || b.LastUsedAt != nil {
			t.Errorf("key 2 = %+v", b)
		}
		if o.ReportAt == nil || !o.ReportAt.Equal(w.clock.Now()) {
			t.Errorf("credential_report_at = %v", o.ReportAt)
		}
		if model.SeverityOf(o, w.clock.Now()) != model.SeverityCritical {
			t.Errorf("a key used 2h ago must rate critical")
		}
	})
}

func TestScanCredentialReport(t *testing.T) {
	t.Run("a stale report that still lists a deleted key does not bring it back", func(t *testing.T) {
		w := newWorld(t, 0, false, awssim.Options{})
		k := w.sim.CreateRootKey(mgmtID, w.clock.Now().Add(-24*time.Hour))
		if o := w.scan(t, w.config(""))[mgmtID]; !o.RootKeysPresent || len(o.Keys) != 1 {
			t.Fatalf("before deletion: %+v", o)
		}
		w.sim.DeleteRootKey(mgmtID, k)
		w.clock.Add(time.Hour) // the report (still listing the key) is reused for 4 hours
		if !reportListsKey(t, w) {
			t.Fatal("test set-up: the simulator's report should still list the deleted key")
		}
		o := w.scan(t, w.config(""))[mgmtID]
		if o.RootKeysPresent || len(o.Keys) != 0 || o.Failed() {
			t.Errorf("after deletion: %+v, want no keys (the summary says 0)", o)
		}
	})

	t.Run("summary says 1 but a fresh report predates the key: present without details", func(t *testing.T) {
		w := newWorld(t, 0, false, awssim.Options{})
		// A report generated before the key existed.
		generateReport(t, w)
		w.clock.Add(time.Minute)
		w.sim.CreateRootKey(mgmtID, w.clock.Now())
		o := w.scan(t, w.config(""))[mgmtID]
		if !o.RootKeysPresent || o.Failed() || len(o.Keys) != 0 {
			t.Errorf("observation = %+v, want present with no details", o)
		}
	})

	t.Run("a report older than 4 hours is regenerated", func(t *testing.T) {
		w := newWorld(t, 0, false, awssim.Options{})
		k := w.sim.CreateRootKey(mgmtID, w.clock.Now().Add(-24*time.Hour))
		if o := w.scan(t, w.config(""))[mgmtID]; len(o.Keys) != 1 || o.Keys[0].LastUsedAt != nil {
			t.Fatalf("first scan: %+v", o)
		}
		w.clock.Add(5 * time.Hour)
		w.sim.UseRootKey(mgmtID, k, w.clock.Now().Add(-time.Minute), "us-east-1", "ec2")
		o := w.scan(t, w.config(""))[mgmtID]
		if len(o.Keys) != 1 || o.Keys[0].LastUsedAt == nil || o.Keys[0].LastUsedService != "ec2" {
			t.Errorf("second scan: %+v, want the new last use", o)
		}
		if o.ReportAt == nil || !o.ReportAt.Equal(w.clock.Now()) {
			t.Errorf("report time = %v, want a new report", o.ReportAt)
		}
	})

	t.Run("a report that never completes leaves presence decided within the account timeout", func(t *testing.T) {
		w := newWorld(t, 0, false, awssim.Options{ReportDelay: time.Hour}) // the clock does not move
		w.sim.CreateRootKey(mgmtID, w.clock.Now())
		cfg := w.config("")
		cfg.AccountTimeout = 700 * time.Millisecond
		start := time.Now()
		o := w.scan(t, cfg)[mgmtID]
		if !o.RootKeysPresent || o.Failed() {
			t.Errorf("observation = %+v, want present and no error", o)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("scan took %s; the account timeout is 700ms", d)
		}
		if n := w.sim.Calls()["IAM.GenerateCredentialReport"]; n < 2 {
			t.Errorf("GenerateCredentialReport called %d times; want polling", n)
		}
	})
}

// generateReport makes the simulator build a report now, as the admin user.
func generateReport(t *testing.T, w *world) {
	t.Helper()
	c := iam.NewFromConfig(w.awsConfig())
	for range 3 {
		out, err := c.GenerateCredentialReport(context.Background(), &iam.GenerateCredentialReportInput{})
		if err != nil {
			t.Fatal(err)
		}
		if out.State == "COMPLETE" {
			return
		}
	}
	t.Fatal("report not complete")
}

func reportListsKey(t *testing.T, w *world) bool {
	t.Helper()
	out, err := iam.NewFromConfig(w.awsConfig()).GetCredentialReport(context.Background(), &iam.GetCredentialReportInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out.Content), "\n") {
		if strings.HasPrefix(line, "<root_account>") {
			return strings.Contains(line, ",true,")
		}
	}
	return false
}

func TestScanOrganization(t *testing.T) {
	w := newWorld(t, 7, true, awssim.Options{})
	w.sim.SetPageSize(2)
	w.sim.SetAccountState(member(7), "SUSPENDED")
	w.sim.CreateRootKey(member(1), w.clock.Now().Add(-time.Hour))
	w.sim.SetAccessDenied(member(2), true)
	w.sim.DenyAssumeRole(member(3), true)
	w.sim.Throttle(member(4), 2)               // retried, then fine
	w.sim.CreateRootKey(mgmtID, w.clock.Now()) // the management account, with base credentials

	got := w.scan(t, w.config("OrganizationAccountAccessRole"))

	if len(got) != 7 {
		t.Fatalf("checked %d accounts, want 7 (management + 6 ACTIVE members): %v", len(got), keys(got))
	}
	if _, ok := got[member(7)]; ok {
		t.Error("a SUSPENDED account was checked")
	}
	m := got[mgmtID]
	if !m.Management || m.OrgMember || m.AccountName != "management" || !m.RootKeysPresent {
		t.Errorf("management = %+v", m)
	}
	if o := got[member(1)]; !o.RootKeysPresent || o.Failed() || !o.OrgMember || o.Management || o.AccountName != "member-1" || len(o.Keys) != 1 {
		t.Errorf("member-1 = %+v", o)
	}
	if o := got[member(2)]; o.ErrorCode != "AccessDenied" || o.Error == "" || o.RootKeysPresent {
		t.Errorf("member-2 (IAM denied) = %+v", o)
	}
	if o := got[member(3)]; o.ErrorCode != "AccessDenied" || !strings.Contains(o.Error, "AssumeRole") {
		t.Errorf("member-3 (AssumeRole denied) = %+v", o)
	}
	for _, id := range []string{member(4), member(5), member(6)} {
		if o := got[id]; o.Failed() || o.RootKeysPresent {
			t.Errorf("%s = %+v, want checked without keys", id, o)
		}
	}
	calls := w.sim.Calls()
	// The tree and ListAccounts list at once; ListAccounts stops once the tree is done.
	if n, flat := calls["Organizations.ListAccountsForParent"], calls["Organizations.ListAccounts"]; n != 4 || flat > 4 {
		t.Errorf("ListAccountsForParent called %d times, ListAccounts %d; want 4 pages of 2, and at most 4 of ListAccounts", n, flat)
	}
	if n := calls["STS.AssumeRole"]; n != 6 {
		t.Errorf("AssumeRole called %d times, want 6 (members only; management with base credentials)", n)
	}
	if n := calls["IAM.GetAccountSummary"]; n != 6+2 {
		t.Errorf("GetAccountSummary called %d times, want 8 (6 checked accounts + 2 throttled retries; none in member-3)", n)
	}
	for _, o := range got {
		w.assertNoSecrets(t, "observation "+o.AccountID, o.Error, member(1))
	}
	w.assertNoSecrets(t, "logs", w.logs.String(), member(1))
}

func TestScanThrottledPastRetries(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	w.sim.Throttle(member(1), 10)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.MaxAttempts = 2
	got := w.scan(t, cfg)
	if o := got[member(1)]; o.ErrorCode != "Throttling" || o.RootKeysPresent {
		t.Errorf("observation = %+v, want ErrorCode Throttling", o)
	}
	if o := got[member(2)]; o.Failed() {
		t.Errorf("the other member = %+v, want checked", o)
	}
	if n := w.sim.Calls()["IAM.GetAccountSummary"]; n != 2+2 {
		t.Errorf("GetAccountSummary called %d times, want 2 attempts in the throttled account + 1 each in the others", n)
	}
}

func TestScanSetupErrors(t *testing.T) {
	w := newWorld(t, 1, false, awssim.Options{})
	// The role name is set but the account is in no organization.
	sc, err := detector.NewScanner(w.config("OrganizationAccountAccessRole"), nil, w.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Scan(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "not in an AWS Organization") {
		t.Errorf("Scan = %v, want a not-in-an-organization error", err)
	}
	bad := w.config("")
	bad.SQSQueueURL = "::nope"
	if _, err := detector.NewScanner(bad, nil, w.awsConfig()); err != nil {
		t.Errorf("NewScanner ignores the SQS queue, got %v", err)
	}
	bad.Concurrency = -3
	if _, err := detector.NewScanner(bad, nil, w.awsConfig()); err == nil || !strings.HasPrefix(err.Error(), "ROOTWARDEN_SCAN_CONCURRENCY:") {
		t.Errorf("NewScanner = %v, want an error naming ROOTWARDEN_SCAN_CONCURRENCY", err)
	}
}

func TestScanProgress(t *testing.T) {
	old := *detector.ProgressEvery
	*detector.ProgressEvery = 20 * time.Millisecond
	t.Cleanup(func() { *detector.ProgressEvery = old })

	t.Run("large organization", func(t *testing.T) {
		w := newWorld(t, 150, true, awssim.Options{})
		w.sim.SetLatency(2 * time.Millisecond)
		w.sim.SetPageSize(20)
		sc, err := detector.NewScanner(w.config("OrganizationAccountAccessRole"), nil, w.awsConfig())
		if err != nil {
			t.Fatal(err)
		}
		var progress bytes.Buffer
		obs, err := sc.Scan(context.Background(), &progress)
		if err != nil || len(obs) != 151 {
			t.Fatalf("Scan = %d observations, %v", len(obs), err)
		}
		lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
		if len(lines) < 2 || lines[len(lines)-1] != "checked 151/151 accounts" || !strings.HasPrefix(lines[0], "checked ") {
			t.Errorf("progress = %q", progress.String())
		}
		for i := 1; i < len(obs); i++ {
			if obs[i-1].AccountID >= obs[i].AccountID {
				t.Fatalf("observations not sorted by account: %s before %s", obs[i-1].AccountID, obs[i].AccountID)
			}
		}
	})
	t.Run("few accounts: no progress", func(t *testing.T) {
		w := newWorld(t, 3, true, awssim.Options{})
		sc, _ := detector.NewScanner(w.config("OrganizationAccountAccessRole"), nil, w.awsConfig())
		var progress bytes.Buffer
		if _, err := sc.Scan(context.Background(), &progress); err != nil {
			t.Fatal(err)
		}
		if progress.Len() != 0 {
			t.Errorf("progress for 4 accounts: %q", progress.String())
		}
	})
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestScanExternalID(t *testing.T) {
	w := newWorld(t, 1, true, awssim.Options{})
	w.sim.AddRole(member(1), "OrganizationAccountAccessRole", "rootwarden-ext-7")
	cfg := w.config("OrganizationAccountAccessRole")
	if o := w.scan(t, cfg)[member(1)]; o.ErrorCode != "AccessDenied" {
		t.Errorf("without the external id: %+v, want AccessDenied", o)
	}
	cfg.ExternalID = "rootwarden-ext-7"
	if o := w.scan(t, cfg)[member(1)]; o.Failed() {
		t.Errorf("with the external id: %+v", o)
	}
}
