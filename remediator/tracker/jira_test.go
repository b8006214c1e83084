package tracker

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

type jiraFakeIssue struct {
	key, summary    string
	labels          []string
	description     any
	statusName, cat string
	assignee        string
	comments        []string
	created         time.Time
	catChanged      string
}

// jiraFake speaks the part of Jira Cloud REST v3 the tracker uses.
type jiraFake struct {
	*fakeServer
	issues map[string]*jiraFakeIssue
	order  []string
	// searchLag: a new issue is invisible to JQL search for this long, as Jira's
	// search index catches up asynchronously.
	searchLag time.Duration
}

var jqlLabel = regexp.MustCompile(`labels = "([^"]+)"`)

func newJiraFake(t *testing.T) *jiraFake {
	f := &jiraFake{issues: map[string]*jiraFakeIssue{}, searchLag: 30 * time.Millisecond}
	f.fakeServer = newFakeServer(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		p := r.URL.Path
		switch {
		case r.Method == http.MethodPost && p == "/rest/api/3/search/jql":
			m := jqlLabel.FindStringSubmatch(fmt.Sprint(body["jql"]))
			var out []any
			for _, k := range f.order {
				is := f.issues[k]
				if m != nil && contains(is.labels, m[1]) && time.Since(is.created) >= f.searchLag {
					out = append(out, map[string]any{"id": k, "key": k,
						"fields": map[string]any{"status": map[string]any{"name": is.statusName, "statusCategory": map[string]any{"key": is.cat}}}})
				}
			}
			writeJSON(w, 200, map[string]any{"issues": out})
		case r.Method == http.MethodPost && p == "/rest/api/3/issue":
			fields, _ := body["fields"].(map[string]any)
			var labels []string
			for _, l := range fields["labels"].([]any) {
				labels = append(labels, l.(string))
			}
			if fields["description"].(map[string]any)["type"] != "doc" {
				writeJSON(w, 400, map[string]any{"errorMessages": []string{"description must be ADF"}})
				return
			}
			key := fmt.Sprintf("SEC-%d", len(f.order)+1)
			f.issues[key] = &jiraFakeIssue{key: key, summary: fields["summary"].(string), labels: labels,
				description: fields["description"], statusName: "To Do", cat: "new", created: time.Now()}
			f.order = append(f.order, key)
			writeJSON(w, 201, map[string]any{"id": "100", "key": key, "self": "x"})
		case strings.HasPrefix(p, "/rest/api/3/issue/"):
			rest := strings.Split(strings.TrimPrefix(p, "/rest/api/3/issue/"), "/")
			is := f.issues[rest[0]]
			if is == nil {
				writeJSON(w, 404, map[string]any{"errorMessages": []string{"Issue does not exist"}})
				return
			}
			switch {
			case len(rest) == 1 && r.Method == http.MethodGet:
				fields := map[string]any{"status": map[string]any{"name": is.statusName, "statusCategory": map[string]any{"key": is.cat}},
					"statuscategorychangedate": is.catChanged}
				if is.assignee != "" {
					fields["assignee"] = map[string]any{"accountId": "abc", "displayName": is.assignee}
				} else {
					fields["assignee"] = nil
				}
				writeJSON(w, 200, map[string]any{"key": is.key, "fields": fields})
			case len(rest) == 2 && rest[1] == "comment" && r.Method == http.MethodPost:
				is.comments = append(is.comments, adfToText(body["body"]))
				writeJSON(w, 201, map[string]any{"id": "1"})
			case len(rest) == 2 && rest[1] == "transitions" && r.Method == http.MethodGet:
				writeJSON(w, 200, map[string]any{"transitions": []any{
					map[string]any{"id": "11", "name": "Back to do", "to": map[string]any{"name": "To Do", "statusCategory": map[string]any{"key": "new"}}},
					map[string]any{"id": "21", "name": "Start", "to": map[string]any{"name": "In Progress", "statusCategory": map[string]any{"key": "indeterminate"}}},
					map[string]any{"id": "31", "name": "Finish", "to": map[string]any{"name": "Done", "statusCategory": map[string]any{"key": "done"}}},
				}})
			case len(rest) == 2 && rest[1] == "transitions" && r.Method == http.MethodPost:
				id := body["transition"].(map[string]any)["id"]
				is.catChanged = time.Now().Format("2006-01-02T15:04:05.000-0700")
				switch id {
				case "11":
					is.statusName, is.cat = "To Do", "new"
				case "21":
					is.statusName, is.cat = "In Progress", "indeterminate"
				case "31":
					is.statusName, is.cat = "Done", "done"
				default:
					writeJSON(w, 400, map[string]any{"errorMessages": []string{"bad transition"}})
					return
				}
				w.WriteHeader(204)
			default:
				w.WriteHeader(405)
			}
		default:
			w.WriteHeader(404)
		}
	})
	return f
}

func adfToText(v any) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if s, ok := m["text"].(string); ok {
			b.WriteString(s)
		}
		if c, ok := m["content"].([]any); ok {
			for _, x := range c {
				walk(x)
			}
		}
	}
	walk(v)
	return b.String()
}

const jiraToken = "jira-SECRET-token-123"

func newJiraEnv(t *testing.T) (contractEnv, *jiraFake) {
	f := newJiraFake(t)
	logs := &testutil.LogBuffer{}
	tr, err := NewJira(JiraConfig{BaseURL: f.srv.URL, Email: "bot@example.com", APIToken: jiraToken, Project: "SEC", Retry: fastRetry,
		Client: &http.Client{}, Timeout: 200 * time.Millisecond, SearchLag: 3 * f.searchLag}, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("bot@example.com:"+jiraToken))
	return contractEnv{
		tr: tr, srv: f.fakeServer, secret: jiraToken, logs: logs, createMth: http.MethodPost, createPfx: "/rest/api/3/issue",
		setDone: func(ref model.TicketRef, who string) {
			f.mu.Lock()
			f.issues[ref.ID].statusName, f.issues[ref.ID].cat, f.issues[ref.ID].assignee = "Done", "done", who
			f.issues[ref.ID].catChanged = time.Now().Format("2006-01-02T15:04:05.000-0700")
			f.mu.Unlock()
		},
		isDone: func(ref model.TicketRef) bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.issues[ref.ID].cat == "done"
		},
		comments: func(ref model.TicketRef) []string {
			f.mu.Lock()
			defer f.mu.Unlock()
			return append([]string(nil), f.issues[ref.ID].comments...)
		},
		labels:  func(ref model.TicketRef) []string { f.mu.Lock(); defer f.mu.Unlock(); return f.issues[ref.ID].labels },
		tickets: func() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.issues) },
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
	if n := f.count(http.MethodPost, "/rest/api/3/issue"); n != 1 {
		t.Fatalf("%d POSTs under /issue", n)
	}
	if ref.URL != f.srv.URL+"/browse/"+ref.ID {
		t.Errorf("url %s", ref.URL)
	}
	text := adfToText(f.issues[ref.ID].description)
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
