package slackfake_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/rootwarden/rootwarden/internal/slackfake"
)

const token = "xoxb-fake-token"

func start(t *testing.T) (*slackfake.Server, *slack.Client) {
	t.Helper()
	srv := slackfake.New(slackfake.WithBotToken(token), slackfake.WithChannel("C1", "general"))
	url := srv.Start()
	t.Cleanup(srv.Close)
	return srv, slack.New(token, slack.OptionAPIURL(url))
}

func TestMessagesUpdatesAndThreads(t *testing.T) {
	srv, api := start(t)
	meta := slack.SlackMetadata{EventType: "rootwarden_case", EventPayload: map[string]any{"case_id": "c-1"}}
	btn := slack.NewActionBlock("acts", slack.NewButtonBlockElement("go", "v1", slack.NewTextBlockObject("plain_text", "Go", false, false)))
	seen := map[string]bool{}
	var first string
	for i := range 5 { // several in one second: ts must stay unique
		_, ts, err := api.PostMessage("C1", slack.MsgOptionText("hello", false), slack.MsgOptionBlocks(btn), slack.MsgOptionMetadata(meta))
		if err != nil {
			t.Fatal(err)
		}
		if seen[ts] {
			t.Fatalf("duplicate ts %s", ts)
		}
		seen[ts] = true
		if i == 0 {
			first = ts
		}
	}
	if _, _, _, err := api.UpdateMessage("C1", first, slack.MsgOptionText("edited", false)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessage("C1", slack.MsgOptionTS(first), slack.MsgOptionText("reply", false), slack.MsgOptionBroadcast()); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages("C1")
	if len(msgs) != 5 {
		t.Fatalf("top-level = %d, want 5", len(msgs))
	}
	m := msgs[0]
	if m.Text != "edited" || m.Edits != 1 || len(m.Replies) != 1 || !m.Replies[0].Broadcast || m.Metadata == nil ||
		len(m.Buttons()) != 1 || m.Buttons()[0].Value != "v1" {
		t.Fatalf("message = %+v", m)
	}
	// History: newest first; metadata only on request; broadcast replies included.
	h, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: "C1", Limit: 3, IncludeAllMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Messages) != 3 || !h.HasMore || h.Messages[0].ThreadTimestamp != first || h.Messages[1].Metadata.EventType != "rootwarden_case" {
		t.Fatalf("history page = %+v", h)
	}
	h2, _ := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: "C1", Cursor: h.ResponseMetaData.NextCursor})
	if len(h2.Messages) != 3 || h2.Messages[0].Metadata.EventType != "" {
		t.Fatalf("second page = %d messages, metadata %q (not requested)", len(h2.Messages), h2.Messages[0].Metadata.EventType)
	}
	replies, _, _, err := api.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: first})
	if err != nil || len(replies) != 2 {
		t.Fatalf("replies = %d, %v", len(replies), err)
	}
}

func TestFailuresLookLikeSlack(t *testing.T) {
	srv, api := start(t)
	srv.FailNext("chat.postMessage", 1, slackfake.RateLimited(2*time.Second))
	srv.FailNext("chat.postMessage", 1, slackfake.ServerError(503))
	srv.FailNext("chat.postMessage", 1, slackfake.APIError("channel_not_found"))
	srv.FailNext("chat.postMessage", 1, slackfake.LostResponse())

	_, _, err := api.PostMessage("C1", slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Errorf("429: %v", err)
	}
	_, _, err = api.PostMessage("C1", slack.MsgOptionText("x", false))
	var sc slack.StatusCodeError
	if !errors.As(err, &sc) || sc.Code != 503 {
		t.Errorf("503: %v", err)
	}
	_, _, err = api.PostMessage("C1", slack.MsgOptionText("x", false))
	if err == nil || err.Error() != "channel_not_found" {
		t.Errorf("api error: %v", err)
	}
	if _, _, err = api.PostMessage("C1", slack.MsgOptionText("kept", false)); err == nil {
		t.Errorf("lost response: no error")
	}
	if msgs := srv.Messages("C1"); len(msgs) != 1 || msgs[0].Text != "kept" {
		t.Errorf("after failures: %+v, want only the lost-response message", msgs)
	}
	if n := srv.Calls("chat.postMessage"); n != 4 {
		t.Errorf("calls = %d", n)
	}
	if _, err := slack.New("xoxb-other", slack.OptionAPIURL(srv.APIURL())).AuthTest(); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("wrong token: %v", err)
	}
	if _, _, err := api.PostMessage("C404", slack.MsgOptionText("x", false)); err == nil || err.Error() != "channel_not_found" {
		t.Errorf("unknown channel: %v", err)
	}
}

func TestGroupsUsersViewsEphemerals(t *testing.T) {
	srv, api := start(t)
	srv.AddUserGroup("S1", "U1", "U2")
	srv.AddUser("U1", "alice")
	if m, err := api.GetUserGroupMembers("S1"); err != nil || len(m) != 2 {
		t.Errorf("group members %v %v", m, err)
	}
	if _, err := api.GetUserGroupMembers("S404"); err == nil {
		t.Errorf("unknown group: no error")
	}
	if u, err := api.GetUserInfo("U1"); err != nil || u.Name != "alice" {
		t.Errorf("users.info %v %v", u, err)
	}
	if _, err := api.PostEphemeral("C1", "U1", slack.MsgOptionText("psst", false)); err != nil {
		t.Fatal(err)
	}
	if e := srv.Ephemerals(); len(e) != 1 || e[0].User != "U1" || e[0].Text != "psst" {
		t.Errorf("ephemerals %+v", e)
	}
	v, err := api.OpenView("trig-1", slack.ModalViewRequest{Type: slack.VTModal, CallbackID: "cb", PrivateMetadata: "pm",
		Title: slack.NewTextBlockObject("plain_text", "T", false, false)})
	if err != nil || v.ID == "" {
		t.Fatalf("views.open %v %v", v, err)
	}
	if vs := srv.Views(); len(vs) != 1 || vs[0].TriggerID != "trig-1" || vs[0].Request.PrivateMetadata != "pm" {
		t.Errorf("views %+v", vs)
	}
	ch, err := api.GetConversationInfo(&slack.GetConversationInfoInput{ChannelID: "C1"})
	if err != nil || !ch.IsMember || ch.Name != "general" {
		t.Errorf("conversations.info %+v %v", ch, err)
	}
}

func TestSignedInteractionsParseWithSlackGo(t *testing.T) {
	form := slackfake.BlockAction("U1", "alice", "rw_approve", "1|1-1", "C1", "1700000000.000100")
	body := []byte(form.Encode())
	h := slackfake.Sign("s3cret", time.Now(), body)
	sv, err := slack.NewSecretsVerifier(h, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = sv.Write(body)
	if err := sv.Ensure(); err != nil {
		t.Fatalf("slack-go rejects the fake's signature: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header = h
	ic, err := slack.InteractionCallbackParse(req)
	if err != nil {
		t.Fatal(err)
	}
	a := ic.ActionCallback.BlockActions
	if ic.Type != slack.InteractionTypeBlockActions || len(a) != 1 || a[0].ActionID != "rw_approve" || a[0].Value != "1|1-1" ||
		ic.User.ID != "U1" || ic.TriggerID == "" || ic.Container.MessageTs != "1700000000.000100" || a[0].ActionTs == "" {
		t.Fatalf("parsed = %+v", ic)
	}
	again := slackfake.BlockAction("U1", "alice", "rw_approve", "1|1-1", "C1", "1700000000.000100")
	if again.Get("payload") == form.Get("payload") {
		t.Errorf("two clicks built identical payloads (action_ts/trigger_id must differ)")
	}

	sub := slackfake.ViewSubmission("U1", "alice", slackfake.View{ID: "V1", Request: slack.ModalViewRequest{CallbackID: "cb", PrivateMetadata: "pm"}},
		map[string]map[string]slack.BlockAction{"b": {"r": slackfake.TextValue("why")}, "d": {"e": slackfake.DateValue("2030-01-02")}})
	req, _ = http.NewRequest(http.MethodPost, "/", strings.NewReader(sub.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ic, err = slack.InteractionCallbackParse(req)
	if err != nil {
		t.Fatal(err)
	}
	if ic.Type != slack.InteractionTypeViewSubmission || ic.View.ID != "V1" || ic.View.PrivateMetadata != "pm" ||
		ic.View.State.Values["b"]["r"].Value != "why" || ic.View.State.Values["d"]["e"].SelectedDate != "2030-01-02" {
		t.Fatalf("view submission = %+v", ic.View)
	}
}

func TestSocketModeEnvelopes(t *testing.T) {
	srv := slackfake.New(slackfake.WithAppToken("xapp-1-fake"))
	url := srv.Start()
	t.Cleanup(srv.Close)
	if _, err := srv.SendInteractive([]byte(`{}`)); err == nil {
		t.Errorf("send without a client: no error")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	smc := socketmode.New(slack.New("", slack.OptionAppLevelToken("xapp-1-fake"), slack.OptionAPIURL(url)))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = smc.RunContext(runCtx) }()
	defer func() { stop(); <-done }()
	go func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case evt := <-smc.Events:
				if evt.Type == socketmode.EventTypeInteractive {
					_ = smc.Ack(*evt.Request, map[string]string{"got": evt.Data.(slack.InteractionCallback).User.ID})
				}
			}
		}
	}()
	if err := srv.WaitSocket(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := srv.SendInteractive(slackfake.Payload(slackfake.BlockAction("U9", "x", "a", "v", "C1", "1.2")))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := srv.WaitAck(ctx, id)
	if err != nil || !strings.Contains(string(ack), `"got":"U9"`) {
		t.Fatalf("ack = %s, %v", ack, err)
	}
}

func TestEnforcedLimitsAnswer429WithRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	srv := slackfake.New(slackfake.WithBotToken(token), slackfake.WithChannel("C1", "general"),
		slackfake.WithChannel("C2", "other"), slackfake.WithLimits(slackfake.SlackLimits()), slackfake.WithClock(clock))
	url := srv.Start()
	t.Cleanup(srv.Close)
	api := slack.New(token, slack.OptionAPIURL(url))
	post := func(ch string) error {
		_, _, err := api.PostMessage(ch, slack.MsgOptionText("hi", false))
		return err
	}
	for i := range 3 { // the burst
		if err := post("C1"); err != nil {
			t.Fatalf("post %d within the burst: %v", i, err)
		}
	}
	var rl *slack.RateLimitedError
	if err := post("C1"); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("4th post in one instant: %v, want 429 with Retry-After 1s", err)
	}
	if err := post("C2"); err != nil {
		t.Fatalf("another channel has its own bucket: %v", err)
	}
	now = now.Add(time.Second)
	if err := post("C1"); err != nil {
		t.Fatalf("post a second later: %v", err)
	}
	if err := post("C1"); !errors.As(err, &rl) {
		t.Fatalf("second post in that second: %v, want 429", err)
	}
	if n := srv.RateLimitedCalls("chat.postMessage"); n != 2 {
		t.Errorf("RateLimitedCalls = %d, want 2", n)
	}
	// Tier 3: 5 at once, then 50 a minute.
	for i := range 5 {
		if _, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: "C1"}); err != nil {
			t.Fatalf("history %d: %v", i, err)
		}
	}
	if _, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: "C1"}); !errors.As(err, &rl) {
		t.Fatalf("6th history call: %v, want 429", err)
	}
	if n := srv.RateLimitedCalls(""); n != 3 {
		t.Errorf("RateLimitedCalls total = %d, want 3", n)
	}
}

func TestHangAndShares(t *testing.T) {
	srv := slackfake.New(slackfake.WithBotToken(token), slackfake.WithChannel("C1", "general"), slackfake.WithSeed(7))
	url := srv.Start()
	t.Cleanup(srv.Close)
	api := slack.New(token, slack.OptionAPIURL(url), slack.OptionHTTPClient(&http.Client{Timeout: 200 * time.Millisecond}))
	srv.FailNext("chat.postMessage", 1, slackfake.Hang())
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("hi", false)); err == nil {
		t.Fatalf("a hung call returned no error")
	}
	if len(srv.Messages("C1")) != 0 {
		t.Fatalf("a hung call took effect")
	}
	srv.FailShare("chat.postMessage", 0.3, slackfake.ServerError(500))
	failed := 0
	for range 200 {
		if _, _, err := api.PostMessage("C1", slack.MsgOptionText("hi", false)); err != nil {
			failed++
		}
	}
	if failed < 40 || failed > 80 || srv.Injected("chat.postMessage") != failed+1 {
		t.Fatalf("%d of 200 failed (injected %d), want about 60", failed, srv.Injected("chat.postMessage"))
	}
	srv.FailShare("chat.postMessage", 0, slackfake.Failure{})
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("hi", false)); err != nil {
		t.Fatalf("share removed, still failing: %v", err)
	}
}
