// Package httpx serves rootwarden's HTTP surface: health and readiness probes, the
// Prometheus metrics, and whatever handlers the components mount (Slack interactions,
// the case API). It owns timeouts, the one JSON error shape and the readiness
// registry that components report their dependencies into (AWS, Slack, NATS,
// tracker); it has no domain logic.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one dependency is ready; nil means ready.
type Check func(ctx context.Context) error

// Server is the process's HTTP server.
type Server struct {
	mux    *http.ServeMux
	log    *slog.Logger
	mu     sync.Mutex
	checks map[string]Check
	states map[string]error // reported by components; nil = ready
	srv    *http.Server
	ln     net.Listener
}

// New builds a server with /healthz, /readyz and /metrics (from gatherer).
func New(log *slog.Logger, gatherer prometheus.Gatherer) *Server {
	s := NewPublic(log)
	s.mux.HandleFunc("GET /readyz", s.ready)
	if gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return s
}

// MountPProf serves Go's profiles under /debug/pprof/ (heap, goroutine, profile,
// trace…): for an operator chasing memory or CPU, on the internal server only.
func (s *Server) MountPProf() {
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// NewPublic builds a server with /healthz only: for the endpoints that face the
// internet (Slack's requests), kept apart from /metrics and the case API.
func NewPublic(log *slog.Logger) *Server {
	s := &Server{mux: http.NewServeMux(), log: log, checks: map[string]Check{}, states: map[string]error{}}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return s
}

// ErrStarting is the state of a dependency that was expected but has not reported.
var ErrStarting = errors.New("starting: not checked yet")

// Expect registers a dependency that must report before the process is ready.
func (s *Server) Expect(dependency string) { s.Report(dependency, ErrStarting) }

// Report records the state of a dependency (nil: working). /readyz answers 503 and
// names every dependency whose last report was an error. Safe for concurrent use.
func (s *Server) Report(dependency string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, seen := s.states[dependency]
	s.states[dependency] = err
	switch {
	case err != nil && (!seen || prev == nil || prev.Error() != err.Error()) && !errors.Is(err, ErrStarting):
		s.log.Warn("not ready", "dependency", dependency, "err", err)
	case err == nil && seen && prev != nil && !errors.Is(prev, ErrStarting):
		s.log.Info("ready again", "dependency", dependency)
	}
}

// Reporter returns a function that reports the state of one dependency.
func (s *Server) Reporter(dependency string) func(error) {
	return func(err error) { s.Report(dependency, err) }
}

// Handle mounts h on pattern (net/http ServeMux patterns).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// AddCheck adds a readiness check.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// Handler is the server's root handler (for tests).
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	out := map[string]string{}
	status := http.StatusOK
	for name, err := range s.states {
		if err != nil {
			out[name] = err.Error()
			status = http.StatusServiceUnavailable
		} else {
			out[name] = "ok"
		}
	}
	s.mu.Unlock()
	for name, c := range checks {
		if err := c(ctx); err != nil {
			out[name] = err.Error()
			status = http.StatusServiceUnavailable
		} else {
			out[name] = "ok"
		}
	}
	WriteJSON(w, status, out)
}

// Listen binds addr; Addr then tells the bound address (useful with port 0).
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Close releases the listener of a server that Serve never ran (a start-up that
// failed after Listen); after Serve it does nothing harmful.
func (s *Server) Close() {
	if s.ln != nil {
		_ = s.ln.Close()
	}
}

// Addr is the bound address after Listen.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Serve serves until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes {"error": msg} with status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}
