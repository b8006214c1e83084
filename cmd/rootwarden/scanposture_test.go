package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

// Root credentials other than access keys and the organization's centralized root
// access are reported; the exit code still says root access keys only.
func TestScanReportsRootCredentialPosture(t *testing.T) {
	sim := scanSim(t, 3)
	const pw, cert, clean = "200000000001", "200000000002", "200000000003"
	sim.SetLoginProfile(pw, true, time.Now())       // a password, no MFA
	sim.AddSigningCertificate(cert)                 // a signing certificate only
	sim.SetLoginProfile(scanMgmt, true, time.Now()) // the management account: password and MFA
	sim.AddMFADevice(scanMgmt, awssim.MFAHardware)
	role := "OrganizationAccountAccessRole"

	t.Run("table: exit 0 without access keys, every credential shown", func(t *testing.T) {
		code, out, errOut := runScanT(t, "--org-role", role)
		if code != 0 {
			t.Fatalf("exit %d, want 0 (no root access keys)\n%s\n%s", code, out, errOut)
		}
		for account, cell := range map[string]string{pw: "password, MFA off", cert: "signing certificate, MFA off", clean: "none", scanMgmt: "password, MFA on"} {
			if row := lineWith(out, account); !strings.HasSuffix(strings.TrimSpace(row), cell) {
				t.Errorf("row of %s = %q, want it to end with %q", account, row, cell)
			}
		}
		want := "Root credentials: 0 with access keys, 1 with signing certificates, 2 with a password; 1 of 4 checked root-credential-free. Cases open for access keys only."
		if !strings.Contains(out, want) {
			t.Errorf("posture line missing:\n%s", out)
		}
		if !strings.Contains(out, "Centralized root access: unknown: ServiceAccessNotEnabledException") || !strings.Contains(out, "enable trusted access for IAM") {
			t.Errorf("centralized root access line:\n%s", out)
		}
	})

	t.Run("json-report: the organization object", func(t *testing.T) {
		sim.SetOrgFeatures(awssim.OrgFeatures{RootCredentialsManagement: true})
		code, out, _ := runScanT(t, "--org-role", role, "--format", "json-report")
		var rep struct {
			Organization map[string]any `json:"organization"`
			Accounts     []scanRow      `json:"accounts"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Accounts) != 4 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		o := rep.Organization
		with := o["accounts_with_root_credentials"].(map[string]any)
		if o["mode"] != "organization" || o["root_credentials_management"] != true || o["root_sessions"] != false ||
			o["centralized_root_access_error"] != nil || o["accounts_root_credential_free"] != float64(1) ||
			with["password"] != float64(2) || with["signing_certificates"] != float64(1) || with["access_keys"] != float64(0) {
			t.Errorf("organization = %v", o)
		}
		if !strings.HasPrefix(o["organization_id"].(string), "o-") {
			t.Errorf("organization_id = %v", o["organization_id"])
		}
		code, out, _ = runScanT(t, "--org-role", role)
		if code != 0 || !strings.Contains(out, "root credentials management on, root sessions off (CIS AWS Foundations Benchmark v7.0.0 2.1.1)") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})

	t.Run("ocsf: MFA, signing certificate and centralized root access findings", func(t *testing.T) {
		_, out, _ := runScanT(t, "--org-role", role, "--format", "ocsf")
		var fs []map[string]any
		if err := json.Unmarshal([]byte(out), &fs); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{} // event_code/account → status_code severity
		for _, f := range fs {
			code := f["metadata"].(map[string]any)["event_code"].(string)
			if c := f["unmapped"].(map[string]any)["compliance"].([]any); code == "iam_no_root_access_key" && !slices.Contains(c, any("CIS AWS Foundations Benchmark v7.0.0 2.4")) {
				t.Errorf("root access key finding without CIS v7.0.0 2.4: %v", c)
			}
			acct := f["cloud"].(map[string]any)["account"].(map[string]any)["uid"].(string)
			got[code+"/"+acct] = f["status_code"].(string) + " " + f["severity"].(string)
		}
		for k, want := range map[string]string{
			"iam_root_mfa_enabled/" + pw:                          "FAIL Critical",
			"iam_root_mfa_enabled/" + clean:                       "PASS Informational",
			"iam_root_mfa_enabled/" + scanMgmt:                    "PASS Informational",
			"iam_no_root_signing_certificate/" + cert:             "FAIL High",
			"iam_no_root_signing_certificate/" + pw:               "PASS Informational",
			"iam_root_credentials_management_enabled/" + scanMgmt: "PASS Informational",
			"iam_no_root_access_key/" + cert:                      "PASS Informational",
		} {
			if got[k] != want {
				t.Errorf("%s = %q, want %q", k, got[k], want)
			}
		}
	})

	t.Run("sarif: signing certificate, password without MFA; centralized root access on is no problem", func(t *testing.T) {
		_, out, _ := runScanT(t, "--org-role", role, "-o", "sarif")
		var doc struct {
			Runs []struct {
				Results []struct {
					RuleID  string `json:"ruleId"`
					Message struct{ Text string }
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Runs) != 1 {
			t.Fatalf("%v\n%s", err, out)
		}
		got := map[string]int{}
		for _, r := range doc.Runs[0].Results {
			got[r.RuleID]++
			if r.RuleID == "root-mfa" && !strings.Contains(r.Message.Text, pw) && !strings.Contains(r.Message.Text, cert) {
				t.Errorf("root-mfa for the wrong account: %s", r.Message.Text)
			}
		}
		if got["root-signing-certificate"] != 1 || got["root-mfa"] != 2 || got["centralized-root-access"] != 0 || len(doc.Runs[0].Results) != 3 {
			t.Errorf("results %v (root-mfa: member-1's password and member-2's certificate, both without MFA)", got)
		}
	})

	t.Run("a password AWS does not report is unknown, and says so", func(t *testing.T) {
		sim.OmitSummaryKey("AccountPasswordPresent")
		defer sim.OmitSummaryKey("")
		code, out, _ := runScanT(t, "--org-role", role, "--json")
		var rows []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, r := range rows {
			rc := r["root_credentials"].(map[string]any)
			if v, ok := rc["password"]; !ok || v != nil {
				t.Errorf("%v: password = %v, want null", r["account_id"], v)
			}
		}
		_, out, _ = runScanT(t, "--org-role", role)
		if !strings.Contains(out, "password unknown for 4 (AWS's account summary did not say)") || !strings.Contains(out, "0 of 4 checked root-credential-free") {
			t.Errorf("summary:\n%s", out)
		}
		if row := lineWith(out, clean); !strings.Contains(row, "password unknown") {
			t.Errorf("row = %q", row)
		}
	})

	t.Run("a root access key: exit 1, as before", func(t *testing.T) {
		sim.CreateRootKey(clean, time.Now())
		if code, out, _ := runScanT(t, "--org-role", role); code != 1 {
			t.Fatalf("exit %d, want 1\n%s", code, out)
		}
	})
}
