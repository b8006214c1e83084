package tracker

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/internal/trackerfake"
)

// fakeServer is what the contract tests need of either fake: its request log and
// its fault injection.
type fakeServer interface {
	Requests() []trackerfake.Request
	Count(method, pathPrefix string) int
	Fail(statuses ...int)
	FailNext(op trackerfake.Op, n int, f trackerfake.Fault)
}

func testCase(id string) model.Case {
	last := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	return model.Case{ID: id, AccountID: "222222222222", AccountName: "prod", State: model.StateTicketed,
		Severity: model.SeverityCritical, FoundBy: model.SourceSweep, OpenedAt: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
		Keys: []model.KeyDetail{{Slot: 1, Active: true, LastUsedAt: &last, LastUsedService: "s3", LastUsedRegion: "eu-west-1"}}}
}

var fastRetry = Retry{MaxAttempts: 4, Base: time.Millisecond, MaxDelay: 10 * time.Millisecond}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// contractTest is what every REST tracker must do, run against each fake.
type contractEnv struct {
	tr        model.Tracker
	srv       fakeServer
	secret    string
	logs      *testutil.LogBuffer
	createPfx string // method+path prefix of "create issue"
	createMth string
	createOp  trackerfake.Op // the fake's "create issue" operation
	setDone   func(ref model.TicketRef, assignee string)
	isDone    func(ref model.TicketRef) bool
	comments  func(ref model.TicketRef) []string
	labels    func(ref model.TicketRef) []string
	tickets   func() int // how many tickets exist
	checkAuth func(t *testing.T, auth string)
}

func runContract(t *testing.T, newEnv func(t *testing.T) contractEnv) {
	t.Run("open creates once with the case label, then finds it", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxT(t)
		c := testCase("222222222222-1")
		ref, err := e.tr.Open(ctx, c, "https://slack.example/archives/C1/p1")
		if err != nil {
			t.Fatal(err)
		}
		if ref.ID == "" || ref.URL == "" {
			t.Fatalf("ref %+v", ref)
		}
		if got := e.labels(ref); !contains(got, Label(c.ID)) {
			t.Fatalf("labels %v lack %s", got, Label(c.ID))
		}
		ref2, err := e.tr.Open(ctx, c, "")
		if err != nil || ref2 != ref {
			t.Fatalf("second open: %+v %v, want %+v", ref2, err, ref)
		}
		if n := e.srv.Count(e.createMth, e.createPfx); n != 1 {
			t.Fatalf("%d creates, want 1", n)
		}
		other, err := e.tr.Open(ctx, testCase("222222222222-2"), "")
		if err != nil || other.ID == ref.ID {
			t.Fatalf("another case got %+v %v", other, err)
		}
		for _, r := range e.srv.Requests() {
			e.checkAuth(t, r.Auth)
		}
	})
	t.Run("retries 429 and 5xx", func(t *testing.T) {
		e := newEnv(t)
		e.srv.Fail(http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway)
		if _, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), ""); err != nil {
			t.Fatalf("open after transient failures: %v", err)
		}
		if n := len(e.srv.Requests()); n != 5 { // 3 failures, search, create
			t.Fatalf("%d requests, want 5", n)
		}
	})
	t.Run("gives up after max attempts on 5xx", func(t *testing.T) {
		e := newEnv(t)
		e.srv.Fail(500, 500, 500, 500, 500)
		_, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), "")
		if err == nil || model.ErrorCode(err) != model.CodeTransient {
			t.Fatalf("want a transient error, got %v", err)
		}
		if n := len(e.srv.Requests()); n != fastRetry.MaxAttempts {
			t.Fatalf("%d requests, want %d", n, fastRetry.MaxAttempts)
		}
	})
	t.Run("gives up at once on 4xx and leaks no secret", func(t *testing.T) {
		e := newEnv(t)
		for _, st := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound} {
			before := len(e.srv.Requests())
			e.srv.Fail(st)
			_, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), "")
			if err == nil {
				t.Fatalf("%d: want an error", st)
			}
			if n := len(e.srv.Requests()) - before; n != 1 {
				t.Fatalf("%d: %d requests, want 1", st, n)
			}
			if model.ErrorCode(err) == model.CodeTransient {
				t.Fatalf("%d classified transient", st)
			}
			if strings.Contains(err.Error(), e.secret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		}
		e.srv.Fail(503, 503)
		_, _ = e.tr.Open(ctxT(t), testCase("222222222222-1"), "")
		if e.logs.String() == "" {
			t.Fatal("retries were not logged")
		}
		if strings.Contains(e.logs.String(), e.secret) {
			t.Fatalf("logs leak the secret: %s", e.logs.String())
		}
	})
	t.Run("a create whose answer is lost or answered 5xx makes one ticket", func(t *testing.T) {
		for _, ft := range []trackerfake.Fault{
			trackerfake.Lost(),
			trackerfake.StatusAfter(http.StatusBadGateway),
			trackerfake.StatusAfter(http.StatusServiceUnavailable),
		} {
			e := newEnv(t)
			e.srv.FailNext(e.createOp, 1, ft)
			ref, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), "")
			if err != nil {
				t.Fatalf("%+v: open: %v", ft, err)
			}
			if n := e.tickets(); n != 1 {
				t.Fatalf("%+v: %d tickets for one case, want 1", ft, n)
			}
			if again, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), ""); err != nil || again != ref {
				t.Fatalf("%+v: second open %+v %v, want %+v", ft, again, err, ref)
			}
		}
	})
	t.Run("a hung call gives up at the client's timeout", func(t *testing.T) {
		e := newEnv(t)
		e.srv.FailNext(trackerfake.OpAny, 4, trackerfake.Hang(time.Minute))
		done := make(chan error, 1)
		go func() {
			_, err := e.tr.Open(context.Background(), testCase("222222222222-1"), "")
			done <- err
		}()
		select {
		case err := <-done:
			if model.ErrorCode(err) != model.CodeTransient {
				t.Fatalf("want a transient error, got %v", err)
			}
		case <-time.After(8 * time.Second):
			t.Fatal("Open still waits on a server that never answers")
		}
	})
	t.Run("close, reopen, comment and status", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxT(t)
		ref, err := e.tr.Open(ctx, testCase("222222222222-1"), "")
		if err != nil {
			t.Fatal(err)
		}
		if st, err := e.tr.Status(ctx, ref); err != nil || st.Done {
			t.Fatalf("new ticket status %+v %v", st, err)
		}
		e.setDone(ref, "bob")
		st, err := e.tr.Status(ctx, ref)
		if err != nil || !st.Done || st.Assignee != "bob" || st.ClosedAt == "" {
			t.Fatalf("done ticket status %+v %v (a done ticket names its closure time)", st, err)
		}
		if err := e.tr.Reopen(ctx, ref, "Keys are still there"); err != nil {
			t.Fatal(err)
		}
		if e.isDone(ref) {
			t.Fatal("reopen left the ticket done")
		}
		time.Sleep(2 * time.Millisecond) // Jira's times are in milliseconds
		e.setDone(ref, "bob")
		if st2, err := e.tr.Status(ctx, ref); err != nil || st2.ClosedAt == "" || st2.ClosedAt == st.ClosedAt {
			t.Fatalf("a second closure has closure time %q, the first %q (%v)", st2.ClosedAt, st.ClosedAt, err)
		}
		if err := e.tr.Reopen(ctx, ref, ""); err != nil {
			t.Fatal(err)
		}
		if err := e.tr.Comment(ctx, ref, "a note"); err != nil {
			t.Fatal(err)
		}
		if err := e.tr.Close(ctx, ref, "Resolved: no root keys"); err != nil {
			t.Fatal(err)
		}
		if !e.isDone(ref) {
			t.Fatal("close left the ticket open")
		}
		// As a reader sees them: GitHub's comments are escaped Markdown.
		got := strings.NewReplacer("\\", "", escape.ZWSP, "").Replace(strings.Join(e.comments(ref), "|"))
		if got != "Keys are still there|a note|Resolved: no root keys" {
			t.Fatalf("comments %q", got)
		}
	})
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestReopenRefusalsAreFinal(t *testing.T) {
	t.Run("jira workflow without a way out of Done", func(t *testing.T) {
		e, f := newJiraEnv(t, trackerfake.WithoutReopen())
		ref, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), "")
		if err != nil {
			t.Fatal(err)
		}
		f.SetStatus(ref.ID, "Done", "bob")
		if err := e.tr.Reopen(ctxT(t), ref, "Keys are still there"); model.ErrorCode(err) != model.CodeInvalid {
			t.Fatalf("reopen: %v, want a final (invalid) error", err)
		}
	})
	t.Run("archived github repository", func(t *testing.T) {
		e, f := newGHEnv(t)
		ref, err := e.tr.Open(ctxT(t), testCase("222222222222-1"), "")
		if err != nil {
			t.Fatal(err)
		}
		f.CloseIssue(1, "bob")
		f.SetArchived(true)
		if err := e.tr.Reopen(ctxT(t), ref, "Keys are still there"); model.ErrorCode(err) != model.CodeUnauthorized {
			t.Fatalf("reopen: %v, want a final (unauthorized) error", err)
		}
	})
}
