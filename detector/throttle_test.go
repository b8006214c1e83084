package detector_test

import (
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

// An account still throttled after the SDK's retries is checked again within the
// same sweep: it ends with a real answer, not an "unchecked" finding that would leave
// its root key unseen until the next sweep.
func TestAThrottledAccountIsCheckedAgainInTheSameSweep(t *testing.T) {
	w := newWorld(t, 1, true, awssim.Options{})
	w.sim.CreateRootKey(member(1), w.clock.Now().Add(-time.Hour))
	w.sim.Throttle(member(1), 6) // more than the SDK's 3 attempts of one check
	b := bustest.New(t)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.ScanInterval = 24 * time.Hour
	d := newDetector(t, w, cfg, b)
	runDetector(t, d)

	t.Cleanup(func() {
		if t.Failed() {
			t.Log(w.logs.String())
		}
	})
	got := waitFindings(t, b, 2, bySource(model.SourceSweep))
	var m model.Observation
	for _, o := range got {
		if o.AccountID == member(1) {
			m = o
		}
		if o.Failed() {
			t.Fatalf("sweep published a failed check for a throttled account: %s (%s)", o.Error, o.ErrorCode)
		}
	}
	if !m.RootKeysPresent {
		t.Errorf("the member's root key was not seen: %+v", m)
	}
}
