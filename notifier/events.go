package notifier

// The Events API endpoint (POST /slack/events) and the Socket Mode side of the events
// and the slash command. Requests are verified exactly like interactions (signature
// and timestamp with SLACK_SIGNING_SECRET, bounded body). Slack's url_verification
// challenge is answered; member_left_channel and member_joined_channel update the
// cached members of a channel (who sees its cases: visible.go); app_home_opened
// publishes the user's Home tab after the 200
// (Slack wants the answer within 3 s and retries otherwise, which only publishes the
// tab once more).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// verified reads and verifies a request from Slack; false → answered already.
func (n *Notifier) verified(w http.ResponseWriter, r *http.Request, what string) ([]byte, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: POST only", http.StatusMethodNotAllowed)
		return nil, false
	}
	if n.cfg.SigningSecret == "" {
		http.Error(w, what+" over HTTP are disabled: SLACK_SIGNING_SECRET is not set (Socket Mode is used)", http.StatusServiceUnavailable)
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, n.cfg.MaxBodyBytes)
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			n.refuseHTTP(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", n.cfg.MaxBodyBytes))
			return nil, false
		}
		n.refuseHTTP(w, r, http.StatusBadRequest, "cannot read request body")
		return nil, false
	}
	sv, err := slack.NewSecretsVerifier(r.Header, n.cfg.SigningSecret)
	if err != nil {
		n.refuseHTTP(w, r, http.StatusUnauthorized, verifyErrText(err))
		return nil, false
	}
	_, _ = sv.Write(raw)
	if err := sv.Ensure(); err != nil {
		n.refuseHTTP(w, r, http.StatusUnauthorized, verifyErrText(err))
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return raw, true
}

// EventsHandler serves POST /slack/events (Events API over HTTP).
func (n *Notifier) EventsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := n.verified(w, r, "events")
		if !ok {
			return
		}
		ev, err := slackevents.ParseEvent(json.RawMessage(raw), slackevents.OptionNoVerifyToken())
		if err != nil {
			n.refuseHTTP(w, r, http.StatusBadRequest, "malformed event: not an Events API JSON object")
			return
		}
		switch ev.Type {
		case slackevents.URLVerification:
			var ch slackevents.ChallengeResponse
			if err := json.Unmarshal(raw, &ch); err != nil || ch.Challenge == "" {
				n.refuseHTTP(w, r, http.StatusBadRequest, "url_verification without a challenge")
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, ch.Challenge)
		case slackevents.CallbackEvent:
			w.WriteHeader(http.StatusOK)
			n.onEvent(ev)
		default:
			w.WriteHeader(http.StatusOK) // app_rate_limited and future types: nothing to do
		}
	})
}

// onEvent handles one inner event after its delivery was answered.
func (n *Notifier) onEvent(ev slackevents.EventsAPIEvent) {
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.MemberLeftChannelEvent: // who sees a channel's cases (visible.go)
		n.memberChanged(e.Channel, e.User, false)
		return
	case *slackevents.MemberJoinedChannelEvent:
		n.memberChanged(e.Channel, e.User, true)
		return
	}
	home, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
	if !ok || home.Tab != "home" || home.User == "" {
		return
	}
	n.m.interactions.WithLabelValues("app_home_opened", "ok").Inc()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), homePublishIn)
		defer cancel()
		if err := n.HomeOpened(ctx, home.User); err != nil {
			n.log.Warn("App Home not published", "user", home.User, "err", slackErrText(err))
		}
	}()
}

// onSocketOnCall handles events_api and slash_commands envelopes.
func (n *Notifier) onSocketOnCall(ctx context.Context, smc *socketmode.Client, evt socketmode.Event) {
	if evt.Request == nil {
		return
	}
	switch evt.Type {
	case socketmode.EventTypeEventsAPI:
		_ = smc.AckCtx(ctx, evt.Request.EnvelopeID, nil)
		if ev, ok := evt.Data.(slackevents.EventsAPIEvent); ok && ev.Type == slackevents.CallbackEvent {
			n.onEvent(ev)
		}
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			_ = smc.AckCtx(ctx, evt.Request.EnvelopeID, usage("rootwarden could not read this command."))
			return
		}
		cctx, cancel := context.WithTimeout(ctx, answerWithin)
		rep := n.command(cctx, cmd)
		cancel()
		if err := smc.AckCtx(ctx, evt.Request.EnvelopeID, rep); err != nil {
			n.log.Warn("Socket Mode ack of a slash command", "err", err)
		}
	}
}
