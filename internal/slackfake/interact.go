package slackfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
)

// Sign returns the headers Slack sends with a request body: X-Slack-Request-Timestamp
// and X-Slack-Signature (v0 HMAC-SHA256 of "v0:<ts>:<body>" with the signing secret),
// plus the form Content-Type.
func Sign(secret string, ts time.Time, body []byte) http.Header {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	_, _ = fmt.Fprintf(mac, "v0:%s:", stamp)
	_, _ = mac.Write(body)
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("X-Slack-Request-Timestamp", stamp)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

var uniq atomic.Int64

// next returns a process-unique number for action_ts and trigger ids.
func next() int64 { return uniq.Add(1) }

// BlockAction builds the form body Slack posts when userID presses the button
// (actionID, value) of the message messageTS in channel: payload=<block_actions JSON>.
// Every call gets a fresh action_ts and trigger_id, as two real clicks would.
func BlockAction(userID, userName, actionID, value, channel, messageTS string) url.Values {
	n := next()
	now := time.Now()
	actionTS := fmt.Sprintf("%d.%06d", now.Unix(), n%1_000_000)
	p := map[string]any{
		"type":       "block_actions",
		"token":      "deprecated-verification-token",
		"api_app_id": "A0FAKE",
		"team":       map[string]any{"id": TeamID, "domain": "fake"},
		"user":       map[string]any{"id": userID, "username": userName, "name": userName, "team_id": TeamID},
		"trigger_id": fmt.Sprintf("%d.%d.trigger%06d", now.Unix(), n, n),
		"container": map[string]any{"type": "message", "message_ts": messageTS, "channel_id": channel,
			"is_ephemeral": false},
		"channel":      map[string]any{"id": channel, "name": channel},
		"message":      map[string]any{"type": "message", "ts": messageTS, "user": BotUserID, "bot_id": BotID},
		"response_url": "https://hooks.slack.test/actions/" + strconv.FormatInt(n, 10),
		"actions": []map[string]any{{
			"type": "button", "action_id": actionID, "block_id": "rw_actions", "value": value,
			"text": map[string]any{"type": "plain_text", "text": actionID}, "action_ts": actionTS,
		}},
		"state": map[string]any{"values": map[string]any{}},
	}
	return payloadForm(p)
}

// TextValue is the state of a plain_text_input for ViewSubmission.
func TextValue(s string) slack.BlockAction {
	return slack.BlockAction{Type: "plain_text_input", Value: s}
}

// DateValue is the state of a datepicker ("2006-01-02", or "" for none).
func DateValue(d string) slack.BlockAction {
	return slack.BlockAction{Type: "datepicker", SelectedDate: d}
}

// ViewSubmission builds the form body Slack posts when userID submits the modal v (as
// recorded by Views) with the given input state: values[blockID][actionID].
func ViewSubmission(userID, userName string, v View, values map[string]map[string]slack.BlockAction) url.Values {
	state := map[string]map[string]map[string]any{}
	for b, acts := range values {
		state[b] = map[string]map[string]any{}
		for a, ba := range acts {
			e := map[string]any{"type": string(ba.Type)}
			switch ba.Type {
			case "datepicker":
				if ba.SelectedDate != "" {
					e["selected_date"] = ba.SelectedDate
				} else {
					e["selected_date"] = nil
				}
			default:
				e["value"] = ba.Value
			}
			state[b][a] = e
		}
	}
	p := map[string]any{
		"type":       "view_submission",
		"token":      "deprecated-verification-token",
		"api_app_id": "A0FAKE",
		"team":       map[string]any{"id": TeamID, "domain": "fake"},
		"user":       map[string]any{"id": userID, "username": userName, "name": userName, "team_id": TeamID},
		"trigger_id": fmt.Sprintf("%d.trigger%06d", time.Now().Unix(), next()),
		"view": map[string]any{
			"id": v.ID, "team_id": TeamID, "type": "modal", "callback_id": v.Request.CallbackID,
			"private_metadata": v.Request.PrivateMetadata, "hash": v.Hash, "blocks": v.Request.Blocks,
			"state": map[string]any{"values": state},
		},
		"response_urls": []any{},
	}
	return payloadForm(p)
}

func payloadForm(p any) url.Values {
	b, err := json.Marshal(p)
	if err != nil {
		panic(err) // only maps of plain values: cannot fail
	}
	return url.Values{"payload": {string(b)}}
}

// Payload returns the JSON of a form built by BlockAction or ViewSubmission, as
// Socket Mode carries it in an envelope.
func Payload(form url.Values) json.RawMessage { return json.RawMessage(form.Get("payload")) }

// Deliver posts form to endpoint signed with secret at the current time, as Slack
// delivers an interaction, and returns the status and body of the answer.
func Deliver(ctx context.Context, endpoint, secret string, form url.Values) (int, []byte, error) {
	body := []byte(form.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header = Sign(secret, time.Now(), body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}
