package awssim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

const deletePolicy = "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials"

func assumeRole(t *testing.T, c clients, roleArn, externalID string) (*sts.AssumeRoleOutput, error) {
	t.Helper()
	in := &sts.AssumeRoleInput{RoleArn: aws.String(roleArn), RoleSessionName: aws.String("rootwarden")}
	if externalID != "" {
		in.ExternalId = aws.String(externalID)
	}
	return c.sts.AssumeRole(ctx(t), in)
}

func (e *env) session(t testing.TB, cr *ststypes.Credentials) clients {
	t.Helper()
	return e.clients(t, aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken))
}

func TestCallerIdentity(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	rootKey := e.sim.CreateRootKey(prodID, time.Time{})
	ar, err := assumeRole(t, e.admin(t, mgmtID), "arn:aws:iam::"+prodID+":role/OrganizationAccountAccessRole", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		c       clients
		account string
		arn     string
		userID  func(string) bool
	}{
		{"admin user keys", e.admin(t, mgmtID), mgmtID, "arn:aws:iam::" + mgmtID + ":user/rootwarden-admin",
			func(s string) bool { return strings.HasPrefix(s, "AIDA") }},
		{"root keys", e.root(t, prodID, rootKey), prodID, "arn:aws:iam::" + prodID + ":root",
			func(s string) bool { return s == prodID }},
		{"assumed-role session", e.session(t, ar.Credentials), prodID,
			"arn:aws:sts::" + prodID + ":assumed-role/OrganizationAccountAccessRole/rootwarden",
			func(s string) bool { return strings.HasPrefix(s, "AROA") && strings.HasSuffix(s, ":rootwarden") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.c.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.Account) != tt.account || aws.ToString(out.Arn) != tt.arn || !tt.userID(aws.ToString(out.UserId)) {
				t.Fatalf("identity = %s %s %s, want %s %s", aws.ToString(out.Account), aws.ToString(out.Arn), aws.ToString(out.UserId), tt.account, tt.arn)
			}
		})
	}
	t.Run("unknown key id is refused", func(t *testing.T) {
		_, err := e.clients(t, "AKIAUNKNOWNUNKNOWN00", "secret", "").sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
		apiErr(t, err, "InvalidClientTokenId", 403)
	})
	t.Run("wrong secret is refused", func(t *testing.T) {
		ak, _ := e.sim.AdminCredentials(mgmtID)
		bad := e.clients(t, ak, "not-the-secret", "")
		_, err := bad.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
		apiErr(t, err, "SignatureDoesNotMatch", 403)
		_, err = bad.org.ListAccounts(ctx(t), &organizations.ListAccountsInput{})
		apiErr(t, err, "InvalidSignatureException", 400)
	})
	t.Run("signature check can be skipped", func(t *testing.T) {
		sim := awssim.New(awssim.Options{SkipSignatureCheck: true})
		sim.AddAccount(awssim.Account{ID: standaloneID})
		srv := sim.Start()
		defer srv.Close()
		ak, _ := sim.AdminCredentials(standaloneID)
		lax := &env{sim: sim, url: srv.URL}
		if _, err := lax.clients(t, ak, "anything", "").sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("session key without its token is refused", func(t *testing.T) {
		_, err := e.clients(t, aws.ToString(ar.Credentials.AccessKeyId), aws.ToString(ar.Credentials.SecretAccessKey), "").
			sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
		apiErr(t, err, "InvalidClientTokenId", 403)
	})
}

func TestAssumeRole(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	e.sim.AddRole(devID, "Auditor", "ext-123")
	e.sim.CreateRootKey(prodID, time.Time{})
	admin := e.admin(t, mgmtID)

	t.Run("session acts in the target account", func(t *testing.T) {
		out, err := assumeRole(t, admin, "arn:aws:iam::"+prodID+":role/OrganizationAccountAccessRole", "")
		if err != nil {
			t.Fatal(err)
		}
		cr := out.Credentials
		if !strings.HasPrefix(aws.ToString(cr.AccessKeyId), "ASIA") || aws.ToString(cr.SecretAccessKey) == "" ||
			aws.ToString(cr.SessionToken) == "" || !cr.Expiration.Equal(e.clock.Now().Add(time.Hour)) {
			t.Fatalf("credentials = %+v", cr)
		}
		if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::"+prodID+":assumed-role/OrganizationAccountAccessRole/rootwarden" {
			t.Fatalf("AssumedRoleUser.Arn = %s", got)
		}
		if got := summaryKeys(t, e.session(t, cr)); got != 1 {
			t.Fatalf("summary through the role = %d, want prod's 1", got)
		}
	})
	t.Run("matching external id", func(t *testing.T) {
		if _, err := assumeRole(t, admin, "arn:aws:iam::"+devID+":role/Auditor", "ext-123"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong external id is denied", func(t *testing.T) {
		_, err := assumeRole(t, admin, "arn:aws:iam::"+devID+":role/Auditor", "nope")
		apiErr(t, err, "AccessDenied", 403)
	})
	t.Run("missing external id is denied", func(t *testing.T) {
		_, err := assumeRole(t, admin, "arn:aws:iam::"+devID+":role/Auditor", "")
		apiErr(t, err, "AccessDenied", 403)
	})
	t.Run("missing role is denied", func(t *testing.T) {
		_, err := assumeRole(t, admin, "arn:aws:iam::"+devID+":role/NoSuchRole", "")
		apiErr(t, err, "AccessDenied", 403)
	})
	t.Run("unknown account is denied", func(t *testing.T) {
		_, err := assumeRole(t, admin, "arn:aws:iam::999999999999:role/OrganizationAccountAccessRole", "")
		apiErr(t, err, "AccessDenied", 403)
	})
	t.Run("DenyAssumeRole refuses the account", func(t *testing.T) {
		e.sim.DenyAssumeRole(devID, true)
		defer e.sim.DenyAssumeRole(devID, false)
		_, err := assumeRole(t, admin, "arn:aws:iam::"+devID+":role/OrganizationAccountAccessRole", "")
		apiErr(t, err, "AccessDenied", 403)
	})
	t.Run("suspended account is denied", func(t *testing.T) {
		e.sim.SetAccountState(devID, "SUSPENDED")
		defer e.sim.SetAccountState(devID, "ACTIVE")
		_, err := assumeRole(t, admin, "arn:aws:iam::"+devID+":role/OrganizationAccountAccessRole", "")
		apiErr(t, err, "AccessDenied", 403)
	})
	t.Run("expired session is refused", func(t *testing.T) {
		out, err := assumeRole(t, admin, "arn:aws:iam::"+prodID+":role/OrganizationAccountAccessRole", "")
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Hour + time.Second)
		_, err = e.session(t, out.Credentials).sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
		apiErr(t, err, "ExpiredToken", 400)
	})
}

func assumeRoot(t *testing.T, c clients, target, policy string, dur int32) (*sts.AssumeRootOutput, error) {
	t.Helper()
	in := &sts.AssumeRootInput{TargetPrincipal: aws.String(target), TaskPolicyArn: &ststypes.PolicyDescriptorType{Arn: aws.String(policy)}}
	if dur != 0 {
		in.DurationSeconds = aws.Int32(dur)
	}
	return c.sts.AssumeRoot(ctx(t), in)
}

func TestAssumeRoot(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	e.sim.SetRootSessions(true)
	k1 := e.sim.CreateRootKey(prodID, time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	k2 := e.sim.CreateRootKey(prodID, time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC))
	mgmtRoot := e.sim.CreateRootKey(mgmtID, time.Time{})
	e.sim.AddAccount(awssim.Account{ID: "555555555555", Name: "suspended", State: "SUSPENDED"})
	admin := e.admin(t, mgmtID)

	refusals := []struct {
		name   string
		c      clients
		target string
		policy string
		dur    int32
		code   string
	}{
		{"management account as target", admin, mgmtID, deletePolicy, 0, "AccessDenied"},
		{"duration over 900 seconds", admin, prodID, deletePolicy, 901, "ValidationError"},
		{"caller outside the management account", e.admin(t, devID), prodID, deletePolicy, 0, "AccessDenied"},
		{"root credentials as caller", e.root(t, mgmtID, mgmtRoot), prodID, deletePolicy, 0, "AccessDenied"},
		{"suspended member", admin, "555555555555", deletePolicy, 0, "AccessDenied"},
		{"unknown account", admin, "999999999999", deletePolicy, 0, "AccessDenied"},
		{"not a root-task policy", admin, prodID, "arn:aws:iam::aws:policy/AdministratorAccess", 0, "ValidationError"},
	}
	for _, tt := range refusals {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			_, err := assumeRoot(t, tt.c, tt.target, tt.policy, tt.dur)
			apiErr(t, err, tt.code, 0)
		})
	}
	t.Run("disabled root sessions are refused", func(t *testing.T) {
		e.sim.SetRootSessions(false)
		defer e.sim.SetRootSessions(true)
		_, err := assumeRoot(t, admin, prodID, deletePolicy, 0)
		apiErr(t, err, "AccessDenied", 403)
	})

	t.Run("session lists and deletes the target's root keys only", func(t *testing.T) {
		out, err := assumeRoot(t, admin, prodID, deletePolicy, 900)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(aws.ToString(out.Credentials.AccessKeyId), "ASIA") || !out.Credentials.Expiration.Equal(e.clock.Now().Add(900*time.Second)) {
			t.Fatalf("credentials = %+v", out.Credentials)
		}
		root := e.session(t, out.Credentials)
		id, err := root.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
		if err != nil || aws.ToString(id.Arn) != "arn:aws:iam::"+prodID+":root" {
			t.Fatalf("root session identity = %v, %v", id, err)
		}
		list, err := root.iam.ListAccessKeys(ctx(t), &iam.ListAccessKeysInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.AccessKeyMetadata) != 2 || aws.ToString(list.AccessKeyMetadata[1].AccessKeyId) != k2 {
			t.Fatalf("ListAccessKeys = %+v", list.AccessKeyMetadata)
		}
		if _, err := root.iam.GetAccessKeyLastUsed(ctx(t), &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(k1)}); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{k1, k2} {
			if _, err := root.iam.DeleteAccessKey(ctx(t), &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(k)}); err != nil {
				t.Fatalf("DeleteAccessKey %s: %v", k, err)
			}
		}
		if got := summaryKeys(t, e.admin(t, prodID)); got != 0 {
			t.Fatalf("summary after root-session deletion = %d, want 0", got)
		}
		_, err = root.iam.GetAccountSummary(ctx(t), &iam.GetAccountSummaryInput{})
		apiErr(t, err, "AccessDenied", 403)
		_, err = root.iam.UpdateAccessKey(ctx(t), &iam.UpdateAccessKeyInput{AccessKeyId: aws.String(k1), Status: "Inactive"})
		apiErr(t, err, "AccessDenied", 403)
		_, err = root.sts.AssumeRole(ctx(t), &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + devID + ":role/OrganizationAccountAccessRole"), RoleSessionName: aws.String("x")})
		apiErr(t, err, "AccessDenied", 403)
	})

	t.Run("audit task policy cannot delete", func(t *testing.T) {
		k := e.sim.CreateRootKey(devID, time.Time{})
		out, err := assumeRoot(t, admin, devID, "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials", 0)
		if err != nil {
			t.Fatal(err)
		}
		root := e.session(t, out.Credentials)
		if _, err := root.iam.ListAccessKeys(ctx(t), &iam.ListAccessKeysInput{}); err != nil {
			t.Fatal(err)
		}
		_, err = root.iam.DeleteAccessKey(ctx(t), &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(k)})
		apiErr(t, err, "AccessDenied", 403)
	})
}
