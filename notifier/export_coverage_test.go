package notifier

import "context"

// CoverageSummary runs one pass of the daily coverage summary (coverage.go).
func (n *Notifier) CoverageSummary(ctx context.Context) error { return n.coverageSummary(ctx) }
