package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

// GitHubConfig configures the GitHub Issues tracker (REST API, bearer token).
type GitHubConfig struct {
	BaseURL string // default https://api.github.com (GitHub Enterprise: https://HOST/api/v3)
	Token   string
	Owner   string
	Repo    string
	Labels  []string
	Client  *http.Client
	Retry   Retry
	// OwnerLoginTag is the account tag holding the owner's GitHub login: the issue's
	// assignee (assignee.go).
	OwnerLoginTag string
}

// GitHub opens and follows case tickets as GitHub issues.
type GitHub struct {
	cfg  GitHubConfig
	http *restClient
}

var _ model.Tracker = (*GitHub)(nil)

// NewGitHub builds the GitHub tracker.
func NewGitHub(cfg GitHubConfig, log *slog.Logger) (*GitHub, error) {
	if cfg.Token == "" || cfg.Owner == "" || cfg.Repo == "" {
		return nil, fmt.Errorf("github tracker: token, owner and repo are required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.github.com"
	}
	base, err := baseURL("github", cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	token := cfg.Token
	return &GitHub{cfg: cfg, http: &restClient{
		system: "github", base: base, client: cfg.Client, log: log, retry: cfg.Retry.withDefaults(),
		auth: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) },
		headers: map[string]string{"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
			"User-Agent": "rootwarden"},
		secrets: []string{token},
	}}, nil
}

type ghIssue struct {
	Number      int    `json:"number"`
	HTMLURL     string `json:"html_url"`
	State       string `json:"state"`
	StateReason string `json:"state_reason"`
	Assignee    *struct {
		Login string `json:"login"`
	} `json:"assignee"`
	PullRequest any `json:"pull_request"`
}

func (g *GitHub) repoPath() string {
	return "/repos/" + url.PathEscape(g.cfg.Owner) + "/" + url.PathEscape(g.cfg.Repo) + "/issues"
}

func (g *GitHub) ref(is ghIssue) model.TicketRef {
	return model.TicketRef{System: "github", ID: strconv.Itoa(is.Number), URL: is.HTMLURL}
}

// Open finds the case's issue by its label (open or closed), or creates it.
func (g *GitHub) Open(ctx context.Context, c model.Case, slackLink string) (model.TicketRef, error) {
	label := Label(c.ID)
	var list []ghIssue
	q := url.Values{"labels": {label}, "state": {"all"}, "per_page": {"10"}, "sort": {"created"}, "direction": {"asc"}}
	if err := g.http.do(ctx, http.MethodGet, g.repoPath()+"?"+q.Encode(), nil, &list); err != nil {
		return model.TicketRef{}, fmt.Errorf("find github issue for case %s: %w", c.ID, err)
	}
	for _, is := range list {
		if is.PullRequest == nil {
			return g.ref(is), nil
		}
	}
	labels := append([]string{label, "rootwarden"}, g.cfg.Labels...)
	var created ghIssue
	body := map[string]any{"title": Title(c), "body": Markdown(c, slackLink), "labels": labels}
	err := errors.New("not created")
	if login := g.githubAssignee(c); login != "" {
		body["assignees"] = []string{login}
		if err = g.http.do(ctx, http.MethodPost, g.repoPath(), body, &created); invalidInput(err) {
			// 422: the login cannot be assigned. Nothing was created: create it unassigned.
			g.http.log.Warn("github refused the owner as assignee: issue created unassigned", "case", c.ID, "err", err)
			delete(body, "assignees")
		}
	}
	if _, assigning := body["assignees"]; !assigning {
		err = g.http.do(ctx, http.MethodPost, g.repoPath(), body, &created)
	}
	if err != nil {
		return model.TicketRef{}, fmt.Errorf("create github issue for case %s: %w", c.ID, err)
	}
	if created.Number == 0 {
		return model.TicketRef{}, model.Errorf(model.CodeInternal, "create github issue for case %s: answer has no number", c.ID)
	}
	return g.ref(created), nil
}

func (g *GitHub) issuePath(ref model.TicketRef) (string, error) {
	if _, err := strconv.Atoi(ref.ID); err != nil {
		return "", model.Errorf(model.CodeInvalid, "github issue id %q is not a number", ref.ID)
	}
	return g.repoPath() + "/" + ref.ID, nil
}

// Comment adds a comment.
func (g *GitHub) Comment(ctx context.Context, ref model.TicketRef, text string) error {
	p, err := g.issuePath(ref)
	if err != nil {
		return err
	}
	if err := g.http.do(ctx, http.MethodPost, p+"/comments", map[string]string{"body": text}, nil); err != nil {
		return fmt.Errorf("comment on github issue %s: %w", ref.ID, err)
	}
	return nil
}

// Close comments with the resolution and closes the issue as completed.
func (g *GitHub) Close(ctx context.Context, ref model.TicketRef, resolution string) error {
	return g.setState(ctx, ref, resolution, "closed", "completed")
}

// Reopen comments and reopens the issue.
func (g *GitHub) Reopen(ctx context.Context, ref model.TicketRef, text string) error {
	return g.setState(ctx, ref, text, "open", "reopened")
}

func (g *GitHub) setState(ctx context.Context, ref model.TicketRef, text, state, reason string) error {
	if text != "" {
		if err := g.Comment(ctx, ref, text); err != nil {
			return err
		}
	}
	p, err := g.issuePath(ref)
	if err != nil {
		return err
	}
	if err := g.http.do(ctx, http.MethodPatch, p, map[string]string{"state": state, "state_reason": reason}, nil); err != nil {
		return fmt.Errorf("set github issue %s %s: %w", ref.ID, state, err)
	}
	return nil
}

// Status reads the issue; closed (for any reason) counts as done, verification decides.
func (g *GitHub) Status(ctx context.Context, ref model.TicketRef) (model.TicketStatus, error) {
	p, err := g.issuePath(ref)
	if err != nil {
		return model.TicketStatus{}, err
	}
	var is ghIssue
	if err := g.http.do(ctx, http.MethodGet, p, nil, &is); err != nil {
		return model.TicketStatus{}, fmt.Errorf("read github issue %s: %w", ref.ID, err)
	}
	st := model.TicketStatus{Done: is.State == "closed", State: strings.TrimSuffix(is.State+" "+is.StateReason, " ")}
	if is.Assignee != nil {
		st.Assignee = is.Assignee.Login
	}
	return st, nil
}
