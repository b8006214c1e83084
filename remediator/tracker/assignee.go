package tracker

// Ticket assignees from the account's owner tags (issue 11). Jira looks the owner's
// email up (GET /rest/api/3/user/search) and assigns the accountId; GitHub takes the
// login from a second tag. A missing or unknown owner never stops the ticket: it is
// created unassigned and the reason is logged.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/rootwarden/rootwarden/internal/model"
)

// jiraAssignee is the Jira accountId of the case's owner, or "".
func (j *Jira) jiraAssignee(ctx context.Context, c model.Case) string {
	if j.cfg.OwnerTag == "" {
		return ""
	}
	email := strings.TrimSpace(c.Tags[j.cfg.OwnerTag])
	if !strings.Contains(email, "@") {
		return ""
	}
	var users []struct {
		AccountID    string `json:"accountId"`
		EmailAddress string `json:"emailAddress"`
		Active       bool   `json:"active"`
	}
	if err := j.http.do(ctx, http.MethodGet, "/rest/api/3/user/search?query="+url.QueryEscape(email), nil, &users); err != nil {
		j.http.log.Warn("jira user search for the owner failed: issue created unassigned", "case", c.ID, "err", err)
		return ""
	}
	for _, u := range users {
		// emailAddress is hidden by some privacy settings; the search matched on it.
		if u.Active && u.AccountID != "" && (u.EmailAddress == "" || strings.EqualFold(u.EmailAddress, email)) {
			return u.AccountID
		}
	}
	j.http.log.Info("owner has no active Jira account: issue created unassigned", "case", c.ID)
	return ""
}

// githubAssignee is the GitHub login of the case's owner, or "".
func (g *GitHub) githubAssignee(c model.Case) string {
	if g.cfg.OwnerLoginTag == "" {
		return ""
	}
	login := strings.TrimPrefix(strings.TrimSpace(c.Tags[g.cfg.OwnerLoginTag]), "@")
	if login == "" || strings.ContainsAny(login, " /@") {
		return ""
	}
	return login
}

// invalidInput reports whether err is the tracker refusing the request's content
// (GitHub answers 422 for an assignee who cannot be assigned).
func invalidInput(err error) bool {
	var me *model.Error
	return errors.As(err, &me) && me.Code == model.CodeInvalid
}
