package slackfake_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/rootwarden/rootwarden/internal/slackfake"
)

func TestConversationsMembersPagesWithACursor(t *testing.T) {
	srv, api := start(t)
	var want []string
	for i := range 7 {
		want = append(want, fmt.Sprintf("U%02d", i))
	}
	srv.AddPrivateChannel("G1", "payments-sec", want...)
	var got []string
	params := &slack.GetUsersInConversationParameters{ChannelID: "G1", Limit: 3}
	pages := 0
	for {
		ids, cursor, err := api.GetUsersInConversation(params)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(ids) > 3 {
			t.Fatalf("page of %d members with limit 3", len(ids))
		}
		got = append(got, ids...)
		if cursor == "" {
			break
		}
		params.Cursor = cursor
	}
	want = append(want, slackfake.BotUserID)
	slices.Sort(want)
	if !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("members %v in %d pages, want %v in 3", got, pages, want)
	}
	srv.RemoveChannelMember("G1", "U03")
	ids, _, _ := api.GetUsersInConversation(&slack.GetUsersInConversationParameters{ChannelID: "G1", Limit: 1000})
	if slices.Contains(ids, "U03") || len(ids) != 7 {
		t.Errorf("after removal: %v", ids)
	}
	if _, _, err := api.GetUsersInConversation(&slack.GetUsersInConversationParameters{ChannelID: "G1", Cursor: "bm9wZQ=="}); err == nil || err.Error() != "invalid_cursor" {
		t.Errorf("bad cursor: %v, want invalid_cursor", err)
	}
	if _, _, err := api.GetUsersInConversation(&slack.GetUsersInConversationParameters{ChannelID: "G404"}); err == nil || err.Error() != "channel_not_found" {
		t.Errorf("unknown channel: %v, want channel_not_found", err)
	}
	// A channel whose members were never set: every known user and the bot.
	srv.AddUser("U9", "nine")
	ids, _, _ = api.GetUsersInConversation(&slack.GetUsersInConversationParameters{ChannelID: "C1"})
	if !slices.Contains(ids, "U9") || !slices.Contains(ids, slackfake.BotUserID) {
		t.Errorf("default members of C1 = %v", ids)
	}
}

func TestMemberEventsParseAsSlackEvents(t *testing.T) {
	for _, body := range [][]byte{slackfake.MemberLeftChannel("U1", "G1"), slackfake.MemberJoinedChannel("U1", "G1")} {
		ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.InnerEvent.Data.(type) {
		case *slackevents.MemberLeftChannelEvent:
			if e.User != "U1" || e.Channel != "G1" {
				t.Errorf("left: %+v", e)
			}
		case *slackevents.MemberJoinedChannelEvent:
			if e.User != "U1" || e.Channel != "G1" {
				t.Errorf("joined: %+v", e)
			}
		default:
			t.Errorf("parsed as %T", ev.InnerEvent.Data)
		}
	}
}
