package tracker

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

// JiraConfig configures the Jira Cloud tracker (REST API v3, basic auth with an
// Atlassian account email and API token).
type JiraConfig struct {
	BaseURL   string // https://your-site.atlassian.net
	Email     string
	APIToken  string
	Project   string // project key, e.g. SEC
	IssueType string // default Task
	Labels    []string
	// Client is the HTTP client; nil, or one without a Timeout, gets Timeout.
	Client *http.Client
	// Timeout bounds one HTTP call (default DefaultTimeout).
	Timeout time.Duration
	// SearchLag is how long Jira's search index may take to show a new issue (default
	// DefaultJiraSearchLag): after a create whose outcome is unknown, Open waits that
	// long before it searches again, and the remediator waits that long after an
	// interrupted open.
	SearchLag time.Duration
	Retry     Retry
	OwnerTag  string // account tag holding the owner's email: the issue's assignee (assignee.go)
}

// DefaultJiraSearchLag is how long a new Jira Cloud issue may stay invisible to JQL
// search (the index is updated asynchronously, usually within a few seconds).
const DefaultJiraSearchLag = 10 * time.Second

// Jira opens and follows case tickets in Jira Cloud.
type Jira struct {
	cfg  JiraConfig
	http *restClient

	mu sync.Mutex
	// recent are the issues this process created within SearchLag, by case id: the
	// search may not show them yet.
	recent map[string]recentIssue
}

type recentIssue struct {
	ref model.TicketRef
	at  time.Time
}

var _ model.Tracker = (*Jira)(nil)

// NewJira builds the Jira tracker.
func NewJira(cfg JiraConfig, log *slog.Logger) (*Jira, error) {
	var missing []string
	for name, v := range map[string]string{"base URL": cfg.BaseURL, "email": cfg.Email, "API token": cfg.APIToken, "project": cfg.Project} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("jira tracker: missing %s", strings.Join(missing, ", "))
	}
	base, err := baseURL("jira", cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.IssueType == "" {
		cfg.IssueType = "Task"
	}
	cfg.Client = withTimeout(cfg.Client, cfg.Timeout)
	if cfg.SearchLag <= 0 {
		cfg.SearchLag = DefaultJiraSearchLag
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(cfg.Email + ":" + cfg.APIToken))
	return &Jira{cfg: cfg, recent: map[string]recentIssue{}, http: &restClient{
		system: "jira", base: base, client: cfg.Client, log: log, retry: cfg.Retry.withDefaults(),
		auth:    func(r *http.Request) { r.Header.Set("Authorization", "Basic "+basic) },
		secrets: []string{cfg.APIToken, basic},
	}}, nil
}

type jiraIssue struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Fields struct {
		Status struct {
			Name           string `json:"name"`
			StatusCategory struct {
				Key string `json:"key"`
			} `json:"statusCategory"`
		} `json:"status"`
		// StatusCategoryChangeDate is when the issue last moved between status
		// categories (into done, for a done issue); ResolutionDate when it was resolved.
		StatusCategoryChangeDate string `json:"statuscategorychangedate"`
		ResolutionDate           string `json:"resolutiondate"`
		Assignee                 *struct {
			AccountID    string `json:"accountId"`
			DisplayName  string `json:"displayName"`
			EmailAddress string `json:"emailAddress"`
		} `json:"assignee"`
	} `json:"fields"`
}

func (j *Jira) ref(key string) model.TicketRef {
	return model.TicketRef{System: "jira", ID: key, URL: j.http.base + "/browse/" + key}
}

// SearchLag is how long a new issue may stay invisible to Open's search.
func (j *Jira) SearchLag() time.Duration { return j.cfg.SearchLag }

// Open finds the case's issue by its label, or creates it. A create is never repeated
// without searching again first, after the search index had time to catch up
// (SearchLag). When the search finds more than one issue of the case, the oldest is
// the case's and the others are closed as duplicates.
func (j *Jira) Open(ctx context.Context, c model.Case, slackLink string) (model.TicketRef, error) {
	label := Label(c.ID)
	if ref, ok := j.recentlyCreated(c.ID); ok {
		return ref, nil
	}
	find := func(ctx context.Context) (model.TicketRef, bool, error) {
		var found struct {
			Issues []jiraIssue `json:"issues"`
		}
		jql := fmt.Sprintf("project = %q AND labels = %q ORDER BY created ASC", j.cfg.Project, label)
		if err := j.http.do(ctx, http.MethodPost, "/rest/api/3/search/jql", map[string]any{
			"jql": jql, "fields": []string{"status", "assignee"}, "maxResults": 10}, &found); err != nil {
			return model.TicketRef{}, false, fmt.Errorf("find jira issue for case %s: %w", c.ID, err)
		}
		if len(found.Issues) == 0 {
			return model.TicketRef{}, false, nil
		}
		first := found.Issues[0].Key
		for _, dup := range found.Issues[1:] {
			if dup.Fields.Status.StatusCategory.Key == "done" {
				continue
			}
			if err := j.Close(ctx, j.ref(dup.Key), fmt.Sprintf("Duplicate of %s (rootwarden opened the ticket of case %s twice); closing this one.",
				first, c.ID)); err != nil {
				j.http.log.Warn("close duplicate jira issue", "case", c.ID, "ticket", dup.Key, "err", err)
			}
		}
		return j.ref(first), true, nil
	}
	var assignee *string // looked up once, before the first create
	create := func(ctx context.Context) (model.TicketRef, error) {
		labels := append([]string{label, "rootwarden"}, j.cfg.Labels...)
		var created jiraIssue
		fields := map[string]any{
			"project":     map[string]string{"key": j.cfg.Project},
			"issuetype":   map[string]string{"name": j.cfg.IssueType},
			"summary":     Title(c),
			"labels":      labels,
			"description": adf(description(c, slackLink)),
		}
		if assignee == nil {
			id := j.jiraAssignee(ctx, c)
			assignee = &id
		}
		if *assignee != "" {
			fields["assignee"] = map[string]string{"accountId": *assignee}
		}
		if err := j.http.once(ctx, http.MethodPost, "/rest/api/3/issue", map[string]any{"fields": fields}, &created); err != nil {
			return model.TicketRef{}, fmt.Errorf("create jira issue for case %s: %w", c.ID, err)
		}
		if created.Key == "" {
			return model.TicketRef{}, model.Errorf(model.CodeInternal, "create jira issue for case %s: answer has no key", c.ID)
		}
		ref := j.ref(created.Key)
		j.mu.Lock()
		j.recent[c.ID] = recentIssue{ref: ref, at: time.Now()}
		j.mu.Unlock()
		return ref, nil
	}
	return j.http.findOrCreate(ctx, "create jira issue for case "+c.ID, j.cfg.SearchLag, find, create)
}

// recentlyCreated is the issue this process created for the case within SearchLag.
func (j *Jira) recentlyCreated(caseID string) (model.TicketRef, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for id, r := range j.recent {
		if time.Since(r.at) > j.cfg.SearchLag {
			delete(j.recent, id)
		}
	}
	r, ok := j.recent[caseID]
	return r.ref, ok
}

func issuePath(key string) string { return "/rest/api/3/issue/" + url.PathEscape(key) }

// Comment adds a comment.
func (j *Jira) Comment(ctx context.Context, ref model.TicketRef, text string) error {
	if err := j.http.do(ctx, http.MethodPost, issuePath(ref.ID)+"/comment", map[string]any{"body": adfPlain(text)}, nil); err != nil {
		return fmt.Errorf("comment on jira issue %s: %w", ref.ID, err)
	}
	return nil
}

// Status reads the issue's status and assignee; done is the "done" status category.
func (j *Jira) Status(ctx context.Context, ref model.TicketRef) (model.TicketStatus, error) {
	var is jiraIssue
	if err := j.http.do(ctx, http.MethodGet, issuePath(ref.ID)+"?fields=status,assignee,statuscategorychangedate,resolutiondate", nil, &is); err != nil {
		return model.TicketStatus{}, fmt.Errorf("read jira issue %s: %w", ref.ID, err)
	}
	st := model.TicketStatus{Done: is.Fields.Status.StatusCategory.Key == "done", State: is.Fields.Status.Name}
	if st.Done {
		st.ClosedAt = firstNonEmpty(is.Fields.StatusCategoryChangeDate, is.Fields.ResolutionDate)
	}
	if a := is.Fields.Assignee; a != nil {
		st.Assignee = firstNonEmpty(a.EmailAddress, a.DisplayName, a.AccountID)
	}
	return st, nil
}

type jiraTransition struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	To   struct {
		Name           string `json:"name"`
		StatusCategory struct {
			Key string `json:"key"`
		} `json:"statusCategory"`
	} `json:"to"`
}

func (j *Jira) transition(ctx context.Context, key string, pick func([]jiraTransition) *jiraTransition) error {
	var ts struct {
		Transitions []jiraTransition `json:"transitions"`
	}
	if err := j.http.do(ctx, http.MethodGet, issuePath(key)+"/transitions", nil, &ts); err != nil {
		return err
	}
	t := pick(ts.Transitions)
	if t == nil {
		return model.Errorf(model.CodeInvalid, "jira issue %s: no suitable transition among %d", key, len(ts.Transitions))
	}
	return j.http.do(ctx, http.MethodPost, issuePath(key)+"/transitions", map[string]any{"transition": map[string]string{"id": t.ID}}, nil)
}

// Close comments with the resolution and moves the issue to a done status.
func (j *Jira) Close(ctx context.Context, ref model.TicketRef, resolution string) error {
	if resolution != "" {
		if err := j.Comment(ctx, ref, resolution); err != nil {
			return err
		}
	}
	st, err := j.Status(ctx, ref)
	if err != nil {
		return err
	}
	if st.Done {
		return nil
	}
	err = j.transition(ctx, ref.ID, func(ts []jiraTransition) *jiraTransition {
		for i := range ts {
			if ts[i].To.StatusCategory.Key == "done" {
				return &ts[i]
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("close jira issue %s: %w", ref.ID, err)
	}
	return nil
}

// Reopen comments and moves the issue back to a not-done status (to-do first).
func (j *Jira) Reopen(ctx context.Context, ref model.TicketRef, text string) error {
	if text != "" {
		if err := j.Comment(ctx, ref, text); err != nil {
			return err
		}
	}
	err := j.transition(ctx, ref.ID, func(ts []jiraTransition) *jiraTransition {
		var other *jiraTransition
		for i := range ts {
			switch ts[i].To.StatusCategory.Key {
			case "new":
				return &ts[i]
			case "done":
			default:
				if other == nil {
					other = &ts[i]
				}
			}
		}
		return other
	})
	if err != nil {
		return fmt.Errorf("reopen jira issue %s: %w", ref.ID, err)
	}
	return nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
