package awssim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

func TestListAccountsPaginates(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	joined := time.Date(2023, 3, 4, 5, 6, 7, 0, time.UTC)
	for i := 0; i < 40; i++ {
		e.sim.AddAccount(awssim.Account{ID: fmt.Sprintf("5000000000%02d", i), Created: joined})
	}
	e.sim.SetAccountState("500000000007", "SUSPENDED")
	e.sim.SetPageSize(7)
	org := e.admin(t, mgmtID).org

	p := organizations.NewListAccountsPaginator(org, &organizations.ListAccountsInput{}, func(o *organizations.ListAccountsPaginatorOptions) {
		o.StopOnDuplicateToken = true
	})
	var pages int
	seen := map[string]orgtypes.Account{}
	for p.HasMorePages() {
		out, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		if len(out.Accounts) > 7 {
			t.Fatalf("page of %d accounts, want at most 7", len(out.Accounts))
		}
		for _, a := range out.Accounts {
			if _, dup := seen[aws.ToString(a.Id)]; dup {
				t.Fatalf("account %s listed twice", aws.ToString(a.Id))
			}
			seen[aws.ToString(a.Id)] = a
		}
	}
	if pages != 7 || len(seen) != 43 {
		t.Fatalf("pages = %d accounts = %d, want 7 pages of 43 accounts", pages, len(seen))
	}
	a := seen["500000000003"]
	if a.State != orgtypes.AccountStateActive || a.Status != orgtypes.AccountStatusActive || !a.JoinedTimestamp.Equal(joined) ||
		aws.ToString(a.Email) == "" || aws.ToString(a.Name) == "" || aws.ToString(a.Arn) == "" {
		t.Fatalf("account = %+v", a)
	}
	if s := seen["500000000007"]; s.State != orgtypes.AccountStateSuspended || s.Status != orgtypes.AccountStatusSuspended {
		t.Fatalf("suspended account = %s/%s", s.State, s.Status)
	}
	if got := e.sim.Calls()["Organizations.ListAccounts"]; got != 7 {
		t.Fatalf("Calls = %d, want 7", got)
	}

	t.Run("MaxResults smaller than the page size", func(t *testing.T) {
		out, err := org.ListAccounts(ctx(t), &organizations.ListAccountsInput{MaxResults: aws.Int32(3)})
		if err != nil || len(out.Accounts) != 3 || out.NextToken == nil {
			t.Fatalf("ListAccounts(3) = %d accounts, token %v, %v", len(out.Accounts), out.NextToken, err)
		}
	})
	t.Run("member accounts may not list", func(t *testing.T) {
		_, err := e.admin(t, prodID).org.ListAccounts(ctx(t), &organizations.ListAccountsInput{})
		apiErr(t, err, "AccessDeniedException", 400)
	})
	t.Run("describe organization and account", func(t *testing.T) {
		o, err := org.DescribeOrganization(ctx(t), &organizations.DescribeOrganizationInput{})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(o.Organization.MasterAccountId) != mgmtID || o.Organization.FeatureSet != orgtypes.OrganizationFeatureSetAll {
			t.Fatalf("organization = %+v", o.Organization)
		}
		d, err := org.DescribeAccount(ctx(t), &organizations.DescribeAccountInput{AccountId: aws.String(prodID)})
		if err != nil || aws.ToString(d.Account.Name) != "prod" {
			t.Fatalf("DescribeAccount = %+v, %v", d, err)
		}
		_, err = org.DescribeAccount(ctx(t), &organizations.DescribeAccountInput{AccountId: aws.String("999999999999")})
		apiErr(t, err, "AccountNotFoundException", 400)
	})
}

func TestDescribeOrganizationNotInUse(t *testing.T) {
	sim := awssim.New(awssim.Options{})
	sim.AddAccount(awssim.Account{ID: standaloneID, Name: "alone"})
	srv := sim.Start()
	t.Cleanup(srv.Close)
	e := &env{sim: sim, url: srv.URL}
	c := e.admin(t, standaloneID)
	_, err := c.org.DescribeOrganization(ctx(t), &organizations.DescribeOrganizationInput{})
	apiErr(t, err, "AWSOrganizationsNotInUseException", 400)
	var nu *orgtypes.AWSOrganizationsNotInUseException
	if !errorsAs(err, &nu) {
		t.Fatalf("error %T is not the modeled AWSOrganizationsNotInUseException", err)
	}
	_, err = c.org.ListAccounts(ctx(t), &organizations.ListAccountsInput{})
	apiErr(t, err, "AWSOrganizationsNotInUseException", 400)
}
