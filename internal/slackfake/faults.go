package slackfake

// Failures by share: FailShare makes a share of a method's calls fail, drawn from a
// seeded source (WithSeed) so that a chaos run can be repeated.

import (
	"math/rand/v2"
	"net/http"
)

// FailHang answers nothing until the client gives up (its deadline or a closed
// connection), or until the server is closed.
const FailHang FailKind = FailLostResponse + 1

// Hang is a call that never gets an answer.
func Hang() Failure { return Failure{Kind: FailHang} }

// WithSeed seeds the source of FailShare's draws (default seed 1).
func WithSeed(seed uint64) Option {
	return func(s *Server) { s.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

type share struct {
	p float64
	f Failure
}

// FailShare makes each call of method ("*" → every method) fail as f with
// probability p (0 ≤ p ≤ 1), for ever; p = 0 removes the share. Several shares of
// one method are drawn in the order given; FailNext failures come first.
func (s *Server) FailShare(method string, p float64, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p <= 0 {
		delete(s.shares, method)
		return
	}
	s.shares[method] = append(s.shares[method], share{p: p, f: f})
}

// Injected is how many failures were injected into method's calls (FailNext and
// FailShare; "" → all methods).
func (s *Server) Injected(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if method != "" {
		return s.injected[method]
	}
	n := 0
	for _, v := range s.injected {
		n += v
	}
	return n
}

// drawShare picks a share failure for method; callers hold s.mu.
func (s *Server) drawShare(method string) *Failure {
	for _, key := range []string{method, "*"} {
		for _, sh := range s.shares[key] {
			if s.rnd.Float64() < sh.p {
				f := sh.f
				return &f
			}
		}
	}
	return nil
}

// hang waits until the client or the server gives up.
func (s *Server) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.closed:
	}
}
