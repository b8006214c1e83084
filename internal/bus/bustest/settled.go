package bustest

import (
	"context"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
)

// Settled reports whether a durable consumer of every subject of its stream has
// settled (acked or terminated) every message the stream has stored so far: its ack
// floor is at the stream's last sequence and nothing is in flight. A test asserts
// that something did NOT happen only after this positive signal. NumPending alone is
// not one: right after a publish it can read 0 before the consumer has counted the
// new message.
func Settled(b *bus.Bus, stream, consumer string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.JS.Stream(ctx, stream)
	if err != nil {
		return false
	}
	si, err := s.Info(ctx)
	if err != nil {
		return false
	}
	c, err := s.Consumer(ctx, consumer)
	if err != nil {
		return false
	}
	ci, err := c.Info(ctx)
	return err == nil && ci.NumAckPending == 0 && ci.NumPending == 0 && ci.AckFloor.Stream >= si.State.LastSeq
}
