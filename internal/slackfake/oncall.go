package slackfake

// The Web API methods of rootwarden's on-call flows: users.lookupByEmail (owners and
// on-call people), views.publish (App Home), and the recording of both. They are
// served through one hook in dispatch.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// HomeView is a views.publish call as the fake holds it: the user's current Home tab.
type HomeView struct {
	UserID    string
	View      slack.HomeTabViewRequest
	Raw       json.RawMessage
	Publishes int // views.publish calls for this user so far
}

// Buttons lists the buttons of the view's action blocks in order.
func (h HomeView) Buttons() []Button {
	return Message{Blocks: h.View.Blocks}.Buttons()
}

// AllText is every "text" string of the view's blocks, one per line.
func (h HomeView) AllText() string { return Message{RawBlocks: h.rawBlocks()}.AllText() }

func (h HomeView) rawBlocks() json.RawMessage {
	var v struct {
		Blocks json.RawMessage `json:"blocks"`
	}
	_ = json.Unmarshal(h.Raw, &v)
	return v.Blocks
}

type onCallState struct {
	emails map[string]string   // lower-case email → user id
	homes  map[string]HomeView // user id → current Home tab
}

// AddUserWithEmail adds a user known to users.info and users.lookupByEmail.
func (s *Server) AddUserWithEmail(id, name, email string) {
	s.AddUser(id, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.oc.emails == nil {
		s.oc.emails = map[string]string{}
	}
	s.oc.emails[strings.ToLower(email)] = id
	u := s.users[id]
	u.Profile.Email = email
	s.users[id] = u
}

// Home returns the user's current Home tab, if one was published.
func (s *Server) Home(userID string) (HomeView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.oc.homes[userID]
	return h, ok
}

// dispatchOnCall serves the on-call methods; ok is false for any other method.
func (s *Server) dispatchOnCall(req request) (map[string]any, bool) {
	switch req.method {
	case "users.lookupByEmail":
		s.mu.Lock()
		defer s.mu.Unlock()
		email := strings.ToLower(strings.TrimSpace(req.get("email")))
		if email == "" {
			return apiErr("invalid_arguments"), true
		}
		id, ok := s.oc.emails[email]
		if !ok {
			return apiErr("users_not_found"), true
		}
		return map[string]any{"ok": true, "user": s.users[id]}, true
	case "views.publish":
		return s.viewsPublish(req), true
	}
	return nil, false
}

func (s *Server) viewsPublish(req request) map[string]any {
	user := req.get("user_id")
	raw := req.json["view"]
	if len(raw) == 0 {
		if v := req.get("view"); v != "" {
			raw = json.RawMessage(v)
		}
	}
	if user == "" || len(raw) == 0 {
		return apiErr("invalid_arguments")
	}
	var v slack.HomeTabViewRequest
	if err := json.Unmarshal(raw, &v); err != nil {
		return apiErr("invalid_arguments")
	}
	if v.Type != slack.VTHomeTab {
		return apiErr("invalid_arguments")
	}
	if n := len(v.Blocks.BlockSet); n > 100 {
		return apiErr("invalid_blocks") // Slack's limit for a Home tab
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[user]; !ok && len(s.users) > 0 {
		return apiErr("user_not_found")
	}
	if s.oc.homes == nil {
		s.oc.homes = map[string]HomeView{}
	}
	h := s.oc.homes[user]
	h.UserID, h.View, h.Raw = user, v, append(json.RawMessage(nil), raw...)
	h.Publishes++
	s.oc.homes[user] = h
	s.seq++
	return map[string]any{"ok": true, "view": map[string]any{"id": fmt.Sprintf("VH%06d", s.seq), "team_id": TeamID,
		"type": "home", "blocks": v.Blocks, "hash": fmt.Sprintf("%d.hash", s.seq)}}
}

// AppHomeOpened is the Events API body Slack posts when user opens the app's Home tab.
func AppHomeOpened(user string) []byte {
	n := next()
	b, _ := json.Marshal(map[string]any{
		"token": "deprecated-verification-token", "team_id": TeamID, "api_app_id": "A0FAKE", "type": "event_callback",
		"event_id": fmt.Sprintf("Ev%08d", n), "event_time": time.Now().Unix(),
		"event": map[string]any{"type": "app_home_opened", "user": user, "channel": "D0" + user, "tab": "home",
			"event_ts": fmt.Sprintf("%d.%06d", time.Now().Unix(), n%1_000_000)},
	})
	return b
}

// URLVerification is the body Slack posts when the Events request URL is saved.
func URLVerification(challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"token": "deprecated-verification-token", "challenge": challenge, "type": "url_verification"})
	return b
}

// SlashCommand is the form Slack posts for `/rootwarden <text>` typed by user in channel.
func SlashCommand(user, userName, text, channel, responseURL string) url.Values {
	n := next()
	return url.Values{
		"token": {"deprecated-verification-token"}, "team_id": {TeamID}, "team_domain": {"fake"},
		"channel_id": {channel}, "channel_name": {channel}, "user_id": {user}, "user_name": {userName},
		"command": {"/rootwarden"}, "text": {text}, "api_app_id": {"A0FAKE"}, "response_url": {responseURL},
		"trigger_id": {fmt.Sprintf("%d.%d.trigger%06d", time.Now().Unix(), n, n)},
	}
}

// SlashCommandPayload is the JSON of a slash command as Socket Mode carries it.
func SlashCommandPayload(form url.Values) json.RawMessage {
	m := map[string]string{}
	for k := range form {
		m[k] = form.Get(k)
	}
	b, _ := json.Marshal(m)
	return b
}

// HomeBlockAction is the form Slack posts when user presses a button in their Home tab
// (container type "view": no channel, no message).
func HomeBlockAction(userID, userName, actionID, value, blockID string) url.Values {
	n := next()
	now := time.Now()
	p := map[string]any{
		"type": "block_actions", "token": "deprecated-verification-token", "api_app_id": "A0FAKE",
		"team":       map[string]any{"id": TeamID, "domain": "fake"},
		"user":       map[string]any{"id": userID, "username": userName, "name": userName, "team_id": TeamID},
		"trigger_id": fmt.Sprintf("%d.%d.trigger%06d", now.Unix(), n, n),
		"container":  map[string]any{"type": "view", "view_id": "VHOME"},
		"view":       map[string]any{"id": "VHOME", "type": "home", "callback_id": "rw_home"},
		"actions": []map[string]any{{
			"type": "button", "action_id": actionID, "block_id": blockID, "value": value,
			"text": map[string]any{"type": "plain_text", "text": actionID}, "action_ts": fmt.Sprintf("%d.%06d", now.Unix(), n%1_000_000),
		}},
		"state": map[string]any{"values": map[string]any{}},
	}
	return payloadForm(p)
}

// DeliverJSON posts a JSON body (an Events API delivery) to endpoint signed with secret.
func DeliverJSON(ctx context.Context, endpoint, secret string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header = Sign(secret, time.Now(), body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}
