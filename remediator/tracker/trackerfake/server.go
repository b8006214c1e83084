// Package trackerfake holds fakes of the ticket systems rootwarden speaks to: the part
// of the GitHub Issues REST API and of Jira Cloud REST v3 that remediator/tracker
// uses, over real HTTP (httptest), with the faults the real systems show: 429 with
// Retry-After, 5xx, GitHub's secondary rate limit (403 with Retry-After), an answer
// lost after the request took effect, a 5xx after the effect, a call that hangs, and
// Jira's search-index lag. For the tracker's contract tests and for whole-binary
// tests (ROOTWARDEN_GITHUB_API_URL / ROOTWARDEN_JIRA_URL pointed at URL()).
package trackerfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Request is one request a fake received.
type Request struct {
	Method, Path, Query, Auth string
	Body                      map[string]any
}

// Fault is one misbehaviour, used by the next request that matches it.
type Fault struct {
	Status int         // answer this status (before the handler runs, unless After)
	Header http.Header // with these headers
	After  bool        // run the real handler first (the request takes effect), then answer Status
	Lose   bool        // run the real handler, then close the connection without an answer
	Hang   bool        // never answer (until the client gives up)
	Method string      // only for this method ("" any)
	Path   string      // only for paths with this prefix ("" any)
}

func (f Fault) matches(r *http.Request) bool {
	return (f.Method == "" || f.Method == r.Method) && strings.HasPrefix(r.URL.Path, f.Path)
}

// Server is the part every fake shares: it records requests and injects faults.
type Server struct {
	// Mu guards the fake's state; the handler runs under it.
	Mu     sync.Mutex
	reqs   []Request
	faults []Fault
	// Always is consulted for every request after the queued faults: a fault it
	// returns applies to that request (e.g. a share of calls answered 503).
	Always func(r *http.Request) *Fault
	srv    *httptest.Server
}

type handler func(w http.ResponseWriter, r *http.Request, body map[string]any)

// start serves h behind the recorder and the faults; wrap (optional) wraps the whole
// handler, e.g. with a shared fault-injection middleware.
func (f *Server) start(h handler, wrap ...func(http.Handler) http.Handler) {
	var hh http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, h) })
	for _, wr := range wrap {
		hh = wr(hh)
	}
	f.srv = httptest.NewServer(hh)
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request, h handler) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, `{"message":"bad json"}`, http.StatusBadRequest)
			return
		}
	}
	f.Mu.Lock()
	f.reqs = append(f.reqs, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"), Body: body})
	var ft *Fault
	for i := range f.faults {
		if f.faults[i].matches(r) {
			x := f.faults[i]
			ft = &x
			f.faults = append(f.faults[:i:i], f.faults[i+1:]...)
			break
		}
	}
	if ft == nil && f.Always != nil {
		ft = f.Always(r)
	}
	f.Mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case ft == nil:
	case ft.Hang:
		<-r.Context().Done()
		return
	case ft.Lose:
		f.Mu.Lock()
		h(httptest.NewRecorder(), r, body) // takes effect; the answer goes nowhere
		f.Mu.Unlock()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	case ft.After:
		f.Mu.Lock()
		h(httptest.NewRecorder(), r, body)
		f.Mu.Unlock()
		fallthrough
	default:
		for k, v := range ft.Header {
			w.Header()[k] = v
		}
		if ft.Status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(ft.Status)
		_, _ = w.Write([]byte(`{"message":"injected failure"}`))
		return
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	h(w, r, body)
}

// URL is the fake's base URL.
func (f *Server) URL() string { return f.srv.URL }

// Close stops the fake (a hanging call ends when its client gives up).
func (f *Server) Close() { f.srv.Close() }

// Fail queues faults answering these statuses, one request each.
func (f *Server) Fail(statuses ...int) {
	for _, st := range statuses {
		f.Inject(Fault{Status: st})
	}
}

// Inject queues faults; each is used by the next request it matches.
func (f *Server) Inject(fs ...Fault) {
	f.Mu.Lock()
	f.faults = append(f.faults, fs...)
	f.Mu.Unlock()
}

// Requests are the requests received so far.
func (f *Server) Requests() []Request {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	return append([]Request(nil), f.reqs...)
}

// Count counts the requests with this method under this path prefix.
func (f *Server) Count(method, pathPrefix string) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
