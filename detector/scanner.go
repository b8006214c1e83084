package detector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/wait"
)

// progressMin is the number of accounts from which Scan reports progress.
const progressMin = 100

// progressEvery is how often Scan reports progress.
var progressEvery = time.Second

// Scanner checks every account once, without NATS: `rootwarden scan`.
type Scanner struct {
	e *engine
}

// NewScanner builds a Scanner; cfg.SQSQueueURL and cfg.ScanInterval are not used.
func NewScanner(cfg Config, log *slog.Logger, awsCfg aws.Config) (*Scanner, error) {
	cfg.SQSQueueURL = ""
	e, err := newEngine(cfg, log, awsCfg)
	if err != nil {
		return nil, err
	}
	return &Scanner{e: e}, nil
}

// OrgRootAccess reads the organization's centralized root access (IAM
// ListOrganizationsFeatures); ok is false in single-account mode. A refusal is an
// unknown posture with its reason, not an error.
func (s *Scanner) OrgRootAccess(ctx context.Context) (model.OrgRootAccess, bool) {
	return s.e.readOrgRootAccess(ctx)
}

// Scan lists the accounts and checks each, Concurrency at a time. The error is for a
// failed set-up (no caller identity, no account list); an account that cannot be
// checked is an observation with Error. Observations come sorted by account id.
// When progress is not nil and there are many accounts, a line such as
// "checked 1200/10000 accounts" is written to it about every second.
func (s *Scanner) Scan(ctx context.Context, progress io.Writer) ([]model.Observation, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		out     []model.Observation
		listed  atomic.Int64
		checked atomic.Int64
		listing atomic.Bool
	)
	listing.Store(true)
	report := func() {
		n := listed.Load()
		if progress == nil || n < progressMin {
			return
		}
		more := ""
		if listing.Load() {
			more = "+" // still listing
		}
		fmt.Fprintf(progress, "checked %d/%d%s accounts\n", checked.Load(), n, more)
	}
	stopReporting := func() {}
	if progress != nil {
		stopReporting = wait.Every(progressEvery, func() bool { report(); return true })
	}

	jobs := make(chan accountInfo, s.e.cfg.Concurrency)
	var wg sync.WaitGroup
	for range s.e.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range jobs {
				obs := s.e.check(ctx, a, model.SourceCheck)
				// An account with keys has its tags (the owner among them) and OU
				// path read by the check itself (routing.go), one Organizations
				// call each; a clean account's are not read.
				obs.ID = "scan-" + newID()
				mu.Lock()
				out = append(out, obs)
				mu.Unlock()
				checked.Add(1)
			}
		}()
	}
	err := s.e.eachAccount(ctx, func(page []accountInfo) error {
		for _, a := range page {
			listed.Add(1)
			select {
			case jobs <- a:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	listing.Store(false)
	if err != nil {
		cancel() // set-up failed: stop the checks in flight
	}
	close(jobs)
	wg.Wait()
	stopReporting()
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("scan interrupted after %d/%d accounts: %w", checked.Load(), listed.Load(), err)
	}
	report()
	// Accounts checked before the tree walk reached them get its OU paths.
	s.e.dirMu.Lock()
	for i, o := range out {
		if a, ok := s.e.dir[o.AccountID]; ok && o.OUPath == "" && a.OUKnown {
			out[i].OUPath = a.OUPath
		}
	}
	s.e.dirMu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].AccountID < out[j].AccountID })
	return out, nil
}
