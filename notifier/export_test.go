package notifier

import "context"

// Tick runs one pass of the reminder loop (tests move Config.Now and call it).
func (n *Notifier) Tick(ctx context.Context) error { return n.tick(ctx) }

// TickReads is how many cases the reminder loop has read.
func (n *Notifier) TickReads() int64 { return n.tickReads.Load() }

// DueRevision is the newest rw_slack revision the reminder index has applied.
func (n *Notifier) DueRevision() uint64 {
	n.due.mu.Lock()
	defer n.due.mu.Unlock()
	return n.due.rev
}

// Backlog is how many cases are in projection and how many wait for their channel.
func (n *Notifier) Backlog() (running, waiting int) { return n.work.backlog() }

// HomeWatching reports whether the watch that refreshes App Home tabs is in place.
func (n *Notifier) HomeWatching() bool {
	n.home.mu.Lock()
	defer n.home.mu.Unlock()
	return n.home.watching
}

// HomeMaxShown is how many cases one App Home tab shows at most.
const HomeMaxShown = homeMaxShown

// HomeCaseReads is how many KV case reads the App Home has made.
func (n *Notifier) HomeCaseReads() int64 { return n.home.caseReads.Load() }
