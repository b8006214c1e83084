package slackfake

// The Web API methods of rootwarden's on-call flows: users.lookupByEmail (owners and
// on-call people), views.publish (App Home), and the recording of both. They are
// served through one hook in dispatch.

import (
	"encoding/json"
	"fmt"
	"strings"

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
