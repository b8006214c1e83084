package detector_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

// D24: a check that could not decide (AccessDenied) logs root_keys=unknown, not
// root_keys=false, which reads as "no root keys".
func TestAnUndecidedFindingLogsRootKeysUnknown(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	b := bustest.New(t)
	d := newDetector(t, w, w.config("OrganizationAccountAccessRole"), b)
	runDetector(t, d)
	w.sim.SetAccessDenied(member(2), true)
	caller := bustest.Connect(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := bus.Checker{NC: caller.NC}.Check(ctx, member(2), "")
	if err != nil || o.ErrorCode != "AccessDenied" {
		t.Fatalf("check = %+v, %v", o, err)
	}
	waitFindings(t, b, 1, func(f model.Observation) bool { return f.ID == o.ID })
	var line string
	for _, l := range strings.Split(w.logs.String(), "\n") {
		if strings.Contains(l, "finding published") && strings.Contains(l, o.ID) {
			line = l
		}
	}
	if !strings.Contains(line, "root_keys=unknown") || !strings.Contains(line, "error_code=AccessDenied") {
		t.Errorf("log line %q: want root_keys=unknown with the error code", line)
	}
}
