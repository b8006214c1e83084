package detector

import (
	"strings"
	"testing"
	"time"
)

const reportHeader = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active," +
	"access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service," +
	"access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service," +
	"cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated"

func rootRow(k1, k2 string) string {
	return "<root_account>,arn:aws:iam::111111111111:root,2020-01-01T00:00:00+00:00,not_supported,no_information,not_supported,not_supported,true," +
		k1 + "," + k2 + ",false,N/A,false,N/A"
}

func TestParseRootKeys(t *testing.T) {
	alice := "alice,arn:aws:iam::111111111111:user/alice,2021-01-01T00:00:00+00:00,true,2024-01-01T00:00:00+00:00,N/A,N/A,false," +
		"true,2023-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
	noKey := "false,N/A,N/A,N/A,N/A"
	tests := []struct {
		name     string
		report   string
		want     int
		check    func(t *testing.T, k1 keyView)
		wantErr  string
		checkAll func(t *testing.T, keys []keyView)
	}{
		{name: "no root keys", report: reportHeader + "\n" + alice + "\n" + rootRow(noKey, noKey), want: 0},
		{name: "one active key used recently", report: reportHeader + "\n" + rootRow(
			"true,2024-05-01T10:00:00+00:00,2024-06-02T08:30:00+00:00,us-east-1,s3", noKey), want: 1,
			check: func(t *testing.T, k keyView) {
				if k.Slot != 1 || !k.Active || k.Rotated != "2024-05-01T10:00:00Z" || k.Used != "2024-06-02T08:30:00Z" ||
					k.Region != "us-east-1" || k.Service != "s3" {
					t.Errorf("key = %+v", k)
				}
			}},
		{name: "upper-case booleans from the docs", report: reportHeader + "\n" + rootRow(
			"TRUE,2024-05-01T10:00:00+00:00,N/A,N/A,N/A", "FALSE,2024-05-02T10:00:00+00:00,no_information,N/A,N/A"), want: 2,
			checkAll: func(t *testing.T, keys []keyView) {
				if !keys[0].Active || keys[1].Active || keys[1].Slot != 2 || keys[0].Used != "" || keys[1].Used != "" {
					t.Errorf("keys = %+v", keys)
				}
			}},
		{name: "inactive key is still a key", report: reportHeader + "\n" + rootRow(noKey,
			"false,2022-03-04T05:06:07+00:00,N/A,N/A,N/A"), want: 1,
			check: func(t *testing.T, k keyView) {
				if k.Slot != 2 || k.Active || k.Rotated != "2022-03-04T05:06:07Z" {
					t.Errorf("key = %+v", k)
				}
			}},
		{name: "columns in another order and CRLF", report: strings.ReplaceAll(
			"arn,user,access_key_1_active,access_key_1_last_rotated\n"+
				"arn:aws:iam::1:root,<root_account>,true,2024-05-01T10:00:00+00:00\n", "\n", "\r\n"), want: 1},
		{name: "no root row", report: reportHeader + "\n" + alice, wantErr: "no <root_account> row"},
		{name: "empty", report: "", wantErr: "header"},
		{name: "no user column", report: "a,b\n1,2\n", wantErr: "no user column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseRootKeys([]byte(tt.report))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if keys == nil {
				t.Fatal("keys is nil; want a non-nil slice (JSON [])")
			}
			if len(keys) != tt.want {
				t.Fatalf("got %d keys, want %d: %+v", len(keys), tt.want, keys)
			}
			var views []keyView
			for _, k := range keys {
				v := keyView{Slot: k.Slot, Active: k.Active, Region: k.LastUsedRegion, Service: k.LastUsedService}
				if k.LastRotated != nil {
					v.Rotated = k.LastRotated.Format(time.RFC3339)
				}
				if k.LastUsedAt != nil {
					v.Used = k.LastUsedAt.Format(time.RFC3339)
				}
				views = append(views, v)
			}
			if tt.check != nil {
				tt.check(t, views[0])
			}
			if tt.checkAll != nil {
				tt.checkAll(t, views)
			}
		})
	}
}

type keyView struct {
	Slot            int
	Active          bool
	Rotated, Used   string
	Region, Service string
}

func TestReportWordsForNothing(t *testing.T) {
	for _, s := range []string{"N/A", "n/a", "no_information", "not_supported", ""} {
		if v, known := parseReportBool(s); v || known {
			t.Errorf("parseReportBool(%q) = %v, %v", s, v, known)
		}
		if parseReportTime(s) != nil {
			t.Errorf("parseReportTime(%q) is not nil", s)
		}
	}
	if parseReportTime("yesterday") != nil {
		t.Error("unreadable time must be nil")
	}
}

func TestRedactRemovesSecrets(t *testing.T) {
	secret := "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	in := "failed: SecretAccessKey=" + secret + " token: FQoGZXIvYXdzEJr sig Signature=abc123 plain " + secret + "."
	out := redact(in)
	for _, bad := range []string{secret, "FQoGZXIvYXdzEJr", "abc123"} {
		if strings.Contains(out, bad) {
			t.Errorf("redact left %q in %q", bad, out)
		}
	}
	if !strings.Contains(out, "failed") {
		t.Errorf("redact removed too much: %q", out)
	}
}
