// Package slackfake is a local Slack Web API server for tests and `rootwarden demo`.
// It speaks Slack's wire format (form-encoded or JSON requests, {"ok":…} answers,
// 429 with Retry-After, 5xx with an HTML body) so that the real slack-go client talks
// to it unchanged, and it records what it receives: top-level messages with their
// current text, blocks and metadata after every chat.update, thread replies,
// ephemeral messages and opened modals. Failures can be injected per method (rate
// limits, server errors, Slack error codes, a response lost after the call took
// effect, or no answer at all), for the next calls (FailNext) or a seeded share of
// them (FailShare), and Slack's rate limits can be enforced (WithLimits). It also
// serves Socket Mode (apps.connections.open and a /ws websocket) and builds
// interaction requests signed exactly as Slack signs them. It holds no real tokens
// and listens on loopback only.
package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
)

// Identity of the fake workspace and its bot.
const (
	TeamID    = "T0FAKE"
	BotUserID = "U0BOT"
	BotID     = "B0BOT"
)

// Message is a message as the fake holds it: a top-level message (with its thread
// replies) or a reply.
type Message struct {
	Channel   string
	TS        string
	ThreadTS  string // "" for a top-level message
	User      string
	Text      string
	Blocks    slack.Blocks
	RawBlocks json.RawMessage
	Metadata  *slack.SlackMetadata
	Broadcast bool // reply_broadcast: the reply also shows in the channel
	Edits     int  // number of chat.update calls applied
	Replies   []Message
}

// Button is one button found in a message's blocks.
type Button struct {
	BlockID  string
	ActionID string
	Value    string
	Text     string
	Style    string
	Confirm  bool // has a confirm dialog
}

// Buttons lists the buttons of the message's action blocks in order.
func (m Message) Buttons() []Button {
	var out []Button
	for _, b := range m.Blocks.BlockSet {
		ab, ok := b.(*slack.ActionBlock)
		if !ok || ab.Elements == nil {
			continue
		}
		for _, e := range ab.Elements.ElementSet {
			be, ok := e.(*slack.ButtonBlockElement)
			if !ok {
				continue
			}
			bt := Button{BlockID: ab.BlockID, ActionID: be.ActionID, Value: be.Value, Style: string(be.Style), Confirm: be.Confirm != nil}
			if be.Text != nil {
				bt.Text = be.Text.Text
			}
			out = append(out, bt)
		}
	}
	return out
}

// AllText is the message's fallback text followed by every "text" string found in its
// blocks, one per line: handy for asserting what a reader sees.
func (m Message) AllText() string {
	var parts []string
	parts = append(parts, m.Text)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if s, ok := x[k].(string); ok && k == "text" {
					parts = append(parts, s)
					continue
				}
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	var v any
	if len(m.RawBlocks) > 0 && json.Unmarshal(m.RawBlocks, &v) == nil {
		walk(v)
	}
	return strings.Join(parts, "\n")
}

// Ephemeral is a chat.postEphemeral call.
type Ephemeral struct {
	Channel  string
	User     string
	TS       string
	ThreadTS string
	Text     string
	Blocks   json.RawMessage
}

// View is a modal opened with views.open.
type View struct {
	ID        string
	TriggerID string
	Hash      string
	Request   slack.ModalViewRequest
	Raw       json.RawMessage
}

// FailKind says how an injected failure looks on the wire.
type FailKind int

const (
	// FailRateLimited answers 429 with a Retry-After header.
	FailRateLimited FailKind = iota + 1
	// FailStatus answers an HTTP error status (5xx) with an HTML body.
	FailStatus
	// FailAPIError answers 200 {"ok":false,"error":<code>}.
	FailAPIError
	// FailLostResponse performs the call, then answers 500: the client believes it
	// failed although it took effect (a crash or timeout after Slack acted).
	FailLostResponse
)

// Failure is an injected failure; build it with RateLimited, ServerError, APIError
// or LostResponse.
type Failure struct {
	Kind       FailKind
	Status     int
	RetryAfter time.Duration
	Error      string
}

// RateLimited is a 429 answer with Retry-After (whole seconds, rounded up).
func RateLimited(retryAfter time.Duration) Failure {
	return Failure{Kind: FailRateLimited, Status: http.StatusTooManyRequests, RetryAfter: retryAfter}
}

// ServerError is an HTTP error answer such as 500 or 503.
func ServerError(status int) Failure { return Failure{Kind: FailStatus, Status: status} }

// APIError is a Slack error code answer such as "channel_not_found".
func APIError(code string) Failure { return Failure{Kind: FailAPIError, Error: code} }

// LostResponse lets the call take effect and then answers 500.
func LostResponse() Failure {
	return Failure{Kind: FailLostResponse, Status: http.StatusInternalServerError}
}

type channel struct {
	id, name  string
	isPrivate bool
	isMember  bool
	msgs      []*Message // top-level and broadcast replies, oldest first
}

// Option configures a Server.
type Option func(*Server)

// WithBotToken makes every Web API call other than apps.connections.open require
// this token (else invalid_auth). Without it any token is accepted.
func WithBotToken(token string) Option { return func(s *Server) { s.botToken = token } }

// WithAppToken makes apps.connections.open require this app-level token.
func WithAppToken(token string) Option { return func(s *Server) { s.appToken = token } }

// WithChannel adds a public channel the bot is a member of.
func WithChannel(id, name string) Option {
	return func(s *Server) { s.AddChannel(id, name) }
}

// Server is the fake. Create it with New, then Start it.
type Server struct {
	botToken, appToken string

	mu         sync.Mutex
	srv        *httptest.Server
	channels   map[string]*channel
	users      map[string]slack.User
	members    map[string][]string // channel → its members, when set (members.go)
	groups     map[string][]string
	ephemerals []Ephemeral
	views      []View
	calls      map[string]int
	failures   map[string][]Failure
	lastTS     int64 // microseconds of the last ts handed out
	seq        int

	// Fault shares, enforced limits and their counts (faults.go, limits.go).
	shares   map[string][]share
	injected map[string]int
	rnd      *rand.Rand
	limits   *Limits
	now      func() time.Time
	buckets  map[string]*bucket
	limited  map[string]int
	closed   chan struct{}
	once     sync.Once

	sock socketState
	oc   onCallState // oncall.go
	base string      // set by Handler: the address the caller serves the fake at
}

// New returns a stopped fake with no channels, users or user groups.
func New(opts ...Option) *Server {
	s := &Server{
		channels: map[string]*channel{},
		users:    map[string]slack.User{},
		groups:   map[string][]string{},
		calls:    map[string]int{},
		failures: map[string][]Failure{},
		shares:   map[string][]share{},
		injected: map[string]int{},
		buckets:  map[string]*bucket{},
		limited:  map[string]int{},
		closed:   make(chan struct{}),
		rnd:      rand.New(rand.NewPCG(1, 2)),
	}
	s.sock.init()
	for _, o := range opts {
		o(s)
	}
	return s
}

// Start serves on a loopback port and returns the Web API base URL ("http://…/api/"),
// the value for slack.OptionAPIURL and ROOTWARDEN_SLACK_API_URL.
func (s *Server) Start() string {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/ws", s.serveWS)
	s.srv = httptest.NewServer(mux)
	return s.APIURL()
}

// APIURL is the Web API base URL of a started server.
func (s *Server) APIURL() string { return s.baseURL() + "/api/" }

// Handler serves the Web API (/api/…) and Socket Mode (/ws) for a caller that runs
// its own server at base (e.g. "http://127.0.0.1:4566"), as `rootwarden sim` does;
// Start is then not used.
func (s *Server) Handler(base string) http.Handler {
	s.base = strings.TrimSuffix(base, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/ws", s.serveWS)
	return mux
}

func (s *Server) baseURL() string {
	if s.srv != nil {
		return s.srv.URL
	}
	return s.base
}

// Close stops the server and drops any Socket Mode connection.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closed) })
	s.sock.closeAll()
	if s.srv != nil {
		s.srv.CloseClientConnections()
		s.srv.Close()
	}
}

// AddChannel adds a public channel the bot is a member of.
func (s *Server) AddChannel(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.channels[id]; !ok {
		s.channels[id] = &channel{id: id, name: name, isMember: true}
	}
}

// SetMember sets whether the bot is a member of the channel (conversations.info's
// is_member; posts to a channel it is not in fail with not_in_channel).
func (s *Server) SetMember(channelID string, member bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.channels[channelID]; ok {
		c.isMember = member
	}
}

// AddUser adds a user known to users.info.
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = slack.User{ID: id, Name: name, RealName: name, TeamID: TeamID}
}

// AddUserGroup sets the members of a user group (usergroups.users.list).
func (s *Server) AddUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = append([]string(nil), members...)
}

// FailNext makes the next n calls of method (e.g. "chat.postMessage") fail as f.
func (s *Server) FailNext(method string, n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures[method] = append(s.failures[method], f)
	}
}

// Calls is how many requests reached method, failed ones included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Messages returns the channel's top-level messages, oldest first, each with its
// current content and its thread replies.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[channelID]
	if c == nil {
		return nil
	}
	var out []Message
	for _, m := range c.msgs {
		if m.ThreadTS != "" {
			continue
		}
		out = append(out, copyMsg(m))
	}
	return out
}

// Message returns one top-level message by ts.
func (s *Server) Message(channelID, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.find(channelID, ts); m != nil {
		return copyMsg(m), true
	}
	return Message{}, false
}

// Replies returns the thread replies under the message ts.
func (s *Server) Replies(channelID, ts string) []Message {
	m, _ := s.Message(channelID, ts)
	return m.Replies
}

// DeleteMessage removes a top-level message and its thread, as a person deleting it
// in Slack would; it reports whether the message existed.
func (s *Server) DeleteMessage(channelID, ts string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[channelID]
	if c == nil {
		return false
	}
	for i, m := range c.msgs {
		if m.TS == ts && m.ThreadTS == "" {
			c.msgs = append(c.msgs[:i], c.msgs[i+1:]...)
			return true
		}
	}
	return false
}

// Ephemerals returns every ephemeral message, oldest first.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ephemeral(nil), s.ephemerals...)
}

// Views returns every modal opened, oldest first.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]View(nil), s.views...)
}

// PostMessage puts a message into a channel as if someone (e.g. an earlier run of the
// bot) had posted it, and returns its ts.
func (s *Server) PostMessage(m Message) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[m.Channel]
	if c == nil {
		c = &channel{id: m.Channel, name: m.Channel, isMember: true}
		s.channels[m.Channel] = c
	}
	m.TS = s.nextTS()
	m.Replies = nil
	if m.User == "" {
		m.User = BotUserID
	}
	if len(m.RawBlocks) > 0 {
		_ = json.Unmarshal(m.RawBlocks, &m.Blocks)
	}
	c.msgs = append(c.msgs, &m)
	return m.TS
}

func copyMsg(m *Message) Message {
	out := *m
	out.Replies = append([]Message(nil), m.Replies...)
	return out
}

func (s *Server) find(channelID, ts string) *Message {
	c := s.channels[channelID]
	if c == nil {
		return nil
	}
	for _, m := range c.msgs {
		if m.TS == ts && m.ThreadTS == "" {
			return m
		}
	}
	return nil
}

// nextTS hands out Slack-style timestamps, strictly increasing even within one
// second. Callers hold s.mu.
func (s *Server) nextTS() string {
	now := time.Now().UnixMicro()
	if now <= s.lastTS {
		now = s.lastTS + 100
	}
	s.lastTS = now
	return fmt.Sprintf("%d.%06d", now/1e6, now%1e6)
}

func tsMicros(ts string) int64 {
	sec, frac, _ := strings.Cut(ts, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0
	}
	frac = (frac + "000000")[:6]
	f, _ := strconv.ParseInt(frac, 10, 64)
	return n*1e6 + f
}

// ---- Web API ----

type request struct {
	method string
	form   url.Values
	json   map[string]json.RawMessage
	token  string
}

func (r request) get(k string) string {
	if r.form != nil {
		if v := r.form.Get(k); v != "" {
			return v
		}
	}
	if raw, ok := r.json[k]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return string(raw)
	}
	return ""
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	req := request{method: method}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req.json); err != nil {
				writeJSON(w, map[string]any{"ok": false, "error": "invalid_json"})
				return
			}
		}
	} else {
		req.form, _ = url.ParseQuery(string(body))
		if q := r.URL.Query(); len(q) > 0 {
			for k, v := range q {
				if req.form.Get(k) == "" {
					req.form[k] = v
				}
			}
		}
	}
	req.token = req.get("token")
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		req.token = strings.TrimPrefix(a, "Bearer ")
	}

	s.mu.Lock()
	s.calls[method]++
	var fail *Failure
	if q := s.failures[method]; len(q) > 0 {
		f := q[0]
		s.failures[method] = q[1:]
		fail = &f
	} else {
		fail = s.drawShare(method)
	}
	if fail != nil {
		s.injected[method]++
	} else if wait, ok := s.admit(method, req); !ok {
		s.limited[method]++
		fail = &Failure{Kind: FailRateLimited, RetryAfter: wait}
	}
	s.mu.Unlock()

	if fail != nil {
		switch fail.Kind {
		case FailHang:
			s.hang(r)
			return
		case FailRateLimited:
			secs := int((fail.RetryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
			return
		case FailStatus:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(fail.Status)
			_, _ = io.WriteString(w, "<html><body>Slack is having trouble</body></html>")
			return
		case FailAPIError:
			writeJSON(w, map[string]any{"ok": false, "error": fail.Error})
			return
		case FailLostResponse:
			s.dispatch(httptest.NewRecorder(), req)
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "<html><body>upstream timeout</body></html>")
			return
		}
	}
	s.dispatch(w, req)
}

func (s *Server) dispatch(w http.ResponseWriter, req request) {
	want := s.botToken
	if req.method == "apps.connections.open" {
		want = s.appToken
	}
	if req.token == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		return
	}
	if want != "" && req.token != want {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	if resp, ok := s.dispatchOnCall(req); ok {
		writeJSON(w, resp)
		return
	}
	var resp map[string]any
	switch req.method {
	case "auth.test":
		resp = map[string]any{"ok": true, "url": "https://fake.slack.test/", "team": "Fake", "user": "rootwarden",
			"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID}
	case "conversations.info":
		resp = s.conversationsInfo(req)
	case "chat.postMessage":
		resp = s.postMessage(req)
	case "chat.update":
		resp = s.update(req)
	case "conversations.open":
		resp = s.conversationsOpen(req)
	case "chat.postEphemeral":
		resp = s.postEphemeral(req)
	case "conversations.history":
		resp = s.history(req)
	case "conversations.replies":
		resp = s.replies(req)
	case "conversations.members":
		resp = s.conversationsMembers(req)
	case "views.open":
		resp = s.viewsOpen(req)
	case "usergroups.users.list":
		s.mu.Lock()
		members, ok := s.groups[req.get("usergroup")]
		s.mu.Unlock()
		if !ok {
			resp = map[string]any{"ok": false, "error": "no_such_subteam"}
		} else {
			resp = map[string]any{"ok": true, "users": append([]string{}, members...)}
		}
	case "users.info":
		s.mu.Lock()
		u, ok := s.users[req.get("user")]
		s.mu.Unlock()
		if !ok {
			resp = map[string]any{"ok": false, "error": "user_not_found"}
		} else {
			resp = map[string]any{"ok": true, "user": u}
		}
	case "apps.connections.open":
		resp = map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.baseURL(), "http") + "/ws"}
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "unknown method")
		return
	}
	writeJSON(w, resp)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func apiErr(code string) map[string]any { return map[string]any{"ok": false, "error": code} }

func (s *Server) conversationsInfo(req request) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[req.get("channel")]
	if c == nil {
		return apiErr("channel_not_found")
	}
	return map[string]any{"ok": true, "channel": map[string]any{
		"id": c.id, "name": c.name, "is_channel": !c.isPrivate, "is_group": c.isPrivate,
		"is_private": c.isPrivate, "is_member": c.isMember, "created": 1700000000,
	}}
}

// channelFor finds a channel the bot may write to; callers hold s.mu.
func (s *Server) channelFor(id string) (*channel, string) {
	c := s.channels[id]
	if c == nil {
		return nil, "channel_not_found"
	}
	if !c.isMember {
		return nil, "not_in_channel"
	}
	return c, ""
}

func (s *Server) postMessage(req request) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.channelFor(req.get("channel"))
	if e != "" {
		return apiErr(e)
	}
	text, blocks := req.get("text"), req.get("blocks")
	if text == "" && blocks == "" {
		return apiErr("no_text")
	}
	m := &Message{Channel: c.id, User: BotUserID, Text: text, ThreadTS: req.get("thread_ts"),
		Broadcast: req.get("reply_broadcast") == "true"}
	if blocks != "" {
		m.RawBlocks = json.RawMessage(blocks)
		if err := json.Unmarshal(m.RawBlocks, &m.Blocks); err != nil {
			return apiErr("invalid_blocks")
		}
	}
	if md := req.get("metadata"); md != "" {
		var meta slack.SlackMetadata
		if err := json.Unmarshal([]byte(md), &meta); err != nil || meta.EventType == "" {
			return apiErr("invalid_metadata_format")
		}
		m.Metadata = &meta
	}
	if m.ThreadTS != "" {
		parent := s.find(c.id, m.ThreadTS)
		if parent == nil {
			return apiErr("thread_not_found")
		}
		m.TS = s.nextTS()
		parent.Replies = append(parent.Replies, *m)
		if m.Broadcast {
			c.msgs = append(c.msgs, m)
		}
	} else {
		m.TS = s.nextTS()
		c.msgs = append(c.msgs, m)
	}
	return map[string]any{"ok": true, "channel": c.id, "ts": m.TS, "message": wireMsg(m, true)}
}

func (s *Server) update(req request) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.channelFor(req.get("channel"))
	if e != "" {
		return apiErr(e)
	}
	m := s.find(c.id, req.get("ts"))
	if m == nil {
		return apiErr("message_not_found")
	}
	if t := req.get("text"); t != "" {
		m.Text = t
	}
	if b := req.get("blocks"); b != "" {
		var blocks slack.Blocks
		if err := json.Unmarshal([]byte(b), &blocks); err != nil {
			return apiErr("invalid_blocks")
		}
		m.RawBlocks, m.Blocks = json.RawMessage(b), blocks
	}
	m.Edits++
	return map[string]any{"ok": true, "channel": c.id, "ts": m.TS, "text": m.Text, "message": wireMsg(m, true)}
}

func (s *Server) postEphemeral(req request) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.channelFor(req.get("channel"))
	if e != "" {
		return apiErr(e)
	}
	if req.get("user") == "" {
		return apiErr("user_not_found")
	}
	ep := Ephemeral{Channel: c.id, User: req.get("user"), TS: s.nextTS(), ThreadTS: req.get("thread_ts"),
		Text: req.get("text"), Blocks: json.RawMessage(req.get("blocks"))}
	s.ephemerals = append(s.ephemerals, ep)
	return map[string]any{"ok": true, "message_ts": ep.TS}
}

func wireMsg(m *Message, withMeta bool) map[string]any {
	out := map[string]any{"type": "message", "user": m.User, "bot_id": BotID, "text": m.Text, "ts": m.TS}
	if len(m.RawBlocks) > 0 {
		out["blocks"] = m.RawBlocks
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
		if m.Broadcast {
			out["subtype"] = "thread_broadcast"
		}
	} else if len(m.Replies) > 0 {
		out["thread_ts"] = m.TS
		out["reply_count"] = len(m.Replies)
		out["latest_reply"] = m.Replies[len(m.Replies)-1].TS
	}
	if m.Edits > 0 {
		out["edited"] = map[string]any{"user": BotUserID, "ts": m.TS}
	}
	if withMeta && m.Metadata != nil {
		out["metadata"] = m.Metadata
	}
	return out
}

func (s *Server) history(req request) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.channelFor(req.get("channel"))
	if e != "" {
		return apiErr(e)
	}
	limit, _ := strconv.Atoi(req.get("limit"))
	if limit <= 0 || limit > 999 {
		limit = 100
	}
	oldest, latest := tsMicros(req.get("oldest")), tsMicros(req.get("latest"))
	inclusive := req.get("inclusive") == "1" || req.get("inclusive") == "true"
	withMeta := req.get("include_all_metadata") == "1" || req.get("include_all_metadata") == "true"
	start, _ := strconv.Atoi(req.get("cursor"))
	var sel []*Message
	for i := len(c.msgs) - 1; i >= 0; i-- { // newest first, as Slack does
		m := c.msgs[i]
		t := tsMicros(m.TS)
		if oldest > 0 && (t < oldest || (t == oldest && !inclusive)) {
			continue
		}
		if latest > 0 && (t > latest || (t == latest && !inclusive)) {
			continue
		}
		sel = append(sel, m)
	}
	if start > len(sel) {
		start = len(sel)
	}
	end := min(start+limit, len(sel))
	msgs := make([]map[string]any, 0, end-start)
	for _, m := range sel[start:end] {
		msgs = append(msgs, wireMsg(m, withMeta))
	}
	resp := map[string]any{"ok": true, "messages": msgs, "has_more": end < len(sel)}
	if end < len(sel) {
		resp["response_metadata"] = map[string]any{"next_cursor": strconv.Itoa(end)}
	}
	return resp
}

func (s *Server) replies(req request) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.channelFor(req.get("channel"))
	if e != "" {
		return apiErr(e)
	}
	parent := s.find(c.id, req.get("ts"))
	if parent == nil {
		return apiErr("thread_not_found")
	}
	withMeta := req.get("include_all_metadata") == "1" || req.get("include_all_metadata") == "true"
	msgs := []map[string]any{wireMsg(parent, withMeta)}
	for i := range parent.Replies {
		msgs = append(msgs, wireMsg(&parent.Replies[i], withMeta))
	}
	return map[string]any{"ok": true, "messages": msgs, "has_more": false}
}

func (s *Server) viewsOpen(req request) map[string]any {
	trigger := req.get("trigger_id")
	if trigger == "" {
		return apiErr("invalid_arguments")
	}
	raw := req.json["view"]
	if len(raw) == 0 {
		if v := req.get("view"); v != "" {
			raw = json.RawMessage(v)
		}
	}
	var mv slack.ModalViewRequest
	if err := json.Unmarshal(raw, &mv); err != nil || mv.Type == "" {
		return apiErr("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	v := View{ID: fmt.Sprintf("V%06d", s.seq), TriggerID: trigger, Hash: fmt.Sprintf("%d.hash", s.seq), Request: mv, Raw: raw}
	s.views = append(s.views, v)
	return map[string]any{"ok": true, "view": map[string]any{
		"id": v.ID, "team_id": TeamID, "type": mv.Type, "callback_id": mv.CallbackID,
		"private_metadata": mv.PrivateMetadata, "hash": v.Hash, "blocks": mv.Blocks, "title": mv.Title,
	}}
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
