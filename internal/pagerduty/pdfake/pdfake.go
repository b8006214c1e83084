// Package pdfake is a local PagerDuty for tests and the demo. It speaks both APIs'
// wire format: REST v2 GET /oncalls (Authorization "Token token=…", the v2 Accept
// header, schedule_ids[], include[]=users, since/until, limit/offset/more pagination,
// PagerDuty's error bodies) and Events API v2 POST /v2/enqueue (routing_key,
// event_action trigger/acknowledge/resolve, dedup_key, 202 answers, 400 "invalid
// event"). On-call shifts have start and end times, so "who is on call" depends on the
// time asked about. Failures can be injected (HTTP statuses, 429 with Retry-After) and
// the whole fake can go down (connections closed with no answer).
package pdfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// User is a PagerDuty user.
type User struct {
	ID    string
	Name  string
	Email string
}

type shift struct {
	user       User
	start, end time.Time
}

// Incident is what the fake holds per dedup key.
type Incident struct {
	DedupKey string
	Status   string // triggered, acknowledged, resolved
	Summary  string
	Severity string
	Source   string
	Triggers int // trigger events received (deduplicated into this incident)
}

// Server is the fake.
type Server struct {
	Token      string // REST token accepted
	RoutingKey string // routing key accepted

	mu        sync.Mutex
	srv       *httptest.Server
	shifts    map[string][]shift // schedule id → shifts
	incidents map[string]*Incident
	failures  map[string][]int // path → statuses to answer next
	down      bool
	calls     map[string]int
}

// New returns a started fake accepting token and routingKey.
func New(token, routingKey string) *Server {
	s := &Server{Token: token, RoutingKey: routingKey, shifts: map[string][]shift{},
		incidents: map[string]*Incident{}, failures: map[string][]int{}, calls: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/oncalls", s.oncalls)
	mux.HandleFunc("/v2/enqueue", s.enqueue)
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the base of both APIs (ROOTWARDEN_PAGERDUTY_API_URL and _EVENTS_URL).
func (s *Server) URL() string { return s.srv.URL }

// Close stops the fake.
func (s *Server) Close() { s.srv.Close() }

// AddShift puts u on call on schedule from start to end.
func (s *Server) AddShift(schedule string, u User, start, end time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shifts[schedule] = append(s.shifts[schedule], shift{user: u, start: start, end: end})
}

// FailNext makes the next n calls of path ("/oncalls", "/v2/enqueue") answer status.
func (s *Server) FailNext(path string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures[path] = append(s.failures[path], status)
	}
}

// SetDown makes every call end with a closed connection and no answer.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Calls is how many requests reached path.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// Incident returns the incident of dedupKey.
func (s *Server) Incident(dedupKey string) (Incident, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.incidents[dedupKey]
	if !ok {
		return Incident{}, false
	}
	return *in, true
}

// Incidents returns how many incidents exist.
func (s *Server) Incidents() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.incidents)
}

// gate counts the call and applies injected failures; false → answered already.
func (s *Server) gate(w http.ResponseWriter, path string) bool {
	s.mu.Lock()
	s.calls[path]++
	down := s.down
	status := 0
	if q := s.failures[path]; len(q) > 0 {
		status, s.failures[path] = q[0], q[1:]
	}
	s.mu.Unlock()
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return false
			}
		}
		w.WriteHeader(http.StatusBadGateway)
		return false
	}
	if status != 0 {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		if path == "/oncalls" {
			writeJSON(w, status, map[string]any{"error": map[string]any{"message": http.StatusText(status), "code": 2000 + status}})
		} else {
			writeJSON(w, status, map[string]any{"status": "error", "message": http.StatusText(status)})
		}
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func restErr(w http.ResponseWriter, status, code int, msg string, errs ...string) {
	e := map[string]any{"message": msg, "code": code}
	if len(errs) > 0 {
		e["errors"] = errs
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func (s *Server) oncalls(w http.ResponseWriter, r *http.Request) {
	if !s.gate(w, "/oncalls") {
		return
	}
	if r.Method != http.MethodGet {
		restErr(w, http.StatusMethodNotAllowed, 2000, "Method Not Allowed")
		return
	}
	if r.Header.Get("Authorization") != "Token token="+s.Token {
		restErr(w, http.StatusUnauthorized, 2006, "Unauthorized")
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "application/vnd.pagerduty+json;version=2") {
		restErr(w, http.StatusNotAcceptable, 2001, "Not Acceptable", "Accept header must be application/vnd.pagerduty+json;version=2")
		return
	}
	q := r.URL.Query()
	since, until := time.Now(), time.Now()
	for k, dst := range map[string]*time.Time{"since": &since, "until": &until} {
		if v := q.Get(k); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				restErr(w, http.StatusBadRequest, 2001, "Invalid Input Provided", k+" is not an ISO 8601 date")
				return
			}
			*dst = t
		}
	}
	if q.Get("until") == "" {
		until = since
	}
	if until.Before(since) {
		restErr(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "until must be after since")
		return
	}
	includeUsers := false
	for _, v := range q["include[]"] {
		includeUsers = includeUsers || v == "users"
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > 100 {
		limit = 25
	}
	offset, _ := strconv.Atoi(q.Get("offset"))
	s.mu.Lock()
	var all []map[string]any
	for _, sched := range q["schedule_ids[]"] {
		for _, sh := range s.shifts[sched] {
			// On call during [since, until]: the shift overlaps the range.
			if sh.start.After(until) || !sh.end.After(since) {
				continue
			}
			u := map[string]any{"id": sh.user.ID, "type": "user_reference", "summary": sh.user.Name,
				"self": "https://api.pagerduty.com/users/" + sh.user.ID}
			if includeUsers {
				u = map[string]any{"id": sh.user.ID, "type": "user", "name": sh.user.Name, "summary": sh.user.Name,
					"email": sh.user.Email, "time_zone": "Etc/UTC"}
			}
			all = append(all, map[string]any{
				"user":              u,
				"schedule":          map[string]any{"id": sched, "type": "schedule_reference"},
				"escalation_policy": map[string]any{"id": "PEP" + sched, "type": "escalation_policy_reference"},
				"escalation_level":  1,
				"start":             sh.start.UTC().Format(time.RFC3339),
				"end":               sh.end.UTC().Format(time.RFC3339),
			})
		}
	}
	s.mu.Unlock()
	if offset > len(all) {
		offset = len(all)
	}
	end := min(offset+limit, len(all))
	writeJSON(w, http.StatusOK, map[string]any{"oncalls": append([]map[string]any{}, all[offset:end]...),
		"limit": limit, "offset": offset, "more": end < len(all), "total": nil})
}

func (s *Server) enqueue(w http.ResponseWriter, r *http.Request) {
	if !s.gate(w, "/v2/enqueue") {
		return
	}
	invalid := func(errs ...string) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": errs})
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var ev struct {
		RoutingKey  string `json:"routing_key"`
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Payload     *struct {
			Summary  string `json:"summary"`
			Source   string `json:"source"`
			Severity string `json:"severity"`
		} `json:"payload"`
	}
	if r.Method != http.MethodPost || json.Unmarshal(body, &ev) != nil {
		invalid("Event object is not valid JSON")
		return
	}
	if ev.RoutingKey != s.RoutingKey {
		invalid("'routing_key' is invalid")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.EventAction {
	case "trigger":
		if ev.Payload == nil || ev.Payload.Summary == "" || ev.Payload.Source == "" {
			invalid("'payload.summary' and 'payload.source' are required")
			return
		}
		switch ev.Payload.Severity {
		case "critical", "error", "warning", "info":
		default:
			invalid("'payload.severity' must be one of critical, error, warning, info")
			return
		}
		key := ev.DedupKey
		if key == "" {
			key = strconv.Itoa(len(s.incidents) + 1)
		}
		in := s.incidents[key]
		if in == nil || in.Status == "resolved" {
			in = &Incident{DedupKey: key}
			s.incidents[key] = in
		}
		in.Status, in.Summary, in.Severity, in.Source = "triggered", ev.Payload.Summary, ev.Payload.Severity, ev.Payload.Source
		in.Triggers++
		ev.DedupKey = key
	case "acknowledge", "resolve":
		if ev.DedupKey == "" {
			invalid("'dedup_key' is required for " + ev.EventAction)
			return
		}
		if in := s.incidents[ev.DedupKey]; in != nil {
			in.Status = map[string]string{"acknowledge": "acknowledged", "resolve": "resolved"}[ev.EventAction]
		}
	default:
		invalid("'event_action' must be trigger, acknowledge or resolve")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}
