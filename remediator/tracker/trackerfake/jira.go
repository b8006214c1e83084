package trackerfake

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// JiraIssue is an issue of the Jira fake.
type JiraIssue struct {
	Key, Summary string
	Labels       []string
	Description  any // ADF
	Status       string
	Category     string // new | indeterminate | done
	Assignee     string // accountId
	Comments     []string
	Created      time.Time
	CatChanged   string // statuscategorychangedate
}

// Jira speaks the part of Jira Cloud REST v3 rootwarden uses: JQL search by label,
// create, read, comment, transitions, user search.
type Jira struct {
	Server
	issues map[string]*JiraIssue
	order  []string
	// SearchLag: a new issue is invisible to JQL search for this long, as Jira's
	// search index catches up asynchronously.
	SearchLag time.Duration
	// DoneIsFinal: no transition leads out of a done status (a workflow where Done
	// is final), so a reopen finds no transition.
	DoneIsFinal bool
	// Users are the users user search finds, email → accountId.
	Users map[string]string
}

var jqlLabel = regexp.MustCompile(`labels = "([^"]+)"`)

// NewJira starts a Jira fake; wrap (optional) wraps its handler.
func NewJira(wrap ...func(http.Handler) http.Handler) *Jira {
	f := &Jira{issues: map[string]*JiraIssue{}, Users: map[string]string{}}
	f.start(f.handle, wrap...)
	return f
}

const jiraTime = "2006-01-02T15:04:05.000-0700"

func (f *Jira) handle(w http.ResponseWriter, r *http.Request, body map[string]any) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && p == "/rest/api/3/search/jql":
		m := jqlLabel.FindStringSubmatch(fmt.Sprint(body["jql"]))
		out := []any{}
		for _, k := range f.order {
			is := f.issues[k]
			if m != nil && contains(is.Labels, m[1]) && time.Since(is.Created) >= f.SearchLag {
				out = append(out, map[string]any{"id": k, "key": k,
					"fields": map[string]any{"status": map[string]any{"name": is.Status, "statusCategory": map[string]any{"key": is.Category}}}})
			}
		}
		writeJSON(w, 200, map[string]any{"issues": out})
	case r.Method == http.MethodGet && p == "/rest/api/3/user/search":
		out := []any{}
		if id, ok := f.Users[r.URL.Query().Get("query")]; ok {
			out = append(out, map[string]any{"accountId": id, "emailAddress": r.URL.Query().Get("query"), "active": true})
		}
		writeJSON(w, 200, out)
	case r.Method == http.MethodPost && p == "/rest/api/3/issue":
		fields, _ := body["fields"].(map[string]any)
		var labels []string
		ls, _ := fields["labels"].([]any)
		for _, l := range ls {
			s, _ := l.(string)
			labels = append(labels, s)
		}
		if d, _ := fields["description"].(map[string]any); d == nil || d["type"] != "doc" {
			writeJSON(w, 400, map[string]any{"errorMessages": []string{"description must be ADF"}})
			return
		}
		key := fmt.Sprintf("SEC-%d", len(f.order)+1)
		summary, _ := fields["summary"].(string)
		is := &JiraIssue{Key: key, Summary: summary, Labels: labels, Description: fields["description"],
			Status: "To Do", Category: "new", Created: time.Now()}
		if a, _ := fields["assignee"].(map[string]any); a != nil {
			is.Assignee, _ = a["accountId"].(string)
		}
		f.issues[key] = is
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
			fields := map[string]any{"status": map[string]any{"name": is.Status, "statusCategory": map[string]any{"key": is.Category}},
				"statuscategorychangedate": is.CatChanged, "assignee": nil}
			if is.Assignee != "" {
				fields["assignee"] = map[string]any{"accountId": "abc", "displayName": is.Assignee}
			}
			writeJSON(w, 200, map[string]any{"key": is.Key, "fields": fields})
		case len(rest) == 2 && rest[1] == "comment" && r.Method == http.MethodPost:
			is.Comments = append(is.Comments, adfText(body["body"]))
			writeJSON(w, 201, map[string]any{"id": "1"})
		case len(rest) == 2 && rest[1] == "transitions" && r.Method == http.MethodGet:
			ts := []any{
				map[string]any{"id": "11", "name": "Back to do", "to": map[string]any{"name": "To Do", "statusCategory": map[string]any{"key": "new"}}},
				map[string]any{"id": "21", "name": "Start", "to": map[string]any{"name": "In Progress", "statusCategory": map[string]any{"key": "indeterminate"}}},
				map[string]any{"id": "31", "name": "Finish", "to": map[string]any{"name": "Done", "statusCategory": map[string]any{"key": "done"}}},
			}
			if f.DoneIsFinal && is.Category == "done" {
				ts = []any{}
			}
			writeJSON(w, 200, map[string]any{"transitions": ts})
		case len(rest) == 2 && rest[1] == "transitions" && r.Method == http.MethodPost:
			t, _ := body["transition"].(map[string]any)
			if f.DoneIsFinal && is.Category == "done" {
				writeJSON(w, 400, map[string]any{"errorMessages": []string{"transition is not valid for this issue"}})
				return
			}
			switch t["id"] {
			case "11":
				is.Status, is.Category = "To Do", "new"
			case "21":
				is.Status, is.Category = "In Progress", "indeterminate"
			case "31":
				is.Status, is.Category = "Done", "done"
			default:
				writeJSON(w, 400, map[string]any{"errorMessages": []string{"bad transition"}})
				return
			}
			is.CatChanged = time.Now().Format(jiraTime)
			w.WriteHeader(204)
		default:
			w.WriteHeader(405)
		}
	default:
		w.WriteHeader(404)
	}
}

// adfText is the text of an ADF document.
func adfText(v any) string {
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

// ADFText is the text of an ADF document (descriptions, comments).
func ADFText(v any) string { return adfText(v) }

// Issues is a copy of every issue, in creation order.
func (f *Jira) Issues() []JiraIssue {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	out := make([]JiraIssue, 0, len(f.order))
	for _, k := range f.order {
		c := *f.issues[k]
		c.Labels = append([]string(nil), c.Labels...)
		c.Comments = append([]string(nil), c.Comments...)
		out = append(out, c)
	}
	return out
}

// Issue is a copy of the issue with this key.
func (f *Jira) Issue(key string) (JiraIssue, bool) {
	for _, is := range f.Issues() {
		if is.Key == key {
			return is, true
		}
	}
	return JiraIssue{}, false
}

// Done moves the issue to Done as its assignee would.
func (f *Jira) Done(key, assignee string) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if is := f.issues[key]; is != nil {
		is.Status, is.Category, is.Assignee = "Done", "done", assignee
		is.CatChanged = time.Now().Format(jiraTime)
	}
}
