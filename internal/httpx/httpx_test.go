package httpx

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestProbesAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "rootwarden_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	s := New(slog.New(slog.DiscardHandler), reg)
	healthy := true
	s.AddCheck("nats", func(context.Context) error {
		if healthy {
			return nil
		}
		return errors.New("NATS connection RECONNECTING")
	})
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get("/readyz"); code != http.StatusOK || !strings.Contains(body, `"nats":"ok"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	healthy = false
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "RECONNECTING") {
		t.Errorf("/readyz while NATS is down = %d %s, want 503 naming the problem", code, body)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "rootwarden_test_total 1") {
		t.Errorf("/metrics = %d", code)
	}
}

func TestServeStopsWithTheContext(t *testing.T) {
	s := New(slog.New(slog.DiscardHandler), nil)
	s.Handle("GET /hello", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hi") }))
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	resp, err := http.Get("http://" + s.Addr() + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hi" {
		t.Errorf("body = %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v after shutdown, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

// Components report their dependencies; /readyz is 503 and names the failing one
// until it reports working again, and an expected dependency that never reported
// keeps the process not ready.
func TestReadinessRegistry(t *testing.T) {
	s := New(slog.New(slog.DiscardHandler), nil)
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	s.Expect("aws")
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, `"aws":"starting`) {
		t.Errorf("before AWS reported: %d %s", code, body)
	}
	report := s.Reporter("aws")
	report(errors.New("no AWS credentials"))
	s.Report("slack", nil)
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, `"aws":"no AWS credentials"`) ||
		!strings.Contains(body, `"slack":"ok"`) {
		t.Errorf("AWS failing: %d %s", code, body)
	}
	report(nil)
	if code, body := get(); code != http.StatusOK || !strings.Contains(body, `"aws":"ok"`) {
		t.Errorf("AWS working again: %d %s", code, body)
	}
}

// The public server (Slack's endpoint on its own port) has no metrics and no probes
// beyond /healthz.
func TestPublicServerServesOnlyWhatIsMounted(t *testing.T) {
	s := NewPublic(slog.New(slog.DiscardHandler))
	s.Handle("POST /slack/interactions", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	for path, want := range map[string]int{"/metrics": 404, "/readyz": 404, "/api/v1/cases": 404, "/healthz": 200} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/slack/interactions", nil))
	if rec.Code != 204 {
		t.Errorf("POST /slack/interactions = %d", rec.Code)
	}
}
