package notifier

import (
	"context"
	"time"
)

// Tick runs one pass of the reminder loop (tests move Config.Now and call it).
func (n *Notifier) Tick(ctx context.Context) error { return n.tick(ctx) }

// TickReads is how many cases the reminder loop has read.
func (n *Notifier) TickReads() int64 { return n.tickReads.Load() }

// HoldPosts keeps the channel's post bucket closed until ReleasePosts, so that a
// test can let every post queue up and then see the order the priorities give them
// (instead of racing the publisher against the pacer's first tokens).
func (n *Notifier) HoldPosts(channel string) { n.pace.block(keyPost+channel, time.Hour) }

// ReleasePosts opens the channel's post bucket again (at its rate, no burst).
func (n *Notifier) ReleasePosts(channel string) {
	n.pace.mu.Lock()
	defer n.pace.mu.Unlock()
	b := n.pace.bucket(keyPost + channel)
	b.blocked, b.at = time.Time{}, n.pace.now()
	b.notify()
}

// DueRevision is the newest rw_slack revision the reminder index has applied.
func (n *Notifier) DueRevision() uint64 {
	n.due.mu.Lock()
	defer n.due.mu.Unlock()
	return n.due.rev
}

// Backlog is how many cases are in projection and how many wait for their channel.
func (n *Notifier) Backlog() (running, waiting int) { return n.work.backlog() }
