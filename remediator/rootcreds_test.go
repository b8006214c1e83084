package remediator

import (
	"testing"

	"github.com/rootwarden/rootwarden/internal/model"
)

// Posture is reported, not acted on, yet: a finding that reports a root password or a
// signing certificate but no access key opens no case and leaves an open case as it
// is; one with an access key opens a case as before (issue 22: no flood on upgrade).
func TestOnlyRootAccessKeysOpenCases(t *testing.T) {
	yes, no := true, false
	with := func(keys bool, rc model.RootCredentials) model.Observation {
		o := observation(acct, keys, model.SourceSweep, t0)
		o.RootCredentials = &rc
		return o
	}
	for _, tt := range []struct {
		name string
		o    model.Observation
		open bool
	}{
		{"password only", with(false, model.RootCredentials{AccessKeys: &no, SigningCertificates: &no, Password: &yes, MFAEnabled: &no}), false},
		{"signing certificate only", with(false, model.RootCredentials{AccessKeys: &no, SigningCertificates: &yes, Password: &no}), false},
		{"password and certificate, MFA on", with(false, model.RootCredentials{AccessKeys: &no, SigningCertificates: &yes, Password: &yes, MFAEnabled: &yes}), false},
		{"access key", with(true, model.RootCredentials{AccessKeys: &yes, SigningCertificates: &no, Password: &no}), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Apply(nil, Input{At: t0, Finding: &tt.o})
			if err != nil {
				t.Fatal(err)
			}
			if d.Changed() != tt.open || (tt.open && d.Case.State != model.StateOpen) {
				t.Fatalf("case opened = %v (%+v), want %v", d.Changed(), d.Case, tt.open)
			}
		})
	}
	t.Run("a case still resolves when its keys are gone, a password left (unchanged flow)", func(t *testing.T) {
		o := with(false, model.RootCredentials{AccessKeys: &no, Password: &yes})
		d, err := Apply(caseIn(model.StateTicketed), Input{At: t0, Finding: &o})
		if err != nil {
			t.Fatal(err)
		}
		// Today's behaviour, kept on purpose until cases cover every credential type:
		// the keys are gone, so the case resolves.
		if !d.Changed() || d.Case.State != model.StateResolved {
			t.Fatalf("case = %+v, want resolved (the access-key flow is unchanged)", d.Case)
		}
	})
}
