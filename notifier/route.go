package notifier

// Routing: which channel a case's message goes to. The first rule the case's account
// matches wins (its OU or an OU above it, a tag, or the account id); the default
// channel (Config.Channel) catches the rest. A case keeps the channel of its first
// message: its record holds channel and ts, and every edit, reply and reminder goes
// there, so a change of OU or tags never makes a second message.

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/model"
)

// Route is one routing rule (config.Route converts to it): exactly one of OU, TagKey
// (with TagValue) or Account is set.
type Route struct {
	OU       string // "Root/Prod" matches Root/Prod and every unit below it
	TagKey   string
	TagValue string
	Account  string
	Channel  string
}

// String renders the rule as ROOTWARDEN_SLACK_ROUTES writes it.
func (r Route) String() string {
	switch {
	case r.OU != "":
		return "ou:" + r.OU + "=" + r.Channel
	case r.TagKey != "":
		return "tag:" + r.TagKey + "=" + r.TagValue + "=" + r.Channel
	}
	return "account:" + r.Account + "=" + r.Channel
}

// Matches reports whether the rule applies to the case's account.
func (r Route) Matches(c model.Case) bool {
	switch {
	case r.OU != "":
		p := strings.Trim(c.OUPath, "/")
		return p == r.OU || strings.HasPrefix(p, r.OU+"/")
	case r.TagKey != "":
		v, ok := c.Tags[r.TagKey]
		return ok && v == r.TagValue
	case r.Account != "":
		return c.AccountID == r.Account
	}
	return false
}

func (r Route) valid() error {
	n := 0
	for _, s := range []string{r.OU, r.TagKey, r.Account} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("want exactly one of ou, tag or account")
	}
	if r.Channel == "" || !strings.ContainsRune("CG", rune(r.Channel[0])) {
		return fmt.Errorf("%q is not a channel id (C… or G…)", r.Channel)
	}
	return nil
}

// RouteFor is the channel of a new message for the case and the rule that chose it
// (-1: the default channel).
func (n *Notifier) RouteFor(c model.Case) (channel string, rule int) {
	for i, r := range n.cfg.Routes {
		if r.Matches(c) {
			return r.Channel, i
		}
	}
	return n.cfg.Channel, -1
}

// routeFor is RouteFor's channel.
func (n *Notifier) routeFor(c model.Case) string {
	ch, _ := n.RouteFor(c)
	return ch
}

func (n *Notifier) checkRouteConfig() error {
	for i, r := range n.cfg.Routes {
		if err := r.valid(); err != nil {
			return fmt.Errorf("ROOTWARDEN_SLACK_ROUTES: rule %d (%s): %v", i+1, r, err)
		}
	}
	return nil
}

// checkRoutes checks at start-up that every routed channel exists and has the bot in
// it; the error names the first rule that is wrong.
func (n *Notifier) checkRoutes(ctx context.Context) error {
	seen := map[string]error{n.cfg.Channel: nil}
	for i, r := range n.cfg.Routes {
		err, done := seen[r.Channel]
		if !done {
			err = n.checkChannel(ctx, r.Channel)
			seen[r.Channel] = err
		}
		if err != nil {
			return fmt.Errorf("ROOTWARDEN_SLACK_ROUTES: rule %d (%s): %w", i+1, r, err)
		}
	}
	return nil
}

func (n *Notifier) checkChannel(ctx context.Context, id string) error {
	ch, err := n.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	if err != nil {
		if slackErrText(err) == "channel_not_found" {
			return checkErr{fmt.Sprintf("channel_not_found: no channel %s that the bot can see (a private channel needs the bot invited first)", id), err}
		}
		return checkErr{fmt.Sprintf("%s (channel %s)", slackErrText(err), id), err} // Slack's error kept: down or misconfigured
	}
	if !ch.IsMember {
		return checkErr{fmt.Sprintf("not_in_channel: the bot is not a member of %s; invite it there (/invite @rootwarden)", id),
			slack.SlackErrorResponse{Err: "not_in_channel"}}
	}
	return nil
}
