package trackerfake_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/trackerfake"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

func startJira(t *testing.T, opts ...trackerfake.JiraOption) (*trackerfake.Jira, *tracker.Jira) {
	t.Helper()
	j := trackerfake.NewJira(append([]trackerfake.JiraOption{trackerfake.WithJiraAuth("bot@example.com", "jira-SECRET")}, opts...)...)
	j.Start()
	t.Cleanup(j.Close)
	tr, err := tracker.NewJira(tracker.JiraConfig{BaseURL: j.URL(), Email: "bot@example.com", APIToken: "jira-SECRET", Project: "SEC",
		Client: &http.Client{Timeout: time.Second}, Retry: tracker.Retry{MaxAttempts: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return j, tr
}

func TestTheRealJiraTrackerWorksAgainstTheFake(t *testing.T) {
	j, tr := startJira(t)
	ctx := context.Background()
	c := model.Case{ID: "222222222222-1", AccountID: "222222222222", State: model.StateTicketed}
	ref, err := tr.Open(ctx, c, "https://slack.example/p1")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := tr.Open(ctx, c, ""); err != nil || again != ref {
		t.Fatalf("second Open: %+v %v, want %+v", again, err, ref)
	}
	j.SetStatus(ref.ID, "Done", "dana@example.com")
	st, err := tr.Status(ctx, ref)
	if err != nil || !st.Done || st.Assignee != "dana@example.com" {
		t.Fatalf("status %+v %v", st, err)
	}
	if err := tr.Reopen(ctx, ref, "still there"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(ctx, ref, "verified"); err != nil {
		t.Fatal(err)
	}
	is := j.Issues()[0]
	if is.Status != "Done" || len(is.Comments) != 2 || j.CountByLabel(tracker.Label(""))[tracker.Label(c.ID)] != 1 {
		t.Fatalf("issue %+v", is)
	}
}

func TestJiraFaults(t *testing.T) {
	ctx := context.Background()
	c := model.Case{ID: "222222222222-2", AccountID: "222222222222"}
	t.Run("a lost creation answer leaves the issue created", func(t *testing.T) {
		j, tr := startJira(t)
		j.FailNext(trackerfake.OpJiraCreate, 1, trackerfake.Lost())
		if _, err := tr.Open(ctx, c, ""); err == nil {
			t.Fatal("Open succeeded although its answer was lost")
		}
		if n := len(j.IssuesWithLabel(tracker.Label(c.ID))); n != 1 || j.Faults()[trackerfake.FaultLost] != 1 {
			t.Fatalf("%d issues, faults %v", n, j.Faults())
		}
	})
	t.Run("a workflow without a way out of Done refuses the reopen", func(t *testing.T) {
		j, tr := startJira(t, trackerfake.WithoutReopen())
		ref, err := tr.Open(ctx, c, "")
		if err != nil {
			t.Fatal(err)
		}
		j.SetStatus(ref.ID, "Done", "")
		if err := tr.Reopen(ctx, ref, "again"); err == nil {
			t.Fatal("reopened out of a Done without transitions")
		}
	})
	t.Run("the search index lags behind a creation", func(t *testing.T) {
		j, tr := startJira(t, trackerfake.WithSearchLag(time.Hour))
		if _, err := tr.Open(ctx, c, ""); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, j.URL()+"/rest/api/3/search/jql",
			strings.NewReader(`{"jql":"project = \"SEC\" AND labels = \"`+tracker.Label(c.ID)+`\""}`))
		req.SetBasicAuth("bot@example.com", "jira-SECRET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Issues []any `json:"issues"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Issues) != 0 || len(j.Issues()) != 1 {
			t.Fatalf("search found %d of %d issues (%v), want 0 while the index lags", len(out.Issues), len(j.Issues()), err)
		}
	})
	t.Run("a hang is cut by the client's deadline", func(t *testing.T) {
		j, tr := startJira(t)
		j.FailNext(trackerfake.OpAny, 1, trackerfake.Hang(time.Hour))
		if _, err := tr.Open(ctx, c, ""); err == nil || len(j.Issues()) != 0 {
			t.Fatalf("err %v, %d issues", err, len(j.Issues()))
		}
	})
	t.Run("a 429 carries Retry-After", func(t *testing.T) {
		j, tr := startJira(t)
		j.FailNext(trackerfake.OpJiraSearch, 1, trackerfake.SecondaryRateLimit(2*time.Second))
		_, err := tr.Open(ctx, c, "")
		if model.ErrorCode(err) != model.CodeTransient {
			t.Fatalf("err %v, want transient", err)
		}
	})
}

func TestJiraKeepsTheDescriptionAndCommentText(t *testing.T) {
	j, tr := startJira(t)
	ref, err := tr.Open(context.Background(), model.Case{ID: "222222222222-1", AccountID: "222222222222", State: model.StateTicketed}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Comment(context.Background(), ref, "a note"); err != nil {
		t.Fatal(err)
	}
	is, ok := j.Issue(ref.ID)
	if !ok || !strings.Contains(trackerfake.ADFText(is.Description), "222222222222") || len(is.Comments) != 1 || is.Comments[0] != "a note" {
		t.Fatalf("issue %+v (%v)", is, ok)
	}
}

// A project's required fields and issue types are refused as Jira Cloud refuses them:
// 400 with an ErrorCollection keyed by field id.
func TestJiraFakeRefusesLikeJiraCloud(t *testing.T) {
	j := trackerfake.NewJira(trackerfake.WithJiraRequiredFields(map[string]string{"customfield_10010": "Team is required."}),
		trackerfake.WithJiraIssueTypes("Task"))
	base := j.Start()
	t.Cleanup(j.Close)
	post := func(fields string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/rest/api/3/issue", strings.NewReader(`{"fields": {"project": {"key": "SEC"}, "summary": "s", `+fields+`}}`))
		req.SetBasicAuth("bot@example.com", "t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	code, body := post(`"issuetype": {"name": "Bug"}`)
	errs, _ := body["errors"].(map[string]any)
	if code != http.StatusBadRequest || errs["customfield_10010"] != "Team is required." || errs["issuetype"] != "Specify a valid issue type" ||
		body["errorMessages"] == nil {
		t.Fatalf("%d %v", code, body)
	}
	code, body = post(`"issuetype": {"name": "Task"}, "customfield_10010": {"value": "Security"}`)
	if code != http.StatusCreated {
		t.Fatalf("%d %v", code, body)
	}
	if is := j.Issues()[0]; is.Fields["customfield_10010"] == nil {
		t.Errorf("the custom field was not kept: %+v", is.Fields)
	}
}
