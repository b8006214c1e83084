package testutil_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/testutil"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	t0 := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	c := testutil.NewClock(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now = %v, want %v", c.Now(), t0)
	}
	c.Add(90 * time.Second)
	if want := t0.Add(90 * time.Second); !c.Now().Equal(want) {
		t.Errorf("after Add: Now = %v, want %v", c.Now(), want)
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Errorf("after Set: Now = %v, want %v", c.Now(), t0)
	}
}

func TestLogBufferTakesConcurrentWrites(t *testing.T) {
	var l testutil.LogBuffer
	log := l.Logger()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Debug("line", "writer", i)
		}()
	}
	wg.Wait()
	if n := strings.Count(l.String(), "msg=line"); n != 8 {
		t.Errorf("%d lines logged, want 8:\n%s", n, l.String())
	}
}

func TestRunStopsTheComponentWhenTheTestEnds(t *testing.T) {
	var stopped atomic.Bool
	t.Run("component", func(t *testing.T) {
		started := make(chan struct{})
		testutil.Run(t, 5*time.Second, func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			stopped.Store(true)
			return nil
		})
		<-started
		if stopped.Load() {
			t.Error("stopped before the test ended")
		}
	})
	if !stopped.Load() {
		t.Error("still running after the test ended")
	}
}

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	testutil.Eventually(t, "three polls", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Errorf("polled %d times, want 3", got)
	}
}
