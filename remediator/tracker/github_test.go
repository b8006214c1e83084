package tracker

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

type ghFakeIssue struct {
	number        int
	title, body   string
	labels        []string
	state, reason string
	assignee      string
	comments      []string
	closedAt      string
}

// ghFake speaks the part of the GitHub REST API the tracker uses.
type ghFake struct {
	*fakeServer
	issues []*ghFakeIssue
}

func newGHFake(t *testing.T) *ghFake {
	f := &ghFake{}
	base := "/repos/acme/security/issues"
	f.fakeServer = newFakeServer(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		if r.Header.Get("X-GitHub-Api-Version") == "" || !strings.Contains(r.Header.Get("Accept"), "github") {
			writeJSON(w, 400, map[string]any{"message": "missing GitHub headers"})
			return
		}
		p := r.URL.Path
		render := func(is *ghFakeIssue) map[string]any {
			m := map[string]any{"number": is.number, "html_url": fmt.Sprintf("https://github.example/acme/security/issues/%d", is.number),
				"state": is.state, "state_reason": is.reason, "assignee": nil, "closed_at": nil}
			if is.closedAt != "" {
				m["closed_at"] = is.closedAt
			}
			if is.assignee != "" {
				m["assignee"] = map[string]any{"login": is.assignee}
			}
			return m
		}
		switch {
		case p == base && r.Method == http.MethodGet:
			q, _ := url.ParseQuery(r.URL.RawQuery)
			out := []any{}
			for _, is := range f.issues {
				if q.Get("state") != "all" && is.state != "open" {
					continue
				}
				if contains(is.labels, q.Get("labels")) {
					out = append(out, render(is))
				}
			}
			writeJSON(w, 200, out)
		case p == base && r.Method == http.MethodPost:
			is := &ghFakeIssue{number: len(f.issues) + 1, title: body["title"].(string), body: body["body"].(string), state: "open"}
			for _, l := range body["labels"].([]any) {
				is.labels = append(is.labels, l.(string))
			}
			f.issues = append(f.issues, is)
			writeJSON(w, 201, render(is))
		case strings.HasPrefix(p, base+"/"):
			rest := strings.Split(strings.TrimPrefix(p, base+"/"), "/")
			n, _ := strconv.Atoi(rest[0])
			if n < 1 || n > len(f.issues) {
				writeJSON(w, 404, map[string]any{"message": "Not Found"})
				return
			}
			is := f.issues[n-1]
			switch {
			case len(rest) == 1 && r.Method == http.MethodGet:
				writeJSON(w, 200, render(is))
			case len(rest) == 1 && r.Method == http.MethodPatch:
				is.state, _ = body["state"].(string)
				is.reason, _ = body["state_reason"].(string)
				is.closedAt = ""
				if is.state == "closed" {
					is.closedAt = time.Now().UTC().Format(time.RFC3339Nano)
				}
				writeJSON(w, 200, render(is))
			case len(rest) == 2 && rest[1] == "comments" && r.Method == http.MethodPost:
				is.comments = append(is.comments, body["body"].(string))
				writeJSON(w, 201, map[string]any{"id": 1})
			default:
				w.WriteHeader(405)
			}
		default:
			writeJSON(w, 404, map[string]any{"message": "Not Found"})
		}
	})
	return f
}

const ghToken = "ghp_SECRETsecretSECRET"

func newGHEnv(t *testing.T) (contractEnv, *ghFake) {
	f := newGHFake(t)
	logs := &testutil.LogBuffer{}
	// A client without a timeout, as a caller may pass one: the tracker must add it.
	tr, err := NewGitHub(GitHubConfig{BaseURL: f.srv.URL, Token: ghToken, Owner: "acme", Repo: "security", Retry: fastRetry,
		Client: &http.Client{}, Timeout: 200 * time.Millisecond}, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ref model.TicketRef) *ghFakeIssue { n, _ := strconv.Atoi(ref.ID); return f.issues[n-1] }
	return contractEnv{
		tr: tr, srv: f.fakeServer, secret: ghToken, logs: logs, createMth: http.MethodPost, createPfx: "/repos/acme/security/issues",
		setDone: func(ref model.TicketRef, who string) {
			f.mu.Lock()
			is := issue(ref)
			is.state, is.reason, is.assignee = "closed", "completed", who
			is.closedAt = time.Now().UTC().Format(time.RFC3339Nano)
			f.mu.Unlock()
		},
		isDone: func(ref model.TicketRef) bool { f.mu.Lock(); defer f.mu.Unlock(); return issue(ref).state == "closed" },
		comments: func(ref model.TicketRef) []string {
			f.mu.Lock()
			defer f.mu.Unlock()
			return append([]string(nil), issue(ref).comments...)
		},
		labels:  func(ref model.TicketRef) []string { f.mu.Lock(); defer f.mu.Unlock(); return issue(ref).labels },
		tickets: func() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.issues) },
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
	if err != nil || ref2 != ref || len(f.issues) != 1 {
		t.Fatalf("reopen lookup: %+v %v (%d issues)", ref2, err, len(f.issues))
	}
	body := f.issues[0].body
	for _, want := range []string{"https://console.aws.amazon.com/", "Security credentials", "Actions → Deactivate", AWSGuideURL,
		"https://slack.example/p3", "billing", "no IAM policy", "222222222222"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if err := e.tr.Reopen(ctx, ref, "again"); err != nil || f.issues[0].state != "open" {
		t.Fatalf("reopen: %v %s", err, f.issues[0].state)
	}
	if err := e.tr.Close(ctx, ref, "done"); err != nil {
		t.Fatal(err)
	}
	if f.issues[0].state != "closed" || f.issues[0].reason != "completed" {
		t.Errorf("state_reason %q", f.issues[0].reason)
	}
}

func TestGitHubSecondaryRateLimitIsRetriedAfterItsDelay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
	}{
		{"403 with Retry-After", http.StatusForbidden, http.Header{"Retry-After": {"1"}}},
		{"403 with x-ratelimit-remaining 0", http.StatusForbidden, http.Header{"X-Ratelimit-Remaining": {"0"},
			"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(3*time.Second).Unix(), 10)}}},
		{"429 with Retry-After", http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, f := newGHEnv(t)
			f.inject(fault{status: tc.status, header: tc.header})
			if _, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), ""); err != nil {
				t.Fatalf("open after one rate-limited answer: %v", err)
			}
			// When the limit outlasts the attempts, the error is transient and says how long to wait.
			for range fastRetry.MaxAttempts {
				f.inject(fault{status: tc.status, header: tc.header})
			}
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
		f.fail(http.StatusForbidden)
		if _, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), ""); model.ErrorCode(err) != model.CodeUnauthorized {
			t.Fatalf("plain 403: %v", err)
		}
	})
}
