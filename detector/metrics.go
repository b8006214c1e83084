package detector

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the detector. They exist (unregistered) when no registry is given, so
// the code never checks for nil.
type metrics struct {
	checked   *prometheus.CounterVec   // accounts checked, by source
	errors    *prometheus.CounterVec   // checks that could not decide, by source
	published *prometheus.CounterVec   // findings published, by source
	ignored   *prometheus.CounterVec   // SQS messages deleted without a check, by kind
	duration  *prometheus.HistogramVec // seconds per account check, by source
	sweeps    prometheus.Counter       // sweeps this process enumerated
	unchanged prometheus.Counter       // sweep checks that published nothing (unchanged.go)
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		checked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rootwarden_detector_accounts_checked_total",
			Help: "Account checks done, by source (sweep, event, check, scan)."}, []string{"source"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rootwarden_detector_check_errors_total",
			Help: "Account checks that could not decide presence, by source."}, []string{"source"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rootwarden_detector_findings_published_total",
			Help: "Observations published on the findings stream, by source."}, []string{"source"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rootwarden_detector_events_ignored_total",
			Help: "SQS messages deleted without a check: malformed or irrelevant."}, []string{"kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rootwarden_detector_check_duration_seconds",
			Help:    "Duration of one account check, credential report included.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}}, []string{"source"}),
		sweeps: prometheus.NewCounter(prometheus.CounterOpts{Name: "rootwarden_detector_sweeps_started_total",
			Help: "Sweeps this process won the election for and enumerated."}),
		unchanged: prometheus.NewCounter(prometheus.CounterOpts{Name: "rootwarden_detector_sweep_checks_unchanged_total",
			Help: "Sweep checks that found an account as its newest observation says and published nothing."}),
	}
	for _, src := range []string{"sweep", "event", "check", "scan"} { // series exist from start
		m.checked.WithLabelValues(src)
		m.errors.WithLabelValues(src)
		m.published.WithLabelValues(src)
		m.duration.WithLabelValues(src)
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.checked, err = register(reg, m.checked); err != nil {
		return nil, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.published, err = register(reg, m.published); err != nil {
		return nil, err
	}
	if m.ignored, err = register(reg, m.ignored); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.sweeps, err = register(reg, m.sweeps); err != nil {
		return nil, err
	}
	if m.unchanged, err = register(reg, m.unchanged); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under its name
// (a second detector in the same process shares the first one's series).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("detector metrics: %w", err)
	}
	return c, nil
}
