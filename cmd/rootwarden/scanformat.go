package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/version"
)

// What a finding means and what to do about it; every machine format carries it.
const (
	findingTitle = "Root user access key present"
	findingDesc  = "The account's root user has an access key. A root key can do anything in the account, " +
		"billing included, and no IAM policy limits it."
	remediationText = "Sign in to the account as the root user (console, MFA), open Security credentials, " +
		"and delete the access keys: IAM credentials cannot delete them. rootwarden verifies the deletion."
	remediationURL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user_manage_delete-key.html"
	cisControl     = "CIS AWS Foundations Benchmark v3.0.0 1.4"
	fsbpControl    = "AWS Foundational Security Best Practices IAM.4"
)

var csvHeader = []string{"account_id", "account_name", "status", "severity", "root_keys_present", "keys", "active_keys",
	"oldest_key_rotated", "last_used_at", "last_used_region", "last_used_service", "error_code", "error"}

// writeScanCSV writes one line per account; an unknown value is an empty cell.
func writeScanCSV(w io.Writer, rows []scanRow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, r := range rows {
		present, keys, active, oldest, usedAt, usedRegion, usedService := "", "", "", "", "", "", ""
		if r.RootKeysPresent != nil {
			present = strconv.FormatBool(*r.RootKeysPresent)
			keys = strconv.Itoa(len(r.Keys))
			n := 0
			for _, k := range r.Keys {
				if k.Active {
					n++
				}
			}
			active = strconv.Itoa(n)
		}
		if t := oldestKey(r.Keys); t != nil {
			oldest = t.UTC().Format(time.RFC3339)
		}
		if k := lastUse(r.Keys); k != nil {
			usedAt, usedRegion, usedService = k.LastUsedAt.UTC().Format(time.RFC3339), k.LastUsedRegion, k.LastUsedService
		}
		code, msg := "", ""
		if r.ErrorCode != nil {
			code = *r.ErrorCode
		}
		if r.Error != nil {
			msg = *r.Error
		}
		if err := cw.Write([]string{r.AccountID, r.AccountName, r.Status, r.severity(), present, keys, active, oldest,
			usedAt, usedRegion, usedService, code, msg}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// SARIF 2.1.0: one rule per kind of result; each account is a result whose location
// is the account (a logical location, and an artifact URI aws-account/ID so that
// code-scanning uploads that require a physical location accept it).
func writeScanSARIF(w io.Writer, rows []scanRow) error {
	type msg struct {
		Text string `json:"text"`
	}
	rules := []map[string]any{
		{"id": "root-access-key", "name": "RootAccessKeyPresent", "shortDescription": msg{findingTitle},
			"fullDescription": msg{findingDesc}, "help": msg{remediationText}, "helpUri": remediationURL,
			"defaultConfiguration": map[string]string{"level": "error"},
			"properties":           map[string]any{"security-severity": "8.9", "tags": []string{"security", "aws", cisControl, fsbpControl}}},
		{"id": "account-not-checked", "name": "AccountNotChecked", "shortDescription": msg{"Account could not be checked"},
			"fullDescription":      msg{"rootwarden could not decide whether the account's root user has access keys."},
			"help":                 msg{"Check the audit role in the account (it must exist, trust rootwarden's role and allow iam:GetAccountSummary)."},
			"defaultConfiguration": map[string]string{"level": "warning"}},
	}
	results := []map[string]any{}
	for _, r := range rows {
		var rule, level, text string
		var props map[string]any
		switch r.Status {
		case "root_keys":
			rule, level = "root-access-key", "error"
			text = fmt.Sprintf("Account %s%s has a root access key (%s). %s", r.AccountID, nameSuffix(r), scanDescribeKeys(r.Keys), remediationText)
			sec := "8.9"
			if r.severity() == string(model.SeverityCritical) {
				sec = "9.8"
			}
			props = map[string]any{"severity": r.severity(), "security-severity": sec}
		case "error":
			rule, level = "account-not-checked", "warning"
			text = fmt.Sprintf("Account %s%s could not be checked: %s", r.AccountID, nameSuffix(r), scanErrorCell(r))
		default:
			continue // SARIF lists problems; a clean account is none
		}
		res := map[string]any{
			"ruleId": rule, "level": level, "message": msg{text},
			// The account is the logical location. The physical one ("aws-account/<id>",
			// line 1) is no file of any repository, but GitHub code scanning refuses the
			// whole upload when a result's location has no physicalLocation ("expected a
			// physical location"; codeql-action's locationFromSarifResult), so it stays:
			// a file that does not exist is the lesser harm.
			"locations": []map[string]any{{
				"physicalLocation": map[string]any{"artifactLocation": map[string]string{"uri": "aws-account/" + r.AccountID},
					"region": map[string]int{"startLine": 1}},
				"logicalLocations": []map[string]string{{"name": r.AccountID, "fullyQualifiedName": "aws/account/" + r.AccountID, "kind": "resource"}},
			}},
			"partialFingerprints": map[string]string{"rootwarden/account/v1": r.AccountID + "/" + rule},
		}
		if props != nil {
			res["properties"] = props
		}
		results = append(results, res)
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []map[string]any{{
			"tool": map[string]any{"driver": map[string]any{"name": "rootwarden", "version": version.Get().Version,
				"informationUri": "https://github.com/rootwarden/rootwarden", "rules": rules}},
			"results": results,
		}},
	}
	return writeJSON(w, doc)
}

func nameSuffix(r scanRow) string {
	if r.AccountName == "" {
		return ""
	}
	return " (" + r.AccountName + ")"
}

// writeScanOCSF writes a JSON array of OCSF 1.1 Detection Finding objects
// (class_uid 2004), one per account checked: status_code FAIL with keys, PASS
// without, as Prowler emits them; an account that could not be checked is
// status_code MANUAL with the reason.
func writeScanOCSF(w io.Writer, rows []scanRow, now time.Time) error {
	out := make([]map[string]any, 0, len(rows))
	v := version.Get().Version
	for _, r := range rows {
		sevID, sev, status, detail := 1, "Informational", "PASS", "No root user access key."
		switch r.Status {
		case "root_keys":
			sevID, sev, status, detail = 4, "High", "FAIL", "Root user access key present: "+scanDescribeKeys(r.Keys)
			if r.severity() == string(model.SeverityCritical) {
				sevID, sev = 5, "Critical"
				detail += ", used in the last 7 days"
			}
		case "error":
			sevID, sev, status, detail = 0, "Unknown", "MANUAL", "Could not be checked: "+scanErrorCell(r)
		}
		ts := r.ObservedAt
		if ts.IsZero() {
			ts = now
		}
		out = append(out, map[string]any{
			"class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2, "category_name": "Findings",
			"activity_id": 1, "activity_name": "Create", "type_uid": 200401, "type_name": "Detection Finding: Create",
			"severity_id": sevID, "severity": sev, "status_id": 1, "status": "New",
			"status_code": status, "status_detail": detail, "message": detail,
			"time": ts.UnixMilli(), "time_dt": ts.UTC().Format(time.RFC3339),
			"metadata": map[string]any{"version": "1.1.0", "event_code": "iam_no_root_access_key",
				"product": map[string]any{"name": "rootwarden", "vendor_name": "rootwarden", "version": v}},
			"finding_info": map[string]any{"uid": "rootwarden-" + r.AccountID + "-iam_no_root_access_key", "title": findingTitle,
				"desc": findingDesc, "types": []string{"Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark"},
				"created_time": ts.UnixMilli()},
			"cloud": map[string]any{"provider": "AWS", "account": map[string]any{"uid": r.AccountID, "name": r.AccountName, "type": "AWS Account", "type_id": 10}},
			"resources": []map[string]any{{"type": "AWS::::Account", "uid": "arn:aws:iam::" + r.AccountID + ":root",
				"name": r.AccountID, "cloud_partition": "aws", "region": "global"}},
			"remediation": map[string]any{"desc": remediationText, "references": []string{remediationURL}},
			"unmapped":    map[string]any{"compliance": []string{cisControl, fsbpControl}},
		})
	}
	return writeJSON(w, out)
}
