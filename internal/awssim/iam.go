package awssim

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strconv"
	"time"
)

// reportReuse is how long AWS serves the same credential report.
const reportReuse = 4 * time.Hour

// The root-task policies AssumeRoot accepts.
const (
	rootTaskPrefix         = "arn:aws:iam::aws:policy/root-task/"
	rootTaskDelete         = rootTaskPrefix + "IAMDeleteRootUserCredentials"
	rootTaskAudit          = rootTaskPrefix + "IAMAuditRootUserCredentials"
	rootTaskCreatePassword = rootTaskPrefix + "IAMCreateRootUserPassword"
)

// rootTaskPolicies maps the root-task policies to the IAM actions they leave allowed
// (each is a Deny of every other action, NotAction …): AWS's managed policy
// documents, https://docs.aws.amazon.com/IAM/latest/UserGuide/security-iam-awsmanpol.html
// (IAMDeleteRootUserCredentials lost iam:DeleteVirtualMFADevice on 2025-01-07).
var rootTaskPolicies = map[string]map[string]bool{
	rootTaskAudit: set("ListAccessKeys", "ListSigningCertificates", "GetLoginProfile", "ListMFADevices",
		"GetAccountSummary", "GetUser", "GetAccessKeyLastUsed"),
	rootTaskDelete: set("DeleteAccessKey", "DeleteSigningCertificate", "DeleteLoginProfile", "DeactivateMFADevice",
		"ListAccessKeys", "ListSigningCertificates", "GetLoginProfile", "ListMFADevices", "GetUser", "GetAccessKeyLastUsed"),
	rootTaskCreatePassword:                  set("CreateLoginProfile", "GetLoginProfile"),
	rootTaskPrefix + "S3UnlockBucketPolicy": {},
	rootTaskPrefix + "SQSUnlockQueuePolicy": {},
}

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// iam serves an IAM action. The lock is held.
func (s *Sim) iam(req *request, c *cred) (any, *apiError) {
	acc := c.acct
	if c.kind == kindRootSession && !rootTaskPolicies[c.policy][req.action] {
		return nil, errf(403, "AccessDenied", "User: "+c.arn()+" is not authorized to perform: iam:"+req.action+" on resource: "+c.arn()+" with an explicit deny in a session policy")
	}
	if out, aerr, ok := s.iamRootCred(req, c); ok {
		return out, aerr
	}
	switch req.action {
	case "GetAccountSummary":
		return s.iamSummary(acc), nil
	case "GenerateCredentialReport":
		return s.iamGenerateReport(acc), nil
	case "GetCredentialReport":
		return s.iamGetReport(acc)
	case "ListAccountAliases":
		aliases := elem("AccountAliases")
		if acc.Alias != "" {
			aliases = elem("AccountAliases", leaf("member", acc.Alias))
		}
		return []xmlNode{aliases, leaf("IsTruncated", "false")}, nil
	case "ListAccessKeys":
		return s.iamListKeys(req, c)
	case "DeleteAccessKey", "UpdateAccessKey":
		return s.iamChangeKey(req, c)
	case "GetAccessKeyLastUsed":
		return s.iamKeyLastUsed(req, c)
	}
	return nil, errf(400, "InvalidAction", "The action "+req.action+" is not valid for this web service.")
}

func (s *Sim) iamSummary(acc *account) []xmlNode {
	users, mfa := 0, len(acc.mfa)
	if acc.admin != nil {
		users = 1
	}
	entries := []struct {
		k string
		v int
	}{
		{"AccessKeysPerUserQuota", 2},
		{"AccountAccessKeysPresent", b2i(acc.hasRootKeys())},
		{"AccountMFAEnabled", b2i(acc.mfaEnabled())},
		{"AccountPasswordPresent", b2i(acc.password != nil)},
		{"AccountSigningCertificatesPresent", b2i(len(acc.certs) > 0)},
		{"AttachedPoliciesPerGroupQuota", 10},
		{"AttachedPoliciesPerRoleQuota", 10},
		{"AttachedPoliciesPerUserQuota", 10},
		{"GroupPolicySizeQuota", 5120},
		{"Groups", 0},
		{"GroupsPerUserQuota", 10},
		{"GroupsQuota", 300},
		{"MFADevices", mfa},
		{"MFADevicesInUse", mfa},
		{"Policies", 0},
		{"PoliciesQuota", 1500},
		{"PolicySizeQuota", 6144},
		{"PolicyVersionsInUse", 0},
		{"PolicyVersionsInUseQuota", 10000},
		{"Roles", len(acc.roles)},
		{"RolesQuota", 1000},
		{"ServerCertificates", 0},
		{"ServerCertificatesQuota", 20},
		{"SigningCertificatesPerUserQuota", 2},
		{"UserPolicySizeQuota", 2048},
		{"Users", users},
		{"UsersQuota", 5000},
		{"VersionsPerPolicyQuota", 5},
	}
	m := make([]xmlNode, 0, len(entries))
	for _, e := range entries {
		if slices.Contains(s.omitKeys, e.k) {
			continue
		}
		m = append(m, elem("entry", leaf("key", e.k), leaf("value", strconv.Itoa(e.v))))
	}
	return []xmlNode{elem("SummaryMap", m...)}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Sim) iamGenerateReport(acc *account) []xmlNode {
	now := s.now()
	r := acc.report
	switch {
	case r != nil && now.Before(r.started.Add(s.opts.ReportDelay)):
		return reportState("INPROGRESS", "Report generation in progress")
	case r != nil && now.Sub(r.started) < reportReuse:
		return reportState("COMPLETE", "")
	}
	acc.report = &report{started: now, csv: s.renderReport(acc, now)}
	return reportState("STARTED", "No report exists. Starting a new report generation task")
}

func reportState(state, desc string) []xmlNode {
	out := []xmlNode{leaf("State", state)}
	if desc != "" {
		out = append(out, leaf("Description", desc))
	}
	return out
}

func (s *Sim) iamGetReport(acc *account) (any, *apiError) {
	now := s.now()
	r := acc.report
	switch {
	case r == nil:
		return nil, errf(410, "ReportNotPresent", "Credential report not present. Use GenerateCredentialReport to generate a report.")
	case now.Before(r.started.Add(s.opts.ReportDelay)):
		return nil, errf(404, "ReportInProgress", "Credential report generation is in progress.")
	case now.Sub(r.started) >= reportReuse:
		return nil, errf(410, "ReportExpired", "Credential report has expired. Use GenerateCredentialReport to generate a new report.")
	}
	return []xmlNode{
		leaf("Content", base64.StdEncoding.EncodeToString(r.csv)),
		leaf("ReportFormat", "text/csv"),
		leaf("GeneratedTime", r.started.UTC().Format(time.RFC3339)),
	}, nil
}

// ReportHeader is the credential report's CSV header, exactly as AWS writes it.
const ReportHeader = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated"

func reportTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05+00:00") }

// renderReport snapshots the account's users as a credential report CSV.
func (s *Sim) renderReport(acc *account, now time.Time) []byte {
	var b bytes.Buffer
	b.WriteString(ReportHeader)
	b.WriteByte('\n')
	// Root row.
	b.WriteString("<root_account>,arn:aws:iam::" + acc.ID + ":root," + reportTime(acc.Created) +
		",not_supported,no_information,not_supported,not_supported," + strconv.FormatBool(acc.mfaEnabled()))
	for i := 0; i < 2; i++ {
		if i < len(acc.keys) {
			k := acc.keys[i]
			b.WriteString("," + strconv.FormatBool(k.Active) + "," + reportTime(k.Created))
			if k.LastUsed.IsZero() {
				b.WriteString(",N/A,N/A,N/A")
			} else {
				b.WriteString("," + reportTime(k.LastUsed) + "," + orNA(k.LastUsedRegion) + "," + orNA(k.LastUsedService))
			}
		} else {
			b.WriteString(",false,N/A,N/A,N/A,N/A")
		}
	}
	for i := 0; i < 2; i++ {
		if i < len(acc.certs) {
			b.WriteString("," + strconv.FormatBool(acc.certs[i].Active) + "," + reportTime(acc.certs[i].Uploaded))
		} else {
			b.WriteString(",false,N/A")
		}
	}
	b.WriteString("\n")
	if acc.admin != nil {
		b.WriteString(adminUserName + ",arn:aws:iam::" + acc.ID + ":user/" + adminUserName + "," + reportTime(acc.Created) +
			",false,N/A,N/A,N/A,false,true," + reportTime(acc.Created) + ",N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n")
	}
	return b.Bytes()
}

func orNA(s string) string {
	if s == "" {
		return "N/A"
	}
	return s
}

// callerKeys resolves UserName-less key operations to the caller's keys.
func (s *Sim) iamListKeys(req *request, c *cred) (any, *apiError) {
	user := req.form.Get("UserName")
	var members []xmlNode
	switch {
	case c.kind == kindRootKey || c.kind == kindRootSession:
		if user != "" {
			return nil, noSuchUser(user)
		}
		for _, k := range c.acct.keys {
			members = append(members, elem("member",
				leaf("AccessKeyId", k.ID), leaf("Status", status(k.Active)), leaf("CreateDate", k.Created.Format(time.RFC3339))))
		}
	case c.kind == kindAdmin && (user == "" || user == adminUserName):
		members = append(members, elem("member", leaf("UserName", adminUserName),
			leaf("AccessKeyId", c.id), leaf("Status", "Active"), leaf("CreateDate", c.acct.Created.Format(time.RFC3339))))
	case user == "" && c.kind == kindRole:
		return nil, errf(400, "ValidationError", "Must specify userName when calling with non-User credentials")
	case user == adminUserName && c.acct.admin != nil:
		a := c.acct.admin
		members = append(members, elem("member", leaf("UserName", adminUserName),
			leaf("AccessKeyId", a.id), leaf("Status", "Active"), leaf("CreateDate", c.acct.Created.Format(time.RFC3339))))
	default:
		return nil, noSuchUser(user)
	}
	return []xmlNode{elem("AccessKeyMetadata", members...), leaf("IsTruncated", "false")}, nil
}

func noSuchUser(user string) *apiError {
	return errf(404, "NoSuchEntity", "The user with name "+user+" cannot be found.")
}

func status(active bool) string {
	if active {
		return "Active"
	}
	return "Inactive"
}

func (s *Sim) iamChangeKey(req *request, c *cred) (any, *apiError) {
	keyID, user := req.form.Get("AccessKeyId"), req.form.Get("UserName")
	if keyID == "" {
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'accessKeyId' failed to satisfy constraint: Member must not be null")
	}
	rootCaller := c.kind == kindRootKey || c.kind == kindRootSession
	if !rootCaller || user != "" || c.acct.key(keyID) == nil {
		return nil, errf(404, "NoSuchEntity", "The Access Key with id "+keyID+" cannot be found.")
	}
	if req.action == "DeleteAccessKey" {
		s.deleteRootKeyLocked(c.acct, keyID)
		return nil, nil
	}
	switch st := req.form.Get("Status"); st {
	case "Active", "Inactive":
		c.acct.key(keyID).Active = st == "Active"
		return nil, nil
	default:
		return nil, errf(400, "ValidationError", "Status must be Active or Inactive")
	}
}

func (s *Sim) iamKeyLastUsed(req *request, c *cred) (any, *apiError) {
	keyID := req.form.Get("AccessKeyId")
	var k *RootKey
	if other := s.creds[keyID]; other != nil && other.acct == c.acct && other.kind == kindRootKey {
		k = c.acct.key(keyID)
	}
	if k == nil {
		if a := c.acct.admin; a != nil && a.id == keyID && c.kind != kindRootSession {
			return []xmlNode{leaf("UserName", adminUserName),
				elem("AccessKeyLastUsed", leaf("Region", "N/A"), leaf("ServiceName", "N/A"))}, nil
		}
		return nil, errf(403, "AccessDenied", "User: "+c.arn()+" is not authorized to perform: iam:GetAccessKeyLastUsed on resource: access key "+keyID)
	}
	used := []xmlNode{leaf("Region", "N/A"), leaf("ServiceName", "N/A")}
	if !k.LastUsed.IsZero() {
		used = []xmlNode{leaf("LastUsedDate", k.LastUsed.Format(time.RFC3339)), leaf("Region", orNA(k.LastUsedRegion)), leaf("ServiceName", orNA(k.LastUsedService))}
	}
	return []xmlNode{leaf("UserName", "root"), elem("AccessKeyLastUsed", used...)}, nil
}
