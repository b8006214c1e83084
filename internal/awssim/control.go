package awssim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"
)

// registerControl mounts the /_sim/ JSON control surface (see the package doc).
func (s *Sim) registerControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /_sim/calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Calls())
	})
	mux.HandleFunc("POST /_sim/accounts", func(w http.ResponseWriter, r *http.Request) {
		var a Account
		if !readJSON(w, r, &a) {
			return
		}
		if a.ID == "" {
			ctlError(w, http.StatusBadRequest, "id is required")
			return
		}
		s.AddAccount(a)
		writeJSON(w, http.StatusCreated, a)
	})
	mux.HandleFunc("GET /_sim/accounts/{id}/root-keys", s.withAccount(func(w http.ResponseWriter, r *http.Request, id string) {
		writeJSON(w, http.StatusOK, s.RootKeys(id))
	}))
	mux.HandleFunc("POST /_sim/accounts/{id}/root-keys", s.withAccount(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			Created time.Time `json:"created"`
		}
		if r.ContentLength != 0 && !readJSON(w, r, &in) {
			return
		}
		keyID, secret, err := s.createRootKey(id, in.Created)
		if err != nil {
			ctlError(w, http.StatusConflict, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"accessKeyId": keyID, "secretAccessKey": secret})
	}))
	mux.HandleFunc("DELETE /_sim/accounts/{id}/root-keys/{key}", s.withAccount(func(w http.ResponseWriter, r *http.Request, id string) {
		s.mu.Lock()
		ok := s.deleteRootKeyLocked(s.accounts[id], r.PathValue("key"))
		s.mu.Unlock()
		if !ok {
			ctlError(w, http.StatusNotFound, "no such root key")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("POST /_sim/accounts/{id}/faults", s.withAccount(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			AccessDenied *bool `json:"accessDenied"`
			DenyAssume   *bool `json:"denyAssumeRole"`
			Throttle     *int  `json:"throttle"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		if in.AccessDenied != nil {
			s.SetAccessDenied(id, *in.AccessDenied)
		}
		if in.DenyAssume != nil {
			s.DenyAssumeRole(id, *in.DenyAssume)
		}
		if in.Throttle != nil {
			s.Throttle(id, *in.Throttle)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Latency       *string  `json:"latency"`
			ThrottleShare *float64 `json:"throttleShare"`
			Seed          uint64   `json:"seed"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		if in.Latency == nil && in.ThrottleShare == nil {
			ctlError(w, http.StatusBadRequest, "give latency (a Go duration such as 50ms) and/or throttleShare (0..1, with seed)")
			return
		}
		var d time.Duration
		if in.Latency != nil {
			var err error
			if d, err = time.ParseDuration(*in.Latency); err != nil || d < 0 {
				ctlError(w, http.StatusBadRequest, "latency must be a Go duration such as 50ms")
				return
			}
		}
		if in.ThrottleShare != nil && (*in.ThrottleShare < 0 || *in.ThrottleShare > 1) {
			ctlError(w, http.StatusBadRequest, "throttleShare must be between 0 and 1")
			return
		}
		if in.Latency != nil {
			s.SetLatency(d)
		}
		if in.ThrottleShare != nil {
			s.SetThrottleShare(*in.ThrottleShare, in.Seed)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/calls-by-principal", func(w http.ResponseWriter, r *http.Request) {
		type row struct {
			Call
			Calls int `json:"calls"`
		}
		out := []row{}
		for c, n := range s.CallsByPrincipal() {
			out = append(out, row{c, n})
		}
		sort.Slice(out, func(i, j int) bool {
			a, b := out[i], out[j]
			if a.Principal != b.Principal {
				return a.Principal < b.Principal
			}
			return a.Service+"."+a.Action < b.Service+"."+b.Action
		})
		writeJSON(w, http.StatusOK, map[string]any{"calls": out, "throttled": s.ThrottledCalls()})
	})
	mux.HandleFunc("POST /_sim/queues/{name}/messages", s.withQueue(func(w http.ResponseWriter, r *http.Request, q *queue) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 256<<10))
		if err != nil || len(body) == 0 {
			ctlError(w, http.StatusBadRequest, "a non-empty body is required")
			return
		}
		s.mu.Lock()
		m := s.enqueueLocked(q, string(body))
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]string{"messageId": m.id})
	}))
	mux.HandleFunc("POST /_sim/queues/{name}/events", s.withQueue(func(w http.ResponseWriter, r *http.Request, q *queue) {
		var in struct {
			Kind      string    `json:"kind"`
			Account   string    `json:"account"`
			KeyID     string    `json:"keyId"`
			EventName string    `json:"eventName"`
			Time      time.Time `json:"time"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		if in.Time.IsZero() {
			in.Time = s.now()
		}
		if in.Account == "" || in.KeyID == "" {
			ctlError(w, http.StatusBadRequest, "account and keyId are required")
			return
		}
		var body string
		switch in.Kind {
		case "created":
			body = RootKeyCreatedEvent(in.Account, in.KeyID, in.Time)
		case "deleted":
			body = RootKeyDeletedEvent(in.Account, in.KeyID, in.Time)
		case "used":
			if in.EventName == "" {
				in.EventName = "ListBuckets"
			}
			body = RootKeyUsedEvent(in.Account, in.KeyID, in.EventName, in.Time)
		default:
			ctlError(w, http.StatusBadRequest, "kind must be created, used or deleted")
			return
		}
		s.mu.Lock()
		m := s.enqueueLocked(q, body)
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]string{"messageId": m.id})
	}))
	s.registerRootControl(mux)
	mux.HandleFunc("/_sim/", func(w http.ResponseWriter, r *http.Request) {
		ctlError(w, http.StatusNotFound, "unknown control endpoint "+r.Method+" "+r.URL.Path)
	})
}

func (s *Sim) withAccount(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		s.mu.Lock()
		ok := s.accounts[id] != nil
		s.mu.Unlock()
		if !ok {
			ctlError(w, http.StatusNotFound, fmt.Sprintf("unknown account %q", id))
			return
		}
		h(w, r, id)
	}
}

func (s *Sim) withQueue(h func(http.ResponseWriter, *http.Request, *queue)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		q := s.queueByName(r.PathValue("name"))
		s.mu.Unlock()
		if q == nil {
			ctlError(w, http.StatusNotFound, fmt.Sprintf("unknown queue %q", r.PathValue("name")))
			return
		}
		h(w, r, q)
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		ctlError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func ctlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
