package awssim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

func TestOrganizationTree(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	prodOU := e.sim.AddOU("", "Prod")
	payOU := e.sim.AddOU(prodOU, "Payments")
	e.sim.MoveAccount(prodID, payOU)
	e.sim.SetAccountTags(prodID, map[string]string{"team": "payments", "owner": "pay@example.com", "env": "prod"})
	e.sim.SetPageSize(2)
	org := e.admin(t, mgmtID).org

	roots, err := org.ListRoots(ctx(t), &organizations.ListRootsInput{})
	if err != nil || len(roots.Roots) != 1 || aws.ToString(roots.Roots[0].Name) != "Root" {
		t.Fatalf("ListRoots = %+v %v", roots, err)
	}
	root := aws.ToString(roots.Roots[0].Id)
	ous, err := org.ListOrganizationalUnitsForParent(ctx(t), &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(root)})
	if err != nil || len(ous.OrganizationalUnits) != 1 || aws.ToString(ous.OrganizationalUnits[0].Id) != prodOU || aws.ToString(ous.OrganizationalUnits[0].Name) != "Prod" {
		t.Fatalf("OUs under the root = %+v %v", ous, err)
	}
	var under []string
	p := organizations.NewListAccountsForParentPaginator(org, &organizations.ListAccountsForParentInput{ParentId: aws.String(root)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Accounts {
			under = append(under, aws.ToString(a.Id))
		}
	}
	if len(under) != 2 || under[0] != mgmtID || under[1] != devID {
		t.Errorf("accounts under the root = %v, want management and dev", under)
	}
	inPay, err := org.ListAccountsForParent(ctx(t), &organizations.ListAccountsForParentInput{ParentId: aws.String(payOU)})
	if err != nil || len(inPay.Accounts) != 1 || aws.ToString(inPay.Accounts[0].Id) != prodID || inPay.Accounts[0].State != orgtypes.AccountStateActive {
		t.Fatalf("accounts in Payments = %+v %v", inPay, err)
	}
	parents, err := org.ListParents(ctx(t), &organizations.ListParentsInput{ChildId: aws.String(prodID)})
	if err != nil || len(parents.Parents) != 1 || aws.ToString(parents.Parents[0].Id) != payOU || parents.Parents[0].Type != orgtypes.ParentTypeOrganizationalUnit {
		t.Fatalf("ListParents(prod) = %+v %v", parents, err)
	}
	parents, err = org.ListParents(ctx(t), &organizations.ListParentsInput{ChildId: aws.String(prodOU)})
	if err != nil || aws.ToString(parents.Parents[0].Id) != root || parents.Parents[0].Type != orgtypes.ParentTypeRoot {
		t.Fatalf("ListParents(Prod) = %+v %v", parents, err)
	}
	ou, err := org.DescribeOrganizationalUnit(ctx(t), &organizations.DescribeOrganizationalUnitInput{OrganizationalUnitId: aws.String(payOU)})
	if err != nil || aws.ToString(ou.OrganizationalUnit.Name) != "Payments" {
		t.Fatalf("DescribeOrganizationalUnit = %+v %v", ou, err)
	}
	tags := map[string]string{}
	tp := organizations.NewListTagsForResourcePaginator(org, &organizations.ListTagsForResourceInput{ResourceId: aws.String(prodID)})
	for tp.HasMorePages() {
		page, err := tp.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range page.Tags {
			tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
	}
	if len(tags) != 3 || tags["team"] != "payments" {
		t.Errorf("tags = %v", tags)
	}

	_, err = org.ListAccountsForParent(ctx(t), &organizations.ListAccountsForParentInput{ParentId: aws.String("ou-nope")})
	apiErr(t, err, "ParentNotFoundException", 400)
	_, err = org.ListParents(ctx(t), &organizations.ListParentsInput{ChildId: aws.String("999999999999")})
	apiErr(t, err, "ChildNotFoundException", 400)
	_, err = org.DescribeOrganizationalUnit(ctx(t), &organizations.DescribeOrganizationalUnitInput{OrganizationalUnitId: aws.String("ou-nope")})
	apiErr(t, err, "OrganizationalUnitNotFoundException", 400)
	_, err = e.admin(t, prodID).org.ListRoots(ctx(t), &organizations.ListRootsInput{})
	apiErr(t, err, "AccessDeniedException", 400) // a member account may not
}

// The same seed throttles the same calls (in call order); share 0 ends it.
func TestThrottleShareIsSeeded(t *testing.T) {
	pattern := func(seed uint64) []bool {
		e := newEnv(t, awssim.Options{})
		e.sim.SetThrottleShare(0.3, seed)
		cfg := e.baseConfig(t)
		ak, sk := e.sim.AdminCredentials(mgmtID)
		cfg.Credentials = credentials.NewStaticCredentialsProvider(ak, sk, "")
		client := iam.NewFromConfig(cfg, func(o *iam.Options) { o.RetryMaxAttempts = 1 })
		var out []bool
		for range 40 {
			_, err := client.GetAccountSummary(ctx(t), &iam.GetAccountSummaryInput{})
			if err != nil {
				apiErr(t, err, "Throttling", 400)
			}
			out = append(out, err != nil)
		}
		n := 0
		for _, th := range out {
			if th {
				n++
			}
		}
		if n == 0 || n == 40 || e.sim.ThrottledCalls() != n {
			t.Fatalf("%d of 40 throttled (sim counted %d)", n, e.sim.ThrottledCalls())
		}
		e.sim.SetThrottleShare(0, 0)
		if _, err := client.GetAccountSummary(ctx(t), &iam.GetAccountSummaryInput{}); err != nil {
			t.Fatalf("after share 0: %v", err)
		}
		return out
	}
	a, b, c := pattern(1), pattern(1), pattern(2)
	if !equalBools(a, b) {
		t.Error("the same seed throttled different calls")
	}
	if equalBools(a, c) {
		t.Error("another seed throttled the same calls")
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// CallsByPrincipal names every operation with who called it: role sessions by their
// role, users by their ARN.
func TestCallsByPrincipal(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	admin := e.admin(t, mgmtID)
	out, err := admin.sts.AssumeRole(ctx(t), &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + prodID + ":role/OrganizationAccountAccessRole"), RoleSessionName: aws.String("s1")})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	role := e.clients(t, aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	for range 2 {
		if _, err := role.iam.GetAccountSummary(ctx(t), &iam.GetAccountSummaryInput{}); err != nil {
			t.Fatal(err)
		}
	}
	got := e.sim.CallsByPrincipal()
	want := map[awssim.Call]int{
		{Service: "STS", Action: "AssumeRole", Principal: "arn:aws:iam::" + mgmtID + ":user/rootwarden-admin", Account: mgmtID}:                     1,
		{Service: "IAM", Action: "GetAccountSummary", Principal: "arn:aws:iam::" + prodID + ":role/OrganizationAccountAccessRole", Account: prodID}: 2,
	}
	if len(got) != len(want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%+v: %d calls, want %d (all: %v)", k, got[k], n, got)
		}
	}
	e.sim.ResetCalls()
	if n := len(e.sim.CallsByPrincipal()); n != 0 {
		t.Errorf("%d entries after ResetCalls", n)
	}
}
