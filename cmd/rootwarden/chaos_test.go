package main

// TestChaos runs the built binary (`rootwarden run`) as a child process over one
// persistent data directory against the AWS simulator (throttling a share of calls),
// the Slack fake and the GitHub fake (both misbehaving), kills it with SIGKILL every
// few seconds while approvers and responders click, and then checks that every case is
// exact: one Slack message, one ticket, no reply twice, each transition once, final
// messages and tickets matching the states, every click Slack got a 200 for applied,
// and all of it settled within 30 s of the last kill.
//
//	go test ./cmd/rootwarden -run TestChaos -v            (about a minute)
//	ROOTWARDEN_SOAK=1 go test ./cmd/rootwarden -run TestChaos -v -timeout 30m
//
// ROOTWARDEN_CHAOS_FAULTS=slack,github,aws|none and ROOTWARDEN_CHAOS_KILLS=n narrow a
// failing run down; ROOTWARDEN_CHAOS_SUMMARY=<file> appends the summary line to that file;
// ROOTWARDEN_CHAOS_LOG=<file> keeps the child's log there.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/trackerfake"
	"github.com/rootwarden/rootwarden/notifier"
	"github.com/rootwarden/rootwarden/remediator"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

const (
	chaosMgmt     = "111111111111"
	chaosChannel  = "C0CHAOS001"
	chaosBot      = "xoxb-chaos-bot-token-SECRET"
	chaosSecret   = "chaos-signing-secret-SECRET"
	chaosAPIToken = "chaos-api-token-SECRET"
	chaosGHToken  = "ghp_chaosTOKENsecret"
	chaosSeed     = 20261201
	settleWithin  = 30 * time.Second
	postEvery     = time.Second             // Slack: about 1 message per second per channel
	editEvery     = 1200 * time.Millisecond // chat.update: Tier 3, 50 a minute
	maxFloor      = 40 * time.Second        // longest wait added for owed posts and edits (a product posting in a loop must not move the deadline for ever)
)

// chaosPlan is the size of a run: the short one for CI, the soak behind ROOTWARDEN_SOAK=1.
type chaosPlan struct {
	keyAccounts, cleanAccounts int
	kills                      int
	minLife, maxLife           time.Duration // a process lives this long before SIGKILL
	throttle                   float64       // share of AWS calls throttled
	slackFaults, githubFaults  bool
}

func planFromEnv() chaosPlan {
	p := chaosPlan{keyAccounts: 12, cleanAccounts: 12, kills: 12, minLife: 1500 * time.Millisecond, maxLife: 3 * time.Second, throttle: 0.15}
	if os.Getenv("ROOTWARDEN_SOAK") == "1" {
		p.keyAccounts, p.cleanAccounts, p.kills = 40, 40, 80
		p.minLife, p.maxLife = time.Second, 6*time.Second
	}
	// Knobs to find which fault breaks a run: ROOTWARDEN_CHAOS_FAULTS lists the faulty
	// parts (default slack,github,aws; "none" for a calm run), ROOTWARDEN_CHAOS_KILLS the
	// number of SIGKILLs (at least 1).
	faults := "slack,github,aws"
	if v := os.Getenv("ROOTWARDEN_CHAOS_FAULTS"); v != "" {
		faults = v
	}
	p.slackFaults, p.githubFaults = strings.Contains(faults, "slack"), strings.Contains(faults, "github")
	if !strings.Contains(faults, "aws") {
		p.throttle = 0
	}
	if n, err := strconv.Atoi(os.Getenv("ROOTWARDEN_CHAOS_KILLS")); err == nil && n >= 1 {
		p.kills = n
	}
	return p
}

type click struct {
	Account, CaseID, ActionID, User string
	ActionTS                        string
	Status                          int
	Err                             string
	At                              time.Time
	TrueClaim                       bool
}

// actionID is the id the notifier gives the action of this click.
func (c click) actionID() string { return "slack:" + c.User + ":" + c.ActionID + ":" + c.ActionTS }

type chaos struct {
	t    *testing.T
	plan chaosPlan

	bin, dataDir, addr, logPath string
	natsAddr                    string // the child's embedded NATS server (ROOTWARDEN_NATS_LISTEN)
	sim                         *awssim.Sim
	simBase, slackURL           string // the fault proxies in front of the simulator and the Slack fake
	sl                          *slackfake.Server
	gh                          *trackerfake.GitHub
	keyAccts, cleanAccts        []string
	trueClaim                   map[string]bool // account → an "I deleted" claim there is true

	mu           sync.Mutex
	rnd          *rand.Rand
	clicks       []click
	falseClaims  map[string]int
	lastClick    map[string]time.Time
	userSeq      int
	slackFaults  map[string]int
	awsThrottled int
	states       map[model.State]int // of the current cases at the last check
	awsCalls     int
	kills        int
	selfExits    []string
	proc         *exec.Cmd
	procDone     chan struct{}
	procExit     error
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test of the whole binary: not in -short")
	}
	plan := planFromEnv()
	c := &chaos{t: t, plan: plan, rnd: rand.New(rand.NewPCG(chaosSeed, 7)), trueClaim: map[string]bool{},
		falseClaims: map[string]int{}, lastClick: map[string]time.Time{}, slackFaults: map[string]int{}}
	c.bin = buildBinary(t)
	c.dataDir = t.TempDir()
	c.addr = freeAddr(t)
	c.natsAddr = freeAddr(t)
	c.logPath = filepath.Join(t.TempDir(), "rootwarden.log")
	if p := os.Getenv("ROOTWARDEN_CHAOS_LOG"); p != "" {
		c.logPath = p // keep the child's log (JSON lines of every life) for a look afterwards
		_ = os.Remove(p)
	}
	c.setupSim()
	c.setupSlack()
	c.setupGitHub()
	t.Cleanup(func() {
		c.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("last 60 log lines of the child:\n%s", tailFile(c.logPath, 60))
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var bg sync.WaitGroup

	// First life: let the first sweep find the accounts, so that clicks happen under
	// the kills (detection under kills is covered by the later lives' redeliveries).
	start := time.Now()
	c.start()
	if !waitUntil(30*time.Second, func() bool { return len(c.postedAccounts()) == len(c.keyAccts) }) {
		t.Errorf("first sweep: only %d of %d accounts with root keys have a Slack message after 30 s",
			len(c.postedAccounts()), len(c.keyAccts))
	}
	detected := time.Since(start)

	clickCtx, stopClicks := context.WithCancel(ctx)
	bg.Add(1)
	go func() { defer bg.Done(); c.clicker(clickCtx) }()
	for i := 0; i < plan.kills; i++ {
		if i > 0 {
			c.start()
		}
		time.Sleep(c.life())
		c.stop(syscall.SIGKILL)
	}
	stopClicks()
	lastKill := time.Now()
	atKill := c.slackCounts()
	// No more hangs after the last kill: a hang is cut only by a deadline, and the
	// settle bound is about recovery, not about the tracker's own timeout.
	c.gh.ClearFaults()
	c.githubShares(false)
	c.start()

	// Settled: within 30 s of the last kill, beyond the floor Slack itself sets — the
	// posts still owed at the last kill go out at most one per second per channel
	// (chat.postMessage's limit) and edits at Tier 3 (50 a minute), which the notifier
	// paces itself to: N owed posts need N seconds whatever the code does. What was
	// owed is what appeared after the kill: every post (a case message, a thread
	// reply; none is a duplicate, check says so) and one edit per message edited since.
	// Edits beyond one per message are the code's choice, not Slack's floor: they count
	// against the 30 s.
	var problems []string
	floor := func() time.Duration {
		p, e := c.slackCounts().owedSince(atKill)
		return max(time.Duration(p)*postEvery, time.Duration(e)*editEvery)
	}
	deadline := func() time.Time { return lastKill.Add(settleWithin + min(floor(), maxFloor)) }
	settled := false
	for !settled && time.Now().Before(deadline()) {
		problems = c.check()
		settled = len(problems) == 0
		if !settled {
			time.Sleep(250 * time.Millisecond)
		}
	}
	settle := time.Since(lastKill)
	postFloor := floor()
	cancel()
	bg.Wait()
	if !settled {
		t.Errorf("not settled within %s of the last kill (+ %s for the posts and edits Slack's limits spread out); %d problems:\n  %s",
			settleWithin, postFloor, len(problems), strings.Join(first(problems, 40), "\n  "))
	}
	c.stop(syscall.SIGTERM)
	if c.procExit != nil && !strings.Contains(c.procExit.Error(), "signal") {
		t.Errorf("rootwarden run after SIGTERM: %v", c.procExit)
	}
	if len(c.selfExits) > 0 {
		t.Errorf("rootwarden exited by itself %d times (not killed): %s", len(c.selfExits), strings.Join(first(c.selfExits, 5), "; "))
	}
	c.checkAuditLog()
	c.checkSecrets()
	c.report(detected, settle, postFloor, settled)
}

// ---- set-up ----

func buildBinary(t *testing.T) string {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go tool to build the binary")
		}
	}
	out := filepath.Join(t.TempDir(), "rootwarden")
	cmd := exec.Command(goTool, "build", "-o", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func (c *chaos) setupSim() {
	c.sim = awssim.New(awssim.Options{})
	c.sim.AddAccount(awssim.Account{ID: chaosMgmt, Name: "management", Management: true})
	for i := 1; i <= c.plan.keyAccounts+c.plan.cleanAccounts; i++ {
		id := fmt.Sprintf("3%011d", i)
		c.sim.AddAccount(awssim.Account{ID: id, Name: fmt.Sprintf("member-%d", i)})
		if i <= c.plan.keyAccounts {
			c.sim.CreateRootKey(id, time.Now().AddDate(-1, 0, 0))
			c.keyAccts = append(c.keyAccts, id)
			c.trueClaim[id] = i%2 == 1
		} else {
			c.cleanAccts = append(c.cleanAccts, id)
		}
	}
	c.sim.EnableOrganization(chaosMgmt)
	srv := httptest.NewServer(c.awsProxy(c.sim.Handler()))
	c.t.Cleanup(srv.Close)
	c.sim.SetBaseURL(srv.URL)
	c.simBase = srv.URL
}

func (c *chaos) setupSlack() {
	c.sl = slackfake.New(slackfake.WithChannel(chaosChannel, "root-keys"), slackfake.WithBotToken(chaosBot))
	for _, id := range approverIDs() {
		c.sl.AddUser(id, "chaos-"+id) // approvers are real members of the workspace
	}
	c.sl.Start()
	c.t.Cleanup(c.sl.Close)
	proxy := httptest.NewServer(c.slackProxy())
	c.t.Cleanup(proxy.Close)
	c.slackURL = proxy.URL + "/api/"
}

func (c *chaos) setupGitHub() {
	c.gh = trackerfake.NewGitHub("acme", "security", trackerfake.WithToken(chaosGHToken), trackerfake.WithSeed(chaosSeed))
	c.gh.Start()
	c.t.Cleanup(c.gh.Close)
	c.githubShares(true)
}

// githubShares sets the tracker's misbehaviour: lost creation answers, 5xx, the
// secondary rate limit and (while killing) hangs.
func (c *chaos) githubShares(hangs bool) {
	if !c.plan.githubFaults {
		return
	}
	c.gh.FailShare(trackerfake.OpCreate, 0.15, trackerfake.Lost())
	c.gh.FailShare(trackerfake.OpCreate, 0.10, trackerfake.Status(502))
	c.gh.FailShare(trackerfake.OpAny, 0.05, trackerfake.Status(500))
	c.gh.FailShare(trackerfake.OpAny, 0.05, trackerfake.SecondaryRateLimit(time.Second))
	if hangs {
		c.gh.FailShare(trackerfake.OpAny, 0.03, trackerfake.Hang(20*time.Second))
	}
}

func approverIDs() []string {
	ids := make([]string, 0, 40)
	for i := 1; i <= 40; i++ {
		ids = append(ids, fmt.Sprintf("U0AP%04d", i))
	}
	return ids
}

func (c *chaos) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "ROOTWARDEN_") || strings.HasPrefix(k, "SLACK_") {
			continue
		}
		env = append(env, kv)
	}
	ak, sk := c.sim.AdminCredentials(chaosMgmt)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": c.simBase, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk,
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"ROOTWARDEN_DATA_DIR": c.dataDir, "ROOTWARDEN_HTTP_ADDR": c.addr, "ROOTWARDEN_NATS_LISTEN": c.natsAddr, "ROOTWARDEN_API_TOKEN": chaosAPIToken,
		"SLACK_BOT_TOKEN": chaosBot, "SLACK_SIGNING_SECRET": chaosSecret, "ROOTWARDEN_SLACK_CHANNEL": chaosChannel,
		"ROOTWARDEN_SLACK_API_URL": c.slackURL, "ROOTWARDEN_APPROVERS": strings.Join(approverIDs(), ","),
		"ROOTWARDEN_ORG_ROLE_NAME": "OrganizationAccountAccessRole", "ROOTWARDEN_SCAN_INTERVAL": "1h",
		"ROOTWARDEN_TRACKER": "github", "ROOTWARDEN_GITHUB_REPO": "acme/security", "ROOTWARDEN_GITHUB_TOKEN": chaosGHToken,
		"ROOTWARDEN_GITHUB_API_URL": c.gh.URL(), "ROOTWARDEN_TICKET_POLL": "10s",
		"ROOTWARDEN_LOG_FORMAT": "json", "ROOTWARDEN_LOG_LEVEL": "info",
	} {
		env = append(env, k+"="+v)
	}
	return env
}

// ---- the child process ----

func (c *chaos) start() {
	c.t.Helper()
	f, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(f, "{\"chaos\":\"start\",\"life\":%d}\n", c.kills+1)
	cmd := exec.Command(c.bin, "run")
	cmd.Env = c.env()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		c.t.Fatalf("start rootwarden run: %v", err)
	}
	done := make(chan struct{})
	c.mu.Lock()
	c.proc, c.procDone = cmd, done
	c.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		c.mu.Lock()
		c.procExit = err
		c.mu.Unlock()
		close(done)
	}()
}

// stop signals the running process and waits for it. An exit that was not caused by
// our signal is recorded as a self-exit (a crash or a start-up refusal).
func (c *chaos) stop(sig syscall.Signal) {
	c.mu.Lock()
	cmd, done := c.proc, c.procDone
	c.proc = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		c.mu.Lock()
		c.selfExits = append(c.selfExits, fmt.Sprintf("life %d: %v", c.kills+1, c.procExit))
		c.mu.Unlock()
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	wait := 30 * time.Second
	select {
	case <-done:
	case <-time.After(wait):
		c.t.Errorf("rootwarden did not stop within %s of %s", wait, sig)
		_ = cmd.Process.Kill()
		<-done
	}
	if sig == syscall.SIGKILL {
		c.mu.Lock()
		c.kills++
		c.mu.Unlock()
	}
}

func (c *chaos) life() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plan.minLife + time.Duration(c.rnd.Int64N(int64(c.plan.maxLife-c.plan.minLife)))
}

// ---- faults ----

// slackProxy stands in front of the Slack fake and decides, per request and from the
// seeded source, whether the call fails: a share of the calls that write or search
// answer 429 with Retry-After, 5xx, or take effect and then answer 500 (lost).
func (c *chaos) slackProxy() http.Handler {
	target, _ := url.Parse(c.sl.APIURL())
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	rp.ErrorLog = log.New(io.Discard, "", 0) // a killed child drops its requests mid-way: normal here
	faulty := map[string]bool{"chat.postMessage": true, "chat.update": true, "conversations.history": true, "conversations.replies": true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := strings.TrimPrefix(r.URL.Path, "/api/")
		if faulty[method] && c.plan.slackFaults {
			c.mu.Lock()
			x := c.rnd.Float64()
			var f *slackfake.Failure
			var kind string
			switch {
			case x < 0.04:
				ff := slackfake.RateLimited(time.Second)
				f, kind = &ff, "429"
			case x < 0.07:
				ff := slackfake.ServerError(503)
				f, kind = &ff, "5xx"
			case x < 0.10:
				ff := slackfake.LostResponse()
				f, kind = &ff, "lost"
			}
			if f != nil {
				c.slackFaults[kind]++
			}
			c.mu.Unlock()
			if f != nil {
				c.sl.FailNext(method, 1, *f)
			}
		}
		rp.ServeHTTP(w, r)
	})
}

// awsProxy stands in front of the AWS simulator and answers a share of the API calls
// (not the /_sim/ control surface) with the service's throttling error, as AWS does
// under load: Query-protocol IAM/STS "Throttling", JSON Organizations
// "TooManyRequestsException". The SDK retries them.
func (c *chaos) awsProxy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim/") {
			next.ServeHTTP(w, r)
			return
		}
		c.mu.Lock()
		throttle := c.rnd.Float64() < c.plan.throttle
		if throttle {
			c.awsThrottled++
		} else {
			c.awsCalls++
		}
		c.mu.Unlock()
		if !throttle {
			next.ServeHTTP(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if target := r.Header.Get("X-Amz-Target"); target != "" {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"TooManyRequestsException","message":"AWS Organizations can't complete your request because another request is already in progress. Try again later."}`)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>chaos-throttle</RequestId></ErrorResponse>`)
	})
}

// ---- the people ----

// clicker plays the on-call people: it approves open cases, and on ticketed ones says
// "I deleted the keys" — truly (it deletes the keys in the simulator first) for half
// of the accounts, falsely (once) for the others. Each click is by a fresh
// user, so a refusal (an ephemeral message to that user) is attributable.
func (c *chaos) clicker(ctx context.Context) {
	tick := time.NewTicker(120 * time.Millisecond)
	defer tick.Stop()
	approvers := approverIDs()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.mu.Lock()
		acct := c.keyAccts[c.rnd.IntN(len(c.keyAccts))]
		recent := time.Since(c.lastClick[acct]) < time.Second
		c.mu.Unlock()
		if recent {
			continue
		}
		m, ok := c.messageOf(acct)
		if !ok {
			continue
		}
		caseID, _ := m.Metadata.EventPayload["case_id"].(string)
		var btn *slackfake.Button
		for _, b := range m.Buttons() {
			if b.ActionID == notifier.ActionIDApprove || b.ActionID == notifier.ActionIDConfirmDeleted {
				btn = &b
				break
			}
		}
		if btn == nil {
			continue
		}
		cl := click{Account: acct, CaseID: caseID, ActionID: btn.ActionID, At: time.Now()}
		c.mu.Lock()
		c.userSeq++
		if btn.ActionID == notifier.ActionIDApprove {
			cl.User = approvers[c.userSeq%len(approvers)]
		} else {
			cl.User = fmt.Sprintf("U0CL%05d", c.userSeq)
			cl.TrueClaim = c.trueClaim[acct]
			if !cl.TrueClaim && c.falseClaims[acct] >= 1 {
				c.mu.Unlock()
				continue
			}
		}
		c.lastClick[acct] = time.Now()
		c.mu.Unlock()
		if cl.TrueClaim {
			for _, k := range c.sim.RootKeys(acct) {
				c.sim.DeleteRootKey(acct, k.ID)
			}
		}
		form := slackfake.BlockAction(cl.User, "chaos-"+cl.User, btn.ActionID, btn.Value, chaosChannel, m.TS)
		var p struct {
			Actions []struct {
				ActionTS string `json:"action_ts"`
			} `json:"actions"`
		}
		_ = json.Unmarshal([]byte(form.Get("payload")), &p)
		if len(p.Actions) == 1 {
			cl.ActionTS = p.Actions[0].ActionTS
		}
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second) // Slack gives up after 3 s
		status, _, err := slackfake.Deliver(dctx, "http://"+c.addr+"/slack/interactions", chaosSecret, form)
		cancel()
		cl.Status = status
		if err != nil {
			cl.Err = err.Error()
		}
		c.mu.Lock()
		if status == http.StatusOK && !cl.TrueClaim && cl.ActionID == notifier.ActionIDConfirmDeleted {
			c.falseClaims[acct]++
		}
		c.clicks = append(c.clicks, cl)
		c.mu.Unlock()
	}
}

// ---- what the people and the tools see ----

// caseMessages returns the top-level case messages per account (newest last); other
// top-level messages of rootwarden (by metadata type) under "other:<type>", unmarked
// ones under "".
func (c *chaos) caseMessages() map[string][]slackfake.Message {
	out := map[string][]slackfake.Message{}
	for _, m := range c.sl.Messages(chaosChannel) {
		switch {
		case m.Metadata == nil:
			out[""] = append(out[""], m) // not rootwarden's, or unmarked: both wrong
			continue
		case m.Metadata.EventType != notifier.MetadataCase:
			out["other:"+m.Metadata.EventType] = append(out["other:"+m.Metadata.EventType], m) // e.g. a summary
			continue
		}
		acct, _ := m.Metadata.EventPayload["account_id"].(string)
		if acct == "" {
			id, _ := m.Metadata.EventPayload["case_id"].(string)
			acct, _, _ = strings.Cut(id, "-")
		}
		out[acct] = append(out[acct], m)
	}
	return out
}

func (c *chaos) messageOf(acct string) (slackfake.Message, bool) {
	ms := c.caseMessages()[acct]
	if len(ms) == 0 {
		return slackfake.Message{}, false
	}
	return ms[len(ms)-1], true
}

// slackCounts is what the channel holds now: its messages (top-level ones and thread
// replies) and the edits of each top-level message.
type slackCounts struct {
	posts int
	edits map[string]int // top-level message ts → times edited
}

func (c *chaos) slackCounts() slackCounts {
	out := slackCounts{edits: map[string]int{}}
	for _, m := range c.sl.Messages(chaosChannel) {
		out.posts += 1 + len(m.Replies)
		out.edits[m.TS] = m.Edits
	}
	return out
}

// owedSince is what Slack had to take since then: the posts made, and one edit for
// each message edited since (the least that shows its new state).
func (s slackCounts) owedSince(then slackCounts) (posts, edits int) {
	for ts, n := range s.edits {
		if n > then.edits[ts] {
			edits++
		}
	}
	return s.posts - then.posts, edits
}

func (c *chaos) postedAccounts() []string {
	var out []string
	for a := range c.caseMessages() {
		if a != "" && !strings.HasPrefix(a, "other:") {
			out = append(out, a)
		}
	}
	return out
}

func (c *chaos) api(path string, out any) error {
	req, _ := http.NewRequest(http.MethodGet, "http://"+c.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+chaosAPIToken)
	cl := &http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

// check lists every way the world differs from an exact, settled one, as the case
// state (the rw_cases bucket of the running child), Slack and GitHub show it now. The
// full history is checked after the run (checkAuditLog): reading it through the case
// API on every poll costs a JetStream consumer per call.
func (c *chaos) check() []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	current, err := c.readCases()
	if err != nil {
		return []string{"read the cases from the child's NATS: " + err.Error()}
	}
	states := map[model.State]int{}
	for _, cs := range current {
		states[cs.State]++
	}
	c.mu.Lock()
	c.states = states
	c.mu.Unlock()
	msgs := c.caseMessages()
	if n := len(msgs[""]); n > 0 {
		bad("%d top-level Slack messages without rootwarden metadata", n)
	}
	for _, a := range c.cleanAccts {
		if cv, ok := current[a]; ok {
			bad("clean account %s has case %s", a, cv.ID)
		}
		if n := len(msgs[a]); n > 0 {
			bad("clean account %s has %d Slack messages", a, n)
		}
	}
	c.mu.Lock()
	clicks := slices.Clone(c.clicks)
	c.mu.Unlock()
	told := c.toldUsers()
	actionsSeen := map[string]bool{}
	for _, a := range c.keyAccts {
		cv, ok := current[a]
		if !ok {
			bad("account %s with root keys has no case", a)
			continue
		}
		if (cv.State == model.StateTicketed || cv.State == model.StateVerifying) && cv.Ticket == nil {
			bad("case %s is %s without a ticket", cv.ID, cv.State)
		}
		for _, id := range cv.ActionIDs {
			actionsSeen[id] = true
		}
		if cv.State == model.StateVerifying {
			bad("case %s still verifying", cv.ID)
		}
		if len(cv.Pending) > 0 {
			bad("case %s still owes %v", cv.ID, cv.Pending)
		}
		// Slack: one top-level message, edited to the current state; no reply twice.
		var mine []slackfake.Message
		for _, m := range msgs[a] {
			if m.Metadata.EventPayload["case_id"] == cv.ID {
				mine = append(mine, m)
			}
		}
		if len(mine) != 1 {
			bad("case %s has %d top-level Slack messages, want 1", cv.ID, len(mine))
		}
		if len(msgs[a]) != len(mine) {
			bad("account %s has Slack messages of other cases", a)
		}
		if len(mine) > 0 {
			m := mine[len(mine)-1]
			if want, got := buttonsFor(cv.State), actionButtons(m); !slices.Equal(want, got) {
				bad("case %s is %s but its message offers %v (want %v)", cv.ID, cv.State, got, want)
			}
			seen := map[string]int{}
			for _, r := range m.Replies {
				key := "text:" + r.Text
				if r.Metadata != nil {
					key = fmt.Sprintf("event:%v/%v", r.Metadata.EventPayload["case_id"], r.Metadata.EventPayload["seq"])
				}
				seen[key]++
			}
			for k, n := range seen {
				if n > 1 {
					bad("case %s: thread reply %s posted %d times", cv.ID, k, n)
				}
			}
			// The message shows the case as it is now: its state in the text, its last
			// event told in the thread (its reply follows the edit).
			if !strings.Contains(strings.ToLower(m.Text), "— "+string(cv.State)) {
				bad("case %s is %s but its message says %q", cv.ID, cv.State, m.Text)
			}
			if last := fmt.Sprintf("event:%s/%d", cv.ID, cv.Seq); cv.Seq > 1 && seen[last] == 0 {
				bad("case %s: its last event %d is not in the thread yet", cv.ID, cv.Seq)
			}
		}
		// GitHub: one issue per ticketed case, open while ticketed, closed once resolved.
		ticketed := cv.Ticket != nil
		issues := c.gh.IssuesWithLabel(tracker.Label(cv.ID))
		switch {
		case !ticketed && len(issues) > 0:
			bad("case %s was never ticketed but has %d GitHub issues", cv.ID, len(issues))
		case ticketed && len(issues) != 1:
			bad("case %s has %d GitHub issues, want 1", cv.ID, len(issues))
		case ticketed:
			is := issues[0]
			if cv.Ticket == nil || cv.Ticket.ID != strconv.Itoa(is.Number) {
				bad("case %s links ticket %+v, but its issue is #%d", cv.ID, cv.Ticket, is.Number)
			}
			if want := map[model.State]string{model.StateTicketed: "open", model.StateResolved: "closed"}[cv.State]; want != "" && is.State != want {
				bad("case %s is %s but issue #%d is %s", cv.ID, cv.State, is.Number, is.State)
			}
		}
	}
	// No click that Slack got a 200 for was lost: the remediator applied or refused its
	// action (the case remembers its id), or the notifier told the user why not.
	for _, cl := range clicks {
		if cl.Status != http.StatusOK {
			continue
		}
		if !actionsSeen[cl.actionID()] && !told(cl) {
			bad("click %s by %s on %s at %s got 200 but is nowhere in the case history", cl.ActionID, cl.User, cl.CaseID, cl.At.Format("15:04:05.000"))
		}
	}
	sort.Strings(problems)
	return problems
}

// toldUsers reports whether the notifier answered a click with an ephemeral message
// to its user (a refusal: stale case, not an approver) at or after the click.
func (c *chaos) toldUsers() func(click) bool {
	at := map[string][]time.Time{}
	for _, e := range c.sl.Ephemerals() {
		sec, frac, _ := strings.Cut(e.TS, ".")
		n, _ := strconv.ParseInt(sec, 10, 64)
		f, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
		at[e.User] = append(at[e.User], time.Unix(n, f*1000))
	}
	return func(cl click) bool {
		for _, t := range at[cl.User] {
			if !t.Before(cl.At.Add(-time.Millisecond)) {
				return true
			}
		}
		return false
	}
}

// historyProblems checks that each transition happened once.
func historyProblems(caseID string, hist []remediator.HistoryEntry) []string {
	var out []string
	seqs, actions, types := map[int]int{}, map[string]int{}, map[model.CaseEventType]int{}
	for _, h := range hist {
		seqs[h.Seq]++
		if h.ActionID != "" {
			actions[h.ActionID+"/"+string(h.Type)]++
		}
		types[h.Type]++
	}
	for s, n := range seqs {
		if n > 1 {
			out = append(out, fmt.Sprintf("case %s: event seq %d recorded %d times", caseID, s, n))
		}
	}
	for a, n := range actions {
		if n > 1 {
			out = append(out, fmt.Sprintf("case %s: action %s applied %d times", caseID, a, n))
		}
	}
	if types[model.EventOpened] != 1 {
		out = append(out, fmt.Sprintf("case %s: opened %d times", caseID, types[model.EventOpened]))
	}
	for _, once := range []model.CaseEventType{model.EventTicketed, model.EventResolved} {
		if types[once] > 1 {
			out = append(out, fmt.Sprintf("case %s: %s %d times", caseID, once, types[once]))
		}
	}
	return out
}

func buttonsFor(s model.State) []string {
	switch s {
	case model.StateOpen:
		return []string{notifier.ActionIDApprove}
	case model.StateTicketed:
		return []string{notifier.ActionIDConfirmDeleted}
	}
	return nil
}

// actionButtons is the message's approve / "I deleted" buttons (the ones that move a
// case forward; Re-check and Accept risk may come and go with the design).
func actionButtons(m slackfake.Message) []string {
	var out []string
	for _, b := range m.Buttons() {
		if b.ActionID == notifier.ActionIDApprove || b.ActionID == notifier.ActionIDConfirmDeleted {
			out = append(out, b.ActionID)
		}
	}
	return out
}

// checkAuditLog reads the stopped process's NATS data: every case ever opened (not
// only the current ones the API lists) has one Slack message with a thread reply for
// each of its later events and at most one ticket, and no case was opened for a clean
// account or twice for one account.
func (c *chaos) checkAuditLog() {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: c.dataDir}, nil)
	if err != nil {
		t.Errorf("open the data dir after the run: %v", err)
		return
	}
	defer b.Close()
	cons, err := b.JS.OrderedConsumer(ctx, bus.StreamCases, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		t.Errorf("read %s: %v", bus.StreamCases, err)
		return
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Errorf("read %s: %v", bus.StreamCases, err)
		return
	}
	casesOf := map[string]map[string]bool{}
	seqs := map[string]map[int]int{}
	hist := map[string][]remediator.HistoryEntry{}
	actionIDs := map[string]bool{}
	for left := info.NumPending; left > 0; left-- {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Errorf("read %s: %v", bus.StreamCases, err)
			break
		}
		var ev model.CaseEvent
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Errorf("case event does not decode: %v", err)
			continue
		}
		if casesOf[ev.AccountID] == nil {
			casesOf[ev.AccountID] = map[string]bool{}
		}
		casesOf[ev.AccountID][ev.CaseID] = true
		if seqs[ev.CaseID] == nil {
			seqs[ev.CaseID] = map[int]int{}
		}
		seqs[ev.CaseID][ev.Seq]++
		hist[ev.CaseID] = append(hist[ev.CaseID], remediator.HistoryEntry{ID: ev.ID, Seq: ev.Seq, Type: ev.Type,
			From: ev.From, To: ev.To, Actor: ev.Actor, At: ev.At, Reason: ev.Reason, ActionID: ev.ActionID})
		if ev.ActionID != "" {
			actionIDs[ev.ActionID] = true
		}
	}
	for id, h := range hist {
		for _, p := range historyProblems(id, h) {
			t.Errorf("audit log: %s", p)
		}
	}
	told := c.toldUsers()
	c.mu.Lock()
	for _, cl := range c.clicks {
		if cl.Status == http.StatusOK && !actionIDs[cl.actionID()] && !told(cl) {
			t.Errorf("audit log: click %s by %s on %s at %s got 200 but no case event names it (lost)",
				cl.ActionID, cl.User, cl.CaseID, cl.At.Format("15:04:05.000"))
		}
	}
	c.mu.Unlock()
	msgs := c.caseMessages()
	for _, a := range c.cleanAccts {
		if len(casesOf[a]) > 0 {
			t.Errorf("audit log: clean account %s has cases %v", a, keys(casesOf[a]))
		}
	}
	for _, a := range c.keyAccts {
		if len(casesOf[a]) != 1 {
			t.Errorf("audit log: account %s has %d cases %v, want exactly 1", a, len(casesOf[a]), keys(casesOf[a]))
		}
		for id := range casesOf[a] {
			n := 0
			replied := map[string]bool{} // event seqs with a thread reply
			for _, m := range msgs[a] {
				if m.Metadata.EventPayload["case_id"] == id {
					n++
					for _, r := range m.Replies {
						if r.Metadata != nil && r.Metadata.EventPayload["case_id"] == id {
							replied[fmt.Sprint(r.Metadata.EventPayload["seq"])] = true
						}
					}
				}
			}
			if n != 1 {
				t.Errorf("case %s: %d top-level Slack messages, want 1", id, n)
			}
			// Every transition after the opening is told in the thread (none skipped).
			for _, h := range hist[id] {
				if h.Type != model.EventOpened && !replied[strconv.Itoa(h.Seq)] {
					t.Errorf("case %s: event %d (%s) has no thread reply", id, h.Seq, h.Type)
				}
			}
			if k := len(c.gh.IssuesWithLabel(tracker.Label(id))); k > 1 {
				t.Errorf("case %s: %d GitHub issues, want at most 1", id, k)
			}
			for s, n := range seqs[id] {
				if n > 1 {
					t.Errorf("audit log: case %s event %d published %d times", id, s, n)
				}
			}
		}
	}
}

func (c *chaos) checkSecrets() {
	logs, _ := os.ReadFile(c.logPath)
	for _, s := range []string{chaosBot, chaosSecret, chaosAPIToken, chaosGHToken} {
		if strings.Contains(string(logs), s) {
			c.t.Errorf("the child's logs contain the secret %.10s…", s)
		}
	}
}

func (c *chaos) report(detected, settle, postFloor time.Duration, settled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok, refused, failed := 0, 0, 0
	kinds := map[string]int{}
	for _, cl := range c.clicks {
		if cl.Status == http.StatusOK {
			switch {
			case cl.ActionID == notifier.ActionIDApprove:
				kinds["approve"]++
			case cl.TrueClaim:
				kinds["deleted_true"]++
			default:
				kinds["deleted_false"]++
			}
		}
		switch {
		case cl.Status == http.StatusOK:
			ok++
		case cl.Status != 0:
			refused++
		default:
			failed++
		}
	}
	calls, throttled := c.awsCalls+c.awsThrottled, fmt.Sprintf("aws_throttled=%d", c.awsThrottled)
	gh := c.gh.Faults()
	var ghParts []string
	for _, k := range trackerfake.Sorted(gh) {
		ghParts = append(ghParts, fmt.Sprintf("%s=%d", k, gh[trackerfake.FaultKind(k)]))
	}
	var slParts []string
	for _, k := range trackerfake.Sorted(c.slackFaults) {
		slParts = append(slParts, fmt.Sprintf("%s=%d", k, c.slackFaults[k]))
	}
	var stParts []string
	for _, k := range trackerfake.Sorted(c.states) {
		stParts = append(stParts, fmt.Sprintf("%s=%d", k, c.states[model.State(k)]))
	}
	settleText := fmt.Sprintf("%s (floor %s: posts and edits owed at the last kill at Slack's rate)", settle.Round(100*time.Millisecond), postFloor)
	if !settled {
		settleText = fmt.Sprintf(">%s (floor %s)", (settleWithin + postFloor).String(), postFloor)
	}
	line := fmt.Sprintf("chaos: accounts=%d+%d kills=%d self_exits=%d first_detection=%s clicks=%d (200=%d non200=%d unanswered=%d; 200s: approve=%d deleted_true=%d deleted_false=%d) "+
		"slack_faults[%s] github_faults[%s] aws_calls=%d %s github_issues=%d final_states[%s] settle_after_last_kill=%s",
		len(c.keyAccts), len(c.cleanAccts), c.kills, len(c.selfExits), detected.Round(100*time.Millisecond), len(c.clicks), ok, refused, failed,
		kinds["approve"], kinds["deleted_true"], kinds["deleted_false"],
		strings.Join(slParts, " "), strings.Join(ghParts, " "), calls, throttled, len(c.gh.Issues()), strings.Join(stParts, " "), settleText)
	c.t.Log(line)
	fmt.Println(line)
	if p := os.Getenv("ROOTWARDEN_CHAOS_SUMMARY"); p != "" {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, line)
			f.Close()
		}
	}
}

// readCases reads the current case of every account from the running child's NATS.
func (c *chaos) readCases() (map[string]model.Case, error) {
	nc, err := nats.Connect("nats://"+c.natsAddr, nats.Timeout(2*time.Second), nats.NoReconnect())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.BucketCases)
	if err != nil {
		return nil, err
	}
	out := map[string]model.Case{}
	for _, a := range append(slices.Clone(c.keyAccts), c.cleanAccts...) {
		e, err := kv.Get(ctx, a)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("case of %s: %w", a, err)
		}
		var cs model.Case
		if err := json.Unmarshal(e.Value(), &cs); err != nil {
			return nil, fmt.Errorf("case of %s: %w", a, err)
		}
		out[a] = cs
	}
	return out, nil
}

// ---- helpers ----

func waitUntil(limit time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… and %d more", len(s)-n))
	}
	return s
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
