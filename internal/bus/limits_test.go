package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
)

// oldStreams and oldBuckets are the configurations of commit 75f8c51 (before the
// limits): a deployment made then must open with the new ones.
func oldStreams() []jetstream.StreamConfig {
	day := 24 * time.Hour
	return []jetstream.StreamConfig{
		{Name: bus.StreamFindings, Subjects: []string{bus.SubjectFindings + ">"}, Retention: jetstream.LimitsPolicy,
			MaxAge: 14 * day, Duplicates: 10 * time.Minute, Storage: jetstream.FileStorage, Replicas: 1},
		{Name: bus.StreamActions, Subjects: []string{bus.SubjectActions + ">"}, Retention: jetstream.WorkQueuePolicy,
			MaxAge: 7 * day, Duplicates: 30 * time.Minute, Storage: jetstream.FileStorage, Replicas: 1},
		{Name: bus.StreamCases, Subjects: []string{bus.SubjectCases + ">"}, Retention: jetstream.LimitsPolicy,
			MaxAge: 3 * 365 * day, Duplicates: 30 * time.Minute, Storage: jetstream.FileStorage, Replicas: 1},
		{Name: bus.StreamScan, Subjects: []string{bus.SubjectScan + ">"}, Retention: jetstream.WorkQueuePolicy,
			MaxAge: day, Duplicates: 10 * time.Minute, Storage: jetstream.FileStorage, Replicas: 1},
	}
}

func oldBuckets() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: bus.BucketCases, History: 16, Storage: jetstream.FileStorage},
		{Bucket: bus.BucketSlack, History: 4, Storage: jetstream.FileStorage},
		{Bucket: bus.BucketTickets, History: 8, Storage: jetstream.FileStorage},
		{Bucket: bus.BucketSched, History: 2, Storage: jetstream.FileStorage},
	}
}

// An existing deployment upgrades in place: Open applies the limits to streams and
// buckets made with the old configuration, keeps their data (up to the new limits)
// and keeps the consumers.
func TestOpenAppliesLimitsToAnExistingDeployment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := bus.StartEmbedded(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	for _, sc := range oldStreams() {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatalf("old stream %s: %v", sc.Name, err)
		}
	}
	for _, kc := range oldBuckets() {
		if _, err := js.CreateKeyValue(ctx, kc); err != nil {
			t.Fatalf("old bucket %s: %v", kc.Bucket, err)
		}
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, bus.StreamFindings, jetstream.ConsumerConfig{
		Durable: bus.ConsumerRemediatorFind, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	// 20 sweeps' worth of one account, one of another; 12 revisions of a case.
	for i := 0; i < 20; i++ {
		if _, err := js.Publish(ctx, bus.FindingSubject("111111111111"), fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, bus.FindingSubject("222222222222"), []byte(`{"n":0}`)); err != nil {
		t.Fatal(err)
	}
	kv, _ := js.KeyValue(ctx, bus.BucketCases)
	for i := 0; i < 12; i++ {
		if _, err := kv.Put(ctx, "111111111111", fmt.Appendf(nil, `{"rev":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}

	b, err := bus.Open(ctx, bus.Config{URL: srv.ClientURL()}, nil)
	if err != nil {
		t.Fatalf("open an existing deployment with the new limits: %v", err)
	}
	t.Cleanup(b.Close)

	for _, want := range b.Streams() {
		s, err := b.JS.Stream(ctx, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		got := s.CachedInfo().Config
		if lim(got.MaxBytes) != lim(want.MaxBytes) || lim(got.MaxMsgs) != lim(want.MaxMsgs) || lim(got.MaxMsgsPerSubject) != lim(want.MaxMsgsPerSubject) ||
			got.MaxAge != want.MaxAge || got.Discard != want.Discard {
			t.Errorf("stream %s after upgrade: bytes %d msgs %d per-subject %d age %v discard %v; want %d %d %d %v %v",
				want.Name, got.MaxBytes, got.MaxMsgs, got.MaxMsgsPerSubject, got.MaxAge, got.Discard,
				want.MaxBytes, want.MaxMsgs, want.MaxMsgsPerSubject, want.MaxAge, want.Discard)
		}
	}
	for _, want := range bus.Buckets() {
		s, err := b.JS.Stream(ctx, "KV_"+want.Bucket)
		if err != nil {
			t.Errorf("bucket %s: %v", want.Bucket, err)
			continue
		}
		got := s.CachedInfo().Config
		if got.MaxMsgsPerSubject != int64(want.History) || got.MaxBytes != want.MaxBytes {
			t.Errorf("bucket %s after upgrade: history %d bytes %d; want %d %d", want.Bucket,
				got.MaxMsgsPerSubject, got.MaxBytes, want.History, want.MaxBytes)
		}
	}

	// The per-account limit kept the newest of the busy account and all of the other.
	s, _ := b.JS.Stream(ctx, bus.StreamFindings)
	si, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.SubjectFindings+">"))
	if err != nil {
		t.Fatal(err)
	}
	if n := si.State.Subjects[bus.FindingSubject("111111111111")]; n != bus.FindingsPerAccount {
		t.Errorf("busy account keeps %d observations, want %d", n, bus.FindingsPerAccount)
	}
	if n := si.State.Subjects[bus.FindingSubject("222222222222")]; n != 1 {
		t.Errorf("quiet account keeps %d observations, want 1", n)
	}
	m, err := s.GetLastMsgForSubject(ctx, bus.FindingSubject("111111111111"))
	if err != nil || string(m.Data) != `{"n":19}` {
		t.Errorf("newest observation of the busy account: %s %v", m.Data, err)
	}
	if e, err := b.Cases.Get(ctx, "111111111111"); err != nil || string(e.Value()) != `{"rev":11}` {
		t.Errorf("case after upgrade: %v", err)
	}
	if _, err := b.JS.Consumer(ctx, bus.StreamFindings, bus.ConsumerRemediatorFind); err != nil {
		t.Errorf("consumer lost in the upgrade: %v", err)
	}
	if _, err := b.Due.Put(ctx, "1.k.111111111111", []byte("x")); err != nil {
		t.Errorf("new due bucket: %v", err)
	}
}

// A work queue at its limit refuses the new message (the publisher is told); it
// never drops one already queued.
func TestWorkQueueAtItsLimitRefusesNewWork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := bus.StartEmbedded(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	b, err := bus.Open(ctx, bus.Config{URL: srv.ClientURL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	// The same discard policy with a small limit, so that the test reaches it.
	sc := b.Streams()[1]
	if sc.Name != bus.StreamActions || sc.Discard != jetstream.DiscardNew {
		t.Fatalf("RW_ACTIONS config: %+v", sc)
	}
	sc.MaxMsgs = 3
	if _, err := b.JS.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := b.PublishJSON(ctx, bus.ActionSubject("111111111111"), fmt.Sprint("a", i), i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.PublishJSON(ctx, bus.ActionSubject("111111111111"), "a3", 3); err == nil {
		t.Fatal("a full work queue accepted a new message")
	}
	s, _ := b.JS.Stream(ctx, bus.StreamActions)
	si, _ := s.Info(ctx)
	if si.State.Msgs != 3 || si.State.FirstSeq != 1 {
		t.Errorf("queued work after the refusal: %d messages from seq %d, want 3 from 1", si.State.Msgs, si.State.FirstSeq)
	}
}

// lim is a stream limit as the server reports it: unset (0) is -1.
func lim(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}
