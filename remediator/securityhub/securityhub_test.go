package securityhub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	sh "github.com/aws/aws-sdk-go-v2/service/securityhub"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/securityhubfake"
	"github.com/rootwarden/rootwarden/remediator/securityhub"
)

// newHub is a Hub over the real SDK client talking to a fresh fake.
func newHub(t *testing.T, cfg securityhub.Config) (*securityhub.Hub, *securityhubfake.Server) {
	t.Helper()
	fake := securityhubfake.New()
	t.Cleanup(fake.Close)
	awsCfg, err := awssim.SDKConfig(context.Background(), fake.URL, credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pace = time.Millisecond
	return securityhub.New(cfg, sh.NewFromConfig(awsCfg)), fake
}

func openCase(account string) model.Case {
	return model.Case{ID: account + "-1-20261208", AccountID: account, State: model.StateOpen}
}

func TestOpenCaseMarksFailedFindingsNotifiedWithNote(t *testing.T) {
	hub, fake := newHub(t, securityhub.Config{CaseURL: "https://rw.example/cases/%s"})
	fake.Add(securityhubfake.Finding{AccountID: "111111111111", ControlID: "IAM.4"},
		securityhubfake.Finding{AccountID: "111111111111", ControlID: "IAM.9"},
		securityhubfake.Finding{AccountID: "111111111111", ControlID: "IAM.6", ComplianceStatus: "PASSED"},
		securityhubfake.Finding{AccountID: "222222222222", ControlID: "IAM.4"})
	c := openCase("111111111111")
	res, err := hub.Mark(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Updated) != 2 {
		t.Fatalf("updated %v, want the two FAILED findings of the account", res.Updated)
	}
	for _, f := range fake.Findings("111111111111") {
		want := "NOTIFIED"
		if f.ComplianceStatus == "PASSED" {
			want = "NEW"
		}
		if f.WorkflowStatus != want {
			t.Errorf("%s is %s, want %s", f.ControlID, f.WorkflowStatus, want)
		}
		if want == "NOTIFIED" && (!strings.Contains(f.Note, c.ID) || !strings.Contains(f.Note, "https://rw.example/cases/"+c.ID)) {
			t.Errorf("%s note %q does not link the case", f.ControlID, f.Note)
		}
	}
	if f := fake.Findings("222222222222")[0]; f.WorkflowStatus != "NEW" {
		t.Errorf("another account's finding was changed to %s", f.WorkflowStatus)
	}
	// A second Mark changes nothing (lookup before write).
	res, err = hub.Mark(context.Background(), c)
	if err != nil || len(res.Updated) != 0 {
		t.Fatalf("second mark updated %v, err %v; want nothing", res.Updated, err)
	}
}

func TestResolvedMarksIAM4AndOnlyPassedMFAControls(t *testing.T) {
	hub, fake := newHub(t, securityhub.Config{})
	fake.Add(securityhubfake.Finding{AccountID: "111111111111", ControlID: "IAM.4"},
		securityhubfake.Finding{AccountID: "111111111111", ControlID: "IAM.9"})
	c := openCase("111111111111")
	if _, err := hub.Mark(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c.State, c.ResolvedAt = model.StateResolved, &now
	if _, err := hub.Mark(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	for _, f := range fake.Findings("111111111111") {
		want := map[string]string{"IAM.4": "RESOLVED", "IAM.9": "NOTIFIED"}[f.ControlID]
		if f.WorkflowStatus != want {
			t.Errorf("%s is %s, want %s (IAM.9 still FAILED covers the root password: AWS has not said PASSED)", f.ControlID, f.WorkflowStatus, want)
		}
	}
}

func TestThrottledAndLostAnswersEndMarkedOnce(t *testing.T) {
	hub, fake := newHub(t, securityhub.Config{})
	fake.Add(securityhubfake.Finding{AccountID: "111111111111", ControlID: "IAM.4"})
	fake.Throttle(2)    // GetFindings answers 429 twice: the SDK retries
	fake.LoseAnswers(1) // the update takes effect, the answer is lost
	c := openCase("111111111111")
	_, err := hub.Mark(context.Background(), c)
	// Whether the SDK's retry of the lost answer succeeds or the call fails, the
	// finding says NOTIFIED and a later Mark has nothing to do.
	if f := fake.Findings("111111111111")[0]; f.WorkflowStatus != "NOTIFIED" {
		t.Fatalf("finding is %s after a lost answer (err %v), want NOTIFIED", f.WorkflowStatus, err)
	}
	res, err := hub.Mark(context.Background(), c)
	if err != nil || len(res.Updated) != 0 {
		t.Fatalf("mark after the lost answer updated %v (err %v); want nothing", res.Updated, err)
	}
	if n := fake.Calls("GetFindings"); n < 4 {
		t.Errorf("GetFindings arrived %d times; the two throttled ones were not retried", n)
	}
}

func TestRefailedFindingIsMarkedAgain(t *testing.T) {
	hub, fake := newHub(t, securityhub.Config{})
	fake.Add(securityhubfake.Finding{AccountID: "111111111111", ControlID: "IAM.4"})
	c := openCase("111111111111")
	if _, err := hub.Mark(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	id := fake.Findings("111111111111")[0].ID
	fake.Refail(id)
	res, err := hub.Mark(context.Background(), c)
	if err != nil || len(res.Updated) != 1 {
		t.Fatalf("re-mark updated %v, err %v; want the reset finding", res.Updated, err)
	}
	if f, _ := fake.Get(id); f.WorkflowStatus != "NOTIFIED" {
		t.Fatalf("finding is %s, want NOTIFIED again", f.WorkflowStatus)
	}
}

func TestOCSFFindingsFollowTheCase(t *testing.T) {
	hub, fake := newHub(t, securityhub.Config{OCSF: true})
	fake.AddV2(securityhubfake.FindingV2{MetadataUID: "uid-1", AccountID: "111111111111", ControlID: "IAM.4"},
		securityhubfake.FindingV2{MetadataUID: "uid-2", AccountID: "222222222222", ControlID: "IAM.4"})
	c := openCase("111111111111")
	c.State = model.StateRiskAccepted
	c.Risk = &model.RiskAcceptance{Expires: time.Now().Add(time.Hour)}
	res, err := hub.Mark(context.Background(), c)
	if err != nil || len(res.Updated) != 1 {
		t.Fatalf("updated %v, err %v; want uid-1", res.Updated, err)
	}
	if f, _ := fake.GetV2("uid-1"); f.StatusID != 3 || !strings.Contains(f.Comment, c.ID) {
		t.Fatalf("uid-1 status_id %d comment %q; want 3 (Suppressed) naming the case", f.StatusID, f.Comment)
	}
	if f, _ := fake.GetV2("uid-2"); f.StatusID != 1 {
		t.Fatalf("another account's OCSF finding changed to %d", f.StatusID)
	}
}

func TestBatchesOfAtMost100(t *testing.T) {
	hub, fake := newHub(t, securityhub.Config{})
	for range 130 {
		fake.Add(securityhubfake.Finding{AccountID: "111111111111", ControlID: "IAM.4"})
	}
	res, err := hub.Mark(context.Background(), openCase("111111111111"))
	if err != nil || len(res.Updated) != 130 {
		t.Fatalf("updated %d, err %v", len(res.Updated), err)
	}
	if n := fake.Calls("BatchUpdateFindings"); n != 2 {
		t.Fatalf("%d update calls for 130 findings, want 2", n)
	}
}

func TestUnprocessedFindingsAreRetriedThenReported(t *testing.T) {
	hub, fake := newHub(t, securityhub.Config{})
	fake.Add(securityhubfake.Finding{AccountID: "111111111111", ControlID: "IAM.4"},
		securityhubfake.Finding{AccountID: "111111111111", ControlID: "IAM.9"})
	c := openCase("111111111111")
	fake.Unprocess(1) // once: the retry within the call takes it
	if res, err := hub.Mark(context.Background(), c); err != nil || len(res.Updated) != 2 {
		t.Fatalf("updated %v, err %v; want both after one retry", res.Updated, err)
	}
	c.State = model.StateRiskAccepted
	fake.Unprocess(2) // twice: reported, and the next Mark finishes
	res, err := hub.Mark(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "ConcurrentUpdateError") || len(res.Updated) != 1 {
		t.Fatalf("updated %v, err %v; want one done and the other reported", res.Updated, err)
	}
	if res, err := hub.Mark(context.Background(), c); err != nil || len(res.Updated) != 1 {
		t.Fatalf("next mark updated %v, err %v; want the one left", res.Updated, err)
	}
	for _, f := range fake.Findings("111111111111") {
		if f.WorkflowStatus != "SUPPRESSED" {
			t.Errorf("%s is %s", f.ControlID, f.WorkflowStatus)
		}
	}
}
