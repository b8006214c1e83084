package detector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

const mgmtID = "111111111111"

// world is a running simulator: a management account and members.
type world struct {
	sim   *awssim.Sim
	url   string
	clock *testutil.Clock
	logs  *testutil.LogBuffer
	aws   aws.Config // the management account's admin user
}

// newWorld starts a simulator with the management account (alias "acme-mgmt") and
// members 200000000001… ("member-1"…); org=false leaves them out of an organization.
func newWorld(t *testing.T, members int, org bool, opts awssim.Options) *world {
	t.Helper()
	clk := testutil.NewClock(time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC))
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	// AWS's published rates are off for speed; the tests of pacing (pace_test.go)
	// and the benchmarks turn them on with w.sim.SetRateLimits(true).
	opts.NoRateLimits = true
	sim := awssim.New(opts)
	sim.AddAccount(awssim.Account{ID: mgmtID, Name: "management", Management: true, Alias: "acme-mgmt"})
	for i := 1; i <= members; i++ {
		sim.AddAccount(awssim.Account{ID: member(i), Name: fmt.Sprintf("member-%d", i)})
	}
	if org {
		sim.EnableOrganization(mgmtID)
	}
	srv := sim.Start()
	t.Cleanup(srv.Close)
	w := &world{sim: sim, url: srv.URL, clock: clk, logs: &testutil.LogBuffer{}}
	w.aws = w.awsConfigAs(t, mgmtID)
	return w
}

func member(i int) string { return fmt.Sprintf("2%011d", i) }

// awsConfig signs as the management account's admin user, against the simulator.
func (w *world) awsConfig() aws.Config { return w.aws }

// awsConfigAs signs as that account's admin user.
func (w *world) awsConfigAs(t *testing.T, account string) aws.Config {
	t.Helper()
	cfg, err := w.sim.ClientConfig(context.Background(), w.url, account)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// config is a detector configuration for tests: the world's clock, short backoff.
func (w *world) config(orgRole string) detector.Config {
	return detector.Config{
		OrgRoleName:    orgRole,
		ScanInterval:   24 * time.Hour,
		Concurrency:    4,
		AccountTimeout: 10 * time.Second,
		MaxBackoff:     20 * time.Millisecond,
		Now:            w.clock.Now,
		// Most tests here tell a sweep's checks by their findings: every check is
		// published. unchanged_test.go tests the steady state with the default.
		RepublishEvery: -1,
	}
}

// eventsConfig creates the events queue in the management account and returns the
// organization configuration reading it, and the queue's URL.
func (w *world) eventsConfig() (detector.Config, string) {
	queue := w.sim.CreateQueue(mgmtID, "rootwarden-events")
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.SQSQueueURL = queue
	return cfg, queue
}

func (w *world) logger() *slog.Logger { return w.logs.Logger() }

// scan runs a Scanner with cfg and fails the test on a set-up error.
func (w *world) scan(t *testing.T, cfg detector.Config) map[string]model.Observation {
	t.Helper()
	sc, err := detector.NewScanner(cfg, w.logger(), w.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	obs, err := sc.Scan(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]model.Observation{}
	for _, o := range obs {
		if _, dup := out[o.AccountID]; dup {
			t.Errorf("account %s checked twice", o.AccountID)
		}
		out[o.AccountID] = o
	}
	return out
}

// assertNoSecrets fails when a secret the simulator handed out appears in s.
func (w *world) assertNoSecrets(t *testing.T, what, s string, accounts ...string) {
	t.Helper()
	for _, a := range append([]string{mgmtID}, accounts...) {
		_, secret := w.sim.AdminCredentials(a)
		if strings.Contains(s, secret) {
			t.Errorf("%s contains the admin secret of %s", what, a)
		}
		for _, k := range w.sim.RootKeys(a) {
			if sec := w.sim.RootKeySecret(a, k.ID); sec != "" && strings.Contains(s, sec) {
				t.Errorf("%s contains a root key secret of %s", what, a)
			}
		}
	}
}

// findings reads every observation on the findings stream, in order.
func findings(t *testing.T, b *bus.Bus) []model.Observation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.JS.Stream(ctx, bus.StreamFindings)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []model.Observation
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			if err == jetstream.ErrMsgNotFound {
				continue
			}
			t.Fatal(err)
		}
		var o model.Observation
		if err := json.Unmarshal(m.Data, &o); err != nil {
			t.Fatalf("finding %d is not an Observation: %v", seq, err)
		}
		if m.Subject != bus.FindingSubject(o.AccountID) {
			t.Errorf("finding for %s on subject %s", o.AccountID, m.Subject)
		}
		if id := m.Header.Get(jetstream.MsgIDHeader); id == "" || id != o.ID {
			t.Errorf("finding %s has Nats-Msg-Id %q", o.ID, id)
		}
		out = append(out, o)
	}
	return out
}

// waitFindings waits until keep selects at least n findings and returns those.
func waitFindings(t *testing.T, b *bus.Bus, n int, keep func(model.Observation) bool) []model.Observation {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got []model.Observation
		for _, o := range findings(t, b) {
			if keep == nil || keep(o) {
				got = append(got, o)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d findings, want %d: %+v", len(got), n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func bySource(src model.Source) func(model.Observation) bool {
	return func(o model.Observation) bool { return o.Source == src }
}

// runDetector runs d until the test ends.
func runDetector(t *testing.T, d *detector.Detector) {
	t.Helper()
	testutil.Run(t, 30*time.Second, d.Run)
}
