// Package bus owns rootwarden's NATS set-up: it starts an embedded nats-server with
// JetStream or connects to an existing cluster, and creates every stream and KV bucket
// idempotently. The names live in names.go. It knows nothing of AWS, Slack or cases.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says where the bus is.
type Config struct {
	URL       string // ROOTWARDEN_NATS_URL; empty → embedded server
	DataDir   string // ROOTWARDEN_DATA_DIR; the embedded server stores JetStream under DataDir/nats
	Listen    string // embedded server's address, "127.0.0.1:0" (any free port) by default
	CredsFile string // ROOTWARDEN_NATS_CREDS: a NATS credentials file
	CAFile    string // ROOTWARDEN_NATS_CA: root CAs for TLS
	CertFile  string // ROOTWARDEN_NATS_CERT: client certificate for TLS
	KeyFile   string // ROOTWARDEN_NATS_KEY
	Replicas  int    // 0 → 1 embedded or single server, 3 on a cluster
	Name      string // connection name shown by the server
	// HistoryRetention is RW_HISTORY's age limit (ROOTWARDEN_HISTORY_RETENTION);
	// 0 → HistoryMaxAge.
	HistoryRetention time.Duration
}

// Bus is a connection to NATS with JetStream and the buckets rootwarden uses.
type Bus struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Server   *server.Server // nil when connected to an external server
	Replicas int

	Cases   jetstream.KeyValue
	Slack   jetstream.KeyValue
	Tickets jetstream.KeyValue
	Sched   jetstream.KeyValue
	Due     jetstream.KeyValue // the remediator's due-time index
	// Accounts is the detector's account inventory (BucketAccounts).
	Accounts jetstream.KeyValue

	historyRetention time.Duration

	log       *slog.Logger
	tempStore string   // the embedded store when no data dir was given: removed on Close
	streams   sync.Map // stream name → jetstream.Stream (subject.go)
}

// Open starts or connects to NATS and creates every stream and bucket.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{log: log}
	url := cfg.URL
	var opts []nats.Option
	opts = append(opts, nats.Name(orDefault(cfg.Name, "rootwarden")), nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS connection lost: reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connection restored", "server", nc.ConnectedServerName())
		}))
	if url == "" {
		s, temp, err := startEmbedded(cfg.DataDir, cfg.Listen)
		if err != nil {
			return nil, err
		}
		b.Server, b.tempStore = s, temp
		url = s.ClientURL()
	} else {
		if cfg.CredsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.CredsFile))
		}
		if cfg.CAFile != "" {
			opts = append(opts, nats.RootCAs(cfg.CAFile))
		}
		if cfg.CertFile != "" || cfg.KeyFile != "" {
			opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(url), err)
	}
	b.NC = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.JS = js
	b.historyRetention = cfg.HistoryRetention
	b.Replicas = cfg.Replicas
	if b.Replicas <= 0 {
		b.Replicas = 1
		if b.Server == nil && nc.ConnectedClusterName() != "" {
			b.Replicas = 3
		}
	}
	if err := b.setup(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// StartEmbedded starts an in-process nats-server with JetStream stored under
// dataDir/nats (a temporary directory when dataDir is empty), listening on loopback.
func StartEmbedded(dataDir, listen string) (*server.Server, error) {
	s, _, err := startEmbedded(dataDir, listen)
	return s, err
}

// startEmbedded is StartEmbedded that also returns the temporary store it made, if any.
func startEmbedded(dataDir, listen string) (*server.Server, string, error) {
	host, port := "127.0.0.1", -1
	if listen != "" {
		h, p, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, "", fmt.Errorf("embedded NATS listen address %q: %w", listen, err)
		}
		if h != "" {
			host = h
		}
		if n, err := strconv.Atoi(p); err == nil && n > 0 {
			port = n
		}
	}
	var storeDir, temp string
	if dataDir == "" {
		d, err := os.MkdirTemp("", "rootwarden-nats-")
		if err != nil {
			return nil, "", fmt.Errorf("embedded NATS store: %w", err)
		}
		storeDir, temp = d, d
	} else {
		storeDir = filepath.Join(dataDir, "nats")
		if err := os.MkdirAll(storeDir, 0o700); err != nil {
			return nil, "", fmt.Errorf("embedded NATS store %s: %w", storeDir, err)
		}
	}
	fail := func(err error) (*server.Server, string, error) {
		if temp != "" {
			_ = os.RemoveAll(temp)
		}
		return nil, "", err
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "rootwarden-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		NoLog:      true,
		// The embedded server is the only copy of the cases: with a data directory,
		// every acknowledged write reaches the disk before the acknowledgement. Without
		// it the file store buffers writes for a few milliseconds, so a process killed
		// right after a PubAck or a KV update loses them (seen as a Slack reply posted
		// twice after a SIGKILL: the reply intent was acknowledged, then lost). A
		// temporary store (no ROOTWARDEN_DATA_DIR) is gone with the process anyway.
		SyncAlways: temp == "",
	})
	if err != nil {
		return fail(fmt.Errorf("embedded NATS: %w", err))
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fail(errors.New("embedded NATS did not become ready within 10s"))
	}
	return s, temp, nil
}

// Close drains the connection and stops the embedded server, if any.
func (b *Bus) Close() {
	if b.NC != nil {
		_ = b.NC.Drain()
		for i := 0; i < 50 && !b.NC.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		b.NC.Close()
	}
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	if b.Server != nil {
		b.Server.Shutdown()
		b.Server.WaitForShutdown()
	}
	if b.tempStore != "" {
		_ = os.RemoveAll(b.tempStore)
	}
}

// Streams returns the configuration of every stream; the limits and their reasons
// are in names.go.
func (b *Bus) Streams() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{Name: StreamFindings, Subjects: []string{SubjectFindings + ">"}, Retention: jetstream.LimitsPolicy,
			MaxAge: FindingsMaxAge, MaxMsgsPerSubject: FindingsPerAccount, MaxBytes: FindingsMaxBytes,
			Discard: jetstream.DiscardOld, Duplicates: FindingsDuplicates, Storage: jetstream.FileStorage, Replicas: b.Replicas},
		{Name: StreamActions, Subjects: []string{SubjectActions + ">"}, Retention: jetstream.WorkQueuePolicy,
			MaxAge: ActionsMaxAge, MaxMsgs: ActionsMaxMsgs, MaxBytes: ActionsMaxBytes, Discard: jetstream.DiscardNew,
			Duplicates: 30 * time.Minute, Storage: jetstream.FileStorage, Replicas: b.Replicas},
		{Name: StreamCases, Subjects: []string{SubjectCases + ">", SubjectEvidence}, Retention: jetstream.LimitsPolicy,
			MaxAge: CasesMaxAge, MaxBytes: CasesMaxBytes, Discard: jetstream.DiscardOld,
			Duplicates: 30 * time.Minute, Storage: jetstream.FileStorage, Replicas: b.Replicas},
		{Name: StreamHistory, Subjects: []string{SubjectHistorySweep + ">", SubjectHistoryPosture + ">"},
			Retention: jetstream.LimitsPolicy, MaxAge: b.historyAge(), MaxBytes: HistoryMaxBytes, Discard: jetstream.DiscardOld,
			Duplicates: HistoryDuplicates, Storage: jetstream.FileStorage, Replicas: b.Replicas},
		{Name: StreamScan, Subjects: []string{SubjectScan + ">"}, Retention: jetstream.WorkQueuePolicy,
			MaxAge: ScanMaxAge, MaxMsgs: ScanMaxMsgs, MaxBytes: ScanMaxBytes, Discard: jetstream.DiscardNew,
			Duplicates: ScanDuplicates, Storage: jetstream.FileStorage, Replicas: b.Replicas},
	}
}

// historyAge is RW_HISTORY's age limit.
func (b *Bus) historyAge() time.Duration {
	if b.historyRetention > 0 {
		return b.historyRetention
	}
	return HistoryMaxAge
}

// Buckets returns the configuration of every KV bucket (limits: names.go).
func Buckets() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: BucketCases, History: CasesHistory, MaxBytes: CasesBucketBytes, MaxValueSize: CasesMaxValueSize,
			Description: "current case per account"},
		{Bucket: BucketSlack, History: SlackHistory, MaxBytes: SlackBucketBytes, Description: "Slack message of each case"},
		{Bucket: BucketTickets, History: TicketsHistory, MaxBytes: TicketsBucketBytes, Description: "built-in tickets"},
		{Bucket: BucketSched, History: SchedHistory, MaxBytes: SchedBucketBytes, Description: "timers and leases"},
		{Bucket: BucketDue, History: DueHistory, MaxBytes: DueBucketBytes, TTL: DueMaxAge,
			Description: "remediator due-time index"},
		{Bucket: BucketAccounts, History: AccountsHistory, MaxBytes: AccountsBucketBytes,
			Description: "account inventory of the last sweep"},
	}
}

// setup creates every stream and bucket, all at once: on a fresh cluster each one
// waits for its replica group to elect a leader, and one after another those waits add
// up. Errors come back in the order of Streams and Buckets, as before.
func (b *Bus) setup(ctx context.Context) error {
	b.waitMetaLeader(ctx)
	streams, buckets := b.Streams(), Buckets()
	errs := make([]error, len(streams)+len(buckets))
	kvs := make([]jetstream.KeyValue, len(buckets))
	var wg sync.WaitGroup
	for i, sc := range streams {
		wg.Go(func() {
			if err := retryJS(ctx, func(ctx context.Context) error {
				if b.streamIs(ctx, sc.Name, func(c jetstream.StreamConfig) bool { return sameStream(c, sc) }) {
					return nil // as configured: no update (an update racing a consumer's creation is a nats-server data race)
				}
				_, err := b.JS.CreateOrUpdateStream(ctx, sc)
				return err
			}); err != nil {
				errs[i] = fmt.Errorf("create stream %s (replicas %d): %w", sc.Name, sc.Replicas, err)
			}
		})
	}
	for i, cfg := range buckets {
		cfg.Replicas = b.Replicas
		cfg.Storage = jetstream.FileStorage
		wg.Go(func() {
			if err := retryJS(ctx, func(ctx context.Context) error {
				var err error
				if b.streamIs(ctx, "KV_"+cfg.Bucket, func(c jetstream.StreamConfig) bool { return sameBucket(c, cfg) }) {
					kvs[i], err = b.JS.KeyValue(ctx, cfg.Bucket)
					return err
				}
				kvs[i], err = b.JS.CreateOrUpdateKeyValue(ctx, cfg)
				return err
			}); err != nil {
				errs[len(streams)+i] = fmt.Errorf("create bucket %s (replicas %d): %w", cfg.Bucket, b.Replicas, err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	handles := map[string]*jetstream.KeyValue{BucketCases: &b.Cases, BucketSlack: &b.Slack,
		BucketTickets: &b.Tickets, BucketSched: &b.Sched, BucketDue: &b.Due, BucketAccounts: &b.Accounts}
	for i, cfg := range buckets {
		*handles[cfg.Bucket] = kvs[i]
	}
	return nil
}

// waitMetaLeader waits, polling with short requests, until JetStream answers an
// account-info request, i.e. until a cluster has elected its meta leader. Until then
// a fresh cluster drops every JetStream API request without an answer (nats-server
// answers "cluster not available" only once the meta group has been leaderless for
// a while), so a request made then waits out its whole timeout. It gives up quietly
// on any other answer, or after metaWait: the creations that follow retry on their
// own and report the error an operator should see.
func (b *Bus) waitMetaLeader(ctx context.Context) {
	deadline := time.Now().Add(metaWait)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		actx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		_, err := b.JS.AccountInfo(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !noMetaLeader(err) {
			return
		}
		if !sleepCtx(ctx, jitter(50*time.Millisecond)) {
			return
		}
	}
}

// noMetaLeader tells the answers of a cluster without a meta leader: none (a timeout),
// or, once it has been leaderless for a while, "JetStream system temporarily
// unavailable" (10008).
func noMetaLeader(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrClusterNotAvailable)
}

// jsErrClusterNotAvailable is nats-server's JSClusterNotAvailErr.
const jsErrClusterNotAvailable jetstream.ErrorCode = 10008

// metaWait bounds waitMetaLeader; a cluster elects its meta leader within seconds.
const metaWait = 15 * time.Second

// streamIs reports whether the stream exists with a configuration ok accepts.
func (b *Bus) streamIs(ctx context.Context, name string, ok func(jetstream.StreamConfig) bool) bool {
	st, err := b.JS.Stream(ctx, name)
	if err != nil {
		return false
	}
	info, err := st.Info(ctx)
	return err == nil && ok(info.Config)
}

// sameStream compares what Streams sets.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention && have.MaxAge == want.MaxAge &&
		have.MaxMsgsPerSubject == want.MaxMsgsPerSubject && have.MaxBytes == want.MaxBytes && have.MaxMsgs == want.MaxMsgs &&
		have.Discard == want.Discard && have.Duplicates == want.Duplicates && have.Storage == want.Storage &&
		have.Replicas == want.Replicas
}

// sameBucket compares what Buckets sets with the bucket's stream.
func sameBucket(have jetstream.StreamConfig, want jetstream.KeyValueConfig) bool {
	maxValue := want.MaxValueSize
	if maxValue == 0 {
		maxValue = -1
	}
	return have.MaxMsgsPerSubject == int64(want.History) && have.MaxBytes == want.MaxBytes && have.MaxAge == want.TTL &&
		have.MaxMsgSize == maxValue && have.Replicas == want.Replicas && have.Description == want.Description
}

// retryJS retries a JetStream API call with short per-attempt timeouts that grow
// (attemptTimeouts) and a short jittered pause between attempts. On a fresh cluster a
// request that reaches no leader (the meta leader, or the replica group of a stream
// still being created, perhaps by another process) gets no answer at all, so a long
// timeout would be waited out whole; f must therefore be safe to repeat (look first,
// then create or update). Other errors, such as a configuration the server refuses,
// are returned at once.
func retryJS(ctx context.Context, f func(context.Context) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeouts[min(attempt, len(attemptTimeouts)-1)])
		err = f(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || attempt >= maxAttempts-1 || !retryable(err) {
			return err
		}
		if !sleepCtx(ctx, jitter(time.Duration(min(attempt+1, 5))*100*time.Millisecond)) {
			return err
		}
	}
}

// attemptTimeouts are retryJS's per-attempt timeouts, the last repeated; with
// maxAttempts they give up after about 35 s, the old six attempts of 5 s. The first is
// not shorter because six processes creating the eleven replicated streams together
// take about a second on two cores: a shorter first attempt only adds retries.
var attemptTimeouts = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}

const maxAttempts = 8

// jitter returns a duration between d/2 and 3d/2, so that processes started together
// do not retry in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d+1)
}

// sleepCtx sleeps d, or less if ctx ends first (then it returns false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func retryable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse)
}

// PublishJSON publishes v as JSON on subject with msgID as the Nats-Msg-Id, and reports
// whether the server had already seen that id.
func (b *Bus) PublishJSON(ctx context.Context, subject, msgID string, v any) (duplicate bool, err error) {
	data, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("encode %s: %w", subject, err)
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := b.JS.Publish(ctx, subject, data, opts...)
	if err != nil {
		return false, fmt.Errorf("publish %s: %w", subject, err)
	}
	return ack.Duplicate, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// redactURL hides any user:password in a NATS URL.
func redactURL(u string) string {
	at := strings.LastIndexByte(u, '@')
	if at < 0 {
		return u
	}
	if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
		return u[:scheme+3] + "REDACTED@" + u[at+1:]
	}
	return "REDACTED@" + u[at+1:]
}
