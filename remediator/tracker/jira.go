package tracker

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
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
	Client    *http.Client
	Retry     Retry
	OwnerTag  string // account tag holding the owner's email: the issue's assignee (assignee.go)
}

// Jira opens and follows case tickets in Jira Cloud.
type Jira struct {
	cfg  JiraConfig
	http *restClient
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
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(cfg.Email + ":" + cfg.APIToken))
	return &Jira{cfg: cfg, http: &restClient{
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
		Assignee *struct {
			AccountID    string `json:"accountId"`
			DisplayName  string `json:"displayName"`
			EmailAddress string `json:"emailAddress"`
		} `json:"assignee"`
	} `json:"fields"`
}

func (j *Jira) ref(key string) model.TicketRef {
	return model.TicketRef{System: "jira", ID: key, URL: j.http.base + "/browse/" + key}
}

// Open finds the case's issue by its label, or creates it.
func (j *Jira) Open(ctx context.Context, c model.Case, slackLink string) (model.TicketRef, error) {
	label := Label(c.ID)
	var found struct {
		Issues []jiraIssue `json:"issues"`
	}
	jql := fmt.Sprintf("project = %q AND labels = %q ORDER BY created ASC", j.cfg.Project, label)
	if err := j.http.do(ctx, http.MethodPost, "/rest/api/3/search/jql", map[string]any{
		"jql": jql, "fields": []string{"status", "assignee"}, "maxResults": 1}, &found); err != nil {
		return model.TicketRef{}, fmt.Errorf("find jira issue for case %s: %w", c.ID, err)
	}
	if len(found.Issues) > 0 {
		return j.ref(found.Issues[0].Key), nil
	}
	labels := append([]string{label, "rootwarden"}, j.cfg.Labels...)
	var created jiraIssue
	fields := map[string]any{
		"project":     map[string]string{"key": j.cfg.Project},
		"issuetype":   map[string]string{"name": j.cfg.IssueType},
		"summary":     Title(c),
		"labels":      labels,
		"description": adf(description(c, slackLink)),
	}
	if id := j.jiraAssignee(ctx, c); id != "" {
		fields["assignee"] = map[string]string{"accountId": id}
	}
	if err := j.http.do(ctx, http.MethodPost, "/rest/api/3/issue", map[string]any{"fields": fields}, &created); err != nil {
		return model.TicketRef{}, fmt.Errorf("create jira issue for case %s: %w", c.ID, err)
	}
	if created.Key == "" {
		return model.TicketRef{}, model.Errorf(model.CodeInternal, "create jira issue for case %s: answer has no key", c.ID)
	}
	return j.ref(created.Key), nil
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
	if err := j.http.do(ctx, http.MethodGet, issuePath(ref.ID)+"?fields=status,assignee", nil, &is); err != nil {
		return model.TicketStatus{}, fmt.Errorf("read jira issue %s: %w", ref.ID, err)
	}
	st := model.TicketStatus{Done: is.Fields.Status.StatusCategory.Key == "done", State: is.Fields.Status.Name}
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
