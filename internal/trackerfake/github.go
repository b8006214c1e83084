// Package trackerfake holds importable fakes of the ticket systems rootwarden talks to,
// for whole-binary tests (chaos, soak) and demos. Each speaks the real REST wire
// format of its system on a loopback httptest server, keeps its tickets in memory, and
// misbehaves on demand the way the real service does: an answer lost after the call
// took effect (the connection is closed without a response), 5xx before or after the
// call took effect, a hang, rate limits, GitHub's archived (read-only) repository,
// Jira's search-index lag and workflows where Done is final. Faults are injected for the
// next n calls of an operation (FailNext, Fail), for a seeded share of calls
// (FailShare) or by a function of the call (FailFunc), and counted per kind; every
// request is recorded (Requests, Count). It is the one fake of both systems, for the
// tracker's contract tests as for whole-binary tests. It holds no real tokens.
package trackerfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Issue is an issue as the fake holds it.
type Issue struct {
	Number      int
	Title       string
	Body        string
	Labels      []string
	State       string // open or closed
	StateReason string // completed, not_planned, reopened or ""
	Assignee    string
	Comments    []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ClosedAt    *time.Time
}

// GitHub is a fake GitHub Issues API for one repository. Create it with NewGitHub,
// then Start it. All methods are safe for concurrent use.
type GitHub struct {
	owner, repo, token string

	*injector
	mu       sync.Mutex
	srv      *httptest.Server
	issues   []*Issue
	archived bool
	now      func() time.Time
}

// GitHubOption configures the fake.
type GitHubOption func(*GitHub)

// WithToken makes every call require "Authorization: Bearer <token>" (or "token
// <token>"); otherwise any non-empty token is accepted.
func WithToken(token string) GitHubOption { return func(g *GitHub) { g.token = token } }

// WithSeed seeds the random source of FailShare, so a run can be repeated.
func WithSeed(seed uint64) GitHubOption { return func(g *GitHub) { g.seed(seed) } }

// WithClock sets the clock for created/updated/closed times (default time.Now).
func WithClock(now func() time.Time) GitHubOption { return func(g *GitHub) { g.now = now } }

// NewGitHub returns a stopped fake serving the repository owner/repo.
func NewGitHub(owner, repo string, opts ...GitHubOption) *GitHub {
	g := &GitHub{owner: owner, repo: repo, injector: newInjector(), now: time.Now}
	for _, o := range opts {
		o(g)
	}
	return g
}

// Start serves on a loopback port and returns the API base URL, the value for
// ROOTWARDEN_GITHUB_API_URL (GitHub Enterprise style: no /api/v3 suffix needed).
func (g *GitHub) Start() string {
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	return g.srv.URL
}

// URL is the base URL of a started fake.
func (g *GitHub) URL() string { return g.srv.URL }

// Close ends hanging requests and stops the server.
func (g *GitHub) Close() {
	g.closeHangs()
	if g.srv != nil {
		g.srv.CloseClientConnections()
		g.srv.Close()
	}
}

// SetArchived makes the repository read-only, as GitHub does for an archived one:
// every write answers 403 "Repository was archived so is read-only."
func (g *GitHub) SetArchived(archived bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.archived = archived
}

// Issues returns copies of every issue, by number.
func (g *GitHub) Issues() []Issue {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Issue, 0, len(g.issues))
	for _, is := range g.issues {
		out = append(out, copyIssue(is))
	}
	return out
}

// Issue returns one issue by number.
func (g *GitHub) Issue(n int) (Issue, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n < 1 || n > len(g.issues) {
		return Issue{}, false
	}
	return copyIssue(g.issues[n-1]), true
}

// IssuesWithLabel returns the issues carrying label, by number.
func (g *GitHub) IssuesWithLabel(label string) []Issue {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Issue
	for _, is := range g.issues {
		if slices.Contains(is.Labels, label) {
			out = append(out, copyIssue(is))
		}
	}
	return out
}

// CountByLabel counts issues per label, for labels starting with prefix ("" for all):
// a label with a count above 1 is a duplicate ticket when the label names a case.
func (g *GitHub) CountByLabel(prefix string) map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for _, is := range g.issues {
		for _, l := range is.Labels {
			if strings.HasPrefix(l, prefix) {
				out[l]++
			}
		}
	}
	return out
}

// CloseIssue closes issue n as a person would (state_reason completed, optional assignee).
func (g *GitHub) CloseIssue(n int, by string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n < 1 || n > len(g.issues) {
		return false
	}
	is := g.issues[n-1]
	now := g.now().UTC()
	is.State, is.StateReason, is.UpdatedAt, is.ClosedAt = "closed", "completed", now, &now
	if by != "" {
		is.Assignee = by
	}
	return true
}

func copyIssue(is *Issue) Issue {
	out := *is
	out.Labels = slices.Clone(is.Labels)
	out.Comments = slices.Clone(is.Comments)
	return out
}

// ---- wire ----

func (g *GitHub) serve(w http.ResponseWriter, r *http.Request) {
	g.record(r)
	op, number, ok := g.route(r)
	if !ok {
		ghError(w, http.StatusNotFound, "Not Found")
		return
	}
	if !g.authorized(r) {
		ghError(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost || r.Method == http.MethodPatch {
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || json.Unmarshal(data, &body) != nil {
			ghError(w, http.StatusBadRequest, "Problems parsing JSON")
			return
		}
	}

	if g.inject(w, r, op, func(w http.ResponseWriter) { g.handle(w, r, op, number, body) }, ghError) {
		return
	}
	g.handle(w, r, op, number, body)
}

func (g *GitHub) route(r *http.Request) (op Op, number int, ok bool) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	p = strings.TrimPrefix(p, "/api/v3") // GitHub Enterprise base URLs
	if p == "/search/issues" && r.Method == http.MethodGet {
		return OpSearch, 0, true
	}
	base := "/repos/" + g.owner + "/" + g.repo + "/issues"
	if p == base {
		switch r.Method {
		case http.MethodGet:
			return OpList, 0, true
		case http.MethodPost:
			return OpCreate, 0, true
		}
		return "", 0, false
	}
	rest, found := strings.CutPrefix(p, base+"/")
	if !found {
		return "", 0, false
	}
	parts := strings.Split(rest, "/")
	n, err := strconv.Atoi(parts[0])
	if err != nil || n < 1 {
		return "", 0, false
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		return OpGet, n, true
	case len(parts) == 1 && r.Method == http.MethodPatch:
		return OpUpdate, n, true
	case len(parts) == 2 && parts[1] == "comments" && r.Method == http.MethodPost:
		return OpComment, n, true
	case len(parts) == 2 && parts[1] == "comments" && r.Method == http.MethodGet:
		return OpComments, n, true
	case len(parts) == 2 && parts[1] == "labels" && r.Method == http.MethodPost:
		return OpLabels, n, true
	}
	return "", 0, false
}

func (g *GitHub) authorized(r *http.Request) bool {
	a := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(a, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(a, "token ")
	}
	if !ok || tok == "" {
		return false
	}
	return g.token == "" || tok == g.token
}

func (g *GitHub) handle(w http.ResponseWriter, r *http.Request, op Op, number int, body map[string]any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	write := op == OpCreate || op == OpUpdate || op == OpComment || op == OpLabels
	if write && g.archived {
		ghError(w, http.StatusForbidden, "Repository was archived so is read-only.")
		return
	}
	var is *Issue
	if number > 0 {
		if number > len(g.issues) {
			ghError(w, http.StatusNotFound, "Not Found")
			return
		}
		is = g.issues[number-1]
	}
	now := g.now().UTC()
	switch op {
	case OpCreate:
		title, _ := body["title"].(string)
		if strings.TrimSpace(title) == "" {
			ghValidation(w, "title", "missing_field")
			return
		}
		text, _ := body["body"].(string)
		is = &Issue{Number: len(g.issues) + 1, Title: title, Body: text, State: "open", CreatedAt: now, UpdatedAt: now,
			Labels: stringList(body["labels"])}
		if as := stringList(body["assignees"]); len(as) > 0 {
			is.Assignee = as[0]
		}
		g.issues = append(g.issues, is)
		g.writeJSON(w, http.StatusCreated, g.render(is))
	case OpList:
		q := r.URL.Query()
		state := q.Get("state")
		if state == "" {
			state = "open"
		}
		var want []string
		if l := q.Get("labels"); l != "" {
			want = strings.Split(l, ",")
		}
		var sel []*Issue
		for _, is := range g.issues {
			if (state != "all" && is.State != state) || !hasAll(is.Labels, want) {
				continue
			}
			sel = append(sel, is)
		}
		if q.Get("direction") != "asc" { // GitHub's default: newest first
			slices.Reverse(sel)
		}
		g.writeJSON(w, http.StatusOK, g.page(w, r, sel))
	case OpSearch:
		sel := g.search(r.URL.Query().Get("q"))
		items := g.page(w, r, sel)
		g.writeJSON(w, http.StatusOK, map[string]any{"total_count": len(sel), "incomplete_results": false, "items": items})
	case OpGet:
		g.writeJSON(w, http.StatusOK, g.render(is))
	case OpUpdate:
		if s, ok := body["state"].(string); ok {
			switch s {
			case "open":
				is.State, is.ClosedAt = "open", nil
				is.StateReason = "reopened"
			case "closed":
				if is.State != "closed" {
					is.ClosedAt = &now
				}
				is.State, is.StateReason = "closed", "completed"
			default:
				ghValidation(w, "state", "invalid")
				return
			}
		}
		if reason, ok := body["state_reason"].(string); ok && reason != "" {
			is.StateReason = reason
		}
		if t, ok := body["title"].(string); ok {
			is.Title = t
		}
		if b, ok := body["body"].(string); ok {
			is.Body = b
		}
		if _, ok := body["labels"]; ok {
			is.Labels = stringList(body["labels"])
		}
		is.UpdatedAt = now
		g.writeJSON(w, http.StatusOK, g.render(is))
	case OpComment:
		text, _ := body["body"].(string)
		if text == "" {
			ghValidation(w, "body", "missing_field")
			return
		}
		is.Comments = append(is.Comments, text)
		is.UpdatedAt = now
		id := number*1000 + len(is.Comments)
		g.writeJSON(w, http.StatusCreated, map[string]any{"id": id, "body": text,
			"html_url": fmt.Sprintf("%s#issuecomment-%d", g.htmlURL(is), id), "created_at": now.Format(time.RFC3339)})
	case OpComments:
		out := []map[string]any{}
		for i, c := range is.Comments {
			out = append(out, map[string]any{"id": number*1000 + i + 1, "body": c})
		}
		g.writeJSON(w, http.StatusOK, out)
	case OpLabels:
		for _, l := range stringList(body["labels"]) {
			if !slices.Contains(is.Labels, l) {
				is.Labels = append(is.Labels, l)
			}
		}
		out := []map[string]any{}
		for _, l := range is.Labels {
			out = append(out, map[string]any{"name": l})
		}
		g.writeJSON(w, http.StatusOK, out)
	}
}

// search understands the qualifiers rootwarden uses: repo:, label:, is:issue,
// is:open/closed, state:, and ignores free text. Callers hold g.mu.
func (g *GitHub) search(q string) []*Issue {
	var labels []string
	state := ""
	for _, f := range strings.Fields(q) {
		k, v, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch k {
		case "repo":
			if v != g.owner+"/"+g.repo {
				return nil
			}
		case "label":
			labels = append(labels, v)
		case "is", "state":
			if v == "open" || v == "closed" {
				state = v
			}
		}
	}
	var sel []*Issue
	for _, is := range g.issues {
		if (state == "" || is.State == state) && hasAll(is.Labels, labels) {
			sel = append(sel, is)
		}
	}
	return sel
}

// page applies per_page and page and sets the Link header. Callers hold g.mu.
func (g *GitHub) page(w http.ResponseWriter, r *http.Request, sel []*Issue) []map[string]any {
	q := r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 || per > 100 {
		per = 30
	}
	pg, _ := strconv.Atoi(q.Get("page"))
	if pg <= 0 {
		pg = 1
	}
	start := min((pg-1)*per, len(sel))
	end := min(start+per, len(sel))
	if end < len(sel) {
		u := *r.URL
		v := u.Query()
		v.Set("page", strconv.Itoa(pg+1))
		u.RawQuery = v.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, g.srv.URL, u.RequestURI()))
	}
	out := make([]map[string]any, 0, end-start)
	for _, is := range sel[start:end] {
		out = append(out, g.render(is))
	}
	return out
}

func (g *GitHub) htmlURL(is *Issue) string {
	return fmt.Sprintf("https://github.example/%s/%s/issues/%d", g.owner, g.repo, is.Number)
}

func (g *GitHub) render(is *Issue) map[string]any {
	labels := []map[string]any{}
	for _, l := range is.Labels {
		labels = append(labels, map[string]any{"name": l})
	}
	m := map[string]any{
		"id": 100000 + is.Number, "number": is.Number, "title": is.Title, "body": is.Body,
		"html_url": g.htmlURL(is), "url": fmt.Sprintf("%s/repos/%s/%s/issues/%d", g.srvURL(), g.owner, g.repo, is.Number),
		"state": is.State, "state_reason": nil, "labels": labels, "assignee": nil, "assignees": []any{},
		"comments": len(is.Comments), "created_at": is.CreatedAt.Format(time.RFC3339),
		"updated_at": is.UpdatedAt.Format(time.RFC3339), "closed_at": nil,
	}
	if is.StateReason != "" {
		m["state_reason"] = is.StateReason
	}
	if is.ClosedAt != nil {
		m["closed_at"] = is.ClosedAt.Format(time.RFC3339)
	}
	if is.Assignee != "" {
		a := map[string]any{"login": is.Assignee}
		m["assignee"], m["assignees"] = a, []any{a}
	}
	return m
}

func (g *GitHub) srvURL() string {
	if g.srv == nil {
		return ""
	}
	return g.srv.URL
}

func (g *GitHub) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ghError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"message": msg,
		"documentation_url": "https://docs.github.com/rest", "status": strconv.Itoa(status)})
}

func ghValidation(w http.ResponseWriter, field, code string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusUnprocessableEntity)
	_ = json.NewEncoder(w).Encode(map[string]any{"message": "Validation Failed",
		"errors": []any{map[string]any{"resource": "Issue", "field": field, "code": code}}})
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		switch x := e.(type) {
		case string:
			out = append(out, x)
		case map[string]any: // {"name": "..."}
			if n, ok := x["name"].(string); ok {
				out = append(out, n)
			}
		}
	}
	return out
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		if w = strings.TrimSpace(w); w != "" && !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
