package trackerfake

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Op is an operation of a fake, the unit faults are injected for.
type Op string

// The GitHub operations the fake serves.
const (
	OpCreate   Op = "create"   // POST   /repos/{owner}/{repo}/issues
	OpList     Op = "list"     // GET    /repos/{owner}/{repo}/issues
	OpGet      Op = "get"      // GET    /repos/{owner}/{repo}/issues/{n}
	OpUpdate   Op = "update"   // PATCH  /repos/{owner}/{repo}/issues/{n}
	OpComment  Op = "comment"  // POST   /repos/{owner}/{repo}/issues/{n}/comments
	OpComments Op = "comments" // GET    /repos/{owner}/{repo}/issues/{n}/comments
	OpLabels   Op = "labels"   // POST   /repos/{owner}/{repo}/issues/{n}/labels
	OpSearch   Op = "search"   // GET    /search/issues
	OpAny      Op = "*"        // FailNext/FailShare: any operation
)

// FaultKind says how an injected fault looks on the wire.
type FaultKind string

// Fault kinds.
const (
	// FaultLost performs the call, then closes the connection without an answer.
	FaultLost FaultKind = "lost"
	// FaultStatusAfter performs the call, then answers an HTTP error status (5xx): the
	// client sees a failure of a call that took effect.
	FaultStatusAfter FaultKind = "status_after"
	// FaultStatus answers an HTTP error status (5xx) with GitHub's JSON error body.
	FaultStatus FaultKind = "status"
	// FaultHang holds the request (without acting) for a while, then closes the connection.
	FaultHang FaultKind = "hang"
	// FaultSecondaryRateLimit answers 403 with Retry-After, as GitHub's secondary limit does.
	FaultSecondaryRateLimit FaultKind = "secondary_rate_limit"
	// FaultPrimaryRateLimit answers 403 with x-ratelimit-remaining: 0 and x-ratelimit-reset.
	FaultPrimaryRateLimit FaultKind = "primary_rate_limit"
)

// Fault is an injected misbehaviour; build it with Lost, Status, Hang,
// SecondaryRateLimit or PrimaryRateLimit.
type Fault struct {
	Kind       FaultKind
	Status     int
	Hang       time.Duration
	RetryAfter time.Duration
}

// Lost lets the call take effect, then drops the connection without an answer.
func Lost() Fault { return Fault{Kind: FaultLost} }

// Status answers an HTTP error status such as 500, 502 or 503 without acting.
func Status(code int) Fault { return Fault{Kind: FaultStatus, Status: code} }

// StatusAfter performs the call, then answers an HTTP error status such as 502.
func StatusAfter(code int) Fault { return Fault{Kind: FaultStatusAfter, Status: code} }

// Hang holds the request for d (or until the client gives up or the fake closes),
// does nothing, and closes the connection.
func Hang(d time.Duration) Fault { return Fault{Kind: FaultHang, Hang: d} }

// SecondaryRateLimit answers 403 "secondary rate limit" with Retry-After (seconds).
func SecondaryRateLimit(retryAfter time.Duration) Fault {
	return Fault{Kind: FaultSecondaryRateLimit, Status: http.StatusForbidden, RetryAfter: retryAfter}
}

// PrimaryRateLimit answers 403 "API rate limit exceeded" with x-ratelimit-remaining: 0
// and a reset retryAfter from now.
func PrimaryRateLimit(retryAfter time.Duration) Fault {
	return Fault{Kind: FaultPrimaryRateLimit, Status: http.StatusForbidden, RetryAfter: retryAfter}
}

type share struct {
	p float64
	f Fault
}

// injector holds the faults of one fake and draws them per request.
type injector struct {
	mu      sync.Mutex
	rnd     *rand.Rand
	calls   map[Op]int
	faults  map[FaultKind]int
	next    map[Op][]Fault
	shares  map[Op][]share
	fn      func(Op) *Fault
	reqs    []Request
	closing chan struct{}
	once    sync.Once
}

// Request is one request a fake received, faulted ones included.
type Request struct {
	Method, Path, Query, Auth string
}

func newInjector() *injector {
	return &injector{rnd: rand.New(rand.NewPCG(1, 2)), calls: map[Op]int{}, faults: map[FaultKind]int{},
		next: map[Op][]Fault{}, shares: map[Op][]share{}, closing: make(chan struct{})}
}

func (in *injector) seed(seed uint64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func (in *injector) closeHangs() { in.once.Do(func() { close(in.closing) }) }

// FailNext makes the next n calls of op (OpAny: of any operation) fail as f. Queued
// faults of the operation itself come before those of OpAny.
func (in *injector) FailNext(op Op, n int, f Fault) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for range n {
		in.next[op] = append(in.next[op], f)
	}
}

// FailShare makes a share p (0..1) of the calls of op (OpAny: of every operation)
// fail as f, drawn from the seeded source. Several shares of one op add up.
func (in *injector) FailShare(op Op, p float64, f Fault) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.shares[op] = append(in.shares[op], share{p: p, f: f})
}

// Fail queues one fault per status, answered (without acting) by the next calls of
// any operation, in order.
func (in *injector) Fail(statuses ...int) {
	for _, st := range statuses {
		in.FailNext(OpAny, 1, Status(st))
	}
}

// FailFunc is consulted for every call no queued fault took: a fault it returns
// applies to that call (nil: none). It runs under the injector's lock.
func (in *injector) FailFunc(fn func(op Op) *Fault) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.fn = fn
}

// ClearFaults drops every queued fault, share and FailFunc.
func (in *injector) ClearFaults() {
	in.mu.Lock()
	defer in.mu.Unlock()
	clear(in.next)
	clear(in.shares)
	in.fn = nil
}

// record notes a request as it arrives, before any routing or fault.
func (in *injector) record(r *http.Request) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.reqs = append(in.reqs, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization")})
}

// Requests are the requests received so far, in arrival order.
func (in *injector) Requests() []Request {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.reqs)
}

// Count counts the requests with this method under this path prefix.
func (in *injector) Count(method, pathPrefix string) int {
	n := 0
	for _, r := range in.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

// Calls is how many requests reached op, faulted ones included.
func (in *injector) Calls(op Op) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.calls[op]
}

// Faults returns how many faults of each kind were injected.
func (in *injector) Faults() map[FaultKind]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[FaultKind]int, len(in.faults))
	for k, v := range in.faults {
		out[k] = v
	}
	return out
}

// pick takes a queued fault of op, then of OpAny, then draws the shares.
func (in *injector) pick(op Op) *Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.calls[op]++
	f := in.pickLocked(op)
	if f != nil {
		in.faults[f.Kind]++
	}
	return f
}

func (in *injector) pickLocked(op Op) *Fault {
	for _, o := range []Op{op, OpAny} {
		if q := in.next[o]; len(q) > 0 {
			f := q[0]
			in.next[o] = q[1:]
			return &f
		}
	}
	x := in.rnd.Float64()
	for _, o := range []Op{op, OpAny} {
		for _, s := range in.shares[o] {
			if x < s.p {
				f := s.f
				return &f
			}
			x -= s.p
		}
	}
	if in.fn != nil {
		return in.fn(op)
	}
	return nil
}

// inject applies a fault drawn for op, if any, and reports whether it answered the
// request. act performs the call (a lost answer performs it, then drops the
// connection); fail writes the system's error body.
func (in *injector) inject(w http.ResponseWriter, r *http.Request, op Op, act func(http.ResponseWriter),
	fail func(http.ResponseWriter, int, string)) bool {
	f := in.pick(op)
	if f == nil {
		return false
	}
	switch f.Kind {
	case FaultStatus:
		if f.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		fail(w, f.Status, "Server Error")
	case FaultStatusAfter:
		act(discard{header: http.Header{}})
		fail(w, f.Status, "Server Error")
	case FaultSecondaryRateLimit:
		w.Header().Set("Retry-After", strconv.Itoa(secs(f.RetryAfter)))
		fail(w, f.Status, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
	case FaultPrimaryRateLimit:
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Used", "5000")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(f.RetryAfter).Unix(), 10))
		fail(w, f.Status, "API rate limit exceeded for installation.")
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-in.closing:
		case <-time.After(f.Hang):
		}
		hijackClose(w)
	case FaultLost:
		act(discard{header: http.Header{}})
		hijackClose(w)
	default:
		return false
	}
	return true
}

// hijackClose drops the connection without writing a response.
func hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2 or a recorder: abort the stream instead
}

// discard is a ResponseWriter for a call whose answer is lost.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

func secs(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// Sorted returns the keys of a count map in order, for stable log lines.
func Sorted[K ~string](m map[K]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	return keys
}
