package trackerfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Jira operations (Jira Cloud REST API v3).
const (
	OpJiraSearch      Op = "jira_search"      // POST /rest/api/3/search/jql
	OpJiraCreate      Op = "jira_create"      // POST /rest/api/3/issue
	OpJiraGet         Op = "jira_get"         // GET  /rest/api/3/issue/{key}
	OpJiraComment     Op = "jira_comment"     // POST /rest/api/3/issue/{key}/comment
	OpJiraTransitions Op = "jira_transitions" // GET  /rest/api/3/issue/{key}/transitions
	OpJiraTransition  Op = "jira_transition"  // POST /rest/api/3/issue/{key}/transitions
)

// JiraIssue is an issue as the Jira fake holds it.
type JiraIssue struct {
	Key     string
	Project string
	Type    string
	Summary string
	Labels  []string
	// Description is the issue's description as sent: an Atlassian Document Format
	// document (ADFText gives its text).
	Description any
	Status      string   // To Do, In Progress, Done
	Assignee    string   // email
	Comments    []string // the text of each comment's ADF body
	Created     time.Time
	// StatusChanged is when the status category last changed (statuscategorychangedate).
	StatusChanged time.Time
	Resolved      *time.Time
	Resolution    string         // Done, Won't Do…; "" while not done
	Fields        map[string]any // the other fields sent at creation (custom fields, components…)
}

var jiraStatuses = map[string]struct{ id, category string }{
	"To Do": {"10000", "new"}, "In Progress": {"10001", "indeterminate"}, "Done": {"10002", "done"},
	"Cancelled": {"10003", "done"}, // no transition leads there: a person sets it (Resolve)
}

// jiraOwnFields are the fields the fake keeps apart from JiraIssue.Fields.
var jiraOwnFields = map[string]bool{"project": true, "issuetype": true, "summary": true, "description": true, "labels": true, "assignee": true}

// Jira is a fake Jira Cloud (REST API v3) with one workflow (To Do → In Progress →
// Done, and back unless WithoutReopen). Create it with NewJira, then Start it.
type Jira struct {
	*injector
	email, token string

	mu        sync.Mutex
	srv       *httptest.Server
	issues    []*JiraIssue
	noReopen  bool
	searchLag time.Duration
	now       func() time.Time
	required  map[string]string // field id → Jira's message when a create lacks it
	types     []string          // the project's issue types (nil: any)
}

// JiraOption configures the Jira fake.
type JiraOption func(*Jira)

// WithJiraAuth makes every call require Basic auth with this email and API token.
func WithJiraAuth(email, token string) JiraOption {
	return func(j *Jira) { j.email, j.token = email, token }
}

// WithJiraSeed seeds the random source of FailShare.
func WithJiraSeed(seed uint64) JiraOption { return func(j *Jira) { j.seed(seed) } }

// WithoutReopen is a workflow with no transition out of Done, as many real ones are.
func WithoutReopen() JiraOption { return func(j *Jira) { j.noReopen = true } }

// WithSearchLag makes new issues invisible to JQL search for d, as Jira's search index
// lags behind writes.
func WithSearchLag(d time.Duration) JiraOption { return func(j *Jira) { j.searchLag = d } }

// WithJiraRequiredFields makes creates without these fields fail as Jira Cloud
// refuses them: 400 {"errorMessages": [], "errors": {"customfield_10010": "Team is
// required."}}. The map is field id → message.
func WithJiraRequiredFields(fields map[string]string) JiraOption {
	return func(j *Jira) { j.required = fields }
}

// WithJiraIssueTypes limits the issue types a create may name (default: any); another
// is refused with 400 {"errors": {"issuetype": "Specify a valid issue type"}}.
func WithJiraIssueTypes(names ...string) JiraOption { return func(j *Jira) { j.types = names } }

// WithJiraClock sets the clock (default time.Now).
func WithJiraClock(now func() time.Time) JiraOption { return func(j *Jira) { j.now = now } }

// NewJira returns a stopped Jira fake.
func NewJira(opts ...JiraOption) *Jira {
	j := &Jira{injector: newInjector(), now: time.Now}
	for _, o := range opts {
		o(j)
	}
	return j
}

// Start serves on a loopback port and returns the base URL (ROOTWARDEN_JIRA_URL).
func (j *Jira) Start() string {
	j.srv = httptest.NewServer(http.HandlerFunc(j.serve))
	return j.srv.URL
}

// URL is the base URL of a started fake.
func (j *Jira) URL() string { return j.srv.URL }

// Close ends hanging requests and stops the server.
func (j *Jira) Close() {
	j.closeHangs()
	if j.srv != nil {
		j.srv.CloseClientConnections()
		j.srv.Close()
	}
}

// Issues returns copies of every issue in creation order.
func (j *Jira) Issues() []JiraIssue {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]JiraIssue, 0, len(j.issues))
	for _, is := range j.issues {
		out = append(out, copyJira(is))
	}
	return out
}

// Issue returns the issue with this key.
func (j *Jira) Issue(key string) (JiraIssue, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if is := j.find(key); is != nil {
		return copyJira(is), true
	}
	return JiraIssue{}, false
}

// IssuesWithLabel returns the issues carrying label.
func (j *Jira) IssuesWithLabel(label string) []JiraIssue {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []JiraIssue
	for _, is := range j.issues {
		if slices.Contains(is.Labels, label) {
			out = append(out, copyJira(is))
		}
	}
	return out
}

// CountByLabel counts issues per label starting with prefix.
func (j *Jira) CountByLabel(prefix string) map[string]int {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := map[string]int{}
	for _, is := range j.issues {
		for _, l := range is.Labels {
			if strings.HasPrefix(l, prefix) {
				out[l]++
			}
		}
	}
	return out
}

// SetStatus moves an issue to a status as a person would (To Do, In Progress, Done).
func (j *Jira) SetStatus(key, status, assignee string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	is := j.find(key)
	if is == nil {
		return false
	}
	j.setStatusLocked(is, status)
	if assignee != "" {
		is.Assignee = assignee
	}
	return true
}

// Resolve moves an issue to a done status with a resolution, as a person closing it
// "Won't Do" would.
func (j *Jira) Resolve(key, status, resolution string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	is := j.find(key)
	if is == nil || jiraStatuses[status].category != "done" {
		return false
	}
	j.setStatusLocked(is, status)
	is.Resolution = resolution
	return true
}

func copyJira(is *JiraIssue) JiraIssue {
	out := *is
	out.Labels = slices.Clone(is.Labels)
	out.Comments = slices.Clone(is.Comments)
	out.Fields = maps.Clone(is.Fields)
	return out
}

func (j *Jira) find(key string) *JiraIssue {
	for _, is := range j.issues {
		if is.Key == key {
			return is
		}
	}
	return nil
}

func (j *Jira) setStatusLocked(is *JiraIssue, status string) {
	now := j.now().UTC()
	if jiraStatuses[status].category != jiraStatuses[is.Status].category {
		is.StatusChanged = now
	}
	is.Status = status
	if jiraStatuses[status].category == "done" {
		is.Resolved = &now
		is.Resolution = "Done"
	} else {
		is.Resolved, is.Resolution = nil, ""
	}
}

func jiraError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errorMessages": []string{msg}, "errors": map[string]any{}})
}

// jiraFail is the error body of an injected fault: Jira answers rate limits with 429.
func jiraFail(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusForbidden {
		status = http.StatusTooManyRequests
	}
	jiraError(w, status, msg)
}

func (j *Jira) authorized(r *http.Request) bool {
	a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Basic ")
	if !ok {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(a)
	if err != nil {
		return false
	}
	email, token, ok := strings.Cut(string(raw), ":")
	if !ok || email == "" || token == "" {
		return false
	}
	return j.token == "" || (email == j.email && token == j.token)
}

var issuePathRE = regexp.MustCompile(`^/rest/api/3/issue/([A-Z][A-Z0-9]*-\d+)(/comment|/transitions)?$`)

func (j *Jira) serve(w http.ResponseWriter, r *http.Request) {
	j.record(r)
	var op Op
	var key string
	switch p := r.URL.Path; {
	case p == "/rest/api/3/search/jql" && r.Method == http.MethodPost:
		op = OpJiraSearch
	case p == "/rest/api/3/issue" && r.Method == http.MethodPost:
		op = OpJiraCreate
	default:
		m := issuePathRE.FindStringSubmatch(p)
		if m == nil {
			jiraError(w, http.StatusNotFound, "Not found")
			return
		}
		key = m[1]
		switch {
		case m[2] == "" && r.Method == http.MethodGet:
			op = OpJiraGet
		case m[2] == "/comment" && r.Method == http.MethodPost:
			op = OpJiraComment
		case m[2] == "/transitions" && r.Method == http.MethodGet:
			op = OpJiraTransitions
		case m[2] == "/transitions" && r.Method == http.MethodPost:
			op = OpJiraTransition
		default:
			jiraError(w, http.StatusMethodNotAllowed, "Method not allowed")
			return
		}
	}
	if !j.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="protected-area"`)
		jiraError(w, http.StatusUnauthorized, "Client must be authenticated to access this resource.")
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost {
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || json.Unmarshal(data, &body) != nil {
			jiraError(w, http.StatusBadRequest, "Unexpected character in the request body")
			return
		}
	}
	if j.inject(w, r, op, func(w http.ResponseWriter) { j.handle(w, op, key, body) }, jiraFail) {
		return
	}
	j.handle(w, op, key, body)
}

var (
	jqlProject = regexp.MustCompile(`project\s*=\s*"?([A-Za-z0-9_]+)"?`)
	jqlLabel   = regexp.MustCompile(`labels\s*=\s*"?([^"\s)]+)"?`)
)

func (j *Jira) handle(w http.ResponseWriter, op Op, key string, body map[string]any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now().UTC()
	var is *JiraIssue
	if key != "" {
		if is = j.find(key); is == nil {
			jiraError(w, http.StatusNotFound, "Issue does not exist or you do not have permission to see it.")
			return
		}
	}
	switch op {
	case OpJiraSearch:
		jql, _ := body["jql"].(string)
		var project, label string
		if m := jqlProject.FindStringSubmatch(jql); m != nil {
			project = m[1]
		}
		if m := jqlLabel.FindStringSubmatch(jql); m != nil {
			label = m[1]
		}
		max := 50
		if n, ok := body["maxResults"].(float64); ok && n > 0 {
			max = int(n)
		}
		out := []any{}
		for _, is := range j.issues {
			if now.Sub(is.Created) < j.searchLag {
				continue // not indexed yet
			}
			if (project != "" && is.Project != project) || (label != "" && !slices.Contains(is.Labels, label)) {
				continue
			}
			if len(out) < max {
				out = append(out, j.render(is))
			}
		}
		writeJira(w, http.StatusOK, map[string]any{"issues": out, "isLast": true})
	case OpJiraCreate:
		fields, _ := body["fields"].(map[string]any)
		project, _ := fields["project"].(map[string]any)
		pkey, _ := project["key"].(string)
		summary, _ := fields["summary"].(string)
		if pkey == "" || strings.TrimSpace(summary) == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"errorMessages": []string{}, "errors": map[string]string{"summary": "You must specify a summary of the issue."}})
			return
		}
		if d, _ := fields["description"].(map[string]any); d != nil && d["type"] != "doc" {
			jiraError(w, http.StatusBadRequest, "Operation value must be an Atlassian Document.")
			return
		}
		typ := "Task"
		if it, ok := fields["issuetype"].(map[string]any); ok {
			if n, ok := it["name"].(string); ok && n != "" {
				typ = n
			}
		}
		// Jira Cloud's ErrorCollection, one message per field at fault.
		refused := map[string]string{}
		if j.types != nil && !slices.Contains(j.types, typ) {
			refused["issuetype"] = "Specify a valid issue type"
		}
		for id, msg := range j.required {
			if v, ok := fields[id]; !ok || v == nil || v == "" {
				refused[id] = msg
			}
		}
		if len(refused) > 0 {
			writeJira(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{}, "errors": refused})
			return
		}
		extra := map[string]any{}
		for k, v := range fields {
			if !jiraOwnFields[k] {
				extra[k] = v
			}
		}
		is := &JiraIssue{Key: fmt.Sprintf("%s-%d", pkey, len(j.issues)+1), Project: pkey, Type: typ, Summary: summary,
			Description: fields["description"], Labels: stringList(fields["labels"]), Status: "To Do", Created: now, StatusChanged: now,
			Fields: extra}
		j.issues = append(j.issues, is)
		writeJira(w, http.StatusCreated, map[string]any{"id": fmt.Sprint(10000 + len(j.issues)), "key": is.Key,
			"self": j.srv.URL + "/rest/api/3/issue/" + is.Key})
	case OpJiraGet:
		writeJira(w, http.StatusOK, j.render(is))
	case OpJiraComment:
		if body["body"] == nil {
			jiraError(w, http.StatusBadRequest, "Comment body can not be empty!")
			return
		}
		if d, _ := body["body"].(map[string]any); d["type"] != "doc" {
			jiraError(w, http.StatusBadRequest, "Comment body must be an Atlassian Document.")
			return
		}
		is.Comments = append(is.Comments, ADFText(body["body"]))
		writeJira(w, http.StatusCreated, map[string]any{"id": fmt.Sprint(len(is.Comments)), "created": now.Format("2006-01-02T15:04:05.000-0700")})
	case OpJiraTransitions:
		writeJira(w, http.StatusOK, map[string]any{"transitions": j.transitions(is)})
	case OpJiraTransition:
		t, _ := body["transition"].(map[string]any)
		id, _ := t["id"].(string)
		for _, tr := range j.transitions(is) {
			if tr["id"] == id {
				j.setStatusLocked(is, tr["to"].(map[string]any)["name"].(string))
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		jiraError(w, http.StatusBadRequest, "Transition id '"+id+"' is not valid for this issue.")
	}
}

// transitions are the workflow's moves out of the issue's status.
func (j *Jira) transitions(is *JiraIssue) []map[string]any {
	var to []string
	switch is.Status {
	case "To Do":
		to = []string{"In Progress", "Done"}
	case "In Progress":
		to = []string{"To Do", "Done"}
	case "Done":
		if !j.noReopen {
			to = []string{"To Do"}
		}
	}
	out := []map[string]any{}
	ids := map[string]string{"To Do": "11", "In Progress": "21", "Done": "31"}
	for _, name := range to {
		st := jiraStatuses[name]
		out = append(out, map[string]any{"id": ids[name], "name": name,
			"to": map[string]any{"id": st.id, "name": name, "statusCategory": map[string]any{"key": st.category}}})
	}
	return out
}

func (j *Jira) render(is *JiraIssue) map[string]any {
	st := jiraStatuses[is.Status]
	fields := map[string]any{
		"summary": is.Summary, "labels": is.Labels,
		"status":                   map[string]any{"id": st.id, "name": is.Status, "statusCategory": map[string]any{"key": st.category}},
		"assignee":                 nil,
		"created":                  is.Created.Format("2006-01-02T15:04:05.000-0700"),
		"statuscategorychangedate": is.StatusChanged.Format("2006-01-02T15:04:05.000-0700"),
		"resolutiondate":           nil,
		"resolution":               nil,
	}
	if is.Resolution != "" {
		fields["resolution"] = map[string]any{"name": is.Resolution}
	}
	if is.Assignee != "" {
		fields["assignee"] = map[string]any{"accountId": "acc-" + is.Assignee, "emailAddress": is.Assignee, "displayName": is.Assignee}
	}
	if is.Resolved != nil {
		fields["resolutiondate"] = is.Resolved.Format("2006-01-02T15:04:05.000-0700")
	}
	return map[string]any{"id": strings.TrimPrefix(is.Key, is.Project+"-"), "key": is.Key,
		"self": j.srv.URL + "/rest/api/3/issue/" + is.Key, "fields": fields}
}

func writeJira(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ADFText is the text of an Atlassian Document Format document (descriptions,
// comments): the text of its nodes, in order.
func ADFText(v any) string {
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
