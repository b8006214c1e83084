// Package bustest starts a real embedded nats-server with JetStream for tests.
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
)

// New opens a bus on a fresh embedded server whose store is a temp dir; it is closed
// when the test ends.
func New(t testing.TB) *bus.Bus {
	t.Helper()
	return NewAt(t, t.TempDir())
}

// NewAt opens a bus on an embedded server storing under dir, so a test can stop it and
// start another on the same data (a restart).
func NewAt(t testing.TB, dir string) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: dir}, nil)
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// Connect opens a second connection (another "process") to the server of b.
func Connect(t testing.TB, b *bus.Bus) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nb, err := bus.Open(ctx, bus.Config{URL: b.Server.ClientURL()}, nil)
	if err != nil {
		t.Fatalf("connect bus: %v", err)
	}
	t.Cleanup(nb.Close)
	return nb
}
