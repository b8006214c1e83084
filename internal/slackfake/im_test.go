package slackfake_test

import (
	"context"
	"testing"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/slackfake"
)

func TestDirectMessagesOpenOnceAndRefuseUnknownUsers(t *testing.T) {
	s, api := start(t)
	s.AddUser("U0OWNER", "olivia")
	ctx := context.Background()
	ch, noOp, already, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0OWNER"}})
	if err != nil || ch.ID != slackfake.DMChannel("U0OWNER") || noOp || already {
		t.Fatalf("first open: %+v %v %v %v", ch, noOp, already, err)
	}
	ch2, noOp, already, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0OWNER"}})
	if err != nil || ch2.ID != ch.ID || !noOp || !already {
		t.Fatalf("second open: %+v %v %v %v", ch2, noOp, already, err)
	}
	if _, _, err := api.PostMessageContext(ctx, ch.ID, slack.MsgOptionText("was this you?", false)); err != nil {
		t.Fatal(err)
	}
	if dms := s.DMs("U0OWNER"); len(dms) != 1 || dms[0].Text != "was this you?" {
		t.Fatalf("DMs: %+v", dms)
	}
	if _, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0NOBODY"}}); err == nil || err.Error() != "user_not_found" {
		t.Fatalf("unknown user: %v", err)
	}
}
