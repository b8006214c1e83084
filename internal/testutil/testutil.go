// Package testutil holds helpers shared by rootwarden's tests: a clock moved by hand,
// a log sink many goroutines may write to, polling for a condition, and running a
// component until the test ends. Only tests import it; it imports no rootwarden
// package.
package testutil

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// Clock is a settable clock: pass its Now where a component takes a Now func, then
// move time with Add or Set instead of sleeping. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that stands at t0 until moved.
func NewClock(t0 time.Time) *Clock { return &Clock{t: t0} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// LogBuffer collects output, typically log lines, written from many goroutines. Its
// zero value is ready to use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger returns a text logger at Debug level that writes to l.
func (l *LogBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Eventually polls cond every 10ms and fails the test when it still does not hold
// after 10s.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, 10*time.Second, what, cond)
}

// EventuallyWithin is Eventually with its own limit, for waits that a loaded machine
// can stretch (a JetStream redelivery, a component's shutdown).
func EventuallyWithin(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Run runs run (a component's Run method) in a goroutine until the test ends. At
// cleanup it cancels run's context and fails the test when run returns an error or
// has not returned within stopWithin.
func Run(t testing.TB, stopWithin time.Duration, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(stopWithin):
			t.Errorf("Run did not return within %s of cancel", stopWithin)
		}
	})
}
