package detector_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
)

func TestTmpListTiming(t *testing.T) {
	if os.Getenv("TMPLIST") == "" {
		t.Skip()
	}
	w := newWorld(t, 2999, true, awssim.Options{})
	w.sim.SetLatency(50 * time.Millisecond)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.Concurrency = benchEnvInt("TMPCONC", 256)
	for range 3 {
		sc, _ := detector.NewScanner(cfg, nil, w.awsConfig())
		start := time.Now()
		obs, err := sc.Scan(context.Background(), nil)
		t.Logf("scan %d in %s (%v) calls %v", len(obs), time.Since(start), err, w.sim.Calls()["Organizations.ListAccounts"])
		w.sim.ResetCalls()
	}
}
