package tracker

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/internal/trackerfake"
)

const ghToken = "ghp_SECRETsecretSECRET"

func newGHEnv(t *testing.T) (contractEnv, *trackerfake.GitHub) {
	// GitHub's times are in seconds: each reading of the fake's clock is a second later,
	// so two closures have two closure times.
	var tick atomic.Int64
	base := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f := trackerfake.NewGitHub("acme", "security", trackerfake.WithToken(ghToken),
		trackerfake.WithClock(func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Second) }))
	f.Start()
	t.Cleanup(f.Close)
	logs := &testutil.LogBuffer{}
	// A client without a timeout, as a caller may pass one: the tracker must add it.
	tr, err := NewGitHub(GitHubConfig{BaseURL: f.URL(), Token: ghToken, Owner: "acme", Repo: "security", Retry: fastRetry,
		Client: &http.Client{}, Timeout: 200 * time.Millisecond}, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ref model.TicketRef) trackerfake.Issue {
		n, _ := strconv.Atoi(ref.ID)
		is, _ := f.Issue(n)
		return is
	}
	return contractEnv{
		createOp: trackerfake.OpCreate,
		tr:       tr, srv: f, secret: ghToken, logs: logs, createMth: http.MethodPost, createPfx: "/repos/acme/security/issues",
		setDone:  func(ref model.TicketRef, who string) { n, _ := strconv.Atoi(ref.ID); f.CloseIssue(n, who) },
		isDone:   func(ref model.TicketRef) bool { return issue(ref).State == "closed" },
		comments: func(ref model.TicketRef) []string { return issue(ref).Comments },
		labels:   func(ref model.TicketRef) []string { return issue(ref).Labels },
		tickets:  func() int { return len(f.Issues()) },
		checkAuth: func(t *testing.T, auth string) {
			if auth != "Bearer "+ghToken {
				t.Errorf("authorization %q", auth)
			}
		},
	}, f
}

func TestGitHubTracker(t *testing.T) {
	runContract(t, func(t *testing.T) contractEnv { e, _ := newGHEnv(t); return e })
}

func TestGitHubFindsClosedIssueAndWritesTheBody(t *testing.T) {
	e, f := newGHEnv(t)
	ctx := ctxT(t)
	c := testCase("222222222222-3")
	ref, err := e.tr.Open(ctx, c, "https://slack.example/p3")
	if err != nil {
		t.Fatal(err)
	}
	e.setDone(ref, "carol")
	// A closed issue of the case is still the case's ticket: no second issue.
	ref2, err := e.tr.Open(ctx, c, "")
	if err != nil || ref2 != ref || len(f.Issues()) != 1 {
		t.Fatalf("reopen lookup: %+v %v (%d issues)", ref2, err, len(f.Issues()))
	}
	body := f.Issues()[0].Body
	for _, want := range []string{"https://console.aws.amazon.com/", "Security credentials", "Actions → Deactivate", AWSGuideURL,
		"https://slack.example/p3", "billing", "no IAM policy", "222222222222"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if err := e.tr.Reopen(ctx, ref, "again"); err != nil || f.Issues()[0].State != "open" {
		t.Fatalf("reopen: %v %s", err, f.Issues()[0].State)
	}
	if err := e.tr.Close(ctx, ref, "done"); err != nil {
		t.Fatal(err)
	}
	if is := f.Issues()[0]; is.State != "closed" || is.StateReason != "completed" {
		t.Errorf("state_reason %q", is.StateReason)
	}
}

func TestGitHubSecondaryRateLimitIsRetriedAfterItsDelay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault trackerfake.Fault
	}{
		{"403 with Retry-After", trackerfake.SecondaryRateLimit(time.Second)},
		{"403 with x-ratelimit-remaining 0", trackerfake.PrimaryRateLimit(3 * time.Second)},
		{"429 with Retry-After", trackerfake.Status(http.StatusTooManyRequests)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, f := newGHEnv(t)
			f.FailNext(trackerfake.OpAny, 1, tc.fault)
			if _, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), ""); err != nil {
				t.Fatalf("open after one rate-limited answer: %v", err)
			}
			// When the limit outlasts the attempts, the error is transient and says how long to wait.
			f.FailNext(trackerfake.OpAny, fastRetry.MaxAttempts, tc.fault)
			err := e.tr.Comment(ctxT(t), model.TicketRef{System: "github", ID: "1"}, "x")
			if model.ErrorCode(err) != model.CodeTransient {
				t.Fatalf("rate limit classified %s: %v", model.ErrorCode(err), err)
			}
			if d := RetryAfter(err); d <= 0 || d > 3*time.Second {
				t.Fatalf("RetryAfter = %v, want the server's delay", d)
			}
		})
	}
	t.Run("a plain 403 is a refusal", func(t *testing.T) {
		e, f := newGHEnv(t)
		f.Fail(http.StatusForbidden)
		if _, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), ""); model.ErrorCode(err) != model.CodeUnauthorized {
			t.Fatalf("plain 403: %v", err)
		}
	})
}
