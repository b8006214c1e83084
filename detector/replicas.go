package detector

import (
	"context"
	"encoding/json"
	"regexp"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/wait"
)

// How many detectors share AWS's request rates (pace.go): each renews the rw_sched
// key "detectors.<instance>" every replicaBeat and counts the keys renewed within
// replicaStale; it paces to its share ÷ that count. A stopped detector deletes its
// key; one that died is counted until replicaStale passes (its share returns then),
// and its key is deleted by the others after replicaForget.
const (
	replicaBeat   = 5 * time.Second
	replicaStale  = 3 * replicaBeat
	replicaForget = 10 * time.Minute
)

type replicaBeatValue struct {
	Instance string    `json:"instance"`
	At       time.Time `json:"at"`
}

var keyUnsafe = regexp.MustCompile(`[^-_=a-zA-Z0-9]`)

func (d *Detector) replicaKey() string {
	return bus.SchedDetectorPrefix + keyUnsafe.ReplaceAllString(d.e.cfg.Instance, "_")
}

// countReplicas renews this detector's key and sets the pacer's divisor until ctx
// ends, then deletes the key.
func (d *Detector) countReplicas(ctx context.Context) error {
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = d.b.Sched.Delete(dctx, d.replicaKey())
	}()
	beat := func() bool {
		if err := d.announce(ctx); err != nil && ctx.Err() == nil {
			d.log.Debug("count detectors", "err", safeError(err))
		}
		return true
	}
	beat()
	stop := wait.Every(replicaBeat, beat)
	<-ctx.Done()
	stop()
	return nil
}

// announce renews this detector's key, counts the live ones and sets the divisor.
func (d *Detector) announce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, replicaBeat)
	defer cancel()
	now := time.Now() // real time: the processes' clocks, not a test's
	data, _ := json.Marshal(replicaBeatValue{Instance: d.e.cfg.Instance, At: now.UTC()})
	if _, err := d.b.Sched.Put(ctx, d.replicaKey(), data); err != nil {
		return err
	}
	l, err := d.b.Sched.ListKeysFiltered(ctx, bus.SchedDetectorPrefix+">")
	if err != nil {
		return err
	}
	live := 0
	for k := range l.Keys() {
		e, err := d.b.Sched.Get(ctx, k)
		if err != nil {
			continue
		}
		var v replicaBeatValue
		if json.Unmarshal(e.Value(), &v) != nil {
			continue
		}
		switch age := now.Sub(v.At); {
		case k == d.replicaKey() || age <= replicaStale:
			live++
		case age > replicaForget:
			_ = d.b.Sched.Delete(ctx, k)
		}
	}
	if d.e.pace.setReplicas(live) {
		d.log.Info("detectors sharing AWS's request rates", "detectors", max(1, live), "share_each", d.e.pace.share/float64(max(1, live)))
	}
	return nil
}
