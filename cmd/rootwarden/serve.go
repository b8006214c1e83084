package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssecurityhub "github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/slack-go/slack"
	"github.com/spf13/cobra"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/config"
	"github.com/rootwarden/rootwarden/internal/evidence"
	"github.com/rootwarden/rootwarden/internal/httpx"
	"github.com/rootwarden/rootwarden/internal/metrics"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/version"
	"github.com/rootwarden/rootwarden/notifier"
	"github.com/rootwarden/rootwarden/remediator"
	"github.com/rootwarden/rootwarden/remediator/securityhub"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

// serveOptions let the end-to-end test and the demo start the same wiring.
type serveOptions struct {
	getenv func(string) string
	aws    *aws.Config       // nil → the SDK's default chain
	ready  func(addr string) // called with the HTTP address once listening
	bus    func(b *bus.Bus)  // called with the bus once open
	// checkEnviron warns about misspelt ROOTWARDEN_* variables in os.Environ.
	checkEnviron bool
}

const serveLong = `Start %s until SIGINT or SIGTERM.

Configuration comes from the environment, an optional YAML file (--config or
ROOTWARDEN_CONFIG), and the flags below, which beat both: docs/configuration.md lists
every variable, YAML key and flag.
Secrets have no flags: set the variable, or the same name with _FILE (a file holding
the value): %s. AWS comes from the SDK's own chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, an IAM role…).

Exit 0 after a clean shutdown; 2 on a configuration or set-up error, with one line
naming the variable and the fix. Failures that may pass (AWS, Slack unreachable) keep
it running but not ready: GET /readyz answers 503 naming the dependency.`

func newServeCmd(name, short string, roles []config.Role) *cobra.Command {
	what := "the " + name
	if len(roles) > 1 {
		what = "the detector, the remediator and the notifier in one process (embedded NATS unless ROOTWARDEN_NATS_URL is set)"
	}
	var secrets []string
	for _, s := range config.Settings() {
		if s.Kind == config.KindSecret {
			secrets = append(secrets, s.Name)
		}
	}
	cmd := &cobra.Command{Use: name, Short: short, Long: fmt.Sprintf(serveLong, what, strings.Join(secrets, ", ")), Args: cobra.NoArgs}
	ef := &envFlags{fs: cmd.Flags()}
	ef.add("ROOTWARDEN_HTTP_ADDR", "address of /healthz, /readyz, /metrics and the case API")
	ef.add("ROOTWARDEN_DATA_DIR", "directory of the embedded NATS store (cases survive restarts only with it)")
	ef.add("ROOTWARDEN_NATS_URL", "external NATS server(s); empty: embedded")
	ef.add("ROOTWARDEN_LOG_LEVEL", "debug, info, warn or error")
	ef.add("ROOTWARDEN_LOG_FORMAT", "text or json")
	if has(roles, config.RoleDetector) {
		ef.add("ROOTWARDEN_ORG_ROLE_NAME", "role to assume in every account of the Organization (empty: only this account)")
		ef.add("ROOTWARDEN_ORG_EXTERNAL_ID", "external id for that role")
		ef.add("ROOTWARDEN_SCAN_INTERVAL", "time between sweeps, e.g. 15m")
		ef.add("ROOTWARDEN_SCAN_CONCURRENCY", "accounts checked at once")
		ef.add("ROOTWARDEN_ACCOUNT_TIMEOUT", "time limit per account check")
		ef.add("ROOTWARDEN_SQS_QUEUE_URL", "queue of CloudTrail events from EventBridge")
	}
	if has(roles, config.RoleRemediator) {
		ef.add("ROOTWARDEN_TRACKER", "builtin, jira or github")
	}
	if has(roles, config.RoleNotifier) {
		ef.add("ROOTWARDEN_SLACK_CHANNEL", "Slack channel id (C…), not its name")
		ef.add("ROOTWARDEN_APPROVERS", "Slack user ids (U…, W…) and user-group ids (S…), comma-separated")
		ef.add("ROOTWARDEN_SLACK_API_URL", "Slack Web API base (default https://slack.com/api/)")
		ef.add("ROOTWARDEN_SLACK_HTTP_ADDR", "serve POST /slack/… on this address alone (for a public ingress)")
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		opt := serveOptions{getenv: ef.getenv(cmd, os.Getenv), checkEnviron: true}
		if code := runServe(cmd.Context(), roles, cmd.ErrOrStderr(), opt); code != 0 {
			return exitCode(code)
		}
		return nil
	}
	return cmd
}

// runServe starts the given components in one process until ctx ends. Exit code 0
// after a clean shutdown, 2 on a configuration or start-up error.
func runServe(ctx context.Context, roles []config.Role, stderr io.Writer, opt serveOptions) int {
	if opt.getenv == nil {
		opt.getenv = os.Getenv
	}
	cfg, err := config.Load(opt.getenv)
	var warnings []string
	if err == nil && opt.checkEnviron {
		// First: a misspelt variable explains the settings it leaves missing.
		warnings, err = cfg.CheckEnviron(os.Environ(), opt.getenv)
	}
	if err == nil {
		err = cfg.Validate(roles...)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rootwarden: configuration: %s\n", oneLine(err))
		return 2
	}
	log := newLogger(stderr, cfg)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err := serve(ctx, cfg, roles, log, opt); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "rootwarden: interrupted during start-up")
			return 2
		}
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

// serve builds and runs the components. Everything that can stop start-up (the
// HTTP addresses, the bus, AWS set-up, Slack's answer) is checked before any component
// starts, so a failed start logs nothing but its one reason.
func serve(ctx context.Context, cfg config.Config, roles []config.Role, log *slog.Logger, opt serveOptions) error {
	setMemoryLimit(log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bi := version.Get()
	if err := metrics.Register(reg, metrics.Build{Version: bi.Version, Commit: bi.Commit, Date: bi.Date}); err != nil {
		return err
	}

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

	srv := httpx.New(log, reg)
	if cfg.PProf {
		srv.MountPProf()
	}
	if err := srv.Listen(cfg.HTTPAddr); err != nil {
		return fmt.Errorf("ROOTWARDEN_HTTP_ADDR: %w", err)
	}
	defer srv.Close()
	// The public Slack endpoints: on the main server, or alone on their own address.
	slackSrv := srv
	notifierRuns := has(roles, config.RoleNotifier)
	if notifierRuns && cfg.SlackHTTPAddr != "" {
		slackSrv = httpx.NewPublic(log)
		if err := slackSrv.Listen(cfg.SlackHTTPAddr); err != nil {
			return fmt.Errorf("ROOTWARDEN_SLACK_HTTP_ADDR: %w", err)
		}
		defer slackSrv.Close()
	}

	b, err := bus.Open(ctx, bus.Config{URL: cfg.NATSURL, DataDir: cfg.DataDir, Listen: cfg.NATSListen, HistoryRetention: cfg.HistoryRetention,
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
	if opt.bus != nil {
		opt.bus(b)
	}
	reg.MustRegister(metrics.NewConsumerLag(b.JS, 2*time.Second))
	srv.AddCheck("nats", func(context.Context) error {
		if s := b.NC.Status(); s != nats.CONNECTED {
			return fmt.Errorf("NATS connection %s", s)
		}
		return nil
	})

	// AWS: a mistake that retrying cannot fix stops here; a passing failure makes
	// the process not ready until AWS answers.
	var awsProbe func(context.Context) error
	if has(roles, config.RoleDetector) {
		p := newAWSPreflight(awsCfg, cfg.OrgRoleName)
		if err := p.check(ctx); err != nil {
			if permanent(err) {
				return err
			}
			srv.Report("aws", err)
		} else {
			srv.Report("aws", nil)
		}
		awsProbe = p.check
	}

	// Slack: as AWS, a wrong token or channel stops; an unreachable Slack makes the
	// process not ready, and the notifier starts once Slack answers.
	var n *notifier.Notifier
	var api *slack.Client
	var slackErr error
	if notifierRuns {
		if err := slackReachable(ctx, cfg.SlackAPIURL); err != nil {
			if cfg.SlackAPIURL != "" {
				return err
			}
			slackErr = err
		}
		sopts := []slack.Option{slack.OptionHTTPClient(&http.Client{Timeout: 30 * time.Second, Transport: metrics.SlackTransport(nil)})}
		if cfg.SlackAPIURL != "" {
			sopts = append(sopts, slack.OptionAPIURL(withSlash(cfg.SlackAPIURL)))
		}
		if cfg.SlackAppToken != "" {
			sopts = append(sopts, slack.OptionAppLevelToken(cfg.SlackAppToken))
		}
		api = slack.New(cfg.SlackBotToken, sopts...)
		oncall, err := notifierOnCall(cfg, b)
		if err != nil {
			return err
		}
		n, err = notifier.New(notifier.Config{Channel: cfg.SlackChannel, SigningSecret: cfg.SlackSigningSecret,
			AppToken: cfg.SlackAppToken, APIURL: cfg.SlackAPIURL, Approvers: cfg.Approvers,
			RemindAfter: cfg.RemindAfter, MaxReminders: notifierMaxReminders(cfg), SLA: cfg.SLA,
			MaxRiskAcceptance: cfg.MaxRiskAcceptance, Metrics: reg, OnCallConfig: oncall}, log, b, api)
		if err != nil {
			return fmt.Errorf("notifier: %w", err)
		}
		if slackErr == nil {
			slackErr = checkSlack(ctx, n)
			if slackErr != nil && permanent(slackErr) {
				return slackErr
			}
		}
		if slackErr == nil {
			for _, w := range checkApprovers(ctx, api, cfg.Approvers) {
				log.Warn(w)
			}
		}
		srv.Report("slack", slackErr)
	}

	// Start-up checks passed: from here on the components run.
	log.Info("bus ready", "nats", where, "replicas", b.Replicas)
	if b.Server != nil && cfg.DataDir == "" && has(roles, config.RoleRemediator) {
		log.Warn("ROOTWARDEN_DATA_DIR is not set: cases live in a temporary directory and are lost when the process stops; set it in production")
	}
	g, gctx := newGroup(ctx)
	if has(roles, config.RoleDetector) {
		d, err := detector.New(detector.Config{OrgRoleName: cfg.OrgRoleName, ExternalID: cfg.OrgExternalID,
			ScanInterval: cfg.ScanInterval, Concurrency: cfg.Concurrency, AccountTimeout: cfg.AccountTimeout,
			OrgAPIShare: float64(cfg.OrgAPIShare) / 100, SQSQueueURL: cfg.SQSQueueURL, Metrics: reg,
			SecurityHubIn: cfg.SecurityHub == "in" || cfg.SecurityHub == "both"}, log, b, awsCfg)
		if err != nil {
			g.cancel()
			return fmt.Errorf("detector: %w", err)
		}
		g.Go("detector", func() error { return d.Run(gctx) })
		g.Go("aws readiness", func() error { watchDependency(gctx, srv.Reporter("aws"), awsProbe); return nil })
	}
	if has(roles, config.RoleRemediator) {
		tr, err := newTracker(cfg, b, log)
		if err != nil {
			g.cancel()
			_ = g.Wait()
			return err
		}
		if cfg.Tracker != "builtin" {
			tr = readyTracker{Tracker: tr, report: srv.Reporter("tracker")}
		}
		rcfg := remediator.Config{APIToken: cfg.APIToken, AssumeRoot: cfg.AssumeRoot,
			TicketPollInterval: cfg.TicketPoll, Metrics: reg, ActivityAnswerWithin: cfg.ActivityAnswerWithin,
			CheckTimeout: cfg.AccountTimeout + 15*time.Second} // never shorter than the detector's own bound
		if cfg.SecurityHub == "out" || cfg.SecurityHub == "both" {
			// Region and endpoint through the SDK's own chain (AWS_REGION, AWS_ENDPOINT_URL_SECURITYHUB).
			rcfg.SecurityHub = securityhub.New(securityhub.Config{OCSF: cfg.SecurityHubOCSF, CaseURL: cfg.CaseURL},
				awssecurityhub.NewFromConfig(awsCfg))
			rcfg.SecurityHubSyncInterval = cfg.SecurityHubSync
		}
		if cfg.AssumeRoot {
			rcfg.Deleter = remediator.NewAWSRootKeyDeleter(awsCfg)
		}
		rcfg.Evidence = remediator.EvidenceConfig{Token: cfg.EvidenceToken, SLA: cfg.SLA, Generator: "rootwarden " + version.Get().String()}
		if cfg.EvidenceSigningKey != "" {
			if rcfg.Evidence.Signer, err = evidence.NewSigner([]byte(cfg.EvidenceSigningKey)); err != nil {
				g.cancel()
				_ = g.Wait()
				return fmt.Errorf("ROOTWARDEN_EVIDENCE_SIGNING_KEY: %w", err)
			}
		}
		r, err := remediator.New(rcfg, log, b, bus.Checker{NC: b.NC}, tr)
		if err != nil {
			g.cancel()
			_ = g.Wait()
			return fmt.Errorf("remediator: %w", err)
		}
		srv.Handle("/api/v1/", r.APIHandler())
		if cfg.APIToken == "" {
			log.Info("case API off: ROOTWARDEN_API_TOKEN is not set")
		}
		g.Go("remediator", func() error { return r.Run(gctx) })
	}
	if notifierRuns {
		for pattern, h := range slackRoutes(cfg, n) {
			slackSrv.Handle(pattern, h)
		}
		g.Go("notifier", func() error {
			if slackErr != nil {
				log.Warn("Slack does not answer: the notifier starts once it does", "err", slackErr)
				if err := waitForSlack(gctx, n, srv.Reporter("slack")); err != nil {
					return err
				}
				for _, w := range checkApprovers(gctx, api, cfg.Approvers) {
					log.Warn(w)
				}
			}
			return n.Run(gctx)
		})
	}

	log.Info("rootwarden started", "components", roleNames(roles), "http", srv.Addr())
	if slackSrv != srv {
		log.Info("Slack endpoints served apart", "slack_http", slackSrv.Addr())
		g.Go("slack http", func() error { return slackSrv.Serve(gctx) })
	}
	if opt.ready != nil {
		opt.ready(srv.Addr())
	}
	g.Go("http", func() error { return srv.Serve(gctx) })
	err = g.Wait()
	log.Info("rootwarden stopped")
	return err
}

// notifierMaxReminders is ROOTWARDEN_MAX_REMINDERS for notifier.Config, which reads 0
// as "the default" and a negative number as "none": 0 in the variable means none.
func notifierMaxReminders(cfg config.Config) int {
	if cfg.MaxReminders == 0 {
		return -1
	}
	return cfg.MaxReminders
}

// slackRoutes are the public endpoints Slack calls, served on ROOTWARDEN_SLACK_HTTP_ADDR
// when it is set (else on ROOTWARDEN_HTTP_ADDR). Every new Slack endpoint goes here.
func slackRoutes(cfg config.Config, n *notifier.Notifier) map[string]http.Handler {
	routes := map[string]http.Handler{}
	if cfg.SlackSigningSecret != "" {
		routes["POST /slack/interactions"] = n.InteractionsHandler()
		routes["POST /slack/events"] = n.EventsHandler()     // App Home (app_home_opened)
		routes["POST /slack/commands"] = n.CommandsHandler() // /rootwarden
	}
	return routes
}

// newTracker builds the ticket system named by ROOTWARDEN_TRACKER.
func newTracker(cfg config.Config, b *bus.Bus, log *slog.Logger) (model.Tracker, error) {
	switch cfg.Tracker {
	case "jira":
		t, err := tracker.NewJira(tracker.JiraConfig{BaseURL: cfg.JiraURL, Email: cfg.JiraEmail,
			APIToken: cfg.JiraToken, Project: cfg.JiraProject, IssueType: cfg.JiraIssueType, Labels: cfg.JiraLabels,
			ExtraFields: cfg.JiraExtraFields, DoneStatuses: cfg.JiraDoneStatuses, WontDo: cfg.JiraWontDo,
			Client: &http.Client{Transport: metrics.TrackerTransport("jira", nil)}, OwnerTag: cfg.OnCall.OwnerTag}, log.With("tracker", "jira"))
		if err != nil {
			return nil, fmt.Errorf("ROOTWARDEN_JIRA_URL: %w", err)
		}
		return t, nil
	case "github":
		owner, repo, _ := strings.Cut(cfg.GitHubRepo, "/")
		t, err := tracker.NewGitHub(tracker.GitHubConfig{BaseURL: cfg.GitHubAPIURL, Token: cfg.GitHubToken,
			Owner: owner, Repo: repo, Client: &http.Client{Transport: metrics.TrackerTransport("github", nil)}, OwnerLoginTag: cfg.OnCall.OwnerGitHubTag}, log.With("tracker", "github"))
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
