package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"

	"github.com/rootwarden/rootwarden/internal/config"
)

// newLogger builds the process logger from ROOTWARDEN_LOG_LEVEL and _FORMAT. Every
// line follows the same conventions whichever component logs it: a duration is text
// ("1m30s", never nanoseconds in JSON) and an error is under "err".
func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: logConventions}
	if cfg.LogFormat == "json" {
		return slog.New(conventionHandler{slog.NewJSONHandler(w, opts)})
	}
	return slog.New(conventionHandler{slog.NewTextHandler(w, opts)})
}

// conventionHandler keeps one "msg" per line: an attribute a component names "msg"
// becomes "detail" (a JSON line with two msg keys breaks log pipelines).
type conventionHandler struct{ slog.Handler }

func (h conventionHandler) Handle(ctx context.Context, r slog.Record) error {
	clash := false
	r.Attrs(func(a slog.Attr) bool {
		clash = clash || a.Key == slog.MessageKey
		return !clash
	})
	if clash {
		nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool {
			nr.AddAttrs(renameMsg(a))
			return true
		})
		r = nr
	}
	return h.Handler.Handle(ctx, r)
}

func (h conventionHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = renameMsg(a)
	}
	return conventionHandler{h.Handler.WithAttrs(out)}
}

func (h conventionHandler) WithGroup(name string) slog.Handler {
	return conventionHandler{h.Handler.WithGroup(name)}
}

func renameMsg(a slog.Attr) slog.Attr {
	if a.Key == slog.MessageKey {
		a.Key = "detail"
	}
	return a
}

// logConventions is the ReplaceAttr of the process logger.
func logConventions(groups []string, a slog.Attr) slog.Attr {
	if a.Key == "error" {
		a.Key = "err"
	}
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// loadAWS loads the SDK's default configuration: its credential chain and AWS_*
// variables (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, …). No custom HTTP client:
// with AWS_CA_BUNDLE set the SDK refuses one.
func loadAWS(ctx context.Context) (aws.Config, error) {
	// The SDK's own logger writes off-format lines ("SDK … WARN falling back to
	// IMDSv1"); failures reach the operator through the returned errors instead.
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithLogger(logging.Nop{}))
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // IAM, STS and Organizations are global; events arrive in us-east-1
	}
	return cfg, nil
}

// oneLine folds a (possibly joined) error into one line for the operator.
func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

// group runs functions until the first fails or ctx ends; Wait returns the first error.
type group struct {
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

func newGroup(ctx context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &group{cancel: cancel}, ctx
}

func (g *group) Go(name string, f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil && !errors.Is(err, context.Canceled) {
			g.once.Do(func() { g.err = fmt.Errorf("%s: %w", name, err); g.cancel() })
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}
