package awssim_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

const wantHeader = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated"

func summaryKeys(t *testing.T, c clients) int32 {
	t.Helper()
	out, err := c.iam.GetAccountSummary(ctx(t), &iam.GetAccountSummaryInput{})
	if err != nil {
		t.Fatalf("GetAccountSummary: %v", err)
	}
	v, ok := out.SummaryMap["AccountAccessKeysPresent"]
	if !ok {
		t.Fatalf("SummaryMap has no AccountAccessKeysPresent: %v", out.SummaryMap)
	}
	if out.SummaryMap["UsersQuota"] != 5000 {
		t.Fatalf("UsersQuota = %d, want a realistic 5000", out.SummaryMap["UsersQuota"])
	}
	return v
}

func TestAccountSummaryReportsRootKeysPresence(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	c := e.admin(t, prodID)
	if got := summaryKeys(t, c); got != 0 {
		t.Fatalf("no root keys: AccountAccessKeysPresent = %d, want 0", got)
	}
	k := e.sim.CreateRootKey(prodID, time.Time{})
	if !strings.HasPrefix(k, "AKIA") || len(k) != 20 {
		t.Fatalf("root key id %q is not AKIA + 16 chars", k)
	}
	if got := summaryKeys(t, c); got != 1 {
		t.Fatalf("one root key: AccountAccessKeysPresent = %d, want 1", got)
	}
	e.sim.SetRootKeyActive(prodID, k, false)
	if got := summaryKeys(t, c); got != 1 {
		t.Fatalf("inactive root key still counts: AccountAccessKeysPresent = %d, want 1", got)
	}
	if got := summaryKeys(t, e.admin(t, devID)); got != 0 {
		t.Fatalf("other account: AccountAccessKeysPresent = %d, want 0", got)
	}
	e.sim.DeleteRootKey(prodID, k)
	if got := summaryKeys(t, c); got != 0 {
		t.Fatalf("after delete: AccountAccessKeysPresent = %d, want 0", got)
	}
	if n := e.sim.Calls()["IAM.GetAccountSummary"]; n != 5 {
		t.Fatalf("Calls()[IAM.GetAccountSummary] = %d, want 5", n)
	}
}

func generate(t *testing.T, c clients) types.ReportStateType {
	t.Helper()
	out, err := c.iam.GenerateCredentialReport(ctx(t), &iam.GenerateCredentialReportInput{})
	if err != nil {
		t.Fatalf("GenerateCredentialReport: %v", err)
	}
	return out.State
}

func rootRow(t *testing.T, content []byte) []string {
	t.Helper()
	if !bytes.HasPrefix(content, []byte(wantHeader+"\n")) {
		t.Fatalf("report does not start with the exact header:\n%s", content)
	}
	rows, err := csv.NewReader(bytes.NewReader(content)).ReadAll()
	if err != nil {
		t.Fatalf("parse report CSV: %v", err)
	}
	for _, r := range rows {
		if len(r) != 22 {
			t.Fatalf("row has %d columns, want 22: %v", len(r), r)
		}
	}
	for _, r := range rows[1:] {
		if r[0] == "<root_account>" {
			return r
		}
	}
	t.Fatalf("no <root_account> row in\n%s", content)
	return nil
}

func TestCredentialReportFlow(t *testing.T) {
	e := newEnv(t, awssim.Options{ReportDelay: 10 * time.Second})
	k1 := e.sim.CreateRootKey(prodID, time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	e.sim.UseRootKey(prodID, k1, time.Date(2024, 5, 30, 8, 15, 0, 0, time.UTC), "eu-west-1", "s3")
	k2 := e.sim.CreateRootKey(prodID, time.Date(2024, 5, 2, 11, 0, 0, 0, time.UTC))
	e.sim.SetRootKeyActive(prodID, k2, false)
	c := e.admin(t, prodID)

	_, err := c.iam.GetCredentialReport(ctx(t), &iam.GetCredentialReportInput{})
	apiErr(t, err, "ReportNotPresent", 410)

	if s := generate(t, c); s != types.ReportStateTypeStarted {
		t.Fatalf("first generate = %s, want STARTED", s)
	}
	if s := generate(t, c); s != types.ReportStateTypeInprogress {
		t.Fatalf("generate while generating = %s, want INPROGRESS", s)
	}
	_, err = c.iam.GetCredentialReport(ctx(t), &iam.GetCredentialReportInput{})
	apiErr(t, err, "ReportInProgress", 404)

	e.clock.Add(11 * time.Second)
	if s := generate(t, c); s != types.ReportStateTypeComplete {
		t.Fatalf("generate after the delay = %s, want COMPLETE", s)
	}
	rep, err := c.iam.GetCredentialReport(ctx(t), &iam.GetCredentialReportInput{})
	if err != nil {
		t.Fatalf("GetCredentialReport: %v", err)
	}
	if rep.ReportFormat != types.ReportFormatTypeTextCsv || rep.GeneratedTime == nil || !rep.GeneratedTime.Equal(time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("format %q generated %v", rep.ReportFormat, rep.GeneratedTime)
	}
	want := "<root_account>,arn:aws:iam::" + prodID + ":root,2020-01-01T00:00:00+00:00,not_supported,no_information,not_supported,not_supported,false," +
		"true,2024-05-01T10:00:00+00:00,2024-05-30T08:15:00+00:00,eu-west-1,s3," +
		"false,2024-05-02T11:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A"
	if got := strings.Join(rootRow(t, rep.Content), ","); got != want {
		t.Fatalf("root row\n got %s\nwant %s", got, want)
	}

	t.Run("report is a snapshot reused for 4 hours", func(t *testing.T) {
		e.sim.DeleteRootKey(prodID, k1)
		e.sim.DeleteRootKey(prodID, k2)
		if got := summaryKeys(t, c); got != 0 {
			t.Fatalf("summary after deletion = %d, want 0", got)
		}
		e.clock.Add(3 * time.Hour)
		if s := generate(t, c); s != types.ReportStateTypeComplete {
			t.Fatalf("generate within 4h = %s, want COMPLETE (reused)", s)
		}
		rep, err := c.iam.GetCredentialReport(ctx(t), &iam.GetCredentialReportInput{})
		if err != nil {
			t.Fatal(err)
		}
		if r := rootRow(t, rep.Content); r[8] != "true" || r[9] != "2024-05-01T10:00:00+00:00" {
			t.Fatalf("stale report should still list the deleted key: %v", r)
		}
	})
	t.Run("report expires after 4 hours and a new one drops the deleted keys", func(t *testing.T) {
		e.clock.Add(time.Hour + time.Second)
		_, err := c.iam.GetCredentialReport(ctx(t), &iam.GetCredentialReportInput{})
		apiErr(t, err, "ReportExpired", 410)
		if s := generate(t, c); s != types.ReportStateTypeStarted {
			t.Fatalf("generate after 4h = %s, want STARTED", s)
		}
		e.clock.Add(10 * time.Second)
		rep, err := c.iam.GetCredentialReport(ctx(t), &iam.GetCredentialReportInput{})
		if err != nil {
			t.Fatal(err)
		}
		r := rootRow(t, rep.Content)
		if got := strings.Join(r[8:18], ","); got != "false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A" {
			t.Fatalf("fresh report key columns = %s", got)
		}
	})
}

func TestCredentialReportWithoutDelayCompletesOnNextCall(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	c := e.admin(t, devID)
	if s := generate(t, c); s != types.ReportStateTypeStarted {
		t.Fatalf("generate = %s, want STARTED", s)
	}
	if s := generate(t, c); s != types.ReportStateTypeComplete {
		t.Fatalf("second generate = %s, want COMPLETE", s)
	}
}

func TestListAccountAliases(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	out, err := e.admin(t, prodID).iam.ListAccountAliases(ctx(t), &iam.ListAccountAliasesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AccountAliases) != 1 || out.AccountAliases[0] != "acme-prod" {
		t.Fatalf("aliases = %v, want [acme-prod]", out.AccountAliases)
	}
	out, err = e.admin(t, devID).iam.ListAccountAliases(ctx(t), &iam.ListAccountAliasesInput{})
	if err != nil || len(out.AccountAliases) != 0 {
		t.Fatalf("dev aliases = %v, %v; want none", out.AccountAliases, err)
	}
}

func TestRootKeyCallerManagesItsOwnKeys(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	k1 := e.sim.CreateRootKey(devID, time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	k2 := e.sim.CreateRootKey(devID, time.Time{})
	root := e.root(t, devID, k1)

	out, err := root.iam.ListAccessKeys(ctx(t), &iam.ListAccessKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AccessKeyMetadata) != 2 || aws.ToString(out.AccessKeyMetadata[0].AccessKeyId) != k1 ||
		out.AccessKeyMetadata[0].Status != types.StatusTypeActive {
		t.Fatalf("ListAccessKeys = %+v", out.AccessKeyMetadata)
	}
	lu, err := root.iam.GetAccessKeyLastUsed(ctx(t), &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(k2)})
	if err != nil {
		t.Fatal(err)
	}
	if lu.AccessKeyLastUsed == nil || lu.AccessKeyLastUsed.LastUsedDate != nil || aws.ToString(lu.AccessKeyLastUsed.Region) != "N/A" {
		t.Fatalf("never used key: %+v", lu.AccessKeyLastUsed)
	}
	if _, err := root.iam.DeleteAccessKey(ctx(t), &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(k2)}); err != nil {
		t.Fatal(err)
	}
	if keys := e.sim.RootKeys(devID); len(keys) != 1 || keys[0].ID != k1 {
		t.Fatalf("after delete RootKeys = %+v", keys)
	}
	_, err = root.iam.DeleteAccessKey(ctx(t), &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(k2)})
	apiErr(t, err, "NoSuchEntity", 404)

	// The admin IAM user cannot delete the root user's key.
	_, err = e.admin(t, devID).iam.DeleteAccessKey(ctx(t), &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(k1)})
	apiErr(t, err, "NoSuchEntity", 404)
	// A deleted key no longer authenticates.
	_, err = e.clients(t, k2, "x", "").iam.GetAccountSummary(ctx(t), &iam.GetAccountSummaryInput{})
	apiErr(t, err, "InvalidClientTokenId", 403)
}
