package detector_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// paceOrg is the organization of issue 21: accounts in five OUs, every one tagged
// with its owner, one in twenty with a root key, AWS's published Organizations
// rates on and latency on every call. It returns each account's OU path.
func paceOrg(t *testing.T, accounts int, latency time.Duration) (*world, map[string]string) {
	t.Helper()
	w := newWorld(t, accounts-1, true, awssim.Options{})
	paths := map[string]string{mgmtID: "Root"}
	var ous []string
	for i := range 5 {
		ous = append(ous, w.sim.AddOU("", fmt.Sprintf("team-%d", i)))
	}
	for i := 1; i < accounts; i++ {
		w.sim.MoveAccount(member(i), ous[i%5])
		paths[member(i)] = fmt.Sprintf("Root/team-%d", i%5)
		w.sim.SetAccountTags(member(i), map[string]string{"owner": fmt.Sprintf("owner-%d@example.com", i), "team": fmt.Sprintf("team-%d", i%5)})
		if i%20 == 1 {
			w.sim.CreateRootKey(member(i), w.clock.Now().Add(-time.Hour))
		}
	}
	w.sim.SetLatency(latency)
	w.sim.SetRateLimits(true)
	return w, paths
}

// checkScan asserts every account was checked, with its OU path, and that every
// account with a root key carries its owner tag.
func checkScan(t *testing.T, obs []model.Observation, paths map[string]string) {
	t.Helper()
	if len(obs) != len(paths) {
		t.Fatalf("%d observations, want %d", len(obs), len(paths))
	}
	keys := 0
	for _, o := range obs {
		if o.Failed() {
			t.Errorf("account %s not checked: %s (%s)", o.AccountID, o.Error, o.ErrorCode)
			continue
		}
		if want := paths[o.AccountID]; o.OUPath != want {
			t.Errorf("account %s: OU path %q, want %q", o.AccountID, o.OUPath, want)
		}
		if o.RootKeysPresent {
			keys++
			if o.Tags["owner"] == "" {
				t.Errorf("account %s has a root key but no owner in its finding (tags %v)", o.AccountID, o.Tags)
			}
		}
	}
	if keys != (len(paths)-1+19)/20 {
		t.Errorf("%d accounts with keys found, want %d", keys, (len(paths)-1+19)/20)
	}
}

// Issue 21: `scan` against Organizations' published buckets succeeds every time,
// with every OU path and the owner of every account with a finding. Before pacing,
// the second run in a row failed: the tree listing (16 parents at once against 5
// calls a second) used up the SDK's 3 attempts on ListAccountsForParent.
func TestScanUnderThePublishedOrganizationsLimitsSucceedsEveryTime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three scans of 600 accounts at Organizations' real rates")
	}
	w, paths := paceOrg(t, 600, 20*time.Millisecond)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.Concurrency, cfg.MaxBackoff, cfg.AccountTimeout = 64, 0, time.Minute
	for run := range 3 {
		sc, err := detector.NewScanner(cfg, w.logger(), w.awsConfig())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		obs, err := sc.Scan(ctx, nil)
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v", run+1, err)
		}
		checkScan(t, obs, paths)
		if t.Failed() {
			t.Fatalf("run %d failed", run+1)
		}
	}
	t.Logf("refused beyond the published rates: %v", w.sim.RateLimited())
}

// A throttled Organizations page is retried until it is answered, however often it
// is refused within the listing's deadline: the listing, and so the scan, never fails
// for it. Before: one page refused 3 times (the SDK's attempts) failed the scan.
func TestAThrottledListingPageIsRetriedNotFatal(t *testing.T) {
	w := newWorld(t, 30, true, awssim.Options{})
	ou := w.sim.AddOU("", "prod")
	for i := 1; i <= 30; i++ {
		w.sim.MoveAccount(member(i), ou)
	}
	w.sim.ThrottleOperation("Organizations.ListAccountsForParent", 8)
	w.sim.ThrottleOperation("Organizations.ListAccounts", 8)
	w.sim.ThrottleOperation("Organizations.ListOrganizationalUnitsForParent", 8)
	cfg := w.config("OrganizationAccountAccessRole")
	sc, err := detector.NewScanner(cfg, w.logger(), w.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	obs, err := sc.Scan(context.Background(), nil)
	if err != nil {
		t.Fatalf("a throttled page failed the scan: %v", err)
	}
	if len(obs) != 31 {
		t.Fatalf("%d accounts checked, want 31", len(obs))
	}
	for _, o := range obs {
		if o.AccountID != mgmtID && o.OUPath != "Root/prod" {
			t.Errorf("account %s: OU path %q, want Root/prod", o.AccountID, o.OUPath)
		}
	}
}

// Organizations' throttling is Organizations' own: it never lowers the number of
// member-account checks (IAM in each member account, STS in ours) running at once.
// Before: one adaptive limiter for every AWS call halved the checks when a listing
// page was throttled.
func TestOrganizationsThrottlingDoesNotSlowMemberChecks(t *testing.T) {
	w := newWorld(t, 40, true, awssim.Options{})
	w.sim.ThrottleOperation("Organizations.ListAccountsForParent", 2)
	w.sim.ThrottleOperation("Organizations.ListAccounts", 2)
	w.sim.ThrottleOperation("Organizations.ListRoots", 2)
	w.sim.ThrottleOperation("Organizations.DescribeOrganization", 2)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.Concurrency = 16
	sc, err := detector.NewScanner(cfg, w.logger(), w.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	obs, err := sc.Scan(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 41 {
		t.Fatalf("%d accounts checked, want 41", len(obs))
	}
	if limit, cuts := detector.ScannerLimit(sc); cuts != 0 || limit != 16 {
		t.Errorf("member checks allowed at once: %.1f after %d cuts; Organizations' throttling must not lower them from 16", limit, cuts)
	}
}

// Two detectors on one bus share AWS's request rates: each paces to half the share.
func TestDetectorsDivideTheRatesBetweenThem(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	b := bustest.New(t)
	cfg := w.config("OrganizationAccountAccessRole")
	a := newDetector(t, w, cfg, b)
	runDetector(t, a)
	testutil.Eventually(t, "one detector alone", func() bool { return detector.PaceReplicas(a) == 1 })
	if r := detector.OrgRate(a, "ListAccounts"); r != 8*detector.DefaultOrgAPIShare {
		t.Errorf("ListAccounts at %.2f/s alone, want %.2f", r, 8*detector.DefaultOrgAPIShare)
	}
	second := newDetector(t, w, cfg, bustest.Connect(t, b))
	runDetector(t, second)
	testutil.Eventually(t, "both detectors count two", func() bool {
		return detector.PaceReplicas(a) == 2 && detector.PaceReplicas(second) == 2
	})
	if r := detector.OrgRate(a, "ListTagsForResource"); r != 10*detector.DefaultOrgAPIShare/2 {
		t.Errorf("ListTagsForResource at %.2f/s with two detectors, want %.2f", r, 10*detector.DefaultOrgAPIShare/2)
	}
}

// A check that finds root keys publishes its finding with the account's tags and OU
// path, read first; when Organizations refuses them, the finding says so
// (RoutingError) instead of going out as an account without tags.
func TestAFindingSaysWhenItsRoutingFactsCannotBeRead(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	ou := w.sim.AddOU("", "payments")
	w.sim.MoveAccount(member(1), ou)
	w.sim.MoveAccount(member(2), ou)
	for i := 1; i <= 2; i++ {
		w.sim.SetAccountTags(member(i), map[string]string{"owner": fmt.Sprintf("owner-%d@example.com", i)})
		w.sim.CreateRootKey(member(i), w.clock.Now().Add(-time.Hour))
	}
	b := bustest.New(t)
	d := interceptedDetector(t, w, b, func(target, body string) string {
		if target == "AWSOrganizationsV20161128.ListTagsForResource" && strings.Contains(body, member(2)) {
			return "AccessDeniedException"
		}
		return ""
	})
	runDetector(t, d)
	got := perAccount(t, waitFindings(t, b, 3, bySource(model.SourceSweep)))
	if o := got[member(1)]; o.Tags["owner"] != "owner-1@example.com" || o.OUPath != "Root/payments" || o.RoutingError != "" {
		t.Errorf("member-1's finding: tags %v, OU %q, routing error %q; want its owner and OU read first", o.Tags, o.OUPath, o.RoutingError)
	}
	if o := got[member(2)]; !o.RootKeysPresent || o.RoutingError == "" || !strings.Contains(o.RoutingError, "AccessDeniedException") {
		t.Errorf("member-2's finding (tags refused): routing error %q, want why", o.RoutingError)
	}
}
