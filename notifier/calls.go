package notifier

// Every Slack Web API call of the notifier goes through here: paced (pace.go), under a
// deadline (Config.CallTimeout), and retried in place after a 429, which means Slack
// did nothing. Other failures go back to the caller, which knows whether the call may
// have taken effect.

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Pacer keys.
const (
	keyPost      = "chat.postMessage/" // + channel
	keyUpdate    = "chat.update"
	keyHistory   = "conversations.history"
	keyReplies   = "conversations.replies"
	keyEphemeral = "chat.postEphemeral"
)

func (n *Notifier) rateOf(key string) Rate {
	switch {
	case strings.HasPrefix(key, keyPost):
		return n.cfg.PostRate
	case key == keyEphemeral:
		return n.cfg.EphemeralRate
	}
	return n.cfg.Tier3Rate
}

// slackCall runs f for the bucket key under the pacer and a deadline.
func (n *Notifier) slackCall(ctx context.Context, key string, f func(context.Context) error) error {
	for {
		if err := n.pace.wait(ctx, key); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
		err := f(cctx)
		cancel()
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) {
			return err
		}
		n.m.slackErrors.WithLabelValues(classRateLimited.String()).Inc()
		n.rateLimited.Add(1)
		after := max(rl.RetryAfter, time.Second)
		method, channel, _ := strings.Cut(key, "/")
		n.log.Warn("Slack rate limit: waiting for Retry-After", "method", method, "channel", channel, "retry_after", after)
		n.pace.block(key, after)
	}
}

func (n *Notifier) postMsg(ctx context.Context, channel string, opts ...slack.MsgOption) (string, string, error) {
	var ch, ts string
	err := n.slackCall(ctx, keyPost+channel, func(ctx context.Context) error {
		var err error
		ch, ts, err = n.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ch, ts, err
}

func (n *Notifier) updateMsg(ctx context.Context, channel, ts string, opts ...slack.MsgOption) error {
	return n.slackCall(ctx, keyUpdate, func(ctx context.Context) error {
		_, _, _, err := n.api.UpdateMessageContext(ctx, channel, ts, opts...)
		return err
	})
}

func (n *Notifier) history(ctx context.Context, p *slack.GetConversationHistoryParameters) (*slack.GetConversationHistoryResponse, error) {
	var resp *slack.GetConversationHistoryResponse
	err := n.slackCall(ctx, keyHistory, func(ctx context.Context) error {
		var err error
		resp, err = n.api.GetConversationHistoryContext(ctx, p)
		return err
	})
	return resp, err
}

func (n *Notifier) replies(ctx context.Context, p *slack.GetConversationRepliesParameters) ([]slack.Message, error) {
	var msgs []slack.Message
	err := n.slackCall(ctx, keyReplies, func(ctx context.Context) error {
		var err error
		msgs, _, _, err = n.api.GetConversationRepliesContext(ctx, p)
		return err
	})
	return msgs, err
}

func (n *Notifier) postEphemeral(ctx context.Context, channel, user string, opts ...slack.MsgOption) error {
	return n.slackCall(withPrio(ctx, prioHuman), keyEphemeral, func(ctx context.Context) error {
		_, err := n.api.PostEphemeralContext(ctx, channel, user, opts...)
		return err
	})
}

// RateLimited is how many Slack calls were answered 429 since the notifier started.
func (n *Notifier) RateLimited() int64 { return n.rateLimited.Load() }
