package detector

// ProgressEvery lets tests report Scan progress faster than once a second.
var ProgressEvery = &progressEvery

// SweepState is the value of the "sweep" key in rw_sched.
type SweepState = sweepState
