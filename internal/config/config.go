// Package config reads rootwarden's settings from the environment and, optionally, a
// YAML file (ROOTWARDEN_CONFIG); the environment wins. It validates them for the
// components a process runs and names the variable in every error. AWS settings are not
// here: the AWS SDK reads its own chain and AWS_* variables.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Config is every rootwarden setting. Field comments name the variable.
type Config struct {
	NATSURL      string // ROOTWARDEN_NATS_URL; empty → embedded server
	NATSCreds    string // ROOTWARDEN_NATS_CREDS
	NATSCA       string // ROOTWARDEN_NATS_CA
	NATSCert     string // ROOTWARDEN_NATS_CERT
	NATSKey      string // ROOTWARDEN_NATS_KEY
	NATSReplicas int    // ROOTWARDEN_NATS_REPLICAS; 0 → automatic
	NATSListen   string // ROOTWARDEN_NATS_LISTEN; embedded server's address (loopback, any port)
	DataDir      string // ROOTWARDEN_DATA_DIR
	HTTPAddr     string // ROOTWARDEN_HTTP_ADDR (default :8080)
	APIToken     string // ROOTWARDEN_API_TOKEN; empty → case API off
	LogLevel     string // ROOTWARDEN_LOG_LEVEL: debug, info, warn, error
	LogFormat    string // ROOTWARDEN_LOG_FORMAT: text or json

	SlackBotToken      string        // SLACK_BOT_TOKEN
	SlackSigningSecret string        // SLACK_SIGNING_SECRET
	SlackAppToken      string        // SLACK_APP_TOKEN (Socket Mode)
	SlackChannel       string        // ROOTWARDEN_SLACK_CHANNEL
	SlackAPIURL        string        // ROOTWARDEN_SLACK_API_URL (tests, demo, proxies)
	Approvers          []string      // ROOTWARDEN_APPROVERS: U…/W… user ids, S… user groups
	RemindAfter        time.Duration // ROOTWARDEN_REMIND_AFTER (default 30m)
	MaxReminders       int           // ROOTWARDEN_MAX_REMINDERS (default 3)
	SLA                time.Duration // ROOTWARDEN_SLA (default 24h)
	MaxRiskAcceptance  time.Duration // ROOTWARDEN_MAX_RISK_ACCEPTANCE (default 2160h = 90 days)

	ScanInterval   time.Duration // ROOTWARDEN_SCAN_INTERVAL (default 15m)
	OrgRoleName    string        // ROOTWARDEN_ORG_ROLE_NAME; set → sweep the whole Organization
	OrgExternalID  string        // ROOTWARDEN_ORG_EXTERNAL_ID
	SQSQueueURL    string        // ROOTWARDEN_SQS_QUEUE_URL
	Concurrency    int           // ROOTWARDEN_SCAN_CONCURRENCY (default 16)
	AccountTimeout time.Duration // ROOTWARDEN_ACCOUNT_TIMEOUT (default 60s)

	AssumeRoot   bool          // ROOTWARDEN_ASSUME_ROOT: delete member-account root keys through sts:AssumeRoot after approval
	Tracker      string        // ROOTWARDEN_TRACKER: builtin (default), jira, github
	TicketPoll   time.Duration // ROOTWARDEN_TICKET_POLL (default 2m)
	JiraURL      string        // ROOTWARDEN_JIRA_URL, e.g. https://example.atlassian.net
	JiraEmail    string        // ROOTWARDEN_JIRA_EMAIL
	JiraToken    string        // ROOTWARDEN_JIRA_TOKEN
	JiraProject  string        // ROOTWARDEN_JIRA_PROJECT
	GitHubRepo   string        // ROOTWARDEN_GITHUB_REPO (owner/name)
	GitHubToken  string        // ROOTWARDEN_GITHUB_TOKEN
	GitHubAPIURL string        // ROOTWARDEN_GITHUB_API_URL (default https://api.github.com)

	OnCall OnCall // routing rules, owner tags, PagerDuty: see oncall.go
}

// Role is a component a process runs; Validate checks what that component needs.
type Role string

const (
	RoleDetector   Role = "detector"
	RoleRemediator Role = "remediator"
	RoleNotifier   Role = "notifier"
)

// Load reads the configuration: the YAML file named by ROOTWARDEN_CONFIG (if any),
// overlaid by the environment. getenv is os.Getenv in production.
func Load(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	file, names := map[string]string{}, map[string]string{}
	path := getenv("ROOTWARDEN_CONFIG")
	if path != "" {
		var err error
		if file, names, err = readYAML(path); err != nil {
			return Config{}, fmt.Errorf("ROOTWARDEN_CONFIG: %w", err)
		}
	}
	known := map[string]bool{}
	r := reader{get: func(k string) string {
		known[k] = true
		if v, ok := lookupEnv(getenv, k); ok {
			return v
		}
		return file[k]
	}}
	c := Config{
		NATSURL:      r.str("ROOTWARDEN_NATS_URL", ""),
		NATSCreds:    r.str("ROOTWARDEN_NATS_CREDS", ""),
		NATSCA:       r.str("ROOTWARDEN_NATS_CA", ""),
		NATSCert:     r.str("ROOTWARDEN_NATS_CERT", ""),
		NATSKey:      r.str("ROOTWARDEN_NATS_KEY", ""),
		NATSReplicas: r.integer("ROOTWARDEN_NATS_REPLICAS", 0, 0, 5),
		NATSListen:   r.str("ROOTWARDEN_NATS_LISTEN", ""),
		DataDir:      r.str("ROOTWARDEN_DATA_DIR", ""),
		HTTPAddr:     r.str("ROOTWARDEN_HTTP_ADDR", ":8080"),
		APIToken:     r.str("ROOTWARDEN_API_TOKEN", ""),
		LogLevel:     r.oneOf("ROOTWARDEN_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:    r.oneOf("ROOTWARDEN_LOG_FORMAT", "text", "text", "json"),

		SlackBotToken:      r.str("SLACK_BOT_TOKEN", ""),
		SlackSigningSecret: r.str("SLACK_SIGNING_SECRET", ""),
		SlackAppToken:      r.str("SLACK_APP_TOKEN", ""),
		SlackChannel:       r.str("ROOTWARDEN_SLACK_CHANNEL", ""),
		SlackAPIURL:        r.str("ROOTWARDEN_SLACK_API_URL", ""),
		Approvers:          r.list("ROOTWARDEN_APPROVERS"),
		RemindAfter:        r.duration("ROOTWARDEN_REMIND_AFTER", 30*time.Minute),
		MaxReminders:       r.integer("ROOTWARDEN_MAX_REMINDERS", 3, 0, 100),
		SLA:                r.duration("ROOTWARDEN_SLA", 24*time.Hour),
		MaxRiskAcceptance:  r.duration("ROOTWARDEN_MAX_RISK_ACCEPTANCE", 90*24*time.Hour),

		ScanInterval:   r.duration("ROOTWARDEN_SCAN_INTERVAL", 15*time.Minute),
		OrgRoleName:    r.str("ROOTWARDEN_ORG_ROLE_NAME", ""),
		OrgExternalID:  r.str("ROOTWARDEN_ORG_EXTERNAL_ID", ""),
		SQSQueueURL:    r.str("ROOTWARDEN_SQS_QUEUE_URL", ""),
		Concurrency:    r.integer("ROOTWARDEN_SCAN_CONCURRENCY", 16, 1, 4096),
		AccountTimeout: r.duration("ROOTWARDEN_ACCOUNT_TIMEOUT", 60*time.Second),

		AssumeRoot:   r.boolean("ROOTWARDEN_ASSUME_ROOT", false),
		Tracker:      r.oneOf("ROOTWARDEN_TRACKER", "builtin", "builtin", "jira", "github"),
		TicketPoll:   r.duration("ROOTWARDEN_TICKET_POLL", 2*time.Minute),
		JiraURL:      r.str("ROOTWARDEN_JIRA_URL", ""),
		JiraEmail:    r.str("ROOTWARDEN_JIRA_EMAIL", ""),
		JiraToken:    r.str("ROOTWARDEN_JIRA_TOKEN", ""),
		JiraProject:  r.str("ROOTWARDEN_JIRA_PROJECT", ""),
		GitHubRepo:   r.str("ROOTWARDEN_GITHUB_REPO", ""),
		GitHubToken:  r.str("ROOTWARDEN_GITHUB_TOKEN", ""),
		GitHubAPIURL: r.str("ROOTWARDEN_GITHUB_API_URL", "https://api.github.com"),
	}
	c.OnCall = r.onCall(getenv, path)
	var unknown []string
	for k := range file {
		if !known[k] {
			unknown = append(unknown, names[k])
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		r.errs = append(r.errs, fmt.Errorf("ROOTWARDEN_CONFIG: %s: unknown setting %s", path, strings.Join(unknown, ", ")))
	}
	if err := errors.Join(r.errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks what the given components need and that settings agree.
func (c Config) Validate(roles ...Role) error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if c.NATSURL != "" {
		for _, u := range strings.Split(c.NATSURL, ",") {
			if p, err := url.Parse(strings.TrimSpace(u)); err != nil || p.Host == "" {
				bad("ROOTWARDEN_NATS_URL", "%q is not a NATS URL like nats://host:4222", redact(u))
			}
		}
	} else if c.NATSCreds != "" || c.NATSCA != "" || c.NATSCert != "" {
		bad("ROOTWARDEN_NATS_URL", "must be set when NATS credentials or TLS files are given")
	}
	if c.NATSListen != "" && c.NATSURL == "" {
		// The embedded server has no authentication: off loopback, anyone who reaches
		// it could publish actions past every Slack check.
		host, port, err := net.SplitHostPort(c.NATSListen)
		if _, perr := strconv.Atoi(port); err != nil || perr != nil {
			bad("ROOTWARDEN_NATS_LISTEN", "%q is not host:port", c.NATSListen)
		} else if ip := net.ParseIP(host); host != "" && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			bad("ROOTWARDEN_NATS_LISTEN", "%q is not a loopback address: the embedded NATS server has no authentication (use ROOTWARDEN_NATS_URL for a shared server)", c.NATSListen)
		}
	}
	if (c.NATSCert == "") != (c.NATSKey == "") {
		bad("ROOTWARDEN_NATS_CERT", "ROOTWARDEN_NATS_CERT and ROOTWARDEN_NATS_KEY go together")
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			bad("ROOTWARDEN_HTTP_ADDR", "%q is not host:port", c.HTTPAddr)
		}
	}
	for _, role := range roles {
		switch role {
		case RoleDetector:
			if c.ScanInterval < time.Minute {
				bad("ROOTWARDEN_SCAN_INTERVAL", "%s is shorter than 1m", c.ScanInterval)
			}
			if c.SQSQueueURL != "" {
				if err := validQueueURL(c.SQSQueueURL); err != nil {
					bad("ROOTWARDEN_SQS_QUEUE_URL", "%v", err)
				}
			}
			if c.OrgExternalID != "" && c.OrgRoleName == "" {
				bad("ROOTWARDEN_ORG_EXTERNAL_ID", "set without ROOTWARDEN_ORG_ROLE_NAME")
			}
		case RoleRemediator:
			switch c.Tracker {
			case "jira":
				for name, v := range map[string]string{"ROOTWARDEN_JIRA_URL": c.JiraURL, "ROOTWARDEN_JIRA_EMAIL": c.JiraEmail,
					"ROOTWARDEN_JIRA_TOKEN": c.JiraToken, "ROOTWARDEN_JIRA_PROJECT": c.JiraProject} {
					if v == "" {
						bad(name, "required when ROOTWARDEN_TRACKER=jira")
					}
				}
			case "github":
				if c.GitHubToken == "" {
					bad("ROOTWARDEN_GITHUB_TOKEN", "required when ROOTWARDEN_TRACKER=github")
				}
				if parts := strings.Split(c.GitHubRepo, "/"); len(parts) != 2 || parts[0] == "" || parts[1] == "" {
					bad("ROOTWARDEN_GITHUB_REPO", "%q is not owner/name", c.GitHubRepo)
				}
			}
		case RoleNotifier:
			if c.SlackBotToken == "" {
				bad("SLACK_BOT_TOKEN", "required (a bot token xoxb-…)")
			}
			if c.SlackChannel == "" {
				bad("ROOTWARDEN_SLACK_CHANNEL", "required (the channel id, e.g. C0123456789)")
			}
			if c.SlackSigningSecret == "" && c.SlackAppToken == "" {
				bad("SLACK_SIGNING_SECRET", "required unless SLACK_APP_TOKEN (Socket Mode) is set")
			}
			if c.SlackAppToken != "" && !strings.HasPrefix(c.SlackAppToken, "xapp-") {
				bad("SLACK_APP_TOKEN", "must be an app-level token starting with xapp-")
			}
			for _, a := range c.Approvers {
				if a == "" || !strings.ContainsRune("UWS", rune(a[0])) {
					bad("ROOTWARDEN_APPROVERS", "%q is neither a user id (U…, W…) nor a user group id (S…)", a)
				}
			}
			if c.SlackAPIURL != "" {
				if p, err := url.Parse(c.SlackAPIURL); err != nil || p.Host == "" {
					bad("ROOTWARDEN_SLACK_API_URL", "%q is not a URL", c.SlackAPIURL)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// validQueueURL accepts https://sqs.REGION.amazonaws.com/ACCOUNT/NAME and the same
// shape on any host (local endpoints): a scheme, a host and /account/name.
func validQueueURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not a queue URL like https://sqs.us-east-1.amazonaws.com/123456789012/rootwarden", s)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("%q has no /ACCOUNT/QUEUE path", s)
	}
	return nil
}

type reader struct {
	get  func(string) string
	errs []error
}

func (r *reader) str(k, def string) string {
	if v := strings.TrimSpace(r.get(k)); v != "" {
		return v
	}
	return def
}

func (r *reader) duration(k string, def time.Duration) time.Duration {
	v := r.str(k, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a positive duration like 15m or 24h", k, v))
		return def
	}
	return d
}

func (r *reader) integer(k string, def, lo, hi int) int {
	v := r.str(k, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a whole number from %d to %d", k, v, lo, hi))
		return def
	}
	return n
}

func (r *reader) boolean(k string, def bool) bool {
	v := r.str(k, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not true or false", k, v))
		return def
	}
	return b
}

func (r *reader) oneOf(k, def string, allowed ...string) string {
	v := strings.ToLower(r.str(k, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.errs = append(r.errs, fmt.Errorf("%s: %q is not one of %s", k, v, strings.Join(allowed, ", ")))
	return def
}

func (r *reader) list(k string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(r.get(k), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' }) {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

// lookupEnv treats a variable as set only when it is non-empty.
func lookupEnv(getenv func(string) string, k string) (string, bool) {
	v := getenv(k)
	return v, v != ""
}

// readYAML reads a flat mapping whose keys are the variable names, either as written
// (ROOTWARDEN_SLACK_CHANNEL) or lower-case without the ROOTWARDEN_ prefix
// (slack_channel). Lists may be YAML sequences.
// names maps each variable name back to the key as the file spells it.
func readYAML(path string) (values, names map[string]string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		// Position and reason only: the parser's own message quotes the source lines
		// around the error, and the file may hold tokens.
		msg := strings.Join(strings.Fields(yaml.FormatError(err, false, false)), " ")
		return nil, nil, fmt.Errorf("%s: %s", path, msg)
	}
	out := make(map[string]string, len(raw))
	names = make(map[string]string, len(raw))
	for k, v := range raw {
		key := strings.ToUpper(k)
		switch {
		case strings.HasPrefix(key, "ROOTWARDEN_"), key == "SLACK_BOT_TOKEN", key == "SLACK_SIGNING_SECRET", key == "SLACK_APP_TOKEN":
		default:
			key = "ROOTWARDEN_" + key
		}
		names[key] = k
		switch t := v.(type) {
		case []any:
			parts := make([]string, 0, len(t))
			for _, e := range t {
				parts = append(parts, fmt.Sprint(e))
			}
			out[key] = strings.Join(parts, ",")
		case nil:
		default:
			out[key] = fmt.Sprint(t)
		}
	}
	return out, names, nil
}

func redact(u string) string {
	if at := strings.LastIndexByte(u, '@'); at >= 0 {
		return "…@" + u[at+1:]
	}
	return u
}
