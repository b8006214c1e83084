package trackerfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/trackerfake"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

const token = "ghp_FAKEtokenFAKE"

func start(t *testing.T, opts ...trackerfake.GitHubOption) *trackerfake.GitHub {
	t.Helper()
	g := trackerfake.NewGitHub("acme", "security", append([]trackerfake.GitHubOption{trackerfake.WithToken(token)}, opts...)...)
	g.Start()
	t.Cleanup(g.Close)
	return g
}

func call(t *testing.T, c *http.Client, method, url string, body any) (*http.Response, []byte, error) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data, nil
}

func TestTheRealTrackerWorksAgainstTheFake(t *testing.T) {
	g := start(t)
	tr, err := tracker.NewGitHub(tracker.GitHubConfig{BaseURL: g.URL(), Token: token, Owner: "acme", Repo: "security"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := model.Case{ID: "222222222222-1", AccountID: "222222222222", AccountName: "prod", State: model.StateTicketed}
	ref, err := tr.Open(ctx, c, "https://slack.example/p1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := tr.Open(ctx, c, "")
	if err != nil || again != ref {
		t.Fatalf("second Open: %+v %v, want the same issue %+v", again, err, ref)
	}
	if err := tr.Comment(ctx, ref, "still present"); err != nil {
		t.Fatal(err)
	}
	g.CloseIssue(1, "carol")
	st, err := tr.Status(ctx, ref)
	if err != nil || !st.Done || st.Assignee != "carol" {
		t.Fatalf("status %+v %v", st, err)
	}
	if err := tr.Reopen(ctx, ref, "reopened"); err != nil {
		t.Fatal(err)
	}
	is, _ := g.Issue(1)
	if is.State != "open" || len(is.Comments) != 2 || g.CountByLabel(tracker.Label(""))[tracker.Label(c.ID)] != 1 {
		t.Fatalf("issue %+v, counts %v", is, g.CountByLabel(""))
	}
}

func TestBadTokenIsRefused(t *testing.T) {
	g := start(t)
	req, _ := http.NewRequest(http.MethodGet, g.URL()+"/repos/acme/security/issues", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
}

func TestFaults(t *testing.T) {
	create := map[string]any{"title": "t", "body": "b", "labels": []string{"rootwarden-case-1"}}
	t.Run("a lost creation answer: the issue exists, the client sees a closed connection", func(t *testing.T) {
		g := start(t)
		g.FailNext(trackerfake.OpCreate, 1, trackerfake.Lost())
		_, _, err := call(t, http.DefaultClient, http.MethodPost, g.URL()+"/repos/acme/security/issues", create)
		if err == nil || !errors.Is(err, io.EOF) && !isConnErr(err) {
			t.Fatalf("err = %v, want a closed connection", err)
		}
		if n := len(g.IssuesWithLabel("rootwarden-case-1")); n != 1 {
			t.Fatalf("%d issues after a lost answer, want 1", n)
		}
		if g.Faults()[trackerfake.FaultLost] != 1 {
			t.Fatalf("faults %v", g.Faults())
		}
	})
	t.Run("5xx does nothing", func(t *testing.T) {
		g := start(t)
		g.FailNext(trackerfake.OpAny, 1, trackerfake.Status(502))
		resp, _, err := call(t, http.DefaultClient, http.MethodPost, g.URL()+"/repos/acme/security/issues", create)
		if err != nil || resp.StatusCode != 502 || len(g.Issues()) != 0 {
			t.Fatalf("%v %v, %d issues", resp, err, len(g.Issues()))
		}
	})
	t.Run("secondary rate limit: 403 with Retry-After", func(t *testing.T) {
		g := start(t)
		g.FailNext(trackerfake.OpList, 1, trackerfake.SecondaryRateLimit(30*time.Second))
		resp, body, err := call(t, http.DefaultClient, http.MethodGet, g.URL()+"/repos/acme/security/issues?labels=x", nil)
		if err != nil || resp.StatusCode != 403 || resp.Header.Get("Retry-After") != "30" || !bytes.Contains(body, []byte("secondary rate limit")) {
			t.Fatalf("%v %v %s", resp, err, body)
		}
	})
	t.Run("primary rate limit: 403 with x-ratelimit-remaining 0", func(t *testing.T) {
		g := start(t)
		g.FailNext(trackerfake.OpGet, 1, trackerfake.PrimaryRateLimit(time.Minute))
		resp, _, err := call(t, http.DefaultClient, http.MethodGet, g.URL()+"/repos/acme/security/issues/1", nil)
		if err != nil || resp.StatusCode != 403 || resp.Header.Get("X-Ratelimit-Remaining") != "0" || resp.Header.Get("X-Ratelimit-Reset") == "" {
			t.Fatalf("%v %v", resp, err)
		}
	})
	t.Run("a hang ends when the client gives up, without acting", func(t *testing.T) {
		g := start(t)
		g.FailNext(trackerfake.OpCreate, 1, trackerfake.Hang(time.Hour))
		c := &http.Client{Timeout: 200 * time.Millisecond}
		_, _, err := call(t, c, http.MethodPost, g.URL()+"/repos/acme/security/issues", create)
		if err == nil || len(g.Issues()) != 0 {
			t.Fatalf("err %v, %d issues", err, len(g.Issues()))
		}
	})
	t.Run("a seeded share is repeatable", func(t *testing.T) {
		run := func() []int {
			g := start(t, trackerfake.WithSeed(42))
			g.FailShare(trackerfake.OpAny, 0.3, trackerfake.Status(500))
			var codes []int
			for range 40 {
				resp, _, err := call(t, http.DefaultClient, http.MethodGet, g.URL()+"/repos/acme/security/issues", nil)
				if err != nil {
					t.Fatal(err)
				}
				codes = append(codes, resp.StatusCode)
			}
			return codes
		}
		a, b := run(), run()
		fails := 0
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("runs differ at %d: %v vs %v", i, a, b)
			}
			if a[i] == 500 {
				fails++
			}
		}
		if fails < 4 || fails > 24 {
			t.Fatalf("%d of 40 failed with a 30%% share", fails)
		}
	})
	t.Run("an archived repository refuses writes", func(t *testing.T) {
		g := start(t)
		g.SetArchived(true)
		resp, body, err := call(t, http.DefaultClient, http.MethodPost, g.URL()+"/repos/acme/security/issues", create)
		if err != nil || resp.StatusCode != 403 || !bytes.Contains(body, []byte("archived")) {
			t.Fatalf("%v %v %s", resp, err, body)
		}
	})
}

func TestSearchAndList(t *testing.T) {
	g := start(t)
	for _, l := range []string{"rootwarden-case-a", "rootwarden-case-b", "rootwarden-case-a"} {
		if resp, _, err := call(t, http.DefaultClient, http.MethodPost, g.URL()+"/repos/acme/security/issues",
			map[string]any{"title": "t", "labels": []string{l, "rootwarden"}}); err != nil || resp.StatusCode != 201 {
			t.Fatal(resp, err)
		}
	}
	g.CloseIssue(1, "")
	_, body, _ := call(t, http.DefaultClient, http.MethodGet, g.URL()+"/search/issues?q=repo:acme/security+is:issue+label:rootwarden-case-a", nil)
	var res struct {
		Total int `json:"total_count"`
	}
	if json.Unmarshal(body, &res) != nil || res.Total != 2 {
		t.Fatalf("search: %s", body)
	}
	_, body, _ = call(t, http.DefaultClient, http.MethodGet, g.URL()+"/repos/acme/security/issues?labels=rootwarden-case-a", nil)
	var open []map[string]any
	if json.Unmarshal(body, &open) != nil || len(open) != 1 || open[0]["number"].(float64) != 3 {
		t.Fatalf("list open: %s", body)
	}
	if c := g.CountByLabel("rootwarden-case-"); c["rootwarden-case-a"] != 2 || c["rootwarden-case-b"] != 1 {
		t.Fatalf("counts %v", c)
	}
}

func isConnErr(err error) bool {
	return err != nil && (bytes.Contains([]byte(err.Error()), []byte("EOF")) || bytes.Contains([]byte(err.Error()), []byte("connection reset")))
}

func TestStatusAfterActsThenFailsAndEveryRequestIsRecorded(t *testing.T) {
	g := start(t)
	g.FailNext(trackerfake.OpCreate, 1, trackerfake.StatusAfter(http.StatusBadGateway))
	resp, _, err := call(t, http.DefaultClient, http.MethodPost, g.URL()+"/repos/acme/security/issues",
		map[string]any{"title": "t", "labels": []string{"rootwarden-case-1"}})
	if err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("create: %v %v, want 502", resp, err)
	}
	if n := len(g.Issues()); n != 1 {
		t.Fatalf("%d issues after a create answered 502 after acting, want 1", n)
	}
	g.Fail(http.StatusTooManyRequests)
	resp, _, _ = call(t, http.DefaultClient, http.MethodGet, g.URL()+"/repos/acme/security/issues?labels=x", nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("queued 429: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	calls := 0
	g.FailFunc(func(op trackerfake.Op) *trackerfake.Fault {
		calls++
		f := trackerfake.Status(http.StatusServiceUnavailable)
		return &f
	})
	resp, _, _ = call(t, http.DefaultClient, http.MethodGet, g.URL()+"/repos/acme/security/issues/1", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || calls != 1 {
		t.Fatalf("FailFunc: %d after %d calls", resp.StatusCode, calls)
	}
	reqs := g.Requests()
	if len(reqs) != 3 || reqs[0].Method != http.MethodPost || reqs[2].Path != "/repos/acme/security/issues/1" ||
		reqs[1].Query != "labels=x" || reqs[0].Auth != "Bearer "+token {
		t.Fatalf("requests %+v", reqs)
	}
	if n := g.Count(http.MethodPost, "/repos/acme/security/issues"); n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
}
