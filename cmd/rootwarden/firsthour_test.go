package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// D12: -v is --verbose where it means anything (scan); at the top level it is not
// --version any more, and saying so points at both.
func TestDashVIsVerboseNotVersion(t *testing.T) {
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), []string{"-v"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "--version") || !strings.Contains(errb.String(), "--verbose") || out.Len() != 0 {
		t.Errorf("rootwarden -v: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := dispatch(context.Background(), []string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "rootwarden ") {
		t.Errorf("--version: exit %d, %q %q", code, out.String(), errb.String())
	}
}

// D12: an AWS endpoint that does not answer is named, with what to check, not only
// the SDK's chain.
func TestUnreachableAWSEndpointSaysWhatToCheck(t *testing.T) {
	scanSim(t, 1)
	t.Setenv("AWS_ENDPOINT_URL", "http://"+freeAddr(t)) // nothing listens there
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	code, _, errOut := runScanT(t)
	if code != 2 || !strings.Contains(errOut, "AWS_ENDPOINT_URL") || !strings.Contains(errOut, "connection refused") {
		t.Fatalf("exit %d, stderr %q: want exit 2 naming AWS_ENDPOINT_URL and the reason", code, errOut)
	}
	if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("more than one line: %q", errOut)
	}
}

// D12: scan --json has every key field on every key, null when not known or never
// (a key never used has last_used_at null, not no field), as the schema says.
func TestScanJSONKeysHaveEveryField(t *testing.T) {
	sim := scanSim(t, 1)
	sim.CreateRootKey("200000000001", time.Now().AddDate(-1, 0, 0))
	_, out, errOut := runScanT(t, "--org-role", "OrganizationAccountAccessRole", "--json", "--only-findings")
	var rows []struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || len(rows[0].Keys) != 1 {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	k := rows[0].Keys[0]
	for _, f := range []string{"slot", "active", "last_rotated", "last_used_at", "last_used_region", "last_used_service"} {
		if _, ok := k[f]; !ok {
			t.Errorf("key lacks %q: %v", f, k)
		}
	}
	if k["last_used_at"] != nil || k["last_used_region"] != nil || k["last_used_service"] != nil {
		t.Errorf("a key never used: %v, want the last_used_* fields null", k)
	}
}

// D12 asked for logical locations only; GitHub code scanning refuses a whole SARIF
// upload when any result's location lacks a physicalLocation with an artifact URI. Every
// result keeps one, and names the account as its logical location.
func TestScanSARIFLocationsAreWhatGitHubAccepts(t *testing.T) {
	sim := scanSim(t, 1)
	sim.CreateRootKey("200000000001", time.Now().AddDate(-1, 0, 0))
	_, out, _ := runScanT(t, "--org-role", "OrganizationAccountAccessRole", "-o", "sarif")
	var doc struct {
		Runs []struct {
			Results []struct {
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string } `json:"artifactLocation"`
					} `json:"physicalLocation"`
					LogicalLocations []struct{ FullyQualifiedName string } `json:"logicalLocations"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Runs) != 1 || len(doc.Runs[0].Results) != 1 {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, r := range doc.Runs[0].Results {
		if len(r.Locations) != 1 || r.Locations[0].PhysicalLocation.ArtifactLocation.URI == "" ||
			len(r.Locations[0].LogicalLocations) != 1 || r.Locations[0].LogicalLocations[0].FullyQualifiedName != "aws/account/200000000001" {
			t.Errorf("locations %+v", r.Locations)
		}
	}
}
