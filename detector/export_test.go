package detector

import (
	"context"
	"time"
)

// ProgressEvery lets tests report Scan progress faster than once a second.
var ProgressEvery = &progressEvery

// SweepState is the value of the "sweep" key in rw_sched.
type SweepState = sweepState

// ScannerLimit is the adaptive concurrency bound of a Scanner and how often it was cut.
func ScannerLimit(s *Scanner) (float64, int) { return s.e.lim.current() }

// ListOnly runs a Scanner's listing alone and returns the number of accounts.
func ListOnly(ctx context.Context, s *Scanner) (int, error) {
	a, err := s.e.listAccounts(ctx)
	return len(a), err
}

// SetAckWait changes the AckWait of the sweep-job consumer d creates in Run.
func SetAckWait(d *Detector, w time.Duration) { d.ackWait = w }

// PaceReplicas is how many detectors d divides AWS's request rates by.
func PaceReplicas(d *Detector) int {
	d.e.pace.mu.Lock()
	defer d.e.pace.mu.Unlock()
	return d.e.pace.replicas
}

// OrgRate is the rate (calls a second) d uses now for an Organizations operation.
func OrgRate(d *Detector, op string) float64 { return d.e.pace.rateOf(op) }
