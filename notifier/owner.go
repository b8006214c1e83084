package notifier

// Owners: the account tag Config.OwnerTag holds the owner's email; users.lookupByEmail
// (scope users:read.email) turns it into a Slack user, who is mentioned on the case
// message and in the App Home. An owner is told, not trusted: owning an account does
// not make anyone an approver. Lookups are cached; a failed lookup shows the email
// without a mention rather than holding the message back.

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/model"
)

const (
	ownerFoundTTL    = time.Hour
	ownerNotFoundTTL = 10 * time.Minute
)

// Owner is the owner of a case's account as rootwarden knows it.
type Owner struct {
	Email   string // from the owner tag; "" → no owner
	SlackID string // "" when the email is not a Slack user (or the lookup failed)
	Note    string // why there is no Slack user, for the message
}

// lookupCache caches users.lookupByEmail answers (owners and on-call people).
type lookupCache struct {
	mu sync.Mutex
	m  map[string]lookupEntry
}

type lookupEntry struct {
	id string // "" → not a Slack user
	at time.Time
}

// slackUserByEmail is the Slack user id of an email ("" when none), cached.
func (n *Notifier) slackUserByEmail(ctx context.Context, email string) (string, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	now := n.now()
	n.lookups.mu.Lock()
	e, ok := n.lookups.m[key]
	n.lookups.mu.Unlock()
	if ok {
		ttl := ownerFoundTTL
		if e.id == "" {
			ttl = ownerNotFoundTTL
		}
		if now.Sub(e.at) < ttl && !now.Before(e.at) {
			return e.id, nil
		}
	}
	u, err := n.api.GetUserByEmailContext(ctx, key)
	id := ""
	switch {
	case err == nil && u != nil && !u.Deleted:
		id = u.ID
	case err != nil && slackErrText(err) != "users_not_found":
		return "", err
	}
	n.lookups.mu.Lock()
	if n.lookups.m == nil {
		n.lookups.m = map[string]lookupEntry{}
	}
	n.lookups.m[key] = lookupEntry{id: id, at: now}
	n.lookups.mu.Unlock()
	return id, nil
}

// OwnerOf resolves the owner of the case's account.
func (n *Notifier) OwnerOf(ctx context.Context, c model.Case) Owner {
	if n.cfg.OwnerTag == "" {
		return Owner{}
	}
	email := strings.TrimSpace(c.Tags[n.cfg.OwnerTag])
	if email == "" && c.RoutingError != "" {
		return Owner{Note: "not known yet: the account's tags could not be read from AWS Organizations; the owner is added here when they are"}
	}
	if email == "" {
		return Owner{Note: "no owner: the account has no `" + n.cfg.OwnerTag + "` tag"}
	}
	if !strings.Contains(email, "@") {
		return Owner{Email: email, Note: "the `" + n.cfg.OwnerTag + "` tag is not an email"}
	}
	id, err := n.slackUserByEmail(ctx, email)
	switch {
	case err != nil:
		n.log.Warn("users.lookupByEmail failed: owner shown without a mention", "err", slackErrText(err))
		return Owner{Email: email, Note: "Slack lookup failed"}
	case id == "":
		return Owner{Email: email, Note: "not a Slack user"}
	}
	return Owner{Email: email, SlackID: id}
}

// ownerText is the owner as one line of mrkdwn.
func ownerText(o Owner) string {
	switch {
	case o.SlackID != "":
		return "<@" + o.SlackID + "> (" + esc(o.Email) + ")"
	case o.Email != "":
		return esc(o.Email) + " (" + esc(o.Note) + ")"
	}
	return esc(o.Note)
}

// renderCase is the case message: caseBlocks plus the owner line (when owners are
// configured), placed before the buttons.
func (n *Notifier) renderCase(ctx context.Context, c model.Case, last *model.CaseEvent) []slack.Block {
	blocks := caseBlocks(c, last)
	if n.cfg.OwnerTag == "" {
		return blocks
	}
	line := slack.NewContextBlock("rw_owner", mrkdwn(":bust_in_silhouette: *Owner* "+ownerText(n.OwnerOf(ctx, c))))
	for i, b := range blocks {
		if b.BlockType() == slack.MBTAction {
			return append(blocks[:i:i], append([]slack.Block{line}, blocks[i:]...)...)
		}
	}
	// No buttons (resolved, verifying): before the footer.
	if len(blocks) > 0 {
		i := len(blocks) - 1
		return append(blocks[:i:i], line, blocks[i])
	}
	return append(blocks, line)
}
