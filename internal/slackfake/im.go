package slackfake

// Direct messages: conversations.open (scope im:write) opens, or finds, the bot's DM
// channel with one user, answered as Slack does ({"ok":true,"channel":{"id":"D…"}},
// with "no_op" and "already_open" when it existed); chat.postMessage and chat.update
// then work on the D… channel like on any other. Users must be known (AddUser,
// AddUserWithEmail): an unknown one is "user_not_found", several users (a group DM)
// are not supported here.

import "strings"

// DMChannel is the id of the fake's DM channel with user.
func DMChannel(user string) string { return "D" + strings.TrimLeft(user, "UW") + "IM" }

func (s *Server) conversationsOpen(req request) map[string]any {
	users := strings.Split(req.get("users"), ",")
	if req.get("channel") != "" {
		return apiErr("not_supported") // reopening by channel id: rootwarden does not use it
	}
	if len(users) != 1 || users[0] == "" {
		if len(users) > 1 {
			return apiErr("not_supported")
		}
		return apiErr("users_list_not_supplied")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := strings.TrimSpace(users[0])
	if _, ok := s.users[u]; !ok {
		return apiErr("user_not_found")
	}
	id := DMChannel(u)
	if _, ok := s.channels[id]; ok {
		return map[string]any{"ok": true, "no_op": true, "already_open": true, "channel": map[string]any{"id": id}}
	}
	s.channels[id] = &channel{id: id, name: "", isPrivate: true, isMember: true}
	return map[string]any{"ok": true, "channel": map[string]any{"id": id}}
}

// DMs are the bot's messages in its DM with user (with their edits), oldest first.
func (s *Server) DMs(user string) []Message { return s.Messages(DMChannel(user)) }
