package main

// The root-credential posture in `rootwarden scan`: every root credential per account
// (from the account summary the check already reads) and the organization's
// centralized root access (IAM ListOrganizationsFeatures). Reported only: the exit
// code still says root access keys (1) or not (0), as before.
//
// Machine formats map it to the controls that judge it:
//   - CIS AWS Foundations Benchmark v7.0.0 2.1.1 "Ensure centralized root access"
//     (organization: RootCredentialsManagement on);
//   - Security Hub IAM.4 / CIS v7.0.0 2.4: no root access key (scanformat.go);
//   - Security Hub IAM.9 "MFA should be enabled for the root user" and IAM.6 "Hardware
//     MFA should be enabled for the root user": both pass when the root user has no
//     credential; without any MFA both fail. The summary does not tell a hardware
//     device from a virtual one, so with MFA on IAM.6 is not judged here.
//   - signing certificates: no CIS or Security Hub control; a long-term root
//     credential all the same (high).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/model"
)

const (
	cisCentralRoot = "CIS AWS Foundations Benchmark v7.0.0 2.1.1"
	cisV7RootKey   = "CIS AWS Foundations Benchmark v7.0.0 2.4"
	fsbpRootMFA    = "AWS Foundational Security Best Practices IAM.9"
	fsbpRootHWMFA  = "AWS Foundational Security Best Practices IAM.6"
	centralRootURL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-enable-root-access.html"
)

// scanPostureLong ends scan's help.
const scanPostureLong = `

json-report prints one object: "organization" (the root-credential posture: centralized
root access and counts by credential type) and "accounts" (the rows of json). Every
root credential (access keys, signing certificates, password; MFA) and, with
--org-role, the organization's centralized root access are reported in every format;
the exit code still says root access keys only.`

// scanRootCreds is a row's root credentials: true present, false absent, null unknown
// (the account summary did not say; moto and older API versions lack
// AccountPasswordPresent).
type scanRootCreds struct {
	AccessKeys          *bool `json:"access_keys"`
	SigningCertificates *bool `json:"signing_certificates"`
	Password            *bool `json:"password"`
	MFAEnabled          *bool `json:"mfa_enabled"`
}

func newScanRootCreds(o model.Observation) *scanRootCreds {
	if o.Failed() || o.RootCredentials == nil {
		return nil
	}
	rc := o.RootCredentials
	return &scanRootCreds{AccessKeys: rc.AccessKeys, SigningCertificates: rc.SigningCertificates, Password: rc.Password, MFAEnabled: rc.MFAEnabled}
}

func (c *scanRootCreds) model() *model.RootCredentials {
	if c == nil {
		return nil
	}
	return &model.RootCredentials{AccessKeys: c.AccessKeys, SigningCertificates: c.SigningCertificates, Password: c.Password, MFAEnabled: c.MFAEnabled}
}

// scanOrganization is the top-level "organization" object of --format json-report.
type scanOrganization struct {
	// Mode is "organization" (--org-role set) or "single-account".
	Mode string `json:"mode"`
	// OrganizationID, RootCredentialsManagement and RootSessions are null when the
	// features could not be read (CentralizedRootAccessError says why) or in
	// single-account mode.
	OrganizationID             *string `json:"organization_id"`
	RootCredentialsManagement  *bool   `json:"root_credentials_management"`
	RootSessions               *bool   `json:"root_sessions"`
	CentralizedRootAccessError *string `json:"centralized_root_access_error"`
	// Counts over the accounts whose check worked.
	AccountsChecked             int            `json:"accounts_checked"`
	AccountsWithRootCredentials map[string]int `json:"accounts_with_root_credentials"`
	// AccountsRootCredentialsUnknown: accounts whose summary did not report the type.
	AccountsRootCredentialsUnknown map[string]int `json:"accounts_root_credentials_unknown"`
	AccountsRootCredentialFree     int            `json:"accounts_root_credential_free"`
}

// scanReport is --format json-report: the organization's posture and the rows.
type scanReport struct {
	SchemaVersion int              `json:"schema_version"`
	Organization  scanOrganization `json:"organization"`
	Accounts      []scanRow        `json:"accounts"`
}

func newScanOrganization(obs []model.Observation, ra model.OrgRootAccess, orgMode bool) scanOrganization {
	so := scanOrganization{Mode: "single-account"}
	if orgMode {
		so.Mode = "organization"
		if ra.Known {
			id, rcm, rs := ra.OrganizationID, ra.RootCredentialsManagement, ra.RootSessions
			so.OrganizationID, so.RootCredentialsManagement, so.RootSessions = &id, &rcm, &rs
		} else {
			e := ra.Error
			so.CentralizedRootAccessError = &e
		}
	}
	c := detector.CountPosture(obs)
	so.AccountsChecked, so.AccountsRootCredentialFree = c.Accounts, c.Free
	so.AccountsWithRootCredentials, so.AccountsRootCredentialsUnknown = map[string]int{}, map[string]int{}
	for _, t := range model.CredentialTypes {
		so.AccountsWithRootCredentials[string(t)] = c.With[t]
		so.AccountsRootCredentialsUnknown[string(t)] = c.Unknown[t]
	}
	return so
}

var credWords = map[model.CredentialType]string{
	model.CredAccessKeys: "access keys", model.CredSigningCertificates: "signing certificates", model.CredPassword: "a password",
}

// printPostureSummary writes the posture lines under the table's summary.
func printPostureSummary(w io.Writer, so scanOrganization) {
	var parts []string
	for _, t := range model.CredentialTypes {
		parts = append(parts, fmt.Sprintf("%d with %s", so.AccountsWithRootCredentials[string(t)], credWords[t]))
	}
	line := fmt.Sprintf("Root credentials: %s; %d of %d checked root-credential-free", strings.Join(parts, ", "),
		so.AccountsRootCredentialFree, so.AccountsChecked)
	var unknown []string
	for _, t := range model.CredentialTypes {
		if n := so.AccountsRootCredentialsUnknown[string(t)]; n > 0 {
			unknown = append(unknown, fmt.Sprintf("%s unknown for %d (AWS's account summary did not say)", strings.TrimPrefix(credWords[t], "a "), n))
		}
	}
	if len(unknown) > 0 {
		line += "; " + strings.Join(unknown, ", ")
	}
	fmt.Fprintln(w, line+". Cases open for access keys only.")
	if so.Mode != "organization" {
		return
	}
	switch {
	case so.RootCredentialsManagement == nil:
		fmt.Fprintf(w, "Centralized root access: unknown: %s\n", *so.CentralizedRootAccessError)
	default:
		fmt.Fprintf(w, "Centralized root access (%s): root credentials management %s, root sessions %s (%s)\n",
			*so.OrganizationID, onOff(*so.RootCredentialsManagement), onOff(*so.RootSessions), cisCentralRoot)
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// otherRootCreds is the table cell for root credentials other than access keys.
func otherRootCreds(r scanRow) string {
	m := r.RootCredentials.model()
	if m == nil {
		return "?"
	}
	var parts []string
	for _, t := range []model.CredentialType{model.CredSigningCertificates, model.CredPassword} {
		switch p, known := m.Has(t); {
		case !known:
			parts = append(parts, strings.TrimPrefix(credWords[t], "a ")+" unknown")
		case p:
			parts = append(parts, strings.TrimSuffix(strings.TrimPrefix(credWords[t], "a "), "s"))
		}
	}
	if len(m.Present()) > 0 && m.MFAEnabled != nil {
		parts = append(parts, "MFA "+onOff(*m.MFAEnabled))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// rootMFAVerdict judges IAM.9 (and IAM.6 where the summary can): pass when the root
// user has no credential or has MFA, fail when it has a credential and no MFA; ok is
// false when the summary does not tell.
func rootMFAVerdict(rc *model.RootCredentials) (pass, ok bool) {
	if free, known := rc.Free(); known && free {
		return true, true
	}
	if rc == nil || rc.MFAEnabled == nil || len(rc.Present()) == 0 {
		return false, false
	}
	return *rc.MFAEnabled, true
}

// addPostureSARIF adds the posture's rules and results to a SARIF document written
// by writeScanSARIF: a failing centralized root access, signing certificates, and
// root credentials without MFA (problems only, as for the rest of SARIF).
func addPostureSARIF(doc []byte, rows []scanRow, so scanOrganization) ([]byte, error) {
	var d map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	runs, _ := d["runs"].([]any)
	if len(runs) != 1 {
		return doc, nil
	}
	run := runs[0].(map[string]any)
	driver := run["tool"].(map[string]any)["driver"].(map[string]any)
	rules, _ := driver["rules"].([]any)
	for _, r := range rules { // the root access key is CIS v7.0.0 2.4 too
		if r, ok := r.(map[string]any); ok && r["id"] == "root-access-key" {
			if p, ok := r["properties"].(map[string]any); ok {
				if tags, ok := p["tags"].([]any); ok {
					p["tags"] = append(tags, cisV7RootKey)
				}
			}
		}
	}
	results, _ := run["results"].([]any)
	type msg struct {
		Text string `json:"text"`
	}
	rule := func(id, name, short, full, help, uri, level, sec string, tags ...string) map[string]any {
		r := map[string]any{"id": id, "name": name, "shortDescription": msg{short}, "fullDescription": msg{full},
			"help": msg{help}, "defaultConfiguration": map[string]string{"level": level},
			"properties": map[string]any{"security-severity": sec, "tags": append([]string{"security", "aws"}, tags...)}}
		if uri != "" {
			r["helpUri"] = uri
		}
		return r
	}
	rules = append(rules,
		rule("centralized-root-access", "CentralizedRootAccessDisabled", "Centralized root access is off",
			"The organization does not manage member accounts' root credentials centrally (RootCredentialsManagement).",
			"Enable trusted access for IAM in AWS Organizations, then centralized root access (root credentials management).",
			centralRootURL, "warning", "5.3", cisCentralRoot),
		rule("root-signing-certificate", "RootSigningCertificatePresent", "Root user signing certificate present",
			"The account's root user has an X.509 signing certificate, a long-term root credential.",
			"Delete it as the root user, or through a root session with IAMDeleteRootUserCredentials.", "", "error", "8.1"),
		rule("root-mfa", "RootCredentialWithoutMFA", "Root user has credentials and no MFA",
			"The account's root user has a long-term credential and no MFA device.",
			"Remove the root credentials (the end state AWS recommends for member accounts) or enable MFA, hardware preferred.",
			"https://docs.aws.amazon.com/IAM/latest/UserGuide/enable-mfa-for-root.html", "error", "9.1", fsbpRootMFA, fsbpRootHWMFA),
	)
	result := func(ruleID, level, text, account, sec string) map[string]any {
		return map[string]any{"ruleId": ruleID, "level": level, "message": msg{text},
			"locations": []map[string]any{{
				"physicalLocation": map[string]any{"artifactLocation": map[string]string{"uri": "aws-account/" + account},
					"region": map[string]int{"startLine": 1}},
				"logicalLocations": []map[string]string{{"name": account, "fullyQualifiedName": "aws/account/" + account, "kind": "resource"}},
			}},
			"partialFingerprints": map[string]string{"rootwarden/account/v1": account + "/" + ruleID},
			"properties":          map[string]any{"security-severity": sec}}
	}
	if so.RootCredentialsManagement != nil && !*so.RootCredentialsManagement {
		results = append(results, map[string]any{"ruleId": "centralized-root-access", "level": "warning",
			"message": msg{fmt.Sprintf("Organization %s: centralized root credentials management is off (%s).", *so.OrganizationID, cisCentralRoot)},
			"locations": []map[string]any{{
				"physicalLocation": map[string]any{"artifactLocation": map[string]string{"uri": "aws-organization/" + *so.OrganizationID},
					"region": map[string]int{"startLine": 1}},
				"logicalLocations": []map[string]string{{"name": *so.OrganizationID, "fullyQualifiedName": "aws/organization/" + *so.OrganizationID, "kind": "resource"}},
			}},
			"partialFingerprints": map[string]string{"rootwarden/organization/v1": *so.OrganizationID + "/centralized-root-access"}})
	}
	for _, r := range rows {
		m := r.RootCredentials.model()
		if p, _ := m.Has(model.CredSigningCertificates); p {
			results = append(results, result("root-signing-certificate", "error",
				fmt.Sprintf("Account %s%s: the root user has a signing certificate.", r.AccountID, nameSuffix(r)), r.AccountID, "8.1"))
		}
		// A root access key has its own result, whose fix (delete it) also ends an MFA
		// failure that rests on the key alone: root-mfa is for the other credentials.
		pw, _ := m.Has(model.CredPassword)
		certs, _ := m.Has(model.CredSigningCertificates)
		if pass, ok := rootMFAVerdict(m); ok && !pass && (pw || certs) {
			results = append(results, result("root-mfa", "error",
				fmt.Sprintf("Account %s%s: the root user has %s and no MFA (%s, %s).", r.AccountID, nameSuffix(r),
					describeCreds(m), fsbpRootMFA, fsbpRootHWMFA), r.AccountID, "9.1"))
		}
	}
	driver["rules"], run["results"] = rules, results
	var b bytes.Buffer
	if err := writeJSON(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func describeCreds(m *model.RootCredentials) string {
	var s []string
	for _, t := range m.Present() {
		s = append(s, strings.TrimPrefix(credWords[t], "a "))
	}
	return strings.Join(s, ", ")
}

// addPostureOCSF appends OCSF Detection Findings to the array writeScanOCSF wrote:
// per account, iam_root_mfa_enabled (IAM.9, IAM.6 where decided) and
// iam_no_root_signing_certificate, when the summary decides them; for the
// organization, iam_root_credentials_management_enabled (CIS v7.0.0 2.1.1): PASS,
// FAIL, or MANUAL when the features could not be read.
func addPostureOCSF(doc []byte, rows []scanRow, so scanOrganization, now time.Time, mgmt string) ([]byte, error) {
	var out []any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	finding := func(code, title, account, name string, sevID int, sev, status, detail, uid string, compliance []string, ts time.Time) map[string]any {
		return map[string]any{
			"class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2, "category_name": "Findings",
			"activity_id": 1, "activity_name": "Create", "type_uid": 200401, "type_name": "Detection Finding: Create",
			"severity_id": sevID, "severity": sev, "status_id": 1, "status": "New",
			"status_code": status, "status_detail": detail, "message": detail,
			"time": ts.UnixMilli(), "time_dt": ts.UTC().Format(time.RFC3339),
			"metadata": map[string]any{"version": "1.1.0", "event_code": code,
				"product": map[string]any{"name": "rootwarden", "vendor_name": "rootwarden"}},
			"finding_info": map[string]any{"uid": "rootwarden-" + uid + "-" + code, "title": title,
				"types": []string{"Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark"}, "created_time": ts.UnixMilli()},
			"cloud":     map[string]any{"provider": "AWS", "account": map[string]any{"uid": account, "name": name, "type": "AWS Account", "type_id": 10}},
			"resources": []map[string]any{{"type": "AWS::::Account", "uid": "arn:aws:iam::" + account + ":root", "name": account, "cloud_partition": "aws", "region": "global"}},
			"unmapped":  map[string]any{"compliance": compliance},
		}
	}
	for _, f := range out { // the root access key is CIS v7.0.0 2.4 too
		if f, ok := f.(map[string]any); ok {
			if md, _ := f["metadata"].(map[string]any); md != nil && md["event_code"] == "iam_no_root_access_key" {
				if um, _ := f["unmapped"].(map[string]any); um != nil {
					if c, ok := um["compliance"].([]any); ok {
						um["compliance"] = append(c, cisV7RootKey)
					}
				}
			}
		}
	}
	for _, r := range rows {
		m := r.RootCredentials.model()
		ts := r.ObservedAt
		if ts.IsZero() {
			ts = now
		}
		if pass, ok := rootMFAVerdict(m); ok {
			compliance := []string{fsbpRootMFA}
			status, sevID, sev, detail := "PASS", 1, "Informational", "Root user has MFA."
			if free, _ := m.Free(); free {
				detail, compliance = "Root user has no credentials: nothing to protect with MFA.", []string{fsbpRootMFA, fsbpRootHWMFA}
			} else if !pass {
				status, sevID, sev = "FAIL", 5, "Critical"
				detail, compliance = "Root user has "+describeCreds(m)+" and no MFA.", []string{fsbpRootMFA, fsbpRootHWMFA}
			}
			out = append(out, finding("iam_root_mfa_enabled", "Root user MFA", r.AccountID, r.AccountName, sevID, sev, status, detail, r.AccountID, compliance, ts))
		}
		if p, known := m.Has(model.CredSigningCertificates); known {
			status, sevID, sev, detail := "PASS", 1, "Informational", "No root user signing certificate."
			if p {
				status, sevID, sev, detail = "FAIL", 4, "High", "Root user signing certificate present."
			}
			out = append(out, finding("iam_no_root_signing_certificate", "Root user signing certificate", r.AccountID, r.AccountName, sevID, sev, status, detail, r.AccountID, []string{}, ts))
		}
	}
	if so.Mode == "organization" {
		status, sevID, sev, detail, uid := "MANUAL", 0, "Unknown", "", mgmt
		switch {
		case so.RootCredentialsManagement == nil:
			detail = "Centralized root access could not be read: " + *so.CentralizedRootAccessError
		case *so.RootCredentialsManagement:
			status, sevID, sev, detail, uid = "PASS", 1, "Informational", "Centralized root credentials management is on.", *so.OrganizationID
		default:
			status, sevID, sev, detail, uid = "FAIL", 3, "Medium", "Centralized root credentials management is off.", *so.OrganizationID
		}
		out = append(out, finding("iam_root_credentials_management_enabled", "Centralized root access", mgmt, "", sevID, sev, status, detail, uid, []string{cisCentralRoot}, now))
	}
	var b bytes.Buffer
	if err := writeJSON(&b, out); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
