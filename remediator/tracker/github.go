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

	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
)

// GitHubConfig configures the GitHub Issues tracker (REST API, bearer token).
type GitHubConfig struct {
	BaseURL string // default https://api.github.com (GitHub Enterprise: https://HOST/api/v3)
	Token   string
	Owner   string
	Repo    string
	Labels  []string
	// Client is the HTTP client; nil, or one without a Timeout, gets Timeout.
	Client *http.Client
	// Timeout bounds one HTTP call (default DefaultTimeout).
	Timeout time.Duration
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
	cfg.Client = withTimeout(cfg.Client, cfg.Timeout)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	token := cfg.Token
	return &GitHub{cfg: cfg, http: &restClient{
		system: "github", base: base, client: cfg.Client, log: log, retry: cfg.Retry.withDefaults(),
		auth: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) },
		headers: map[string]string{"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
			"User-Agent": "rootwarden"},
		secrets:     []string{token},
		rateLimited: githubRateLimited,
	}}, nil
}

type ghIssue struct {
	Number      int    `json:"number"`
	HTMLURL     string `json:"html_url"`
	State       string `json:"state"`
	StateReason string `json:"state_reason"`
	ClosedAt    string `json:"closed_at"`
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

// githubRateLimited tells GitHub's rate limits from refusals: a secondary rate limit
// answers 403 (or 429) with Retry-After, a primary one with x-ratelimit-remaining: 0
// ("If the retry-after response header is present, you should not retry … until after
// that many seconds", docs.github.com, REST API rate limits).
func githubRateLimited(resp *http.Response) bool {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return false
	}
	return resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-RateLimit-Remaining") == "0"
}

// Open finds the case's issue by its label (open or closed), or creates it. A create
// is never repeated without searching again first (a lost answer or a 5xx may come
// after the issue was made). When the search finds more than one issue of the case
// (two creates raced), the oldest is the case's and the others are closed as
// duplicates.
func (g *GitHub) Open(ctx context.Context, c model.Case, slackLink string) (model.TicketRef, error) {
	label := Label(c.ID)
	find := func(ctx context.Context) (model.TicketRef, bool, error) {
		var list []ghIssue
		q := url.Values{"labels": {label}, "state": {"all"}, "per_page": {"10"}, "sort": {"created"}, "direction": {"asc"}}
		if err := g.http.do(ctx, http.MethodGet, g.repoPath()+"?"+q.Encode(), nil, &list); err != nil {
			return model.TicketRef{}, false, fmt.Errorf("find github issue for case %s: %w", c.ID, err)
		}
		var found []ghIssue
		for _, is := range list {
			if is.PullRequest == nil {
				found = append(found, is)
			}
		}
		if len(found) == 0 {
			return model.TicketRef{}, false, nil
		}
		first := g.ref(found[0])
		for _, dup := range found[1:] {
			if dup.State == "closed" {
				continue
			}
			if err := g.setState(ctx, g.ref(dup), fmt.Sprintf("Duplicate of #%d (rootwarden opened the ticket of case %s twice); closing this one.",
				found[0].Number, c.ID), "closed", "not_planned"); err != nil {
				g.http.log.Warn("close duplicate github issue", "case", c.ID, "ticket", dup.Number, "err", err)
			}
		}
		return first, true, nil
	}
	create := func(ctx context.Context) (model.TicketRef, error) {
		labels := append([]string{label, "rootwarden"}, g.cfg.Labels...)
		var created ghIssue
		body := map[string]any{"title": Title(c), "body": Markdown(c, slackLink), "labels": labels}
		err := errors.New("not created")
		if login := g.githubAssignee(c); login != "" {
			body["assignees"] = []string{login}
			if err = g.http.once(ctx, http.MethodPost, g.repoPath(), body, &created); invalidInput(err) {
				// 422: the login cannot be assigned. Nothing was created: create it unassigned.
				g.http.log.Warn("github refused the owner as assignee: issue created unassigned", "case", c.ID, "err", err)
				delete(body, "assignees")
			}
		}
		if _, assigning := body["assignees"]; !assigning {
			err = g.http.once(ctx, http.MethodPost, g.repoPath(), body, &created)
		}
		if err != nil {
			return model.TicketRef{}, fmt.Errorf("create github issue for case %s: %w", c.ID, err)
		}
		if created.Number == 0 {
			return model.TicketRef{}, model.Errorf(model.CodeInternal, "create github issue for case %s: answer has no number", c.ID)
		}
		return g.ref(created), nil
	}
	return g.http.findOrCreate(ctx, "create github issue for case "+c.ID, 0, find, create)
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
	// The text may carry values (a reason someone typed, an AWS error): all of it is
	// escaped as Markdown.
	if err := g.http.do(ctx, http.MethodPost, p+"/comments", map[string]string{"body": escape.Markdown(text)}, nil); err != nil {
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
	if st.Done {
		st.ClosedAt = is.ClosedAt
	}
	if is.Assignee != nil {
		st.Assignee = is.Assignee.Login
	}
	return st, nil
}
