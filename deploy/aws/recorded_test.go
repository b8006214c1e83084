package awsdeploy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/remediator"
)

// TestRecordedCallsMatchTheList runs the real code against the AWS simulator — an
// organization sweep through RootwardenReadOnly with an external id, then a root-key
// deletion through sts:AssumeRoot — and checks every (service, operation, caller) the
// simulator served against the call list, so the principal each policy is written for
// is the one that really makes the call.
func TestRecordedCallsMatchTheList(t *testing.T) {
	ctx := context.Background()
	sim := awssim.New(awssim.Options{})
	sim.AddAccount(awssim.Account{ID: "111111111111", Name: "management", Management: true})
	sim.AddAccount(awssim.Account{ID: "222222222222", Name: "security"})
	sim.AddAccount(awssim.Account{ID: "333333333333", Name: "prod"})
	sim.EnableOrganization("111111111111")
	for _, a := range []string{"111111111111", "222222222222", "333333333333"} {
		sim.AddRole(a, "RootwardenReadOnly", "external-id-0123456789")
	}
	sim.CreateRootKey("333333333333", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	sim.SetRootSessions(true) // centralized root access, for AssumeRoot
	srv := sim.Start()
	defer srv.Close()
	// The simulator answers Organizations in the management account; the central
	// account's delegation is the templates' business (TestEveryCallIsAllowedForItsCaller).
	cfg, err := sim.ClientConfig(ctx, srv.URL, "111111111111")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := detector.NewScanner(detector.Config{OrgRoleName: "RootwardenReadOnly", ExternalID: "external-id-0123456789"}, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := sc.Scan(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for _, o := range obs {
		if o.Error != "" {
			t.Fatalf("account %s not checked: %s", o.AccountID, o.Error)
		}
		if o.RootKeysPresent {
			keys++
		}
	}
	if keys != 1 {
		t.Fatalf("%d accounts with root keys, want 1", keys)
	}
	if _, err := remediator.NewAWSRootKeyDeleter(cfg).DeleteRootKeys(ctx, "333333333333"); err != nil {
		t.Fatal(err)
	}

	listed := map[string]map[string]bool{} // "svc:Op" → principals
	for _, c := range calls {
		listed[c.svc+":"+c.op] = map[string]bool{}
		for _, p := range c.principals {
			listed[c.svc+":"+c.op][p] = true
		}
	}
	seen := 0
	for c := range sim.CallsByPrincipal() {
		op := strings.ToLower(c.Service) + ":" + c.Action
		var who string
		switch {
		case strings.HasSuffix(c.Principal, ":role/RootwardenReadOnly"):
			who = member
		case strings.HasSuffix(c.Principal, ":root"):
			who = rootSession
		case strings.Contains(c.Principal, ":user/"):
			who = central // rootwarden's own (base) credentials
		default:
			t.Errorf("%s by %s: a caller this test does not know", op, c.Principal)
			continue
		}
		ps, ok := listed[op]
		switch {
		case !ok:
			t.Errorf("the code called %s as %s (%s), which the call list does not have", op, who, c.Principal)
		case !ps[who] && !ps[anyone]:
			t.Errorf("the code called %s as %s (%s); the call list says %v", op, who, c.Principal, ps)
		}
		seen++
	}
	if seen < 8 {
		t.Fatalf("the simulator recorded only %d kinds of call", seen)
	}
}
