package bustest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rootwarden/rootwarden/internal/bus"
)

// KVCounter counts a bucket's traffic as the server sees it, from a connection of
// its own: reads are direct gets (how Get reads a key), listings are consumers
// created on the bucket's stream (ListKeys, Keys, Watch), writes are the stream's
// sequence numbers used (Put, Create, Update, Delete, Purge).
type KVCounter struct {
	b        *bus.Bus
	nc       *nats.Conn
	stream   string
	reads    atomic.Int64
	listings atomic.Int64

	syncMu sync.Mutex
	marker string        // subject of sync's marker
	marked chan struct{} // a marker arrived
}

// CountKV starts counting bucket's traffic until the test ends.
func CountKV(t testing.TB, b *bus.Bus, bucket string) *KVCounter {
	t.Helper()
	nc, err := nats.Connect(b.NC.ConnectedUrl())
	if err != nil {
		t.Fatalf("count KV %s: %v", bucket, err)
	}
	t.Cleanup(nc.Close)
	k := &KVCounter{b: b, nc: nc, stream: "KV_" + bucket, marker: nats.NewInbox(), marked: make(chan struct{}, 1)}
	if _, err := nc.Subscribe(k.marker, func(*nats.Msg) {
		select {
		case k.marked <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatalf("count KV %s: %v", bucket, err)
	}
	for _, s := range []struct {
		subj string
		n    *atomic.Int64
	}{
		{"$JS.API.DIRECT.GET." + k.stream, &k.reads},
		{"$JS.API.DIRECT.GET." + k.stream + ".>", &k.reads},
		{"$JS.API.CONSUMER.CREATE." + k.stream, &k.listings},
		{"$JS.API.CONSUMER.CREATE." + k.stream + ".>", &k.listings},
	} {
		n := s.n
		if _, err := nc.Subscribe(s.subj, func(*nats.Msg) { n.Add(1) }); err != nil {
			t.Fatalf("count KV %s: %v", bucket, err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("count KV %s: %v", bucket, err)
	}
	return k
}

// Reads is the number of keys read so far: every read answered on the bus's
// connection (b.NC) is counted (sync); reads on other connections are counted once
// the server has routed them.
func (k *KVCounter) Reads() int64 { k.sync(); return k.reads.Load() }

// Listings is the number of listings (or watches) so far, counted as Reads is.
func (k *KVCounter) Listings() int64 { k.sync(); return k.listings.Load() }

// sync makes the counts current. A marker published on the bus's own connection
// reaches the counting connection only after the copies of every request sent
// earlier on that connection (the server handles one connection's messages in
// order; a round trip on the counting connection alone can overtake a copy the
// server has not routed yet: a flake under load). The barrier then runs once every
// subscription's callback has returned for the messages before it.
func (k *KVCounter) sync() {
	k.syncMu.Lock()
	defer k.syncMu.Unlock()
	select { // a marker of an earlier sync that timed out
	case <-k.marked:
	default:
	}
	if k.b.NC.Publish(k.marker, nil) != nil || k.b.NC.FlushTimeout(10*time.Second) != nil {
		_ = k.nc.FlushTimeout(10 * time.Second)
	} else {
		select {
		case <-k.marked:
		case <-time.After(10 * time.Second):
		}
	}
	done := make(chan struct{})
	if err := k.nc.Barrier(func() { close(done) }); err != nil {
		return
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// Writes is the bucket stream's last sequence: every write ever made to the bucket.
func (k *KVCounter) Writes(ctx context.Context) (uint64, error) {
	s, err := k.b.JS.Stream(ctx, k.stream)
	if err != nil {
		return 0, err
	}
	si, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return si.State.LastSeq, nil
}
