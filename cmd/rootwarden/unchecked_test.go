package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/remediator"
)

// `rootwarden cases unchecked` lists the accounts whose checks keep failing, from GET
// /api/v1/unchecked, with the reason group and the last error (issue 19 item 12,
// newcomer D26).
func TestCasesUncheckedListsTheBlindSpots(t *testing.T) {
	b := bustest.New(t)
	const token = "cli-api-token"
	r, err := remediator.New(remediator.Config{APIToken: token}, nil, b, bus.Checker{NC: b.NC}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.APIHandler())
	t.Cleanup(srv.Close)
	t.Setenv("ROOTWARDEN_API_URL", srv.URL)
	t.Setenv("ROOTWARDEN_API_TOKEN", token)
	t.Setenv("ROOTWARDEN_API_TOKEN_FILE", "")

	var out, errb bytes.Buffer
	if code := runCases(context.Background(), []string{"unchecked"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "no unchecked accounts") {
		t.Fatalf("with none: exit %d: %s %s", code, out.String(), errb.String())
	}

	at := time.Now().Add(-time.Hour)
	for i := range 3 {
		o := model.Observation{SchemaVersion: model.SchemaVersion, ID: fmt.Sprintf("o-%d", i), AccountID: "200000000003",
			Source: model.SourceSweep, ObservedAt: at.Add(time.Duration(i) * 15 * time.Minute), ErrorCode: "AccessDenied",
			Error: "iam:GetAccountSummary: AccessDenied: User: x is not authorized to perform: iam:GetAccountSummary with an explicit deny in a service control policy\nsecond line"}
		if err := r.HandleFinding(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	if code := runCases(context.Background(), []string{"unchecked"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ACCOUNT") || !strings.HasPrefix(lines[1], "200000000003") ||
		!strings.Contains(lines[1], "AccessDenied by an SCP") || !strings.Contains(lines[1], "explicit deny") {
		t.Fatalf("cases unchecked prints:\n%s", out.String())
	}
	out.Reset()
	if code := runCases(context.Background(), []string{"unchecked", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errb.String())
	}
	var got []remediator.UncheckedAccount
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got) != 1 || got[0].AccountID != "200000000003" ||
		got[0].Reason != bus.ReasonSCP || got[0].Failures != 3 {
		t.Fatalf("--json: %v %s", err, out.String())
	}
}
