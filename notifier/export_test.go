package notifier

import "context"

// Tick runs one pass of the reminder loop (tests move Config.Now and call it).
func (n *Notifier) Tick(ctx context.Context) error { return n.tick(ctx) }

// TickReads is how many cases the reminder loop has read.
func (n *Notifier) TickReads() int64 { return n.tickReads.Load() }
