package bustest

import (
	"context"
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
}

// CountKV starts counting bucket's traffic until the test ends.
func CountKV(t testing.TB, b *bus.Bus, bucket string) *KVCounter {
	t.Helper()
	nc, err := nats.Connect(b.NC.ConnectedUrl())
	if err != nil {
		t.Fatalf("count KV %s: %v", bucket, err)
	}
	t.Cleanup(nc.Close)
	k := &KVCounter{b: b, nc: nc, stream: "KV_" + bucket}
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

// Reads is the number of keys read so far: every read that has been answered is
// counted (a round trip on the counting connection delivers the copies the server
// queued before it).
func (k *KVCounter) Reads() int64 { k.sync(); return k.reads.Load() }

// Listings is the number of listings (or watches) so far, counted as Reads is.
func (k *KVCounter) Listings() int64 { k.sync(); return k.listings.Load() }

func (k *KVCounter) sync() { _ = k.nc.FlushTimeout(10 * time.Second) }

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
