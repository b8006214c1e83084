package awssim

// Root credentials other than access keys (the root password — a login profile —,
// signing certificates, MFA devices) and AWS's centralized root access
// (organization features RootCredentialsManagement and RootSessions, read with
// iam:ListOrganizationsFeatures). Sources:
//   - GetAccountSummary's SummaryMap keys AccountAccessKeysPresent,
//     AccountSigningCertificatesPresent, AccountPasswordPresent, AccountMFAEnabled:
//     https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountSummary.html
//   - ListOrganizationsFeatures and its errors (AccountNotManagementOrDelegatedAdministrator,
//     OrganizationNotFound, OrganizationNotInAllFeaturesMode, ServiceAccessNotEnabled;
//     on the wire the shape names, with the "Exception" suffix, as the SDK matches them):
//     https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListOrganizationsFeatures.html
//   - the task policies' action lists (root-task/IAMAuditRootUserCredentials,
//     IAMDeleteRootUserCredentials, IAMCreateRootUserPassword): "AWS managed policies
//     for AWS Identity and Access Management and Access Analyzer",
//     https://docs.aws.amazon.com/IAM/latest/UserGuide/security-iam-awsmanpol.html

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// MFA device kinds of the root user.
const (
	MFAVirtual  = "virtual"
	MFAHardware = "hardware"
)

// SigningCert is a root user X.509 signing certificate as the simulator stores it.
type SigningCert struct {
	ID       string    `json:"certificateId"`
	Active   bool      `json:"active"`
	Uploaded time.Time `json:"uploaded"`
}

// MFADevice is a root user MFA device as the simulator stores it.
type MFADevice struct {
	Serial  string    `json:"serialNumber"`
	Type    string    `json:"type"` // MFAVirtual or MFAHardware
	Enabled time.Time `json:"enabled"`
}

// RootCredentials is every root credential of one account.
type RootCredentials struct {
	AccessKeys          []RootKey     `json:"accessKeys"`
	Password            bool          `json:"password"`
	PasswordCreated     time.Time     `json:"passwordCreated,omitzero"`
	SigningCertificates []SigningCert `json:"signingCertificates"`
	MFADevices          []MFADevice   `json:"mfaDevices"`
}

// OrgFeatures is the organization's centralized root access state.
type OrgFeatures struct {
	// IAMTrustedAccess: trusted access for IAM is enabled in Organizations. Without
	// it ListOrganizationsFeatures answers ServiceAccessNotEnabledException.
	IAMTrustedAccess bool `json:"iamTrustedAccess"`
	// IAMDelegatedAdmin is the member account registered as the delegated
	// administrator for IAM ("" = none): it may read the features and AssumeRoot.
	IAMDelegatedAdmin         string `json:"iamDelegatedAdmin,omitempty"`
	RootCredentialsManagement bool   `json:"rootCredentialsManagement"`
	RootSessions              bool   `json:"rootSessions"`
}

// Task policies whose IAM actions need the RootCredentialsManagement feature (the
// others, S3UnlockBucketPolicy and SQSUnlockQueuePolicy, need RootSessions).
var credentialTasks = map[string]bool{rootTaskAudit: true, rootTaskDelete: true, rootTaskCreatePassword: true}

// SetLoginProfile gives the root user a console password (created at `created`; zero
// means now) or, with present false, removes it.
func (s *Sim) SetLoginProfile(accountID string, present bool, created time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccount(accountID)
	if !present {
		acc.password = nil
		return
	}
	if created.IsZero() {
		created = s.now()
	}
	created = created.UTC()
	acc.password = &created
}

// AddSigningCertificate adds an active root signing certificate and returns its id.
// It panics when the account already has two (AWS's quota).
func (s *Sim) AddSigningCertificate(accountID string) string {
	id, err := s.addSigningCert(accountID)
	if err != nil {
		panic("awssim: " + err.Error())
	}
	return id
}

type ctlErr string

func (e ctlErr) Error() string { return string(e) }

func (s *Sim) addSigningCert(accountID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccount(accountID)
	if len(acc.certs) >= 2 {
		return "", ctlErr("account " + accountID + " already has 2 root signing certificates")
	}
	// Certificate ids are 32 upper-case alphanumerics.
	id := randString(32, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
	acc.certs = append(acc.certs, &SigningCert{ID: id, Active: true, Uploaded: s.now().UTC()})
	return id, nil
}

// AddMFADevice enables an MFA device (MFAVirtual or MFAHardware) for the root user
// and returns its serial number (an ARN for a virtual device).
func (s *Sim) AddMFADevice(accountID, kind string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addMFALocked(s.mustAccount(accountID), kind)
}

func (s *Sim) addMFALocked(acc *account, kind string) string {
	var serial string
	if kind == MFAHardware {
		serial = "GAHT" + randString(8, "0123456789")
	} else {
		kind = MFAVirtual
		serial = "arn:aws:iam::" + acc.ID + ":mfa/root-account-mfa-device"
		if len(acc.mfa) > 0 {
			serial += "-" + randString(4, lowerDigits)
		}
	}
	acc.mfa = append(acc.mfa, &MFADevice{Serial: serial, Type: kind, Enabled: s.now().UTC()})
	return serial
}

// RootCredentials returns copies of every root credential of the account.
func (s *Sim) RootCredentials(accountID string) RootCredentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccount(accountID)
	out := RootCredentials{AccessKeys: []RootKey{}, SigningCertificates: []SigningCert{}, MFADevices: []MFADevice{}}
	for _, k := range acc.keys {
		out.AccessKeys = append(out.AccessKeys, *k)
	}
	if acc.password != nil {
		out.Password, out.PasswordCreated = true, *acc.password
	}
	for _, c := range acc.certs {
		out.SigningCertificates = append(out.SigningCertificates, *c)
	}
	for _, d := range acc.mfa {
		out.MFADevices = append(out.MFADevices, *d)
	}
	return out
}

// SetOrgFeatures sets the organization's centralized root access state. Enabling a
// feature enables trusted access for IAM too (AWS requires it).
func (s *Sim) SetOrgFeatures(f OrgFeatures) {
	if f.RootCredentialsManagement || f.RootSessions {
		f.IAMTrustedAccess = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.IAMDelegatedAdmin != "" {
		s.mustAccount(f.IAMDelegatedAdmin)
	}
	s.features = f
}

// OrgFeatures returns the organization's centralized root access state.
func (s *Sim) OrgFeatures() OrgFeatures {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.features
}

// OmitSummaryKey makes GetAccountSummary leave a key out of its SummaryMap (as older
// API versions and moto leave out AccountPasswordPresent); "" restores them all.
func (s *Sim) OmitSummaryKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key == "" {
		s.omitKeys = nil
		return
	}
	s.omitKeys = append(s.omitKeys, key)
}

func (a *account) mfaEnabled() bool { return len(a.mfa) > 0 }

func rootCaller(c *cred) bool { return c.kind == kindRootKey || c.kind == kindRootSession }

// iamRootCred serves the root-credential actions; handled is false for any other.
// The lock is held.
func (s *Sim) iamRootCred(req *request, c *cred) (out any, aerr *apiError, handled bool) {
	switch req.action {
	case "GetLoginProfile", "DeleteLoginProfile", "CreateLoginProfile",
		"ListSigningCertificates", "DeleteSigningCertificate",
		"ListMFADevices", "DeactivateMFADevice", "GetUser":
	case "ListOrganizationsFeatures", "EnableOrganizationsRootCredentialsManagement", "EnableOrganizationsRootSessions":
		out, aerr = s.iamOrgFeatures(req, c)
		return out, aerr, true
	default:
		return nil, nil, false
	}
	// The simulator models these for the root user only: with root keys or a root
	// session, and no UserName (the caller). IAM users' credentials are not modelled.
	user := req.form.Get("UserName")
	if !rootCaller(c) || user != "" {
		if user == "" {
			user = c.arn()
		}
		return nil, noSuchUser(user), true
	}
	acc := c.acct
	switch req.action {
	case "GetUser":
		return []xmlNode{elem("User", leaf("Path", "/"), leaf("UserName", acc.ID), leaf("UserId", acc.ID),
			leaf("Arn", "arn:aws:iam::"+acc.ID+":root"), leaf("CreateDate", acc.Created.Format(time.RFC3339)))}, nil, true
	case "GetLoginProfile":
		if acc.password == nil {
			return nil, errf(404, "NoSuchEntity", "Login Profile for User root cannot be found."), true
		}
		return []xmlNode{elem("LoginProfile", leaf("CreateDate", acc.password.Format(time.RFC3339)),
			leaf("PasswordResetRequired", "false"))}, nil, true
	case "CreateLoginProfile":
		if acc.password != nil {
			return nil, errf(409, "EntityAlreadyExists", "Login Profile for user root already exists."), true
		}
		now := s.now().UTC()
		acc.password = &now
		return []xmlNode{elem("LoginProfile", leaf("CreateDate", now.Format(time.RFC3339)),
			leaf("PasswordResetRequired", "false"))}, nil, true
	case "DeleteLoginProfile":
		if acc.password == nil {
			return nil, errf(404, "NoSuchEntity", "Login Profile for User root cannot be found."), true
		}
		acc.password = nil
		return nil, nil, true
	case "ListSigningCertificates":
		var members []xmlNode
		for _, ct := range acc.certs {
			members = append(members, elem("member", leaf("CertificateId", ct.ID),
				leaf("CertificateBody", "-----BEGIN CERTIFICATE-----\nMIIBsimulated"+ct.ID+"\n-----END CERTIFICATE-----"),
				leaf("Status", status(ct.Active)), leaf("UploadDate", ct.Uploaded.Format(time.RFC3339))))
		}
		return []xmlNode{elem("Certificates", members...), leaf("IsTruncated", "false")}, nil, true
	case "DeleteSigningCertificate":
		id := req.form.Get("CertificateId")
		i := slices.IndexFunc(acc.certs, func(ct *SigningCert) bool { return ct.ID == id })
		if id == "" || i < 0 {
			return nil, errf(404, "NoSuchEntity", "The Certificate with id "+id+" cannot be found."), true
		}
		acc.certs = slices.Delete(acc.certs, i, i+1)
		return nil, nil, true
	case "ListMFADevices":
		var members []xmlNode
		for _, d := range acc.mfa {
			members = append(members, elem("member", leaf("SerialNumber", d.Serial), leaf("EnableDate", d.Enabled.Format(time.RFC3339))))
		}
		return []xmlNode{elem("MFADevices", members...), leaf("IsTruncated", "false")}, nil, true
	case "DeactivateMFADevice":
		serial := req.form.Get("SerialNumber")
		i := slices.IndexFunc(acc.mfa, func(d *MFADevice) bool { return d.Serial == serial })
		if serial == "" || i < 0 {
			return nil, errf(404, "NoSuchEntity", "MFA Device with serial number "+serial+" does not exist."), true
		}
		acc.mfa = slices.Delete(acc.mfa, i, i+1)
		return nil, nil, true
	}
	return nil, nil, false
}

// iamOrgFeatures serves ListOrganizationsFeatures and the two Enable actions.
func (s *Sim) iamOrgFeatures(req *request, c *cred) (any, *apiError) {
	if s.orgID == "" {
		return nil, errf(400, "OrganizationNotFoundException", "The request was rejected because no organization is associated with your account.")
	}
	delegated := s.features.IAMDelegatedAdmin != "" && c.acct.ID == s.features.IAMDelegatedAdmin
	if c.acct.ID != s.mgmtID && !delegated {
		return nil, errf(400, "AccountNotManagementOrDelegatedAdministratorException", "The request was rejected because the account making the request is not the management account or delegated administrator account for centralized root access.")
	}
	if !s.features.IAMTrustedAccess {
		return nil, errf(400, "ServiceAccessNotEnabledException", "The request was rejected because trusted access is not enabled for IAM in AWS Organizations.")
	}
	switch req.action {
	case "EnableOrganizationsRootCredentialsManagement", "EnableOrganizationsRootSessions":
		if c.acct.ID != s.mgmtID {
			return nil, errf(400, "CallerIsNotManagementAccountException", "The request was rejected because the account making the request is not the management account for the organization.")
		}
		if req.action == "EnableOrganizationsRootSessions" {
			s.features.RootSessions = true
		} else {
			s.features.RootCredentialsManagement = true
		}
	}
	var feats []xmlNode
	if s.features.RootCredentialsManagement {
		feats = append(feats, leaf("member", "RootCredentialsManagement"))
	}
	if s.features.RootSessions {
		feats = append(feats, leaf("member", "RootSessions"))
	}
	return []xmlNode{leaf("OrganizationId", s.orgID), elem("EnabledFeatures", feats...)}, nil
}

// registerRootControl mounts the control endpoints of root credentials and the
// organization's centralized root access (see the package doc).
func (s *Sim) registerRootControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/accounts/{id}/root-credentials", s.withAccount(func(w http.ResponseWriter, r *http.Request, id string) {
		writeJSON(w, http.StatusOK, s.RootCredentials(id))
	}))
	mux.HandleFunc("POST /_sim/accounts/{id}/root-password", s.withAccount(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			Created time.Time `json:"created"`
		}
		if r.ContentLength != 0 && !readJSON(w, r, &in) {
			return
		}
		s.SetLoginProfile(id, true, in.Created)
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("DELETE /_sim/accounts/{id}/root-password", s.withAccount(func(w http.ResponseWriter, r *http.Request, id string) {
		s.SetLoginProfile(id, false, time.Time{})
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("POST /_sim/accounts/{id}/root-signing-certificates", s.withAccount(func(w http.ResponseWriter, r *http.Request, id string) {
		certID, err := s.addSigningCert(id)
		if err != nil {
			ctlError(w, http.StatusConflict, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"certificateId": certID})
	}))
	mux.HandleFunc("POST /_sim/accounts/{id}/root-mfa-devices", s.withAccount(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			Type string `json:"type"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		if in.Type != MFAVirtual && in.Type != MFAHardware {
			ctlError(w, http.StatusBadRequest, "type must be virtual or hardware")
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"serialNumber": s.AddMFADevice(id, in.Type)})
	}))
	mux.HandleFunc("GET /_sim/organization/features", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.OrgFeatures())
	})
	mux.HandleFunc("PUT /_sim/organization/features", func(w http.ResponseWriter, r *http.Request) {
		var in OrgFeatures
		if !readJSON(w, r, &in) {
			return
		}
		s.mu.Lock()
		known := in.IAMDelegatedAdmin == "" || s.accounts[in.IAMDelegatedAdmin] != nil
		s.mu.Unlock()
		if !known {
			ctlError(w, http.StatusBadRequest, fmt.Sprintf("unknown account %q", in.IAMDelegatedAdmin))
			return
		}
		s.SetOrgFeatures(in)
		writeJSON(w, http.StatusOK, s.OrgFeatures())
	})
}
