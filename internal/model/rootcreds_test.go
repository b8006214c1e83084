package model

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// oldFinding is a finding as the detector wrote it before root_credentials existed.
const oldFinding = `{"schema_version":1,"id":"f1","account_id":"222222222222","account_name":"prod",
"management":false,"org_member":true,"source":"sweep","observed_at":"2026-12-01T10:00:00Z",
"root_keys_present":true,"keys":[{"slot":1,"active":true}],"error":""}`

func TestFindingOfTheOldDetectorDecodes(t *testing.T) {
	var o Observation
	if err := json.Unmarshal([]byte(oldFinding), &o); err != nil {
		t.Fatal(err)
	}
	if !o.RootKeysPresent || o.AccountID != "222222222222" || len(o.Keys) != 1 {
		t.Fatalf("decoded = %+v", o)
	}
	if o.RootCredentials != nil {
		t.Fatalf("an old finding says nothing of other credentials, got %+v", o.RootCredentials)
	}
	if _, known := o.RootCredentials.Free(); known {
		t.Fatal("an old finding must not count as root-credential-free or not")
	}
}

func TestNewFindingKeepsTheOldFieldsAndSchemaVersion(t *testing.T) {
	yes, no := true, false
	o := Observation{SchemaVersion: SchemaVersion, AccountID: "1", RootKeysPresent: false, Keys: []KeyDetail{},
		RootCredentials: &RootCredentials{AccessKeys: &no, SigningCertificates: &no, Password: &yes}}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	// An old reader decodes into a struct without the field and ignores it; what it
	// reads must not change.
	var old map[string]any
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	if old["schema_version"] != float64(1) || old["root_keys_present"] != false {
		t.Fatalf("old fields changed: %s", b)
	}
	if !strings.Contains(string(b), `"root_credentials":{"access_keys":false,"signing_certificates":false,"password":true}`) {
		t.Fatalf("root_credentials = %s (false must be written, unknown MFA left out)", b)
	}
	var back Observation
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back.RootCredentials, o.RootCredentials) {
		t.Fatalf("round trip = %+v, %v", back.RootCredentials, err)
	}
}

func TestRootCredentialsFree(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name        string
		rc          *RootCredentials
		free, known bool
		present     []CredentialType
	}{
		{"nothing known", nil, false, false, nil},
		{"all three absent", &RootCredentials{AccessKeys: &no, SigningCertificates: &no, Password: &no}, true, true, nil},
		{"password unknown (moto): not free, not known", &RootCredentials{AccessKeys: &no, SigningCertificates: &no}, false, false, nil},
		{"a certificate present decides even with the password unknown", &RootCredentials{AccessKeys: &no, SigningCertificates: &yes}, false, true, []CredentialType{CredSigningCertificates}},
		{"MFA is not a credential", &RootCredentials{AccessKeys: &no, SigningCertificates: &no, Password: &no, MFAEnabled: &yes}, true, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			free, known := tt.rc.Free()
			if free != tt.free || known != tt.known || !reflect.DeepEqual(tt.rc.Present(), tt.present) {
				t.Fatalf("Free = %v, %v; Present = %v", free, known, tt.rc.Present())
			}
		})
	}
}
