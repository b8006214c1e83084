package tracker

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/internal/trackerfake"
)

func adfToText(v any) string { return trackerfake.ADFText(v) }

const jiraToken = "jira-SECRET-token-123"

const jiraSearchLag = 30 * time.Millisecond

func newJiraEnv(t *testing.T, opts ...trackerfake.JiraOption) (contractEnv, *trackerfake.Jira) {
	f := trackerfake.NewJira(append([]trackerfake.JiraOption{trackerfake.WithJiraAuth("bot@example.com", jiraToken),
		trackerfake.WithSearchLag(jiraSearchLag)}, opts...)...)
	f.Start()
	t.Cleanup(f.Close)
	logs := &testutil.LogBuffer{}
	tr, err := NewJira(JiraConfig{BaseURL: f.URL(), Email: "bot@example.com", APIToken: jiraToken, Project: "SEC", Retry: fastRetry,
		Client: &http.Client{}, Timeout: 200 * time.Millisecond, SearchLag: 3 * jiraSearchLag}, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("bot@example.com:"+jiraToken))
	return contractEnv{
		tr: tr, srv: f, secret: jiraToken, logs: logs, createMth: http.MethodPost, createPfx: "/rest/api/3/issue",
		createOp: trackerfake.OpJiraCreate,
		setDone:  func(ref model.TicketRef, who string) { f.SetStatus(ref.ID, "Done", who) },
		isDone:   func(ref model.TicketRef) bool { is, _ := f.Issue(ref.ID); return is.Status == "Done" },
		comments: func(ref model.TicketRef) []string { is, _ := f.Issue(ref.ID); return is.Comments },
		labels:   func(ref model.TicketRef) []string { is, _ := f.Issue(ref.ID); return is.Labels },
		tickets:  func() int { return len(f.Issues()) },
		checkAuth: func(t *testing.T, auth string) {
			if auth != wantAuth {
				t.Errorf("authorization %q", auth)
			}
		},
	}, f
}

func TestJiraTracker(t *testing.T) {
	runContract(t, func(t *testing.T) contractEnv { e, _ := newJiraEnv(t); return e })
}

func TestJiraCountsCreatesExactly(t *testing.T) {
	e, f := newJiraEnv(t)
	ref, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), "https://slack.example/p1")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Count(http.MethodPost, "/rest/api/3/issue"); n != 1 {
		t.Fatalf("%d POSTs under /issue", n)
	}
	if ref.URL != f.URL()+"/browse/"+ref.ID {
		t.Errorf("url %s", ref.URL)
	}
	is, _ := f.Issue(ref.ID)
	text := adfToText(is.Description)
	for _, want := range []string{"https://console.aws.amazon.com/", "Security credentials", "Deactivate", "Delete", AWSGuideURL,
		"https://slack.example/p1", "billing", "no IAM policy"} {
		if !strings.Contains(text, want) {
			t.Errorf("description lacks %q", want)
		}
	}
}

func TestJiraNeedsItsSettings(t *testing.T) {
	if _, err := NewJira(JiraConfig{BaseURL: "https://x.atlassian.net", Email: "a@b"}, nil); err == nil ||
		!strings.Contains(err.Error(), "API token") {
		t.Fatalf("err %v", err)
	}
}
