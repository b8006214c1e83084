package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
)

// On a three-server cluster rootwarden's streams and buckets get three replicas, and
// losing the server a process is connected to loses nothing: publishes and
// compare-and-set go on after the client reconnects.
func TestClusterReplicasAndFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := bustest.NewCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{URL: c.URLs()}, nil)
	if err != nil {
		t.Fatalf("open on cluster: %v", err)
	}
	defer b.Close()
	if b.Replicas != 3 {
		t.Fatalf("replicas = %d on a cluster, want 3", b.Replicas)
	}
	info, err := b.JS.Stream(ctx, bus.StreamCases)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().Config.Replicas; got != 3 {
		t.Fatalf("RW_CASES replicas = %d, want 3", got)
	}
	if _, err := b.PublishJSON(ctx, bus.CaseSubject("123456789012"), "e-1", map[string]int{"seq": 1}); err != nil {
		t.Fatal(err)
	}
	rev, err := b.Cases.Create(ctx, "123456789012", []byte(`{"seq":1}`))
	if err != nil {
		t.Fatal(err)
	}

	// Stop the server this client is connected to.
	connected := b.NC.ConnectedServerName()
	for _, s := range c.Servers {
		if s.Name() == connected {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}

	retry := func(what string, f func(context.Context) error) {
		t.Helper()
		var err error
		for i := 0; i < 60; i++ {
			actx, acancel := context.WithTimeout(ctx, 2*time.Second)
			err = f(actx)
			acancel()
			if err == nil {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("%s after losing a server: %v", what, err)
	}
	retry("publish", func(ctx context.Context) error {
		_, err := b.PublishJSON(ctx, bus.CaseSubject("123456789012"), "e-2", map[string]int{"seq": 2})
		return err
	})
	retry("compare-and-set", func(ctx context.Context) error {
		_, err := b.Cases.Update(ctx, "123456789012", []byte(`{"seq":2}`), rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil // an earlier attempt landed before its answer was lost
		}
		return err
	})
	st, err := b.JS.Stream(ctx, bus.StreamCases)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("audit log has %d events after failover, want 2", n)
	}
	// A KV read may be answered by a follower (direct get) that has not applied the
	// write yet: the write must become visible, not be visible at once everywhere.
	var got string
	for i := 0; i < 40; i++ {
		e, err := b.Cases.Get(ctx, "123456789012")
		if err == nil {
			got = string(e.Value())
			if got == `{"seq":2}` {
				return
			}
		} else {
			got = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("case after failover: %s, want {\"seq\":2}", got)
}
