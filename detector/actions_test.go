package detector_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// The AWS actions the detector calls, by whom: what the deploy policies must allow
// (deploy/aws). A new call makes this test fail until the list (and the policies)
// say so. Covered: a sweep of an organization with OUs and tags, an event, an
// on-demand check, a new account the inventory does not know, a closed account.
func TestDetectorAWSActions(t *testing.T) {
	w := newWorld(t, 3, true, awssim.Options{})
	ou := w.sim.AddOU("", "Prod")
	w.sim.MoveAccount(member(1), ou)
	w.sim.SetAccountTags(member(1), map[string]string{"team": "payments"})
	w.sim.CreateRootKey(member(1), w.clock.Now().Add(-time.Hour))
	w.sim.CreateRootKey(mgmtID, w.clock.Now().Add(-time.Hour))
	b := bustest.New(t)
	cfg, queue := w.eventsConfig()
	runDetector(t, newDetector(t, w, cfg, b))
	waitFindings(t, b, 4, bySource(model.SourceSweep))

	key := w.sim.RootKeys(member(1))[0].ID
	w.sim.SendMessage(queue, awssim.RootKeyUsedEvent(member(1), key, "ListBuckets", w.clock.Now()))
	waitFindings(t, b, 1, bySource(model.SourceEvent))
	w.sim.AddAccount(awssim.Account{ID: member(9), Name: "joined-later"})
	checker := bus.Checker{NC: b.NC}
	if o, err := checker.Check(context.Background(), member(9), "test"); err != nil || o.Failed() {
		t.Fatalf("check of a new account: %+v %v", o, err)
	}
	w.sim.SetAccountState(member(2), "SUSPENDED")
	if o, _ := checker.Check(context.Background(), member(2), "test"); o.ErrorCode != "AccountNotActive" {
		t.Fatalf("check of a suspended account = %+v", o)
	}
	testutil.Eventually(t, "the event deleted", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == 1 })

	got := map[string]bool{}
	for c := range w.sim.CallsByPrincipal() {
		who := "management"
		if strings.Contains(c.Principal, ":role/") {
			who = "member role"
		}
		got[who+" "+c.Service+"."+c.Action] = true
	}
	want := []string{
		"management IAM.GenerateCredentialReport", // the management account, with the base credentials
		"management IAM.GetAccountSummary",
		"management IAM.GetCredentialReport",
		"management IAM.ListOrganizationsFeatures", // each sweep: centralized root access (rootaccess.go)
		"management Organizations.DescribeAccount", // accounts not in the inventory; confirming a refused one is closed
		"management Organizations.DescribeOrganization",
		"management Organizations.DescribeOrganizationalUnit", // OU path of accounts not listed through the tree
		"management Organizations.ListAccounts",               // listed beside the tree, each on its own bucket
		"management Organizations.ListAccountsForParent",
		"management Organizations.ListOrganizationalUnitsForParent",
		"management Organizations.ListParents",
		"management Organizations.ListRoots",
		"management Organizations.ListTagsForResource",
		"management SQS.DeleteMessage",
		"management SQS.ReceiveMessage",
		"management STS.AssumeRole",
		"management STS.GetCallerIdentity",
		"member role IAM.GenerateCredentialReport",
		"member role IAM.GetAccountSummary",
		"member role IAM.GetCredentialReport",
	}
	var have []string
	for k := range got {
		have = append(have, k)
	}
	slices.Sort(have)
	// Not exercised here: IAM.ListAccountAliases (only without an organization role).
	for _, k := range have {
		if !slices.Contains(want, k) && !strings.HasSuffix(k, "SQS.SendMessage") && !strings.HasSuffix(k, "SQS.CreateQueue") {
			t.Errorf("the detector called %s, not in the list", k)
		}
	}
	for _, k := range want {
		// DescribeOrganizationalUnit: only for an OU the tree walk has not named;
		// ListAccounts stops when the tree is listed first (a small organization).
		if !got[k] && k != "management Organizations.DescribeOrganizationalUnit" && k != "management Organizations.ListAccounts" {
			t.Errorf("%s is in the list but was not called", k)
		}
	}
}
