package trackerfake

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// GitHubIssue is an issue of the GitHub fake.
type GitHubIssue struct {
	Number      int
	Title, Body string
	Labels      []string
	State       string // open | closed
	StateReason string
	Assignee    string
	Comments    []string
	ClosedAt    string // RFC 3339, set while closed
}

// GitHub speaks the part of the GitHub REST API (Issues) rootwarden uses, for any
// owner/repo: list by label, create, read, update state, comment.
type GitHub struct {
	Server
	issues []*GitHubIssue
	// Archived makes every write answer 403 "Repository was archived so is read-only."
	Archived bool
}

var ghIssuesPath = regexp.MustCompile(`^/repos/[^/]+/[^/]+/issues(/.*)?$`)

// NewGitHub starts a GitHub fake; wrap (optional) wraps its handler.
func NewGitHub(wrap ...func(http.Handler) http.Handler) *GitHub {
	f := &GitHub{}
	f.start(f.handle, wrap...)
	return f
}

func (f *GitHub) render(is *GitHubIssue) map[string]any {
	m := map[string]any{"number": is.Number, "html_url": fmt.Sprintf("https://github.example/acme/security/issues/%d", is.Number),
		"state": is.State, "state_reason": is.StateReason, "assignee": nil, "closed_at": nil}
	if is.ClosedAt != "" {
		m["closed_at"] = is.ClosedAt
	}
	if is.Assignee != "" {
		m["assignee"] = map[string]any{"login": is.Assignee}
	}
	return m
}

func (f *GitHub) handle(w http.ResponseWriter, r *http.Request, body map[string]any) {
	if r.Header.Get("X-GitHub-Api-Version") == "" || !strings.Contains(r.Header.Get("Accept"), "github") {
		writeJSON(w, 400, map[string]any{"message": "missing GitHub headers"})
		return
	}
	m := ghIssuesPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		writeJSON(w, 404, map[string]any{"message": "Not Found"})
		return
	}
	if f.Archived && r.Method != http.MethodGet {
		writeJSON(w, 403, map[string]any{"message": "Repository was archived so is read-only."})
		return
	}
	rest := strings.Split(strings.TrimPrefix(m[1], "/"), "/")
	switch {
	case m[1] == "" && r.Method == http.MethodGet:
		q, _ := url.ParseQuery(r.URL.RawQuery)
		out := []any{}
		for _, is := range f.issues {
			if q.Get("state") != "all" && is.State != "open" {
				continue
			}
			if contains(is.Labels, q.Get("labels")) {
				out = append(out, f.render(is))
			}
		}
		writeJSON(w, 200, out)
	case m[1] == "" && r.Method == http.MethodPost:
		title, _ := body["title"].(string)
		text, _ := body["body"].(string)
		is := &GitHubIssue{Number: len(f.issues) + 1, Title: title, Body: text, State: "open"}
		labels, _ := body["labels"].([]any)
		for _, l := range labels {
			s, _ := l.(string)
			is.Labels = append(is.Labels, s)
		}
		if as, _ := body["assignees"].([]any); len(as) > 0 {
			is.Assignee, _ = as[0].(string)
		}
		f.issues = append(f.issues, is)
		writeJSON(w, 201, f.render(is))
	default:
		n, _ := strconv.Atoi(rest[0])
		if n < 1 || n > len(f.issues) {
			writeJSON(w, 404, map[string]any{"message": "Not Found"})
			return
		}
		is := f.issues[n-1]
		switch {
		case len(rest) == 1 && r.Method == http.MethodGet:
			writeJSON(w, 200, f.render(is))
		case len(rest) == 1 && r.Method == http.MethodPatch:
			is.State, _ = body["state"].(string)
			is.StateReason, _ = body["state_reason"].(string)
			is.ClosedAt = ""
			if is.State == "closed" {
				is.ClosedAt = time.Now().UTC().Format(time.RFC3339Nano)
			}
			writeJSON(w, 200, f.render(is))
		case len(rest) == 2 && rest[1] == "comments" && r.Method == http.MethodPost:
			text, _ := body["body"].(string)
			is.Comments = append(is.Comments, text)
			writeJSON(w, 201, map[string]any{"id": 1})
		default:
			w.WriteHeader(405)
		}
	}
}

// Issues is a copy of every issue, in creation order.
func (f *GitHub) Issues() []GitHubIssue {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	out := make([]GitHubIssue, 0, len(f.issues))
	for _, is := range f.issues {
		c := *is
		c.Labels = append([]string(nil), is.Labels...)
		c.Comments = append([]string(nil), is.Comments...)
		out = append(out, c)
	}
	return out
}

// Issue is a copy of issue number n (false when there is none).
func (f *GitHub) Issue(n int) (GitHubIssue, bool) {
	all := f.Issues()
	if n < 1 || n > len(all) {
		return GitHubIssue{}, false
	}
	return all[n-1], true
}

// CloseIssue closes issue n as its assignee would (completed).
func (f *GitHub) CloseIssue(n int, assignee string) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if n < 1 || n > len(f.issues) {
		return
	}
	is := f.issues[n-1]
	is.State, is.StateReason, is.Assignee = "closed", "completed", assignee
	is.ClosedAt = time.Now().UTC().Format(time.RFC3339Nano)
}
