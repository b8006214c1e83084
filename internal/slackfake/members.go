package slackfake

// conversations.members and the member_joined_channel / member_left_channel events.
// A channel whose members were never set has every user the fake knows (and the bot)
// as members: a workspace where everyone is in the case channel.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AddPrivateChannel adds a private channel the bot is a member of, with members.
func (s *Server) AddPrivateChannel(id, name string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = &channel{id: id, name: name, isPrivate: true, isMember: true}
	s.setMembers(id, members)
}

// SetChannelMembers sets the channel's members (the bot is added when it is in it).
func (s *Server) SetChannelMembers(channelID string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setMembers(channelID, members)
}

// RemoveChannelMember takes user out of the channel (Slack would then send
// member_left_channel: see MemberLeftChannel).
func (s *Server) RemoveChannelMember(channelID, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setMembers(channelID, slices.DeleteFunc(slices.Clone(s.membersOf(channelID)), func(u string) bool { return u == user }))
}

func (s *Server) setMembers(channelID string, members []string) {
	if s.members == nil {
		s.members = map[string][]string{}
	}
	s.members[channelID] = slices.Compact(slices.Sorted(slices.Values(members)))
}

// membersOf lists the channel's members, sorted; callers hold s.mu.
func (s *Server) membersOf(channelID string) []string {
	if m, ok := s.members[channelID]; ok {
		out := slices.Clone(m)
		if c := s.channels[channelID]; c != nil && c.isMember && !slices.Contains(out, BotUserID) {
			out = append(out, BotUserID)
			slices.Sort(out)
		}
		return out
	}
	out := []string{BotUserID}
	for id := range s.users {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// conversationsMembers serves conversations.members as Slack does: limit 1–1000
// (default 100), an opaque cursor in response_metadata.next_cursor ("" on the last
// page), channel_not_found for an unknown channel or a private one the bot is not in.
func (s *Server) conversationsMembers(req request) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[req.get("channel")]
	if c == nil || c.isPrivate && !c.isMember {
		return apiErr("channel_not_found")
	}
	limit := 100
	if l := req.get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return apiErr("invalid_limit")
		}
		limit = min(n, 1000)
	}
	all := s.membersOf(c.id)
	start := 0
	if cur := req.get("cursor"); cur != "" {
		raw, err := base64.StdEncoding.DecodeString(cur)
		after, ok := strings.CutPrefix(string(raw), "user:")
		if err != nil || !ok {
			return apiErr("invalid_cursor")
		}
		start, _ = slices.BinarySearch(all, after)
	}
	end := min(start+limit, len(all))
	next := ""
	if end < len(all) {
		next = base64.StdEncoding.EncodeToString([]byte("user:" + all[end]))
	}
	return map[string]any{"ok": true, "members": slices.Clone(all[start:end]),
		"response_metadata": map[string]any{"next_cursor": next}}
}

// MemberLeftChannel is the Events API body Slack posts when user leaves (or is
// removed from) a channel the bot is in.
func MemberLeftChannel(user, channel string) []byte {
	return memberEvent("member_left_channel", user, channel)
}

// MemberJoinedChannel is the Events API body Slack posts when user joins a channel
// the bot is in.
func MemberJoinedChannel(user, channel string) []byte {
	return memberEvent("member_joined_channel", user, channel)
}

func memberEvent(typ, user, channel string) []byte {
	n := next()
	ev := map[string]any{"type": typ, "user": user, "channel": channel, "channel_type": "G", "team": TeamID,
		"event_ts": fmt.Sprintf("%d.%06d", time.Now().Unix(), n%1_000_000)}
	if typ == "member_joined_channel" {
		ev["inviter"] = BotUserID
	}
	b, _ := json.Marshal(map[string]any{
		"token": "deprecated-verification-token", "team_id": TeamID, "api_app_id": "A0FAKE", "type": "event_callback",
		"event_id": fmt.Sprintf("Ev%08d", n), "event_time": time.Now().Unix(), "event": ev,
	})
	return b
}
