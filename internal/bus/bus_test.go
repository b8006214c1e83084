package bus_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
)

func TestOpenCreatesStreamsAndBucketsIdempotently(t *testing.T) {
	dir := t.TempDir()
	b := bustest.NewAt(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{bus.StreamFindings, bus.StreamActions, bus.StreamCases, bus.StreamScan} {
		if _, err := b.JS.Stream(ctx, name); err != nil {
			t.Errorf("stream %s missing: %v", name, err)
		}
	}
	// A second process connecting to the same server re-runs the set-up without error.
	b2 := bustest.Connect(t, b)
	if b2.Replicas != 1 {
		t.Errorf("single server: replicas = %d, want 1", b2.Replicas)
	}
	if _, err := b.Cases.Put(ctx, "111111111111", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b2.Cases.Get(ctx, "111111111111"); err != nil {
		t.Errorf("bucket not shared between connections: %v", err)
	}
}

func TestPublishJSONDeduplicatesByMsgID(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	dup, err := b.PublishJSON(ctx, bus.FindingSubject("123456789012"), "obs-1", map[string]string{"a": "b"})
	if err != nil || dup {
		t.Fatalf("first publish: dup=%v err=%v", dup, err)
	}
	dup, err = b.PublishJSON(ctx, bus.FindingSubject("123456789012"), "obs-1", map[string]string{"a": "b"})
	if err != nil || !dup {
		t.Fatalf("second publish with same id: dup=%v err=%v, want duplicate", dup, err)
	}
}

func TestSubjectTokensAreSafe(t *testing.T) {
	if got := bus.FindingSubject("12.3*>"); got != "rootwarden.findings.12_3__" {
		t.Errorf("FindingSubject = %q", got)
	}
}

func TestEmbeddedDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Cases.Put(ctx, "acct", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b2 := bustest.NewAt(t, dir)
	e, err := b2.Cases.Get(ctx, "acct")
	if err != nil || string(e.Value()) != "v1" {
		t.Fatalf("after restart: %v %v", e, err)
	}
}

func TestTemporaryStoreIsRemovedOnClose(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // only this test's stores are counted
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "rootwarden-nats-*"))
	b, err := bus.Open(context.Background(), bus.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	during, _ := filepath.Glob(filepath.Join(os.TempDir(), "rootwarden-nats-*"))
	if len(during) != len(before)+1 {
		t.Fatalf("no temporary store made: %d before, %d during", len(before), len(during))
	}
	b.Close()
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "rootwarden-nats-*"))
	if len(after) != len(before) {
		t.Fatalf("temporary store left behind: %v", after)
	}
}
