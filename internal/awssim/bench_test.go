package awssim_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

func TestMemoryPerAccountIsSmall(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sim := awssim.New(awssim.Options{})
	for i := 0; i < 10000; i++ {
		id := fmt.Sprintf("%012d", 100000000000+i)
		sim.AddAccount(awssim.Account{ID: id})
		sim.CreateRootKey(id, time.Time{})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (after.HeapAlloc - before.HeapAlloc) / 10000
	t.Logf("heap per account with one root key: %d bytes", per)
	if per > 4096 {
		t.Fatalf("heap per account = %d bytes, want < 4 KiB", per)
	}
	runtime.KeepAlive(sim)
}

// BenchmarkSweep10k sweeps 10,000 accounts (AssumeRole + GetAccountSummary
// each) at 50ms latency with 1,000 workers, through the real SDK.
//
//	go test -run '^$' -bench Sweep10k -benchtime 1x ./internal/awssim/
func BenchmarkSweep10k(b *testing.B) {
	sim := awssim.New(awssim.Options{})
	sim.AddAccount(awssim.Account{ID: mgmtID, Management: true})
	sim.EnableOrganization(mgmtID)
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("%012d", 100000000000+i)
		sim.AddAccount(awssim.Account{ID: ids[i]})
		if i%10 == 0 {
			sim.CreateRootKey(ids[i], time.Time{})
		}
	}
	srv := sim.Start()
	defer srv.Close()
	sim.SetLatency(50 * time.Millisecond)
	e := &env{sim: sim, url: srv.URL}
	mgmt := e.admin(b, mgmtID)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		jobs := make(chan string)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var found, failed int
		for w := 0; w < 1000; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range jobs {
					out, err := assumeRoleErr(mgmt, "arn:aws:iam::"+id+":role/OrganizationAccountAccessRole")
					if err == nil {
						var sum *iam.GetAccountSummaryOutput
						sum, err = e.session(b, out.Credentials).iam.GetAccountSummary(context.Background(), &iam.GetAccountSummaryInput{})
						if err == nil && sum.SummaryMap["AccountAccessKeysPresent"] == 1 {
							mu.Lock()
							found++
							mu.Unlock()
						}
					}
					if err != nil {
						mu.Lock()
						failed++
						mu.Unlock()
					}
				}
			}()
		}
		for _, id := range ids {
			jobs <- id
		}
		close(jobs)
		wg.Wait()
		if found != 1000 || failed != 0 {
			b.Fatalf("found %d accounts with root keys, %d failures; want 1000, 0", found, failed)
		}
	}
}
