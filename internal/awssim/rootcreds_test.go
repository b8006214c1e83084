package awssim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

const auditPolicy = "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials"

func summaryMap(t *testing.T, c clients) map[string]int32 {
	t.Helper()
	out, err := c.iam.GetAccountSummary(ctx(t), &iam.GetAccountSummaryInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out.SummaryMap
}

func rootFacts(m map[string]int32) [4]int32 {
	return [4]int32{
		m[string(types.SummaryKeyTypeAccountAccessKeysPresent)],
		m[string(types.SummaryKeyTypeAccountSigningCertificatesPresent)],
		m[string(types.SummaryKeyTypeAccountPasswordPresent)],
		m[string(types.SummaryKeyTypeAccountMFAEnabled)],
	}
}

func TestAccountSummaryReportsEveryRootCredential(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	admin := e.admin(t, prodID)
	if got := rootFacts(summaryMap(t, admin)); got != [4]int32{} {
		t.Fatalf("credential-free account: keys, certs, password, mfa = %v, want all 0", got)
	}
	e.sim.SetLoginProfile(prodID, true, time.Time{})
	if got := rootFacts(summaryMap(t, admin)); got != [4]int32{0, 0, 1, 0} {
		t.Fatalf("password only: %v", got)
	}
	e.sim.AddSigningCertificate(prodID)
	e.sim.AddMFADevice(prodID, awssim.MFAHardware)
	e.sim.CreateRootKey(prodID, time.Time{})
	if got := rootFacts(summaryMap(t, admin)); got != [4]int32{1, 1, 1, 1} {
		t.Fatalf("everything: %v", got)
	}
	t.Run("an omitted key is absent from the map, not 0", func(t *testing.T) {
		e.sim.OmitSummaryKey("AccountPasswordPresent")
		defer e.sim.OmitSummaryKey("")
		if _, ok := summaryMap(t, admin)["AccountPasswordPresent"]; ok {
			t.Fatal("AccountPasswordPresent still in the summary")
		}
	})
}

func TestRootTaskPolicies(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	e.sim.SetRootSessions(true)
	admin := e.admin(t, mgmtID)
	key := e.sim.CreateRootKey(prodID, time.Time{})
	e.sim.SetLoginProfile(prodID, true, time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC))
	cert := e.sim.AddSigningCertificate(prodID)
	serial := e.sim.AddMFADevice(prodID, awssim.MFAVirtual)

	t.Run("audit session reads every root credential and deletes none", func(t *testing.T) {
		out, err := assumeRoot(t, admin, prodID, auditPolicy, 0)
		if err != nil {
			t.Fatal(err)
		}
		root := e.session(t, out.Credentials)
		lp, err := root.iam.GetLoginProfile(ctx(t), &iam.GetLoginProfileInput{})
		if err != nil || !lp.LoginProfile.CreateDate.Equal(time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Fatalf("GetLoginProfile = %+v, %v", lp, err)
		}
		certs, err := root.iam.ListSigningCertificates(ctx(t), &iam.ListSigningCertificatesInput{})
		if err != nil || len(certs.Certificates) != 1 || aws.ToString(certs.Certificates[0].CertificateId) != cert || certs.Certificates[0].Status != types.StatusTypeActive {
			t.Fatalf("ListSigningCertificates = %+v, %v", certs, err)
		}
		mfa, err := root.iam.ListMFADevices(ctx(t), &iam.ListMFADevicesInput{})
		if err != nil || len(mfa.MFADevices) != 1 || aws.ToString(mfa.MFADevices[0].SerialNumber) != serial {
			t.Fatalf("ListMFADevices = %+v, %v", mfa, err)
		}
		if got := rootFacts(summaryMap(t, root)); got != [4]int32{1, 1, 1, 1} {
			t.Fatalf("summary in the audit session = %v", got)
		}
		for name, call := range map[string]func() error{
			"DeleteAccessKey": func() error {
				_, err := root.iam.DeleteAccessKey(ctx(t), &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(key)})
				return err
			},
			"DeleteLoginProfile": func() error {
				_, err := root.iam.DeleteLoginProfile(ctx(t), &iam.DeleteLoginProfileInput{})
				return err
			},
			"DeleteSigningCertificate": func() error {
				_, err := root.iam.DeleteSigningCertificate(ctx(t), &iam.DeleteSigningCertificateInput{CertificateId: aws.String(cert)})
				return err
			},
			"DeactivateMFADevice": func() error {
				_, err := root.iam.DeactivateMFADevice(ctx(t), &iam.DeactivateMFADeviceInput{SerialNumber: aws.String(serial)})
				return err
			},
			"CreateLoginProfile": func() error {
				_, err := root.iam.CreateLoginProfile(ctx(t), &iam.CreateLoginProfileInput{Password: aws.String("x")})
				return err
			},
		} {
			t.Run(name+" is refused", func(t *testing.T) { apiErr(t, call(), "AccessDenied", 403) })
		}
		got := e.sim.RootCredentials(prodID)
		if len(got.AccessKeys) != 1 || !got.Password || len(got.SigningCertificates) != 1 || len(got.MFADevices) != 1 {
			t.Fatalf("the audit session changed the account: %+v", got)
		}
	})

	t.Run("delete session removes every root credential", func(t *testing.T) {
		out, err := assumeRoot(t, admin, prodID, deletePolicy, 0)
		if err != nil {
			t.Fatal(err)
		}
		root := e.session(t, out.Credentials)
		if _, err := root.iam.DeleteAccessKey(ctx(t), &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
		if _, err := root.iam.DeleteLoginProfile(ctx(t), &iam.DeleteLoginProfileInput{}); err != nil {
			t.Fatal(err)
		}
		if _, err := root.iam.DeleteSigningCertificate(ctx(t), &iam.DeleteSigningCertificateInput{CertificateId: aws.String(cert)}); err != nil {
			t.Fatal(err)
		}
		if _, err := root.iam.DeactivateMFADevice(ctx(t), &iam.DeactivateMFADeviceInput{SerialNumber: aws.String(serial)}); err != nil {
			t.Fatal(err)
		}
		_, err = root.iam.GetLoginProfile(ctx(t), &iam.GetLoginProfileInput{})
		apiErr(t, err, "NoSuchEntity", 404)
		_, err = root.iam.DeleteSigningCertificate(ctx(t), &iam.DeleteSigningCertificateInput{CertificateId: aws.String(cert)})
		apiErr(t, err, "NoSuchEntity", 404)
		if got := rootFacts(summaryMap(t, e.admin(t, prodID))); got != [4]int32{} {
			t.Fatalf("summary after deletion = %v, want all 0", got)
		}
	})

	t.Run("credential tasks need root credentials management", func(t *testing.T) {
		e.sim.SetOrgFeatures(awssim.OrgFeatures{RootSessions: true})
		defer e.sim.SetRootSessions(true)
		_, err := assumeRoot(t, admin, prodID, auditPolicy, 0)
		apiErr(t, err, "AccessDenied", 403)
	})

	t.Run("the IAM delegated administrator may assume root; another member may not", func(t *testing.T) {
		e.sim.SetOrgFeatures(awssim.OrgFeatures{RootCredentialsManagement: true, IAMDelegatedAdmin: devID})
		defer e.sim.SetRootSessions(true)
		if _, err := assumeRoot(t, e.admin(t, devID), prodID, auditPolicy, 0); err != nil {
			t.Fatal(err)
		}
		_, err := assumeRoot(t, e.admin(t, prodID), devID, auditPolicy, 0)
		apiErr(t, err, "AccessDenied", 403)
	})
}

func TestListOrganizationsFeatures(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	admin := e.admin(t, mgmtID)

	_, err := admin.iam.ListOrganizationsFeatures(ctx(t), &iam.ListOrganizationsFeaturesInput{})
	var notEnabled *types.ServiceAccessNotEnabledException
	if !errorsAs(err, &notEnabled) {
		t.Fatalf("without trusted access for IAM: %v, want ServiceAccessNotEnabledException", err)
	}
	e.sim.SetOrgFeatures(awssim.OrgFeatures{IAMTrustedAccess: true})
	out, err := admin.iam.ListOrganizationsFeatures(ctx(t), &iam.ListOrganizationsFeaturesInput{})
	if err != nil || len(out.EnabledFeatures) != 0 || aws.ToString(out.OrganizationId) == "" {
		t.Fatalf("trusted access only = %+v, %v", out, err)
	}
	_, err = e.admin(t, prodID).iam.ListOrganizationsFeatures(ctx(t), &iam.ListOrganizationsFeaturesInput{})
	var notMgmt *types.AccountNotManagementOrDelegatedAdministratorException
	if !errorsAs(err, &notMgmt) {
		t.Fatalf("from a member: %v, want AccountNotManagementOrDelegatedAdministratorException", err)
	}
	if _, err := admin.iam.EnableOrganizationsRootCredentialsManagement(ctx(t), &iam.EnableOrganizationsRootCredentialsManagementInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.iam.EnableOrganizationsRootSessions(ctx(t), &iam.EnableOrganizationsRootSessionsInput{}); err != nil {
		t.Fatal(err)
	}
	out, err = admin.iam.ListOrganizationsFeatures(ctx(t), &iam.ListOrganizationsFeaturesInput{})
	if err != nil || len(out.EnabledFeatures) != 2 || out.EnabledFeatures[0] != types.FeatureTypeRootCredentialsManagement || out.EnabledFeatures[1] != types.FeatureTypeRootSessions {
		t.Fatalf("both enabled = %+v, %v", out, err)
	}

	t.Run("outside an organization", func(t *testing.T) {
		sim := awssim.New(awssim.Options{})
		sim.AddAccount(awssim.Account{ID: standaloneID})
		srv := sim.Start()
		defer srv.Close()
		solo := &env{sim: sim, url: srv.URL, clock: e.clock}
		_, err := solo.admin(t, standaloneID).iam.ListOrganizationsFeatures(ctx(t), &iam.ListOrganizationsFeaturesInput{})
		var nf *types.OrganizationNotFoundException
		if !errorsAs(err, &nf) {
			t.Fatalf("%v, want OrganizationNotFoundException", err)
		}
	})
}

func TestRootCredentialControlEndpoints(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	post := func(path, body string) *http.Response {
		t.Helper()
		resp, err := http.Post(e.url+path, "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if r := post("/_sim/accounts/"+devID+"/root-password", ""); r.StatusCode != http.StatusNoContent {
		t.Fatalf("root-password: %d", r.StatusCode)
	}
	if r := post("/_sim/accounts/"+devID+"/root-signing-certificates", ""); r.StatusCode != http.StatusCreated {
		t.Fatalf("root-signing-certificates: %d", r.StatusCode)
	}
	if r := post("/_sim/accounts/"+devID+"/root-mfa-devices", `{"type":"hardware"}`); r.StatusCode != http.StatusCreated {
		t.Fatalf("root-mfa-devices: %d", r.StatusCode)
	}
	if r := post("/_sim/accounts/"+devID+"/root-mfa-devices", `{"type":"yubikey"}`); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown MFA type: %d, want 400", r.StatusCode)
	}
	resp, err := http.Get(e.url + "/_sim/accounts/" + devID + "/root-credentials")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rc awssim.RootCredentials
	if err := json.NewDecoder(resp.Body).Decode(&rc); err != nil {
		t.Fatal(err)
	}
	if !rc.Password || len(rc.SigningCertificates) != 1 || len(rc.MFADevices) != 1 || rc.MFADevices[0].Type != awssim.MFAHardware {
		t.Fatalf("root-credentials = %+v", rc)
	}
	req, _ := http.NewRequest(http.MethodPut, e.url+"/_sim/organization/features", bytes.NewBufferString(`{"rootCredentialsManagement":true}`))
	put, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	put.Body.Close()
	if f := e.sim.OrgFeatures(); put.StatusCode != http.StatusOK || !f.RootCredentialsManagement || !f.IAMTrustedAccess || f.RootSessions {
		t.Fatalf("PUT features: %d, %+v", put.StatusCode, f)
	}
	if got := rootFacts(summaryMap(t, e.admin(t, devID))); got != [4]int32{0, 1, 1, 1} {
		t.Fatalf("summary of the seeded account = %v", got)
	}
}
