package model

// CredentialType names a kind of long-term root credential (metrics labels, the scan's
// counts). MFA is not a credential: it protects the password.
type CredentialType string

const (
	CredAccessKeys          CredentialType = "access_keys"
	CredSigningCertificates CredentialType = "signing_certificates"
	CredPassword            CredentialType = "password"
)

// CredentialTypes lists every CredentialType in a fixed order.
var CredentialTypes = []CredentialType{CredAccessKeys, CredSigningCertificates, CredPassword}

// RootCredentials is what IAM GetAccountSummary says of the root user: the SummaryMap
// keys AccountAccessKeysPresent, AccountSigningCertificatesPresent,
// AccountPasswordPresent and AccountMFAEnabled
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountSummary.html).
// A nil field is unknown: the answer did not carry the key (moto and older API
// versions lack AccountPasswordPresent). Never read nil as absent, nor as present.
type RootCredentials struct {
	AccessKeys          *bool `json:"access_keys,omitempty"`
	SigningCertificates *bool `json:"signing_certificates,omitempty"`
	Password            *bool `json:"password,omitempty"`
	MFAEnabled          *bool `json:"mfa_enabled,omitempty"`
}

// Has says whether a credential of that type is present; known is false when the
// summary did not say.
func (r *RootCredentials) Has(t CredentialType) (present, known bool) {
	if r == nil {
		return false, false
	}
	var p *bool
	switch t {
	case CredAccessKeys:
		p = r.AccessKeys
	case CredSigningCertificates:
		p = r.SigningCertificates
	case CredPassword:
		p = r.Password
	}
	if p == nil {
		return false, false
	}
	return *p, true
}

// Free says whether the root user has no long-term credential at all (the end state
// AWS recommends for member accounts); known is false when a type present is not
// seen and some type is unknown.
func (r *RootCredentials) Free() (free, known bool) {
	known = true
	for _, t := range CredentialTypes {
		p, k := r.Has(t)
		if p {
			return false, true
		}
		known = known && k
	}
	return known, known
}

// Present lists the credential types present, in CredentialTypes order.
func (r *RootCredentials) Present() []CredentialType {
	var out []CredentialType
	for _, t := range CredentialTypes {
		if p, _ := r.Has(t); p {
			out = append(out, t)
		}
	}
	return out
}

// Unknown lists the credential types the summary did not report.
func (r *RootCredentials) Unknown() []CredentialType {
	var out []CredentialType
	for _, t := range CredentialTypes {
		if _, k := r.Has(t); !k {
			out = append(out, t)
		}
	}
	return out
}

// OrgRootAccess is the organization's centralized root access, read with IAM
// ListOrganizationsFeatures. Known is false when it could not be read: Error and
// ErrorCode say why (ServiceAccessNotEnabledException: trusted access for IAM is
// off; AccountNotManagementOrDelegatedAdministratorException: rootwarden's identity
// is neither the management account nor the IAM delegated administrator).
type OrgRootAccess struct {
	Known                     bool   `json:"known"`
	OrganizationID            string `json:"organization_id,omitempty"`
	RootCredentialsManagement bool   `json:"root_credentials_management"`
	RootSessions              bool   `json:"root_sessions"`
	ErrorCode                 string `json:"error_code,omitempty"`
	Error                     string `json:"error,omitempty"`
}
