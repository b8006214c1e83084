package remediator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestJSONLogsHaveOneMsgKeyAndErrorsUnderErr(t *testing.T) {
	b := bustest.New(t)
	var buf syncBuf
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := New(Config{Now: newClock().Now, RetryDelay: 10 * time.Millisecond}, log, b, bus0{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, t0)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		delivered uint64
		err       error
	}{
		{1, model.Errorf(model.CodeTransient, "nats: timeout")},
		{3, model.Errorf(model.CodeTransient, "nats: timeout")},
		{1, model.Errorf(model.CodeInvalid, "bad action")},
		{uint64(maxDeliver), errors.New("still failing")},
	} {
		r.settle(ctx, &settledMsg{delivered: tc.delivered}, acct, "action act-1", tc.err)
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	for sc.Scan() {
		line := sc.Text()
		lines++
		if n := strings.Count(line, `"msg":`); n != 1 {
			t.Errorf("%d msg keys: %s", n, line)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if _, ok := m["error"]; ok {
			t.Errorf("error logged under \"error\", not \"err\": %s", line)
		}
	}
	if lines < 4 {
		t.Fatalf("only %d log lines:\n%s", lines, buf.String())
	}
}

// bus0 is a checker that is never called here.
type bus0 struct{}

func (bus0) Check(ctx context.Context, account, reason string) (model.Observation, error) {
	return model.Observation{}, errors.New("no checker")
}
