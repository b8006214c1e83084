package detector_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// gauges reads a gauge family of a registry by its "type" label ("" without labels).
func gauges(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			label := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" {
					label = l.GetValue()
				}
			}
			out[label] = m.GetGauge().GetValue()
		}
	}
	return out
}

func fact(p *bool) string {
	switch {
	case p == nil:
		return "unknown"
	case *p:
		return "present"
	}
	return "absent"
}

func facts(rc *model.RootCredentials) [4]string {
	if rc == nil {
		return [4]string{}
	}
	return [4]string{fact(rc.AccessKeys), fact(rc.SigningCertificates), fact(rc.Password), fact(rc.MFAEnabled)}
}

func TestScanReportsEveryRootCredentialAndTheOrganizationsPosture(t *testing.T) {
	w := newWorld(t, 4, true, awssim.Options{})
	w.sim.CreateRootKey(member(1), w.clock.Now())
	w.sim.SetLoginProfile(member(2), true, w.clock.Now()) // password only
	w.sim.AddMFADevice(member(2), awssim.MFAHardware)
	w.sim.AddSigningCertificate(member(3)) // signing certificate only
	w.sim.SetLoginProfile(mgmtID, true, w.clock.Now())
	w.sim.AddMFADevice(mgmtID, awssim.MFAVirtual)
	// member-4 has no root credential at all.
	cfg := w.config("OrganizationAccountAccessRole")
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	sc, err := detector.NewScanner(cfg, w.logger(), w.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	obs, err := sc.Scan(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]model.Observation{}
	for _, o := range obs {
		got[o.AccountID] = o
	}
	want := map[string][4]string{ // keys, certificates, password, MFA
		mgmtID:    {"absent", "absent", "present", "present"},
		member(1): {"present", "absent", "absent", "absent"},
		member(2): {"absent", "absent", "present", "present"},
		member(3): {"absent", "present", "absent", "absent"},
		member(4): {"absent", "absent", "absent", "absent"},
	}
	for id, f := range want {
		if g := facts(got[id].RootCredentials); g != f {
			t.Errorf("%s: keys, certificates, password, MFA = %v, want %v", id, g, f)
		}
		if got[id].RootKeysPresent != (f[0] == "present") {
			t.Errorf("%s: RootKeysPresent = %v", id, got[id].RootKeysPresent)
		}
	}

	with := gauges(t, reg, "rootwarden_accounts_with_root_credentials")
	if with["access_keys"] != 1 || with["signing_certificates"] != 1 || with["password"] != 2 {
		t.Errorf("rootwarden_accounts_with_root_credentials = %v", with)
	}
	if free := gauges(t, reg, "rootwarden_accounts_root_credential_free")[""]; free != 1 {
		t.Errorf("rootwarden_accounts_root_credential_free = %v, want 1 (member-4)", free)
	}

	t.Run("trusted access for IAM off: unknown, with the reason", func(t *testing.T) {
		ra, ok := sc.OrgRootAccess(context.Background())
		if !ok || ra.Known || ra.ErrorCode != "ServiceAccessNotEnabledException" || ra.Error == "" {
			t.Fatalf("OrgRootAccess = %+v, %v", ra, ok)
		}
		if g := gauges(t, reg, "rootwarden_org_root_credentials_management_enabled"); len(g) != 0 {
			t.Fatalf("an unknown posture must not be exported as 0 or 1: %v", g)
		}
	})
	t.Run("root credentials management on", func(t *testing.T) {
		w.sim.SetOrgFeatures(awssim.OrgFeatures{RootCredentialsManagement: true})
		ra, ok := sc.OrgRootAccess(context.Background())
		if !ok || !ra.Known || !ra.RootCredentialsManagement || ra.RootSessions || ra.OrganizationID == "" {
			t.Fatalf("OrgRootAccess = %+v, %v", ra, ok)
		}
		if g := gauges(t, reg, "rootwarden_org_root_credentials_management_enabled")[""]; g != 1 {
			t.Fatalf("rootwarden_org_root_credentials_management_enabled = %v", g)
		}
	})
	t.Run("the metrics move when a credential goes", func(t *testing.T) {
		w.sim.SetLoginProfile(member(2), false, w.clock.Now())
		if _, err := sc.Scan(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if with := gauges(t, reg, "rootwarden_accounts_with_root_credentials"); with["password"] != 1 {
			t.Errorf("password after its removal = %v, want 1", with["password"])
		}
		if free := gauges(t, reg, "rootwarden_accounts_root_credential_free")[""]; free != 2 {
			t.Errorf("root-credential-free = %v, want 2", free)
		}
	})
	t.Run("a summary without AccountPasswordPresent is unknown, not absent", func(t *testing.T) {
		w.sim.OmitSummaryKey("AccountPasswordPresent")
		defer w.sim.OmitSummaryKey("")
		if _, err := sc.Scan(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if u := gauges(t, reg, "rootwarden_accounts_root_credentials_unknown"); u["password"] != 5 {
			t.Errorf("unknown password = %v, want 5", u)
		}
		if free := gauges(t, reg, "rootwarden_accounts_root_credential_free")[""]; free != 0 {
			t.Errorf("root-credential-free with passwords unknown = %v, want 0", free)
		}
	})
}

func TestSingleAccountScanReadsNoOrganizationFeatures(t *testing.T) {
	w := newWorld(t, 0, false, awssim.Options{})
	sc, err := detector.NewScanner(w.config(""), w.logger(), w.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sc.OrgRootAccess(context.Background()); ok {
		t.Fatal("single-account mode read the organization's features")
	}
	if n := w.sim.Calls()["IAM.ListOrganizationsFeatures"]; n != 0 {
		t.Fatalf("ListOrganizationsFeatures called %d times", n)
	}
}

// Each sweep reads the organization's centralized root access and records it with the
// sweep; every replica's posture metrics count every account, also those another
// replica checked (from the findings stream).
func TestSweepRecordsRootCredentialPosture(t *testing.T) {
	const members = 3
	w := newWorld(t, members, true, awssim.Options{})
	w.sim.SetOrgFeatures(awssim.OrgFeatures{RootCredentialsManagement: true, RootSessions: true})
	w.sim.SetLoginProfile(member(1), true, w.clock.Now())
	w.sim.AddSigningCertificate(member(2))
	b := bustest.New(t)
	ctx := context.Background()
	writeSweep(t, b, detector.SweepState{SchemaVersion: 1, ID: "earlier", StartedAt: w.clock.Now(), Owner: "x", Done: true})

	cfg := w.config("OrganizationAccountAccessRole")
	cfg.Instance = "detector-a"
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	d := newDetector(t, w, cfg, b)
	runDetector(t, d)
	// A second replica that takes no sweep job: its metrics come from the stream.
	other := w.config("OrganizationAccountAccessRole")
	other.Instance, other.Concurrency = "detector-b", 1
	otherReg := prometheus.NewRegistry()
	other.Metrics = otherReg
	d2 := newDetector(t, w, other, bustest.Connect(t, b))

	w.clock.Add(25 * time.Hour)
	// The sweep is due: this call or d's own loop (already running) takes it.
	if _, _, err := d.MaybeSweep(ctx); err != nil {
		t.Fatalf("MaybeSweep: %v", err)
	}
	got := perAccount(t, waitFindings(t, b, members+1, bySource(model.SourceSweep)))
	if rc := got[member(1)].RootCredentials; rc == nil || rc.Password == nil || !*rc.Password {
		t.Errorf("member-1's finding = %+v, want the password reported", rc)
	}
	st := readSweep(t, b)
	if ra := st.RootAccess; ra == nil || !ra.Known || !ra.RootCredentialsManagement || !ra.RootSessions {
		t.Errorf("sweep's root access = %+v", st.RootAccess)
	}
	if g := gauges(t, reg, "rootwarden_org_root_credentials_management_enabled")[""]; g != 1 {
		t.Errorf("rootwarden_org_root_credentials_management_enabled = %v", g)
	}

	runDetector(t, d2)
	testutil.Eventually(t, "the other replica counts the accounts it did not check", func() bool {
		with := gauges(t, otherReg, "rootwarden_accounts_with_root_credentials")
		return with["password"] == 1 && with["signing_certificates"] == 1 &&
			gauges(t, otherReg, "rootwarden_accounts_root_credential_free")[""] == members-1
	})
}
