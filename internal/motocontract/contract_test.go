package motocontract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	stsapi "github.com/aws/aws-sdk-go-v2/service/sts"
)

// Credentials the scan signs with. moto checks no signature; an access key it has
// not issued belongs to its default account, 123456789012, which creates the
// organization below and so is its management account.
const (
	accessKey = "AKIAIOSFODNN7EXAMPLE"
	secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	mgmtID    = "123456789012"
	orgRole   = "OrganizationAccountAccessRole"
)

// member is an account the test creates in the organization.
type member struct {
	name, ou, owner string // ou: a path under Root ("" = the root itself); owner tag ("" = none)
	keys            bool   // the root user has an access key
	id              string // set when created
}

// The organization: nested OUs, an owner tag on most accounts, and more accounts
// under one parent than fit a page of ListAccountsForParent (20 in AWS and moto),
// so the scan must follow NextToken to find the last of them.
func orgPlan() []*member {
	plan := []*member{
		{name: "payments-prod", ou: "Prod/Payments", owner: "pat@example.com", keys: true},
		{name: "payments-stage", ou: "Prod/Payments", owner: "kim@example.com"},
		{name: "web-prod", ou: "Prod", owner: "lee@example.com", keys: true},
		{name: "data-lake", ou: "Prod/Data/Lake", owner: "ana@example.com"},
	}
	for i := 1; i <= 22; i++ {
		m := &member{name: fmt.Sprintf("sandbox-%02d", i), ou: "Sandbox", owner: fmt.Sprintf("dev%02d@example.com", i)}
		if i == 21 { // on the second page of the Sandbox OU, without an owner tag
			m.keys, m.owner = true, ""
		}
		plan = append(plan, m)
	}
	return append(plan, &member{name: "legacy", ou: "", owner: "ops@example.com"})
}

// scanRow is the part of `rootwarden scan --json`'s schema the contract checks.
type scanRow struct {
	SchemaVersion   int               `json:"schema_version"`
	AccountID       string            `json:"account_id"`
	AccountName     string            `json:"account_name"`
	Status          string            `json:"status"`
	RootKeysPresent *bool             `json:"root_keys_present"`
	Management      *bool             `json:"management"`
	OrgMember       bool              `json:"org_member"`
	OUPath          string            `json:"ou_path"`
	Tags            map[string]string `json:"tags"`
	Error           *string           `json:"error"`
	// RootCredentials: moto 5.2.1's account summary has no AccountPasswordPresent,
	// which rootwarden must report as unknown (null), never as absent.
	RootCredentials map[string]*bool `json:"root_credentials"`
}

// TestScanAgainstMoto runs the rootwarden binary's scan against moto with an
// organization built through moto's Organizations API: first without root keys
// (exit 0, every account clean), then with root keys in three member accounts (exit
// 1, exactly those three named, with their OU paths and owner tags), then with a
// member account's credentials (exit 2: nothing was checked), then with one key
// deleted (that account clean again).
func TestScanAgainstMoto(t *testing.T) {
	start := time.Now()
	lap := func(what string) {
		t.Logf("%-36s %5.2f s", what, time.Since(start).Seconds())
		start = time.Now()
	}
	moto := Start(t)
	lap("moto " + MotoVersion + " ready")
	bin := buildRootwarden(t)
	lap("go build ./cmd/rootwarden")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	plan := orgPlan()
	buildOrganization(ctx, t, moto.URL, plan)
	lap(fmt.Sprintf("organization of %d accounts built", len(plan)+1))
	byID := map[string]*member{}
	for _, m := range plan {
		byID[m.id] = m
	}

	t.Run("no root keys: exit 0", func(t *testing.T) {
		code, rows, stderr := runScan(t, bin, moto.URL)
		if code != 0 {
			t.Fatalf("exit %d, want 0\nstderr: %s", code, stderr)
		}
		checkRows(t, rows, plan)
		for _, r := range rows {
			if r.Status != "clean" || r.RootKeysPresent == nil || *r.RootKeysPresent {
				t.Errorf("%s (%s): status %q, root_keys_present %v; want clean", r.AccountID, r.AccountName, r.Status, r.RootKeysPresent)
			}
			pw, ok := r.RootCredentials["password"]
			if keys := r.RootCredentials["access_keys"]; !ok || pw != nil || keys == nil || *keys {
				t.Errorf("%s: root_credentials %v; want access_keys false and password null (moto does not say)", r.AccountID, r.RootCredentials)
			}
		}
	})

	for _, m := range plan {
		if m.keys {
			moto.SetRootKeys(m.id, true)
		}
	}
	t.Run("root keys in three member accounts: exit 1", func(t *testing.T) {
		code, rows, stderr := runScan(t, bin, moto.URL)
		if code != 1 {
			t.Fatalf("exit %d, want 1\nstderr: %s", code, stderr)
		}
		checkRows(t, rows, plan)
		var found, want []string
		for _, m := range plan {
			if m.keys {
				want = append(want, m.name)
			}
		}
		for _, r := range rows {
			if r.Status == "clean" {
				if len(r.Tags) != 0 {
					t.Errorf("%s: tags %v on a clean account (tags are read for accounts with keys only)", r.AccountName, r.Tags)
				}
				continue
			}
			if r.Status != "root_keys" || r.RootKeysPresent == nil || !*r.RootKeysPresent {
				t.Errorf("%s: status %q, root_keys_present %v", r.AccountName, r.Status, r.RootKeysPresent)
				continue
			}
			found = append(found, r.AccountName)
			m := byID[r.AccountID]
			if m == nil {
				continue // checkRows reported it
			}
			if got := r.Tags["owner"]; got != m.owner {
				t.Errorf("%s: owner tag %q, want %q (tags %v)", m.name, got, m.owner, r.Tags)
			}
			if m.owner == "" && len(r.Tags) != 0 {
				t.Errorf("%s: tags %v, want none", m.name, r.Tags)
			}
		}
		sort.Strings(found)
		sort.Strings(want)
		if strings.Join(found, ",") != strings.Join(want, ",") {
			t.Errorf("accounts with root keys: %v, want %v", found, want)
		}
		// Findings come first in the output, as for people reading the table.
		for i, r := range rows {
			if i < len(want) && r.Status != "root_keys" {
				t.Errorf("row %d is %s (%s): findings do not come first", i, r.AccountName, r.Status)
			}
		}
	})

	t.Run("a member account's credentials: exit 2, not an empty clean scan", func(t *testing.T) {
		// AWS refuses a member account the organization's tree (AccessDenied);
		// moto answers it with an organization of no accounts. Either way the
		// scan must not pass a CI gate having checked nothing.
		sts := stsClient(moto.URL)
		out, err := sts.AssumeRole(ctx, &stsapi.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + plan[1].id + ":role/" + orgRole),
			RoleSessionName: aws.String("contract")})
		if err != nil {
			t.Fatalf("AssumeRole into %s: %v", plan[1].name, err)
		}
		c := out.Credentials
		code, stdout, stderr := runScanRaw(t, bin, scanEnvWith(moto.URL, aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)))
		if code != 2 || !strings.Contains(stderr, "no ACTIVE account") {
			t.Errorf("exit %d, want 2 naming the empty listing\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
	})

	moto.SetRootKeys(plan[0].id, false)
	t.Run("a key deleted: that account is clean again", func(t *testing.T) {
		code, rows, stderr := runScan(t, bin, moto.URL, "--only-findings")
		if code != 1 {
			t.Fatalf("exit %d, want 1\nstderr: %s", code, stderr)
		}
		if len(rows) != 2 {
			t.Errorf("--only-findings printed %d rows, want the 2 accounts that still have keys: %+v", len(rows), rows)
		}
		for _, r := range rows {
			if r.AccountID == plan[0].id {
				t.Errorf("%s still reported with keys after they were removed", plan[0].name)
			}
		}
	})
}

// checkRows checks what every row must say: one row per ACTIVE account (the
// management account and every member), named, with its OU path, and checked.
func checkRows(t *testing.T, rows []scanRow, plan []*member) {
	t.Helper()
	if len(rows) != len(plan)+1 {
		t.Errorf("%d rows, want %d (the management account and %d members)", len(rows), len(plan)+1, len(plan))
	}
	byID := map[string]scanRow{}
	for _, r := range rows {
		if r.SchemaVersion != 2 {
			t.Errorf("%s: schema_version %d, want 2", r.AccountID, r.SchemaVersion)
		}
		if r.Error != nil {
			t.Errorf("%s (%s) could not be checked: %s", r.AccountID, r.AccountName, *r.Error)
		}
		if _, dup := byID[r.AccountID]; dup {
			t.Errorf("%s appears twice", r.AccountID)
		}
		byID[r.AccountID] = r
	}
	mg, ok := byID[mgmtID]
	if !ok {
		t.Errorf("no row for the management account %s", mgmtID)
	} else if mg.Management == nil || !*mg.Management || mg.OrgMember || mg.OUPath != "Root" {
		t.Errorf("management row: management %v, org_member %v, ou_path %q; want true, false, Root", mg.Management, mg.OrgMember, mg.OUPath)
	}
	for _, m := range plan {
		r, ok := byID[m.id]
		if !ok {
			t.Errorf("no row for %s (%s) in %s", m.id, m.name, wantPath(m))
			continue
		}
		if r.AccountName != m.name || r.OUPath != wantPath(m) || !r.OrgMember || r.Management == nil || *r.Management {
			t.Errorf("%s: name %q, ou_path %q, org_member %v, management %v; want %q, %q, true, false",
				m.id, r.AccountName, r.OUPath, r.OrgMember, r.Management, m.name, wantPath(m))
		}
	}
}

func wantPath(m *member) string {
	if m.ou == "" {
		return "Root"
	}
	return "Root/" + m.ou
}

// runScan runs `rootwarden scan --json --org-role …` against moto, with nothing of
// the developer's AWS set-up: no profile, no config files, no instance metadata.
func runScan(t *testing.T, bin, endpoint string, extra ...string) (code int, rows []scanRow, stderr string) {
	t.Helper()
	code, stdout, stderr := runScanRaw(t, bin, scanEnvWith(endpoint, accessKey, secretKey, ""), extra...)
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("rootwarden scan (exit %d): stdout is not a JSON array: %v\nstdout: %s\nstderr: %s", code, err, stdout, stderr)
	}
	return code, rows, stderr
}

// runScanRaw runs `rootwarden scan --json --org-role … extra…` with env.
func runScanRaw(t *testing.T, bin string, env []string, extra ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"scan", "--json", "--org-role", orgRole}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		code = ee.ExitCode()
	default:
		t.Fatalf("rootwarden %s: %v\nstderr: %s", strings.Join(args, " "), err, errb.String())
	}
	return code, out.String(), errb.String()
}

func stsClient(endpoint string) *stsapi.Client {
	return stsapi.New(stsapi.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")})
}

// scanEnvWith is the environment of a scan signing with the given credentials.
func scanEnvWith(endpoint, keyID, secret, token string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "ROOTWARDEN_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"AWS_ENDPOINT_URL="+endpoint,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID="+keyID,
		"AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_SESSION_TOKEN="+token,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
	)
}

// buildOrganization creates the organization, its OUs and its member accounts
// through moto's Organizations API (as an administrator would through AWS's), tags
// them, and moves each into its OU. It sets each member's id.
func buildOrganization(ctx context.Context, t *testing.T, endpoint string, plan []*member) {
	t.Helper()
	org := organizations.New(organizations.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
	out, err := org.CreateOrganization(ctx, &organizations.CreateOrganizationInput{FeatureSet: orgtypes.OrganizationFeatureSetAll})
	if err != nil {
		t.Fatalf("CreateOrganization: %v", err)
	}
	if got := aws.ToString(out.Organization.MasterAccountId); got != mgmtID {
		t.Fatalf("the organization's management account is %s, want %s", got, mgmtID)
	}
	roots, err := org.ListRoots(ctx, &organizations.ListRootsInput{})
	if err != nil || len(roots.Roots) != 1 {
		t.Fatalf("ListRoots: %v (%d roots)", err, len(roots.Roots))
	}
	rootID := aws.ToString(roots.Roots[0].Id)

	ous := map[string]string{"": rootID} // path under Root → id
	var ouFor func(path string) string
	ouFor = func(path string) string {
		if id, ok := ous[path]; ok {
			return id
		}
		parent, name := "", path
		if i := strings.LastIndex(path, "/"); i >= 0 {
			parent, name = path[:i], path[i+1:]
		}
		o, err := org.CreateOrganizationalUnit(ctx, &organizations.CreateOrganizationalUnitInput{
			ParentId: aws.String(ouFor(parent)), Name: aws.String(name)})
		if err != nil {
			t.Fatalf("CreateOrganizationalUnit %s: %v", path, err)
		}
		ous[path] = aws.ToString(o.OrganizationalUnit.Id)
		return ous[path]
	}

	for i, m := range plan {
		in := &organizations.CreateAccountInput{AccountName: aws.String(m.name),
			Email: aws.String(fmt.Sprintf("aws+%s@example.com", m.name))}
		// Tags at creation for most accounts, TagResource afterwards for every
		// third: both are how owners get onto accounts.
		tags := []orgtypes.Tag{{Key: aws.String("cost-center"), Value: aws.String(fmt.Sprintf("cc-%d", 100+i))}}
		if m.owner != "" {
			tags = append(tags, orgtypes.Tag{Key: aws.String("owner"), Value: aws.String(m.owner)})
		}
		if m.owner == "" {
			tags = nil // an account without any tag
		}
		if i%3 != 0 {
			in.Tags = tags
		}
		st, err := org.CreateAccount(ctx, in)
		if err != nil {
			t.Fatalf("CreateAccount %s: %v", m.name, err)
		}
		status := st.CreateAccountStatus
		for status.State == orgtypes.CreateAccountStateInProgress { // AWS creates accounts asynchronously
			time.Sleep(100 * time.Millisecond)
			d, err := org.DescribeCreateAccountStatus(ctx, &organizations.DescribeCreateAccountStatusInput{
				CreateAccountRequestId: status.Id})
			if err != nil {
				t.Fatalf("DescribeCreateAccountStatus %s: %v", m.name, err)
			}
			status = d.CreateAccountStatus
		}
		if status.State != orgtypes.CreateAccountStateSucceeded {
			t.Fatalf("CreateAccount %s: %s (%s)", m.name, status.State, status.FailureReason)
		}
		m.id = aws.ToString(status.AccountId)
		if i%3 == 0 && len(tags) > 0 {
			if _, err := org.TagResource(ctx, &organizations.TagResourceInput{ResourceId: aws.String(m.id), Tags: tags}); err != nil {
				t.Fatalf("TagResource %s: %v", m.name, err)
			}
		}
		if m.ou != "" {
			if _, err := org.MoveAccount(ctx, &organizations.MoveAccountInput{AccountId: aws.String(m.id),
				SourceParentId: aws.String(rootID), DestinationParentId: aws.String(ouFor(m.ou))}); err != nil {
				t.Fatalf("MoveAccount %s to %s: %v", m.name, m.ou, err)
			}
		}
	}
}

// buildRootwarden builds cmd/rootwarden (the binary CI and users run; `go run`
// would turn exit code 2 into 1).
func buildRootwarden(t *testing.T) string {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go tool to build the rootwarden binary")
		}
	}
	out := filepath.Join(t.TempDir(), "rootwarden")
	cmd := exec.Command(goTool, "build", "-o", out, "github.com/rootwarden/rootwarden/cmd/rootwarden")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}
