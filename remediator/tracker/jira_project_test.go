package tracker

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/trackerfake"
)

// newJiraWith is a Jira tracker on a fake with these options, its config changed by set.
func newJiraWith(t *testing.T, set func(*JiraConfig), opts ...trackerfake.JiraOption) (*Jira, *trackerfake.Jira) {
	t.Helper()
	f := trackerfake.NewJira(opts...)
	f.Start()
	t.Cleanup(f.Close)
	cfg := JiraConfig{BaseURL: f.URL(), Email: "bot@example.com", APIToken: jiraToken, Project: "SEC", Retry: fastRetry,
		Timeout: 200 * time.Millisecond, SearchLag: jiraSearchLag}
	if set != nil {
		set(&cfg)
	}
	tr, err := NewJira(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr, f
}

// A project with a required custom field refuses the create (Prowler's users hit
// exactly this). The error names the field, Jira's words and the setting that fixes
// it; it is final, and the creates after it are held rather than sent again.
func TestJiraRequiredFieldRefusalSaysWhichFieldAndSetting(t *testing.T) {
	tr, f := newJiraWith(t, nil, trackerfake.WithJiraRequiredFields(map[string]string{"customfield_10010": "Team is required."}))
	_, err := tr.Open(ctxT(t), testCase("222222222222-1"), "")
	if err == nil {
		t.Fatal("the create was not refused")
	}
	for _, want := range []string{"customfield_10010", "Team is required", "ROOTWARDEN_JIRA_EXTRA_FIELDS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if code := model.ErrorCode(err); code != model.CodeInvalid {
		t.Errorf("code %s: want invalid (final, not retried)", code)
	}
	if strings.Contains(err.Error(), jiraToken) {
		t.Error("the error quotes the token")
	}
	_, err2 := tr.Open(ctxT(t), testCase("333333333333-1"), "")
	if err2 == nil || !strings.Contains(err2.Error(), "customfield_10010") {
		t.Fatalf("second open: %v", err2)
	}
	if n := f.Count(http.MethodPost, "/rest/api/3/issue"); n != 1 {
		t.Errorf("%d creates sent: want 1, the next ones held until the settings change", n)
	}
}

// With the field in ROOTWARDEN_JIRA_EXTRA_FIELDS and a custom issue type, the issue
// is created with both; rootwarden's own fields win over the extra ones.
func TestJiraIssueTypeAndExtraFields(t *testing.T) {
	tr, f := newJiraWith(t, func(c *JiraConfig) {
		c.IssueType = "Security Finding"
		c.ExtraFields = map[string]any{"customfield_10010": map[string]any{"value": "Security"},
			"components": []any{map[string]any{"name": "AWS"}}}
		c.Labels = []string{"aws"}
	}, trackerfake.WithJiraRequiredFields(map[string]string{"customfield_10010": "Team is required."}),
		trackerfake.WithJiraIssueTypes("Task", "Security Finding"))
	ref, err := tr.Open(ctxT(t), testCase("222222222222-1"), "")
	if err != nil {
		t.Fatal(err)
	}
	is, _ := f.Issue(ref.ID)
	if is.Type != "Security Finding" || is.Fields["customfield_10010"] == nil || is.Fields["components"] == nil ||
		!strings.Contains(strings.Join(is.Labels, ","), "aws") || !strings.Contains(strings.Join(is.Labels, ","), Label("222222222222-1")) {
		t.Errorf("issue %+v", is)
	}
}

func TestJiraUnknownIssueTypeNamesTheSetting(t *testing.T) {
	tr, _ := newJiraWith(t, func(c *JiraConfig) { c.IssueType = "Securty" }, trackerfake.WithJiraIssueTypes("Task", "Bug"))
	_, err := tr.Open(ctxT(t), testCase("222222222222-1"), "")
	if err == nil || !strings.Contains(err.Error(), "ROOTWARDEN_JIRA_ISSUE_TYPE") || !strings.Contains(err.Error(), `"Securty"`) {
		t.Fatalf("error %v: want one naming ROOTWARDEN_JIRA_ISSUE_TYPE and the type", err)
	}
}

// Which closures are a claim that the keys are deleted: by default every status of
// the done category; ROOTWARDEN_JIRA_DONE_STATUSES narrows the statuses and
// ROOTWARDEN_JIRA_WONT_DO_RESOLUTIONS leaves out resolutions.
func TestJiraClosureMapping(t *testing.T) {
	for _, tc := range []struct {
		name               string
		done, wontDo       []string
		status, resolution string
		want               bool
	}{
		{"done is done", nil, nil, "Done", "Done", true},
		{"any done-category status, by default", nil, nil, "Cancelled", "Done", true},
		{"won't do is done by default", nil, nil, "Done", "Won't Do", true},
		{"won't do listed is no claim", nil, []string{"Won't Do", "Duplicate"}, "Done", "Won't Do", false},
		{"names compare without case", nil, []string{"won't do"}, "Done", "Won't Do", false},
		{"a done resolution still is", nil, []string{"Won't Do"}, "Done", "Done", true},
		{"a status not listed is no claim", []string{"Done"}, nil, "Cancelled", "Done", false},
		{"a status listed is", []string{"Done", "Closed"}, nil, "Done", "Done", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, f := newJiraWith(t, func(c *JiraConfig) { c.DoneStatuses, c.WontDo = tc.done, tc.wontDo })
			ref, err := tr.Open(ctxT(t), testCase("222222222222-1"), "")
			if err != nil {
				t.Fatal(err)
			}
			f.Resolve(ref.ID, tc.status, tc.resolution)
			st, err := tr.Status(ctxT(t), ref)
			if err != nil {
				t.Fatal(err)
			}
			if st.Done != tc.want || !strings.Contains(st.State, tc.status) || !strings.Contains(st.State, tc.resolution) {
				t.Errorf("status %+v, want done=%v and the status and resolution in State", st, tc.want)
			}
			// Closing leaves an issue closed as it is, whatever the mapping says.
			if err := tr.Close(ctxT(t), ref, "resolved"); err != nil {
				t.Fatal(err)
			}
			if is, _ := f.Issue(ref.ID); is.Status != tc.status || is.Resolution != tc.resolution {
				t.Errorf("close moved the issue to %s (%s)", is.Status, is.Resolution)
			}
		})
	}
}
