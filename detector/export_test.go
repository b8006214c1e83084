package detector

// ProgressEvery lets tests report Scan progress faster than once a second.
var ProgressEvery = &progressEvery

// SweepState is the value of the "sweep" key in rw_sched.
type SweepState = sweepState

// ScannerLimit is the adaptive concurrency bound of a Scanner and how often it was cut.
func ScannerLimit(s *Scanner) (float64, int) { return s.e.lim.current() }
