package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

// runSim serves the AWS simulator with a seeded organization, so that `scan`, `run`
// and scripts can be tried against it: it prints the variables to export.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4566", "listen address (keep it on loopback: the control surface has no authentication)")
	accounts := fs.Int("accounts", 5, "member accounts in the organization")
	withKeys := fs.Int("root-keys", 2, "member accounts that have a root access key")
	latency := fs.Duration("latency", 0, "latency added to every AWS call")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *accounts < 0 || *withKeys < 0 || *withKeys > *accounts {
		fmt.Fprintln(stderr, "rootwarden sim: --root-keys must be between 0 and --accounts")
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden sim: --addr: %v\n", err)
		return 2
	}
	base := "http://" + ln.Addr().String()
	sim := awssim.New(awssim.Options{})
	sim.SetBaseURL(base)
	const mgmt = "100000000000"
	sim.AddAccount(awssim.Account{ID: mgmt, Name: "management", Email: "root@example.com", Management: true})
	sim.EnableOrganization(mgmt)
	now := time.Now().UTC()
	for i := 1; i <= *accounts; i++ {
		id := fmt.Sprintf("2%011d", i)
		sim.AddAccount(awssim.Account{ID: id, Name: fmt.Sprintf("member-%d", i), Email: fmt.Sprintf("aws-%d@example.com", i)})
		if i <= *withKeys {
			sim.CreateRootKey(id, now.AddDate(0, -i, 0))
		}
	}
	sim.SetLatency(*latency)
	queue := sim.CreateQueue(mgmt, "rootwarden-events")
	akid, secret := sim.AdminCredentials(mgmt)
	fmt.Fprintf(stdout, `# AWS simulator: an organization of %d member accounts, %d with a root access key.
export AWS_ENDPOINT_URL=%s
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=%s
export AWS_SECRET_ACCESS_KEY=%s
export ROOTWARDEN_ORG_ROLE_NAME=OrganizationAccountAccessRole
export ROOTWARDEN_SQS_QUEUE_URL=%s
# control: curl -X POST %s/_sim/accounts/200000000001/root-keys
#          curl -X POST %s/_sim/queues/rootwarden-events/events -d '{"kind":"created","account":"200000000001","keyId":"AKIA…"}'
`, *accounts, *withKeys, base, akid, secret, queue, base, base)
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "rootwarden sim: %v\n", err)
		return 2
	}
	return 0
}
