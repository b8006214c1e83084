package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

const scanMgmt = "111111111111"

// scanSim starts a simulator with an organization (management + members) and points
// the SDK's standard variables at it, signing as the management account's admin.
func scanSim(t *testing.T, members int) *awssim.Sim {
	t.Helper()
	sim := awssim.New(awssim.Options{})
	sim.AddAccount(awssim.Account{ID: scanMgmt, Name: "management", Management: true, Alias: "acme-mgmt"})
	for i := 1; i <= members; i++ {
		sim.AddAccount(awssim.Account{ID: fmt.Sprintf("2%011d", i), Name: fmt.Sprintf("member-%d", i)})
	}
	sim.EnableOrganization(scanMgmt)
	srv := sim.Start()
	t.Cleanup(srv.Close)
	ak, sk := sim.AdminCredentials(scanMgmt)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", ak)
	t.Setenv("AWS_SECRET_ACCESS_KEY", sk)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_MAX_ATTEMPTS", "")
	t.Setenv("ROOTWARDEN_ORG_ROLE_NAME", "")
	t.Setenv("ROOTWARDEN_ORG_EXTERNAL_ID", "")
	t.Setenv("AWS_PROFILE", "")
	os.Unsetenv("AWS_PROFILE")
	return sim
}

func runScanT(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = runScan(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestScanExitCodes(t *testing.T) {
	t.Run("no root keys: 0", func(t *testing.T) {
		scanSim(t, 2)
		code, out, errOut := runScanT(t)
		if code != 0 {
			t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
		}
		// Without --org-role only the caller's account, named by its alias.
		if !strings.Contains(out, scanMgmt) || !strings.Contains(out, "acme-mgmt") || strings.Contains(out, "200000000001") {
			t.Errorf("table:\n%s", out)
		}
		if !strings.Contains(out, "ACCOUNT") || !strings.Contains(out, "ROOT KEYS") {
			t.Errorf("table has no header:\n%s", out)
		}
	})
	t.Run("root keys found: 1", func(t *testing.T) {
		sim := scanSim(t, 2)
		sim.CreateRootKey("200000000002", time.Now().Add(-30*24*time.Hour))
		code, out, errOut := runScanT(t, "--org-role", "OrganizationAccountAccessRole")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
		}
		row := lineWith(out, "200000000002")
		if !strings.Contains(row, "yes") || !strings.Contains(row, "30d") || !strings.Contains(row, "never") {
			t.Errorf("row for the account with a key: %q\n%s", row, out)
		}
		if !strings.Contains(out, "3 accounts: 1 with root access keys, 0 could not be checked") {
			t.Errorf("summary line missing:\n%s", out)
		}
		if strings.Contains(errOut, "checked ") {
			t.Errorf("progress printed for 3 accounts: %q", errOut)
		}
	})
	t.Run("org role from the environment", func(t *testing.T) {
		scanSim(t, 2)
		t.Setenv("ROOTWARDEN_ORG_ROLE_NAME", "OrganizationAccountAccessRole")
		code, out, _ := runScanT(t)
		if code != 0 || !strings.Contains(out, "200000000002") || !strings.Contains(out, "member-2") {
			t.Errorf("exit %d, table:\n%s", code, out)
		}
	})
	t.Run("an account that cannot be checked: 2, with the reason", func(t *testing.T) {
		sim := scanSim(t, 3)
		sim.CreateRootKey("200000000001", time.Now())
		sim.SetAccessDenied("200000000003", true)
		code, out, errOut := runScanT(t, "--org-role", "OrganizationAccountAccessRole")
		if code != 2 {
			t.Fatalf("exit %d, want 2\n%s\n%s", code, out, errOut)
		}
		if row := lineWith(out, "200000000003"); !strings.Contains(row, "AccessDenied") {
			t.Errorf("row of the denied account: %q", row)
		}
		if !strings.Contains(errOut, "1 of 4 accounts could not be checked (1 denied IAM reads") {
			t.Errorf("stderr: %q", errOut)
		}
		_, secret := sim.AdminCredentials(scanMgmt)
		if strings.Contains(out+errOut, secret) {
			t.Error("output contains the secret access key")
		}
	})
	t.Run("set-up failure: 2", func(t *testing.T) {
		scanSim(t, 0)
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNUNKNOWN00")
		code, out, errOut := runScanT(t)
		if code != 2 || !strings.Contains(errOut, "rootwarden scan:") || out != "" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("bad flag: 2", func(t *testing.T) {
		scanSim(t, 0)
		if code, _, _ := runScanT(t, "--concurrency", "0"); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		if code, _, _ := runScanT(t, "--bogus"); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		if code, _, errOut := runScanT(t, "--external-id", "x-123"); code != 2 || !strings.Contains(errOut, "ROOTWARDEN_ORG_EXTERNAL_ID") {
			t.Errorf("external id without role: exit %d, %q", code, errOut)
		}
	})
}

func TestScanJSON(t *testing.T) {
	sim := scanSim(t, 2)
	key := sim.CreateRootKey("200000000001", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	sim.UseRootKey("200000000001", key, time.Now().Add(-time.Hour), "eu-central-1", "iam")
	sim.DenyAssumeRole("200000000002", true)
	code, out, errOut := runScanT(t, "--json", "--org-role", "OrganizationAccountAccessRole", "--concurrency", "2")
	if code != 2 {
		t.Fatalf("exit %d, want 2 (one account denied)\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "1 denied sts:AssumeRole on OrganizationAccountAccessRole: check that the role exists") {
		t.Errorf("stderr does not say what the AssumeRole denial means: %q", errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, out)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	byID := map[string]map[string]any{}
	for _, r := range rows {
		for _, field := range []string{"account_id", "account_name", "root_keys_present", "keys", "error", "management", "org_member", "observed_at"} {
			if _, ok := r[field]; !ok {
				t.Errorf("row %v lacks %q", r["account_id"], field)
			}
		}
		if _, isList := r["keys"].([]any); !isList {
			t.Errorf("keys of %v is %T, want a list", r["account_id"], r["keys"])
		}
		byID[r["account_id"].(string)] = r
	}
	withKey := byID["200000000001"]
	if withKey["root_keys_present"] != true || withKey["account_name"] != "member-1" || withKey["error"] != nil ||
		withKey["status"] != "root_keys" || withKey["severity"] != "critical" {
		t.Errorf("row with key = %v", withKey)
	}
	k := withKey["keys"].([]any)[0].(map[string]any)
	if k["active"] != true || k["last_rotated"] != "2024-01-02T03:04:05Z" || k["last_used_region"] != "eu-central-1" || k["last_used_service"] != "iam" {
		t.Errorf("key = %v", k)
	}
	denied := byID["200000000002"]
	// An account that could not be checked is not reported clean: a script that
	// selects root_keys_present == false must not count it.
	if v, ok := denied["root_keys_present"]; !ok || v != nil {
		t.Errorf("denied row: root_keys_present = %v (present %v), want null", v, ok)
	}
	if denied["error_code"] != "AccessDenied" || denied["error"] == nil || denied["status"] != "error" || denied["severity"] != nil {
		t.Errorf("denied row = %v", denied)
	}
	if m := byID[scanMgmt]; m["management"] != true || m["org_member"] != false {
		t.Errorf("management row = %v", m)
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// A bad value in a variable that scan reads is a configuration error like any other:
// one line naming the variable and exit 2, not a silent fall-back to the default.
func TestScanRejectsBadVariables(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"ROOTWARDEN_SCAN_CONCURRENCY", "lots"},
		{"ROOTWARDEN_SCAN_CONCURRENCY", "0"},
		{"ROOTWARDEN_ACCOUNT_TIMEOUT", "30"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			scanSim(t, 1)
			t.Setenv(tc.name, tc.value)
			code, out, errOut := runScanT(t, "--json")
			if code != 2 {
				t.Fatalf("exit %d, want 2; stdout %s stderr %s", code, out, errOut)
			}
			if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) != 1 || !strings.Contains(lines[0], tc.name) {
				t.Errorf("stderr is not one line naming %s: %q", tc.name, errOut)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
		})
	}
}

// With --org-role, an account with root keys carries its Organizations tags (the
// owner tag among them) and OU path in the JSON. Clean accounts' tags are not read:
// one ListTagsForResource per finding, not per account (Organizations answers 10 a
// second, and a scan of 50,000 accounts must not wait 83 minutes for tags).
func TestScanJSONTagsOfFindings(t *testing.T) {
	sim := scanSim(t, 3)
	prod := sim.AddOU("", "Prod")
	sim.MoveAccount("200000000001", sim.AddOU(prod, "Payments"))
	sim.SetAccountTags("200000000001", map[string]string{"owner": "pat@example.com", "cost-center": "cc-7"})
	sim.SetAccountTags("200000000002", map[string]string{"owner": "kim@example.com"})
	sim.CreateRootKey("200000000001", time.Now().Add(-48*time.Hour))
	sim.CreateRootKey("200000000003", time.Now().Add(-48*time.Hour)) // no tags at all
	code, out, errOut := runScanT(t, "--json", "--org-role", "OrganizationAccountAccessRole")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, out)
	}
	byID := map[string]map[string]any{}
	for _, r := range rows {
		byID[r["account_id"].(string)] = r
	}
	withTags := byID["200000000001"]
	if tags, _ := withTags["tags"].(map[string]any); tags["owner"] != "pat@example.com" || tags["cost-center"] != "cc-7" || len(tags) != 2 {
		t.Errorf("tags of the account with keys: %v", withTags["tags"])
	}
	if withTags["ou_path"] != "Root/Prod/Payments" {
		t.Errorf("ou_path %v, want Root/Prod/Payments", withTags["ou_path"])
	}
	for _, id := range []string{"200000000002", "200000000003"} {
		if v, ok := byID[id]["tags"]; ok {
			t.Errorf("%s: tags %v, want none in the JSON (clean, or untagged)", id, v)
		}
	}
	if n := sim.Calls()["Organizations.ListTagsForResource"]; n != 2 {
		t.Errorf("ListTagsForResource called %d times, want 2 (the accounts with keys only)", n)
	}
}
