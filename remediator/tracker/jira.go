package tracker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
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
	// ExtraFields are set on every issue created (ROOTWARDEN_JIRA_EXTRA_FIELDS): field
	// ids to values as REST API v3 takes them; the fields above win over them.
	ExtraFields map[string]any
	// DoneStatuses are the statuses that mean done (ROOTWARDEN_JIRA_DONE_STATUSES);
	// empty: every status of the done category. WontDo are resolutions that close an
	// issue without the work (ROOTWARDEN_JIRA_WONT_DO_RESOLUTIONS): not a claim of
	// deletion. Names compare case-insensitively.
	DoneStatuses []string
	WontDo       []string
	// RefusalHold is how long a create Jira refused for the issue's fields (a required
	// field missing, an unknown issue type) is not tried again: every create would be
	// refused alike until the settings change, which needs a restart (default
	// DefaultJiraRefusalHold).
	RefusalHold time.Duration
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

// DefaultJiraRefusalHold is how long a create refused for its fields is held.
const DefaultJiraRefusalHold = 30 * time.Minute

// Jira opens and follows case tickets in Jira Cloud.
type Jira struct {
	cfg  JiraConfig
	http *restClient

	// refused is the last create Jira refused for the issue's fields, and when:
	// Open returns it without calling Jira for RefusalHold.
	refused   error
	refusedAt time.Time

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
	if cfg.RefusalHold <= 0 {
		cfg.RefusalHold = DefaultJiraRefusalHold
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
		Resolution *struct {
			Name string `json:"name"`
		} `json:"resolution"`
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
	if err := j.heldRefusal(); err != nil {
		return model.TicketRef{}, fmt.Errorf("create jira issue for case %s: %w", c.ID, err)
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
		fields := map[string]any{}
		for k, v := range j.cfg.ExtraFields {
			fields[k] = v
		}
		fields["project"] = map[string]string{"key": j.cfg.Project}
		fields["issuetype"] = map[string]string{"name": j.cfg.IssueType}
		fields["summary"] = Title(c)
		fields["labels"] = labels
		fields["description"] = adf(description(c, slackLink))
		if assignee == nil {
			id := j.jiraAssignee(ctx, c)
			assignee = &id
		}
		if *assignee != "" {
			fields["assignee"] = map[string]string{"accountId": *assignee}
		}
		if err := j.http.once(ctx, http.MethodPost, "/rest/api/3/issue", map[string]any{"fields": fields}, &created); err != nil {
			if ferr := j.fieldRefusal(err); ferr != nil {
				err = ferr
			}
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
	if err := j.http.do(ctx, http.MethodGet, issuePath(ref.ID)+"?fields=status,resolution,assignee,statuscategorychangedate,resolutiondate", nil, &is); err != nil {
		return model.TicketStatus{}, fmt.Errorf("read jira issue %s: %w", ref.ID, err)
	}
	st := model.TicketStatus{Done: j.done(is), State: is.Fields.Status.Name}
	if r := is.Fields.Resolution; r != nil && r.Name != "" && is.Fields.Status.StatusCategory.Key == "done" {
		st.State += " (" + r.Name + ")"
	}
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
	var is jiraIssue
	if err := j.http.do(ctx, http.MethodGet, issuePath(ref.ID)+"?fields=status", nil, &is); err != nil {
		return fmt.Errorf("read jira issue %s: %w", ref.ID, err)
	}
	if is.Fields.Status.StatusCategory.Key == "done" {
		return nil // closed already, however it was (a won't-do closure stays as it is)
	}
	err := j.transition(ctx, ref.ID, func(ts []jiraTransition) *jiraTransition {
		var other *jiraTransition
		for i := range ts {
			if ts[i].To.StatusCategory.Key != "done" {
				continue
			}
			if len(j.cfg.DoneStatuses) == 0 || hasName(j.cfg.DoneStatuses, ts[i].To.Name) {
				return &ts[i]
			}
			if other == nil {
				other = &ts[i]
			}
		}
		return other
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

// done reports whether the issue is done in the sense of the settings: a claim that
// the keys are deleted. Jira's own word is the status category "done"; the settings
// narrow it to some statuses (DoneStatuses) and leave out won't-do resolutions.
func (j *Jira) done(is jiraIssue) bool {
	st := is.Fields.Status
	if st.StatusCategory.Key != "done" {
		return false
	}
	if len(j.cfg.DoneStatuses) > 0 && !hasName(j.cfg.DoneStatuses, st.Name) {
		return false
	}
	if r := is.Fields.Resolution; r != nil && hasName(j.cfg.WontDo, r.Name) {
		return false
	}
	return true
}

func hasName(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(strings.TrimSpace(n), strings.TrimSpace(name)) {
			return true
		}
	}
	return false
}

// heldRefusal is the create refused for its fields within RefusalHold, or nil.
func (j *Jira) heldRefusal() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.refused != nil && time.Since(j.refusedAt) < j.cfg.RefusalHold {
		return j.refused
	}
	j.refused = nil
	return nil
}

// fieldRefusal explains a create Jira refused with 400 and errors by field (Jira's
// ErrorCollection: {"errorMessages": [], "errors": {"customfield_10010": "Team is
// required."}}): each field, Jira's words and the setting that fixes it. It holds the
// refusal (RefusalHold) and returns a final error; nil when err is not such an answer.
func (j *Jira) fieldRefusal(err error) error {
	r, ok := refusalOf(err)
	if !ok || r.status != http.StatusBadRequest {
		return nil
	}
	var body struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	}
	if json.Unmarshal(r.body, &body) != nil || len(body.Errors) == 0 {
		return nil
	}
	ids := make([]string, 0, len(body.Errors))
	for id := range body.Errors {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		msg := strings.TrimSpace(body.Errors[id])
		_, extra := j.cfg.ExtraFields[id]
		var fix string
		switch {
		case id == "issuetype":
			fix = fmt.Sprintf("set ROOTWARDEN_JIRA_ISSUE_TYPE to an issue type of project %s (it is %q)", j.cfg.Project, j.cfg.IssueType)
		case id == "project":
			fix = fmt.Sprintf("check ROOTWARDEN_JIRA_PROJECT (%q, a project key) and that the token's account has Browse projects and Create issues there", j.cfg.Project)
		case id == "assignee":
			fix = "give the token's account the Assign issues permission, or set ROOTWARDEN_OWNER_TAG=- to create issues unassigned"
		case id == "summary" || id == "description" || id == "labels":
			fix = fmt.Sprintf("rootwarden sets this field: add it to the create screen of %s issues in %s; Jira also answers so when the token's account lacks Create issues", j.cfg.IssueType, j.cfg.Project)
		case extra && strings.Contains(msg, "cannot be set"):
			fix = fmt.Sprintf("it is not on the create screen of %s issues in %s: remove it from ROOTWARDEN_JIRA_EXTRA_FIELDS, or add it to the screen", j.cfg.IssueType, j.cfg.Project)
		case extra:
			fix = "correct its value in ROOTWARDEN_JIRA_EXTRA_FIELDS (the shape REST API v3 takes for the field's type, e.g. {\"value\": \"…\"} for a select list)"
		default:
			fix = fmt.Sprintf("set it in ROOTWARDEN_JIRA_EXTRA_FIELDS, e.g. ROOTWARDEN_JIRA_EXTRA_FIELDS='{%q: {\"value\": \"…\"}}'", id)
		}
		parts = append(parts, fmt.Sprintf("field %s (%s): %s", id, strings.TrimRight(msg, "."), fix))
	}
	ferr := model.Errorf(model.CodeInvalid, "jira refused to create the issue in project %s: %s (creates are held for %s, or until a restart with the settings fixed)",
		j.cfg.Project, strings.Join(parts, "; "), j.cfg.RefusalHold)
	j.mu.Lock()
	j.refused, j.refusedAt = ferr, time.Now()
	j.mu.Unlock()
	j.http.log.Error("jira refuses to create issues with these settings", "project", j.cfg.Project, "err", ferr)
	return ferr
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
