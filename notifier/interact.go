package notifier

// The gateway of Slack's interactions. HTTP (signed requests) and Socket Mode
// (envelopes) both end in interact, the one handler: it checks the case, the user and
// the input, and then publishes a model.Action on the bus, or refuses with an
// ephemeral message (or a modal error) and publishes nothing.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// answerWithin bounds the work of one interaction: Slack wants an answer in 3 s.
const answerWithin = 2500 * time.Millisecond

var buttonKinds = map[string]model.ActionKind{
	ActionIDApprove:        model.ActionApprove,
	ActionIDAcceptRisk:     model.ActionAcceptRisk,
	ActionIDRecheck:        model.ActionRecheck,
	ActionIDConfirmDeleted: model.ActionConfirmDeleted,
	ActionIDRevoke:         model.ActionRevokeAccept,
}

func needsApprover(k model.ActionKind) bool {
	return k == model.ActionApprove || k == model.ActionAcceptRisk || k == model.ActionRevokeAccept
}

var verbs = map[model.ActionKind]string{
	model.ActionApprove:        "approve remediation",
	model.ActionAcceptRisk:     "accept the risk",
	model.ActionRevokeAccept:   "revoke a risk acceptance",
	model.ActionRecheck:        "re-check",
	model.ActionConfirmDeleted: "confirm the deletion",
}

// reply is the answer to one interaction, for HTTP and Socket Mode alike.
type reply struct {
	status int    // HTTP status
	msg    string // error text for a non-200 status
	body   any    // JSON body (view_submission answers); nil → empty
}

func ok() reply { return reply{status: http.StatusOK} }
func bad(format string, a ...any) reply {
	return reply{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

// InteractionsHandler serves POST /slack/interactions: it limits the body, verifies
// Slack's signature and timestamp, and hands the payload to the shared handler.
func (n *Notifier) InteractionsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed: POST only", http.StatusMethodNotAllowed)
			return
		}
		if n.cfg.SigningSecret == "" {
			http.Error(w, "interactions over HTTP are disabled: SLACK_SIGNING_SECRET is not set (Socket Mode is used)", http.StatusServiceUnavailable)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n.cfg.MaxBodyBytes)
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				n.refuseHTTP(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", n.cfg.MaxBodyBytes))
				return
			}
			n.refuseHTTP(w, r, http.StatusBadRequest, "cannot read request body")
			return
		}
		sv, err := slack.NewSecretsVerifier(r.Header, n.cfg.SigningSecret)
		if err != nil {
			n.refuseHTTP(w, r, http.StatusUnauthorized, verifyErrText(err))
			return
		}
		_, _ = sv.Write(raw)
		if err := sv.Ensure(); err != nil {
			n.refuseHTTP(w, r, http.StatusUnauthorized, verifyErrText(err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if err := r.ParseForm(); err != nil {
			n.refuseHTTP(w, r, http.StatusBadRequest, "malformed form body")
			return
		}
		payload := r.PostForm.Get("payload")
		if payload == "" {
			n.refuseHTTP(w, r, http.StatusBadRequest, "malformed request: no payload field")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), answerWithin)
		defer cancel()
		rep := n.interact(ctx, []byte(payload))
		switch {
		case rep.body != nil:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_ = json.NewEncoder(w).Encode(rep.body)
		case rep.status != http.StatusOK:
			http.Error(w, rep.msg, rep.status)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
}

func (n *Notifier) refuseHTTP(w http.ResponseWriter, r *http.Request, status int, msg string) {
	n.m.interactions.WithLabelValues("http", "rejected").Inc()
	n.log.Warn("Slack interaction rejected", "status", status, "reason", msg, "remote", r.RemoteAddr)
	http.Error(w, msg, status)
}

func verifyErrText(err error) string {
	switch {
	case errors.Is(err, slack.ErrMissingHeaders):
		return "unauthorized: missing X-Slack-Signature or X-Slack-Request-Timestamp"
	case errors.Is(err, slack.ErrExpiredTimestamp):
		return "unauthorized: request timestamp more than 5 minutes from now"
	case errors.Is(err, slack.ErrInvalidSignature):
		return "unauthorized: invalid signature"
	}
	return "unauthorized: bad signature headers"
}

// interact is the one handler of both delivery paths.
func (n *Notifier) interact(ctx context.Context, payload []byte) reply {
	var ic slack.InteractionCallback
	if err := json.Unmarshal(payload, &ic); err != nil {
		n.m.interactions.WithLabelValues("unknown", "malformed").Inc()
		return bad("malformed payload: not an interaction JSON object")
	}
	var rep reply
	switch ic.Type {
	case slack.InteractionTypeBlockActions:
		rep = n.onBlockAction(ctx, ic)
	case slack.InteractionTypeViewSubmission:
		rep = n.onViewSubmission(ctx, ic)
	case slack.InteractionTypeViewClosed:
		rep = ok()
	default:
		rep = bad("unsupported interaction type %q", ic.Type)
	}
	if rep.status != http.StatusOK {
		n.log.Warn("Slack interaction refused", "type", ic.Type, "user", ic.User.ID, "status", rep.status, "reason", rep.msg)
		n.m.interactions.WithLabelValues(string(ic.Type), "refused").Inc()
	}
	return rep
}

func actorOf(ic slack.InteractionCallback) model.Actor {
	name := ic.User.Name
	if name == "" {
		name = ic.User.Profile.DisplayName
	}
	return model.Actor{Kind: model.ActorSlack, ID: ic.User.ID, Name: name}
}

func (n *Notifier) onBlockAction(ctx context.Context, ic slack.InteractionCallback) reply {
	if rep, mine := n.askBlockAction(ctx, ic); mine {
		return rep // a root activity answer (activity.go)
	}
	acts := ic.ActionCallback.BlockActions
	if len(acts) != 1 || acts[0] == nil || ic.User.ID == "" {
		return bad("malformed payload: want exactly one action and a user")
	}
	act := acts[0]
	channel := ic.Container.ChannelID
	if channel == "" {
		channel = ic.Channel.ID
	}
	user := ic.User.ID
	log := n.log.With("user", user, "action_id", act.ActionID)
	kind, known := buttonKinds[act.ActionID]
	if !known {
		n.ephemeral(ctx, channel, user, ic.Container.MessageTs, fmt.Sprintf("rootwarden does not know the action `%s`; nothing was done.", esc(truncate(act.ActionID, 60))))
		return bad("unknown action id %q", act.ActionID)
	}
	account, caseID, valid := parseButtonValue(act.Value)
	if !valid {
		return bad("malformed action value: want <account>|<case id>")
	}
	log = log.With("account", account, "case", caseID)

	c, why, err := n.currentCase(ctx, account, caseID)
	if err != nil {
		log.Error("read current case", "err", err)
		n.ephemeral(ctx, channel, user, "", "rootwarden could not read the case right now; nothing was done. Please try again.")
		return reply{status: http.StatusServiceUnavailable, msg: "cannot read the case; try again"}
	}
	if why == "" && !actionAllowed(kind, c.State) {
		why = fmt.Sprintf("This case is now *%s*; \"%s\" no longer applies. Nothing was done.", c.State, verbs[kind])
	}
	if why != "" {
		log.Info("click refused", "reason", why)
		n.m.interactions.WithLabelValues("block_actions", "stale").Inc()
		n.ephemeral(ctx, channel, user, "", why)
		return ok()
	}
	if needsApprover(kind) {
		if allowed, whyNot := n.isApprover(ctx, user); !allowed {
			log.Warn("click by a non-approver refused", "reason", whyNot)
			n.m.interactions.WithLabelValues("block_actions", "unauthorized").Inc()
			n.ephemeral(ctx, channel, user, "", fmt.Sprintf("You may not %s: %s Nothing was done.", verbs[kind], whyNot))
			return ok()
		}
	}
	if kind == model.ActionAcceptRisk {
		if _, err := n.api.OpenViewContext(ctx, ic.TriggerID, acceptRiskModal(*c, n.now(), n.cfg.MaxRiskAcceptance)); err != nil {
			log.Error("views.open for accept risk", "err", err, "slack_error", slackErrText(err))
			n.ephemeral(ctx, channel, user, "", "rootwarden could not open the accept-risk form ("+slackErrText(err)+"); nothing was done.")
			return ok()
		}
		n.m.interactions.WithLabelValues("block_actions", "modal").Inc()
		return ok()
	}
	actionTS := act.ActionTs
	if actionTS == "" {
		actionTS = ic.TriggerID
	}
	a := model.Action{SchemaVersion: model.SchemaVersion, ID: fmt.Sprintf("slack:%s:%s:%s", user, act.ActionID, actionTS),
		Kind: kind, AccountID: account, CaseID: caseID, Actor: actorOf(ic), At: n.now(), Origin: "slack"}
	if why := n.checkThrottle(*c, a); why != "" {
		log.Info("check request throttled", "kind", kind, "reason", why)
		n.m.interactions.WithLabelValues("block_actions", "throttled").Inc()
		n.ephemeral(ctx, channel, user, "", why)
		return ok()
	}
	return n.publish(ctx, log, a, func(msg string) { n.ephemeral(ctx, channel, user, "", msg) })
}

func (n *Notifier) publish(ctx context.Context, log *slog.Logger, a model.Action, tell func(string)) reply {
	dup, err := n.b.PublishJSON(ctx, bus.ActionSubject(a.AccountID), a.ID, a)
	if err != nil {
		log.Error("publish action", "kind", a.Kind, "err", err)
		tell("rootwarden could not record your request; nothing was done. Please try again.")
		return reply{status: http.StatusServiceUnavailable, msg: "cannot publish the action; try again"}
	}
	if dup {
		log.Info("repeated Slack delivery: action already published", "action", a.ID, "kind", a.Kind)
		n.m.interactions.WithLabelValues("action", "duplicate").Inc()
		return ok()
	}
	log.Info("action published", "action", a.ID, "kind", a.Kind, "actor", a.Actor.String())
	n.m.interactions.WithLabelValues("action", string(a.Kind)).Inc()
	return ok()
}

func (n *Notifier) onViewSubmission(ctx context.Context, ic slack.InteractionCallback) reply {
	if n.ask.Handles(ic.View.CallbackID) {
		return fromAsk(n.ask.ViewSubmission(ctx, ic)) // a root activity answer (activity.go)
	}
	if ic.View.CallbackID != CallbackAcceptRisk {
		return bad("unknown view callback id %q", ic.View.CallbackID)
	}
	account, caseID, valid := parseButtonValue(ic.View.PrivateMetadata)
	if !valid || ic.User.ID == "" || ic.View.ID == "" {
		return bad("malformed view submission")
	}
	log := n.log.With("user", ic.User.ID, "account", account, "case", caseID, "view", ic.View.ID)
	inModal := func(block, msg string) reply {
		log.Info("accept-risk submission refused", "field", block, "reason", msg)
		return reply{status: http.StatusOK, body: slack.NewErrorsViewSubmissionResponse(map[string]string{block: msg})}
	}
	if allowed, whyNot := n.isApprover(ctx, ic.User.ID); !allowed {
		n.m.interactions.WithLabelValues("view_submission", "unauthorized").Inc()
		return inModal(BlockIDReason, "You may not accept the risk: "+whyNot)
	}
	c, why, err := n.currentCase(ctx, account, caseID)
	if err != nil {
		log.Error("read current case", "err", err)
		return inModal(BlockIDReason, "rootwarden could not read the case right now; please try again.")
	}
	if why == "" && !actionAllowed(model.ActionAcceptRisk, c.State) {
		why = fmt.Sprintf("This case is now %s; the risk can no longer be accepted.", c.State)
	}
	if why != "" {
		return inModal(BlockIDReason, strings.ReplaceAll(why, "*", ""))
	}
	var values map[string]map[string]slack.BlockAction
	if ic.View.State != nil {
		values = ic.View.State.Values
	}
	reason := strings.TrimSpace(values[BlockIDReason][ActionIDReason].Value)
	if reason == "" {
		return inModal(BlockIDReason, "Give a reason.")
	}
	if utf8.RuneCountInString(reason) > 3000 {
		return inModal(BlockIDReason, "Keep the reason under 3000 characters.")
	}
	date := values[BlockIDExpires][ActionIDExpires].SelectedDate
	if date == "" {
		return inModal(BlockIDExpires, "Pick an expiry date.")
	}
	exp, err := time.Parse("2006-01-02", date)
	if err != nil {
		return inModal(BlockIDExpires, "Not a date: "+date)
	}
	now := n.now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if !exp.After(today) {
		return inModal(BlockIDExpires, "The expiry must be in the future (after today).")
	}
	if exp.Sub(now) > n.cfg.MaxRiskAcceptance {
		limit := now.Add(n.cfg.MaxRiskAcceptance).Format("2006-01-02")
		return inModal(BlockIDExpires, fmt.Sprintf("At most %d days: pick %s or earlier.", int(n.cfg.MaxRiskAcceptance/(24*time.Hour)), limit))
	}
	a := model.Action{SchemaVersion: model.SchemaVersion, ID: fmt.Sprintf("slack:%s:%s:%s", ic.User.ID, ActionIDAcceptRisk, ic.View.ID),
		Kind: model.ActionAcceptRisk, AccountID: account, CaseID: caseID, Actor: actorOf(ic), At: n.now(),
		Reason: reason, Expires: &exp, Origin: "slack"}
	rep := n.publish(ctx, log, a, func(string) {})
	if rep.status != http.StatusOK {
		return inModal(BlockIDReason, "rootwarden could not record the acceptance; please try again.")
	}
	return ok()
}

// currentCase reads the account's current case. why is a refusal text for the user
// when the click is on a case that is not current (stale id) or is resolved.
func (n *Notifier) currentCase(ctx context.Context, account, caseID string) (c *model.Case, why string, err error) {
	e, err := n.b.Cases.Get(ctx, account)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, fmt.Sprintf("Case %s is stale: rootwarden has no current case for account %s. Nothing was done.", esc(caseID), esc(account)), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read case of account %s: %w", account, err)
	}
	var cur model.Case
	if err := json.Unmarshal(e.Value(), &cur); err != nil {
		return nil, "", fmt.Errorf("decode case of account %s: %w", account, err)
	}
	if cur.ID != caseID {
		return &cur, fmt.Sprintf("Case %s is stale: the current case of account %s is %s. Nothing was done.", esc(caseID), esc(account), esc(cur.ID)), nil
	}
	if !cur.State.Active() {
		return &cur, fmt.Sprintf("Case %s is resolved; nothing to do. Nothing was done.", esc(caseID)), nil
	}
	return &cur, "", nil
}

// isApprover reports whether user is an on-call approver: listed directly, or a
// member of a listed user group (members cached for GroupCacheTTL). It fails closed.
func (n *Notifier) isApprover(ctx context.Context, user string) (bool, string) {
	if len(n.users) == 0 && len(n.groups) == 0 && n.cfg.OnCall == nil {
		return false, "no on-call approvers are configured (ROOTWARDEN_APPROVERS), so approvals are refused."
	}
	if n.users[user] {
		return true, ""
	}
	onCall, pdWhy := n.isOnCall(ctx, user) // PagerDuty (oncall.go); fails closed
	if onCall {
		return true, ""
	}
	var lookupErr error
	for _, g := range n.groups {
		members, err := n.groupMembers(ctx, g)
		if err != nil {
			n.log.Warn("usergroups.users.list failed: membership unknown (refusing)", "group", g, "err", slackErrText(err))
			lookupErr = err
			continue
		}
		if members[user] {
			return true, ""
		}
	}
	if lookupErr != nil {
		return false, "rootwarden could not check the on-call group membership right now; try again."
	}
	if pdWhy != "" {
		return false, pdWhy
	}
	return false, "only on-call approvers (" + n.approverMentions(ctx) + ") may do this."
}

func (n *Notifier) groupMembers(ctx context.Context, group string) (map[string]bool, error) {
	now := n.now()
	n.gmu.Lock()
	g, ok := n.gcache[group]
	n.gmu.Unlock()
	if ok && now.Sub(g.at) < n.cfg.GroupCacheTTL && !now.Before(g.at) {
		return g.members, nil
	}
	users, err := n.api.GetUserGroupMembersContext(ctx, group)
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(users))
	for _, u := range users {
		m[u] = true
	}
	n.gmu.Lock()
	n.gcache[group] = groupMembers{members: m, at: now}
	n.gmu.Unlock()
	return m, nil
}

// ephemeral tells one user something only they see; failures are logged.
func (n *Notifier) ephemeral(ctx context.Context, channel, user, threadTS, text string) {
	if channel == "" && user != "" {
		n.tellInHome(ctx, user, text) // a click in the App Home has no channel (home.go)
		return
	}
	if channel == "" || user == "" {
		return
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	if err := n.postEphemeral(ctx, channel, user, opts...); err != nil {
		n.log.Warn("chat.postEphemeral failed", "channel", channel, "user", user, "err", slackErrText(err))
	}
}

// runSocketMode receives interactions over Socket Mode and acknowledges every
// envelope with the shared handler's answer.
func (n *Notifier) runSocketMode(ctx context.Context) error {
	opts := []slack.Option{slack.OptionAppLevelToken(n.cfg.AppToken), slack.OptionLog(slogWriter{n.log})}
	if n.cfg.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(n.cfg.APIURL))
	}
	smc := socketmode.New(slack.New("", opts...), socketmode.OptionLog(slogWriter{n.log}))
	errc := make(chan error, 1)
	go func() { errc <- smc.RunContext(ctx) }()
	for {
		select {
		case <-ctx.Done():
			<-errc
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			n.log.Error("Socket Mode stopped", "err", slackErrText(err))
			return fmt.Errorf("SLACK_APP_TOKEN: Socket Mode: %s", slackErrText(err))
		case evt := <-smc.Events:
			n.onSocketEvent(ctx, smc, evt)
		}
	}
}

func (n *Notifier) onSocketEvent(ctx context.Context, smc *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		n.log.Debug("Socket Mode connecting")
	case socketmode.EventTypeConnected:
		n.log.Info("Socket Mode connected")
	case socketmode.EventTypeConnectionError:
		if ce, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			n.log.Warn("Socket Mode connection error: reconnecting", "attempt", ce.Attempt, "backoff", ce.Backoff,
				"err", slackErrText(ce.ErrorObj))
		} else {
			n.log.Warn("Socket Mode connection error: reconnecting")
		}
	case socketmode.EventTypeInvalidAuth:
		n.log.Error("Socket Mode: invalid app token (SLACK_APP_TOKEN)")
	case socketmode.EventTypeInteractive:
		if evt.Request == nil {
			return
		}
		ictx, cancel := context.WithTimeout(ctx, answerWithin)
		rep := n.interact(ictx, evt.Request.Payload)
		cancel()
		var err error
		if rep.body != nil {
			err = smc.AckCtx(ctx, evt.Request.EnvelopeID, rep.body)
		} else {
			err = smc.AckCtx(ctx, evt.Request.EnvelopeID, nil)
		}
		if err != nil {
			n.log.Warn("Socket Mode ack", "err", err)
		}
	case socketmode.EventTypeEventsAPI, socketmode.EventTypeSlashCommand:
		n.onSocketOnCall(ctx, smc, evt) // App Home and /rootwarden (events.go, slash.go)
	default:
		if evt.Request != nil && evt.Request.EnvelopeID != "" {
			_ = smc.AckCtx(ctx, evt.Request.EnvelopeID, nil) // nothing else is ours
		}
	}
}

// slogWriter routes slack-go's internal logger to slog at Debug. slack-go redacts
// tokens itself and only logs when its debug option is on.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Output(_ int, s string) error {
	w.log.Debug("slack-go", "msg", strings.TrimSpace(s))
	return nil
}
