package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/config"
	"github.com/rootwarden/rootwarden/internal/httpx"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/notifier"
	"github.com/rootwarden/rootwarden/remediator"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

// serveOptions let the end-to-end test and the demo start the same wiring.
type serveOptions struct {
	getenv func(string) string
	aws    *aws.Config       // nil → the SDK's default chain
	ready  func(addr string) // called with the HTTP address once listening
	bus    func(b *bus.Bus)  // called with the bus once open
}

// runServe starts the given components in one process until ctx ends. Exit code 0
// after a clean shutdown, 2 on a configuration or start-up error.
func runServe(ctx context.Context, roles []config.Role, stderr io.Writer, opt serveOptions) int {
	if opt.getenv == nil {
		opt.getenv = os.Getenv
	}
	cfg, err := config.Load(opt.getenv)
	if err == nil {
		err = cfg.Validate(roles...)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden: configuration: %s\n", oneLine(err))
		return 2
	}
	log := newLogger(stderr, cfg)
	if err := serve(ctx, cfg, roles, log, opt); err != nil {
		fmt.Fprintf(stderr, "rootwarden: %s\n", oneLine(err))
		return 2
	}
	return 0
}

func has(roles []config.Role, r config.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// serve builds and runs the components.
func serve(ctx context.Context, cfg config.Config, roles []config.Role, log *slog.Logger, opt serveOptions) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var awsCfg aws.Config
	if has(roles, config.RoleDetector) || (has(roles, config.RoleRemediator) && cfg.AssumeRoot) {
		if opt.aws != nil {
			awsCfg = *opt.aws
		} else {
			var err error
			if awsCfg, err = loadAWS(ctx); err != nil {
				return err
			}
		}
	}

	b, err := bus.Open(ctx, bus.Config{URL: cfg.NATSURL, DataDir: cfg.DataDir, Listen: cfg.NATSListen,
		CredsFile: cfg.NATSCreds, CAFile: cfg.NATSCA, CertFile: cfg.NATSCert, KeyFile: cfg.NATSKey,
		Replicas: cfg.NATSReplicas, Name: "rootwarden " + roleNames(roles)}, log)
	if err != nil {
		if cfg.NATSURL == "" { // the embedded server: its store or its address
			return fmt.Errorf("ROOTWARDEN_DATA_DIR, ROOTWARDEN_NATS_LISTEN (embedded NATS, ROOTWARDEN_NATS_URL is empty): %w", err)
		}
		return fmt.Errorf("ROOTWARDEN_NATS_URL: %w", err)
	}
	defer b.Close()
	where := "embedded"
	if b.Server == nil {
		where = "external"
	}
	log.Info("bus ready", "nats", where, "replicas", b.Replicas)
	if opt.bus != nil {
		opt.bus(b)
	}

	srv := httpx.New(log, reg)
	srv.AddCheck("nats", func(context.Context) error {
		if s := b.NC.Status(); s != nats.CONNECTED {
			return fmt.Errorf("NATS connection %s", s)
		}
		return nil
	})
	g, gctx := newGroup(ctx)

	if has(roles, config.RoleDetector) {
		d, err := detector.New(detector.Config{OrgRoleName: cfg.OrgRoleName, ExternalID: cfg.OrgExternalID,
			ScanInterval: cfg.ScanInterval, Concurrency: cfg.Concurrency, AccountTimeout: cfg.AccountTimeout,
			SQSQueueURL: cfg.SQSQueueURL, Metrics: reg}, log, b, awsCfg)
		if err != nil {
			return fmt.Errorf("detector: %w", err)
		}
		g.Go("detector", func() error { return d.Run(gctx) })
	}
	if has(roles, config.RoleRemediator) {
		tr, err := newTracker(cfg, b, log)
		if err != nil {
			return err
		}
		rcfg := remediator.Config{APIToken: cfg.APIToken, AssumeRoot: cfg.AssumeRoot,
			TicketPollInterval: cfg.TicketPoll, Metrics: reg}
		if cfg.AssumeRoot {
			rcfg.Deleter = remediator.NewAWSRootKeyDeleter(awsCfg)
		}
		r, err := remediator.New(rcfg, log, b, bus.Checker{NC: b.NC}, tr)
		if err != nil {
			return fmt.Errorf("remediator: %w", err)
		}
		srv.Handle("/api/v1/", r.APIHandler())
		if cfg.APIToken == "" {
			log.Info("case API off: ROOTWARDEN_API_TOKEN is not set")
		}
		g.Go("remediator", func() error { return r.Run(gctx) })
	}
	if has(roles, config.RoleNotifier) {
		sopts := []slack.Option{}
		if cfg.SlackAPIURL != "" {
			sopts = append(sopts, slack.OptionAPIURL(withSlash(cfg.SlackAPIURL)))
		}
		if cfg.SlackAppToken != "" {
			sopts = append(sopts, slack.OptionAppLevelToken(cfg.SlackAppToken))
		}
		api := slack.New(cfg.SlackBotToken, sopts...)
		oncall, err := notifierOnCall(cfg, b)
		if err != nil {
			return err
		}
		n, err := notifier.New(notifier.Config{Channel: cfg.SlackChannel, SigningSecret: cfg.SlackSigningSecret,
			AppToken: cfg.SlackAppToken, APIURL: cfg.SlackAPIURL, Approvers: cfg.Approvers,
			RemindAfter: cfg.RemindAfter, MaxReminders: cfg.MaxReminders, SLA: cfg.SLA,
			MaxRiskAcceptance: cfg.MaxRiskAcceptance, Metrics: reg, OnCallConfig: oncall}, log, b, api)
		if err != nil {
			return fmt.Errorf("notifier: %w", err)
		}
		if err := n.CheckSlack(ctx); err != nil {
			return err
		}
		if cfg.SlackSigningSecret != "" {
			srv.Handle("POST /slack/interactions", n.InteractionsHandler())
			srv.Handle("POST /slack/events", n.EventsHandler())     // App Home (app_home_opened)
			srv.Handle("POST /slack/commands", n.CommandsHandler()) // /rootwarden
		}
		g.Go("notifier", func() error { return n.Run(gctx) })
	}

	if err := srv.Listen(cfg.HTTPAddr); err != nil {
		g.cancel()
		_ = g.Wait()
		return fmt.Errorf("ROOTWARDEN_HTTP_ADDR: %w", err)
	}
	log.Info("rootwarden started", "components", roleNames(roles), "http", srv.Addr())
	if opt.ready != nil {
		opt.ready(srv.Addr())
	}
	g.Go("http", func() error { return srv.Serve(gctx) })
	err = g.Wait()
	log.Info("rootwarden stopped")
	return err
}

// newTracker builds the ticket system named by ROOTWARDEN_TRACKER.
func newTracker(cfg config.Config, b *bus.Bus, log *slog.Logger) (model.Tracker, error) {
	switch cfg.Tracker {
	case "jira":
		t, err := tracker.NewJira(tracker.JiraConfig{BaseURL: cfg.JiraURL, Email: cfg.JiraEmail,
			APIToken: cfg.JiraToken, Project: cfg.JiraProject, Client: &http.Client{}, OwnerTag: cfg.OnCall.OwnerTag}, log.With("tracker", "jira"))
		if err != nil {
			return nil, fmt.Errorf("ROOTWARDEN_JIRA_URL: %w", err)
		}
		return t, nil
	case "github":
		owner, repo, _ := strings.Cut(cfg.GitHubRepo, "/")
		t, err := tracker.NewGitHub(tracker.GitHubConfig{BaseURL: cfg.GitHubAPIURL, Token: cfg.GitHubToken,
			Owner: owner, Repo: repo, Client: &http.Client{}, OwnerLoginTag: cfg.OnCall.OwnerGitHubTag}, log.With("tracker", "github"))
		if err != nil {
			return nil, fmt.Errorf("ROOTWARDEN_GITHUB_REPO: %w", err)
		}
		return t, nil
	}
	return tracker.NewBuiltin(b), nil
}

func roleNames(roles []config.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

func withSlash(u string) string {
	if strings.HasSuffix(u, "/") {
		return u
	}
	return u + "/"
}
