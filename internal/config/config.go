// Package config reads rootwarden's settings from the environment and, optionally, a
// YAML file (ROOTWARDEN_CONFIG); the environment wins over the file (and the command
// line, which cmd/rootwarden overlays on the environment, wins over both). Every
// secret variable X may instead be read from the file named by X_FILE. It validates
// the settings for the components a process runs and names the variable, and the fix,
// in every error. AWS settings are not here: the AWS SDK reads its own chain and
// AWS_* variables.
//
// Every setting is one entry of the table in settings.go: its variable, YAML key,
// flag, default, description, whether it is a secret (and so has NAME_FILE) and when
// it is required. Load reads the table, cmd/rootwarden binds its flags from it, and
// `go generate ./internal/config` writes docs/configuration.md from it.
//
// To add a setting: add the Config field, add one entry to the table (settings.go
// shows one), run `go generate ./internal/config`, and commit the regenerated
// docs/configuration.md (TestReferenceIsCurrent fails until then). A check that
// involves more than one setting goes in Validate.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
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
	// SlackHTTPAddr is ROOTWARDEN_SLACK_HTTP_ADDR: when set, the public Slack endpoints
	// (POST /slack/…) are served on this address alone, and not on HTTPAddr, so an
	// ingress can expose them without /metrics and the case API.
	SlackHTTPAddr string
	APIToken      string // ROOTWARDEN_API_TOKEN; empty → case API off
	// EvidenceToken is ROOTWARDEN_EVIDENCE_TOKEN: the evidence API's own read-only
	// token; empty → evidence API off.
	EvidenceToken string
	// EvidenceSigningKey is ROOTWARDEN_EVIDENCE_SIGNING_KEY: the SSH private key
	// (PEM text) evidence packs are signed with; empty → unsigned.
	EvidenceSigningKey string
	// HistoryRetention is ROOTWARDEN_HISTORY_RETENTION: how long RW_HISTORY keeps
	// sweep coverage and posture changes (default 3 years).
	HistoryRetention time.Duration
	// PProf is ROOTWARDEN_PPROF: serve Go's /debug/pprof/ on HTTPAddr (never on the
	// public Slack address) to profile memory and CPU; off by default.
	PProf     bool
	LogLevel  string // ROOTWARDEN_LOG_LEVEL: debug, info, warn, error
	LogFormat string // ROOTWARDEN_LOG_FORMAT: text or json

	SlackBotToken      string        // SLACK_BOT_TOKEN
	SlackSigningSecret string        // SLACK_SIGNING_SECRET
	SlackAppToken      string        // SLACK_APP_TOKEN (Socket Mode)
	SlackChannel       string        // ROOTWARDEN_SLACK_CHANNEL
	SlackAPIURL        string        // ROOTWARDEN_SLACK_API_URL (tests, demo, proxies)
	Approvers          []string      // ROOTWARDEN_APPROVERS: U…/W… user ids, S… user groups
	RemindAfter        time.Duration // ROOTWARDEN_REMIND_AFTER (default 30m)
	MaxReminders       int           // ROOTWARDEN_MAX_REMINDERS (default 3; 0 = no reminders)
	// ActivityAnswerWithin is ROOTWARDEN_ACTIVITY_ANSWER_WITHIN (default 15m): the time
	// an owner has to answer a root activity question.
	ActivityAnswerWithin time.Duration
	SLA                  time.Duration // ROOTWARDEN_SLA (default 24h)
	MaxRiskAcceptance    time.Duration // ROOTWARDEN_MAX_RISK_ACCEPTANCE (default 2160h = 90 days)

	ScanInterval   time.Duration // ROOTWARDEN_SCAN_INTERVAL (default 15m)
	OrgRoleName    string        // ROOTWARDEN_ORG_ROLE_NAME; set → sweep the whole Organization
	OrgExternalID  string        // ROOTWARDEN_ORG_EXTERNAL_ID
	SQSQueueURL    string        // ROOTWARDEN_SQS_QUEUE_URL
	Concurrency    int           // ROOTWARDEN_SCAN_CONCURRENCY (default 64, detector.DefaultConcurrency; run and scan alike)
	AccountTimeout time.Duration // ROOTWARDEN_ACCOUNT_TIMEOUT (default 60s)
	OrgAPIShare    int           // ROOTWARDEN_ORG_API_SHARE: percent of AWS's published Organizations and STS rates the detectors use together (default 80)

	// SecurityHub is ROOTWARDEN_SECURITYHUB: off (default), in, out, both;
	// SecurityHubOCSF, SecurityHubSync and CaseURL are _OCSF, _SYNC and ROOTWARDEN_CASE_URL.
	SecurityHub     string
	SecurityHubOCSF bool
	SecurityHubSync time.Duration
	CaseURL         string

	AssumeRoot  bool          // ROOTWARDEN_ASSUME_ROOT: delete member-account root keys through sts:AssumeRoot after approval
	Tracker     string        // ROOTWARDEN_TRACKER: builtin (default), jira, github
	TicketPoll  time.Duration // ROOTWARDEN_TICKET_POLL (default 2m)
	JiraURL     string        // ROOTWARDEN_JIRA_URL, e.g. https://example.atlassian.net
	JiraEmail   string        // ROOTWARDEN_JIRA_EMAIL
	JiraToken   string        // ROOTWARDEN_JIRA_TOKEN
	JiraProject string        // ROOTWARDEN_JIRA_PROJECT
	// JiraIssueType, JiraExtraFields, JiraLabels, JiraDoneStatuses and JiraWontDo are
	// ROOTWARDEN_JIRA_ISSUE_TYPE, _EXTRA_FIELDS (a JSON object), _LABELS,
	// _DONE_STATUSES and _WONT_DO_RESOLUTIONS.
	JiraIssueType    string
	JiraExtraFields  map[string]any
	JiraLabels       []string
	JiraDoneStatuses []string
	JiraWontDo       []string
	GitHubRepo       string // ROOTWARDEN_GITHUB_REPO (owner/name)
	GitHubToken      string // ROOTWARDEN_GITHUB_TOKEN
	GitHubAPIURL     string // ROOTWARDEN_GITHUB_API_URL (default https://api.github.com)

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
	r := reader{known: map[string]bool{}, file: path, fromFile: map[string]bool{}}
	r.get = func(k string) string {
		r.known[k] = true
		if v, ok := lookupEnv(getenv, k); ok {
			return v
		}
		if v, ok := file[k]; ok {
			r.fromFile[k] = true
			return v
		}
		return ""
	}
	c := read(&r, getenv, path)
	var unknown []string
	for k := range file {
		if !r.known[k] {
			hint := suggest(k, r.known, "%s")
			if hint != "" && names[k] != strings.ToUpper(names[k]) { // the file writes slack_channel
				hint = strings.ToLower(strings.TrimPrefix(hint, "ROOTWARDEN_"))
			}
			if hint != "" {
				hint = " (did you mean " + hint + "?)"
			}
			unknown = append(unknown, names[k]+hint)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		r.errs = append(r.errs, fmt.Errorf("ROOTWARDEN_CONFIG: %s: unknown setting %s (the file is a flat list of variables: "+
			"slack_channel: C0123456789 or ROOTWARDEN_SLACK_CHANNEL: C0123456789)", path, strings.Join(unknown, ", ")))
	}
	if err := errors.Join(r.errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// read reads every setting of the table through r; path is the YAML file ("" →
// none), for the settings that read it themselves.
func read(r *reader, getenv func(string) string, path string) Config {
	var c Config
	for _, s := range settings {
		if !s.External {
			s.read(r, &c)
		}
	}
	r.onCall(&c.OnCall, getenv, path)
	return c
}

// Variables lists every variable rootwarden reads, sorted (the _FILE variants included).
func Variables() []string {
	out := make([]string, 0, len(settings)+10)
	for _, s := range settings {
		out = append(out, s.Name)
		if s.Kind == KindSecret {
			out = append(out, s.Name+"_FILE")
		}
	}
	sort.Strings(out)
	return out
}

// UnknownVariables is the warnings-only form of CheckEnviron (which the commands
// call): one warning per ROOTWARDEN_* variable in environ ("NAME=value" entries, as
// os.Environ gives) that rootwarden does not read, naming the closest known variable,
// and per SLACK_* variable that is a near miss of one of ours (SLACK_BOT_TOKN): a
// misspelt name would otherwise be silently ignored.
func UnknownVariables(environ []string) []string {
	known := map[string]bool{}
	for _, k := range Variables() {
		known[k] = true
	}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if known[k] {
			continue
		}
		hint := suggest(k, known, " (did you mean %s?)")
		switch {
		case strings.HasPrefix(k, "ROOTWARDEN_"):
		case strings.HasPrefix(k, "SLACK_") && hint != "":
			// Other tools read SLACK_* too: only a near miss of ours is worth a word.
		default:
			continue
		}
		out = append(out, k+" is not a rootwarden variable and is ignored"+hint)
	}
	sort.Strings(out)
	return out
}

// suggest formats the known name closest to k (at most a third of its letters away)
// into format, or returns "".
func suggest(k string, known map[string]bool, format string) string {
	best, bestD := "", len(k)/3+1
	for name := range known {
		if d := distance(k, name); d < bestD || (d == bestD && best != "" && name < best) {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(format, best)
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
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
			if (c.SecurityHub == "in" || c.SecurityHub == "both") && c.SQSQueueURL == "" {
				bad("ROOTWARDEN_SECURITYHUB", "%s reads Security Hub's findings from the events queue: set ROOTWARDEN_SQS_QUEUE_URL (docs/securityhub.md)", c.SecurityHub)
			}
		case RoleRemediator:
			if c.CaseURL != "" && (!strings.Contains(c.CaseURL, "%s") || !strings.HasPrefix(c.CaseURL, "https://") && !strings.HasPrefix(c.CaseURL, "http://")) {
				bad("ROOTWARDEN_CASE_URL", "%q must be an http(s) URL with %%s where the case id goes", c.CaseURL)
			}
			switch c.Tracker {
			case "jira":
				for name, v := range map[string]string{"ROOTWARDEN_JIRA_URL": c.JiraURL, "ROOTWARDEN_JIRA_EMAIL": c.JiraEmail,
					"ROOTWARDEN_JIRA_TOKEN": c.JiraToken, "ROOTWARDEN_JIRA_PROJECT": c.JiraProject} {
					if v == "" {
						bad(name, "required when ROOTWARDEN_TRACKER=jira")
					}
				}
				for _, k := range sortedKeys(c.JiraExtraFields) {
					switch k {
					case "project", "issuetype", "summary", "description", "labels":
						bad("ROOTWARDEN_JIRA_EXTRA_FIELDS", "sets %q, which rootwarden sets itself (the issue type is ROOTWARDEN_JIRA_ISSUE_TYPE, more labels ROOTWARDEN_JIRA_LABELS)", k)
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
			switch {
			case c.SlackBotToken == "":
				bad("SLACK_BOT_TOKEN", "required: the bot token xoxb-… (Slack app settings → OAuth & Permissions → Bot User OAuth Token)")
			case strings.HasPrefix(c.SlackBotToken, "xoxp-"):
				bad("SLACK_BOT_TOKEN", "is a user token (xoxp-…): rootwarden would post and act as that person; use the bot token xoxb-… (OAuth & Permissions → Bot User OAuth Token)")
			case strings.HasPrefix(c.SlackBotToken, "xapp-"):
				bad("SLACK_BOT_TOKEN", "is an app-level token (xapp-…): set it as SLACK_APP_TOKEN and put the bot token xoxb-… here")
			}
			if err := validChannel(c.SlackChannel); err != nil {
				bad("ROOTWARDEN_SLACK_CHANNEL", "%v", err)
			}
			if c.SlackSigningSecret == "" && c.SlackAppToken == "" {
				bad("SLACK_SIGNING_SECRET", "required unless SLACK_APP_TOKEN (Socket Mode) is set (Slack app settings → Basic Information → Signing Secret)")
			}
			if c.SlackAppToken != "" && !strings.HasPrefix(c.SlackAppToken, "xapp-") {
				bad("SLACK_APP_TOKEN", "must be an app-level token starting with xapp- (Basic Information → App-Level Tokens, scope connections:write)")
			}
			for _, a := range c.Approvers {
				if err := validApprover(a); err != nil {
					bad("ROOTWARDEN_APPROVERS", "%v", err)
				}
			}
			if c.SlackHTTPAddr != "" {
				if _, _, err := net.SplitHostPort(c.SlackHTTPAddr); err != nil {
					bad("ROOTWARDEN_SLACK_HTTP_ADDR", "%q is not host:port", c.SlackHTTPAddr)
				} else if c.SlackHTTPAddr == c.HTTPAddr {
					bad("ROOTWARDEN_SLACK_HTTP_ADDR", "is the same address as ROOTWARDEN_HTTP_ADDR: leave it unset to serve Slack there")
				}
			}
			if c.SlackAPIURL != "" {
				if p, err := url.Parse(c.SlackAPIURL); err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") {
					bad("ROOTWARDEN_SLACK_API_URL", "%q is not a URL like https://slack.com/api/ (the Web API base, ending in /api/)", c.SlackAPIURL)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// idFind says where a Slack id is found; the error messages carry it.
const (
	findUserID    = "a member's id: click their name → View full profile → ⋮ → Copy member ID"
	findGroupID   = "a user group's id: open the group (People → User groups), ⋮ → Copy group ID"
	findChannelID = "open the channel, click its name at the top: the id (C…) is at the bottom of the About tab"
)

// validApprover accepts a Slack user id (U…, W…) or user-group id (S…).
func validApprover(a string) error {
	switch {
	case strings.Contains(a, ";"):
		return fmt.Errorf("%q: separate ids with commas or spaces, not semicolons", a)
	case strings.Contains(a, "@") && !strings.HasPrefix(a, "<@") && !strings.HasPrefix(a, "@"):
		return fmt.Errorf("%q is an email address: give Slack ids, not emails (%s)", a, findUserID)
	case strings.HasPrefix(a, "<@") || strings.HasPrefix(a, "<!subteam^"):
		return fmt.Errorf("%q is a Slack mention: give the bare id (U…, S…) without <@ >", a)
	case strings.HasPrefix(a, "@"):
		return fmt.Errorf("%q is a handle: give the id instead (%s; %s)", a, findUserID, findGroupID)
	case !slackID(a, "UWS"):
		return fmt.Errorf("%q is neither a user id (U…, W…) nor a user group id (S…): ids are upper-case letters and digits (%s; %s)", a, findUserID, findGroupID)
	}
	return nil
}

// validChannel accepts a channel id (C… public, G… private); names are refused.
func validChannel(ch string) error {
	switch {
	case ch == "":
		return fmt.Errorf("required: the channel id like C0123456789 (%s)", findChannelID)
	case strings.HasPrefix(ch, "#") || !slackID(ch, "CG"):
		return fmt.Errorf("%q is not a channel id: use the id like C0123456789, not the name (%s)", ch, findChannelID)
	}
	return nil
}

// slackID reports whether s starts with one of first and continues with upper-case
// letters and digits only.
func slackID(s, first string) bool {
	if len(s) < 2 || !strings.ContainsRune(first, rune(s[0])) {
		return false
	}
	for _, c := range s[1:] {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
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
	get      func(string) string
	errs     []error
	known    map[string]bool // every variable asked for
	file     string          // the YAML file, for errors about values read from it
	fromFile map[string]bool // variables whose value came from the file
}

// name is k for errors: "K (from FILE)" when the value came from the YAML file.
func (r *reader) name(k string) string {
	if r.fromFile[k] {
		return k + " (from " + r.file + ")"
	}
	return k
}

func (r *reader) str(k, def string) string {
	if v := strings.TrimSpace(r.get(k)); v != "" {
		return v
	}
	return def
}

// secret reads k, or the file named by k_FILE (a mounted Kubernetes Secret, a
// systemd credential); trailing white space and newlines are dropped. Both set is an
// error: which one would win is not obvious.
func (r *reader) secret(k string) string {
	v := strings.TrimSpace(r.get(k))
	path := strings.TrimSpace(r.get(k + "_FILE"))
	if path == "" {
		return v
	}
	if v != "" {
		r.errs = append(r.errs, fmt.Errorf("%s and %s_FILE are both set: set one of them", k, k))
		return ""
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// A Kubernetes Secret mounted as files has one file per key it holds: a key the
		// chart lists (secrets.keys) and the Secret lacks is a _FILE naming nothing.
		r.errs = append(r.errs, fmt.Errorf("%s_FILE: %s does not exist (a key missing from the mounted Secret? "+
			"remove it from the chart's secrets.keys, or unset %s_FILE)", k, path, k))
		return ""
	}
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s_FILE: %v", k, err))
		return ""
	}
	v = strings.TrimSpace(string(data))
	if v == "" {
		r.errs = append(r.errs, fmt.Errorf("%s_FILE: %s is empty", k, path))
	}
	return v
}

func (r *reader) duration(k string, def time.Duration) time.Duration {
	v := r.str(k, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a positive duration like 15m or 24h", r.name(k), v))
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
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a whole number from %d to %d", r.name(k), v, lo, hi))
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
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not true or false", r.name(k), v))
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
	r.errs = append(r.errs, fmt.Errorf("%s: %q is not one of %s", r.name(k), v, strings.Join(allowed, ", ")))
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

// unprefixed reports whether a YAML key names a variable without the ROOTWARDEN_
// prefix (SLACK_BOT_TOKEN, SLACK_BOT_TOKEN_FILE).
func unprefixed(key string) bool {
	s, ok := Lookup(key)
	return ok && !strings.HasPrefix(s.Name, "ROOTWARDEN_")
}

// readYAML reads a flat mapping whose keys are the variable names, either as written
// (ROOTWARDEN_SLACK_CHANNEL) or lower-case without the ROOTWARDEN_ prefix
// (slack_channel). Lists may be YAML sequences. A value is the text the file holds
// (0042 stays "0042"; YAML would make it the octal number 34).
// names maps each variable name back to the key as the file spells it.
func readYAML(path string) (values, names map[string]string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	// The parser reports a tab as "found character ' '" once white space is folded.
	for i, line := range strings.Split(string(data), "\n") {
		if indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]; strings.Contains(indent, "\t") {
			return nil, nil, fmt.Errorf("%s: line %d is indented with a tab: YAML indents with spaces only", path, i+1)
		}
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		// Position and reason only: the parser's own message quotes the source lines
		// around the error, and the file may hold tokens.
		msg := strings.Join(strings.Fields(yaml.FormatError(err, false, false)), " ")
		return nil, nil, fmt.Errorf("%s: %s", path, msg)
	}
	out := map[string]string{}
	names = map[string]string{}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return out, names, nil
	}
	var pairs []*ast.MappingValueNode
	switch body := f.Docs[0].Body.(type) {
	case *ast.MappingNode:
		pairs = body.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{body}
	default:
		return nil, nil, fmt.Errorf("%s: the file must be a mapping of settings like slack_channel: C0123456789", path)
	}
	for _, kv := range pairs {
		k, ok := scalarText(kv.Key)
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("%s: line %d: a key must be a plain name", path, kv.GetToken().Position.Line)
		}
		key := strings.ToUpper(k)
		if !strings.HasPrefix(key, "ROOTWARDEN_") && !unprefixed(key) {
			key = "ROOTWARDEN_" + key
		}
		names[key] = k
		switch v := kv.Value.(type) {
		case *ast.NullNode:
		case *ast.SequenceNode:
			parts := make([]string, 0, len(v.Values))
			structured := false
			for _, e := range v.Values {
				t, ok := scalarText(e)
				structured = structured || !ok
				parts = append(parts, t)
			}
			if structured {
				// A list of mappings (slack_routes): the setting reads the file itself;
				// the value only says that the file sets it.
				out[key] = "(list)"
			} else {
				out[key] = strings.Join(parts, ",")
			}
		default:
			t, ok := scalarText(v)
			if !ok {
				return nil, nil, fmt.Errorf("%s: %s: the file is flat: write each setting on its own line (%s: value), not nested", path, k, k)
			}
			out[key] = t
		}
	}
	return out, names, nil
}

// scalarText is the text of a scalar node as written (quotes removed), or false for
// mappings and sequences.
func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	case *ast.NullNode:
		return "", true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return v.GetToken().Value, true
	case *ast.TagNode:
		return scalarText(v.Value)
	}
	return "", false
}

func redact(u string) string {
	if at := strings.LastIndexByte(u, '@'); at >= 0 {
		return "…@" + u[at+1:]
	}
	return u
}

// Secret reads one secret variable as Load does: name, or the file named by name_FILE.
func Secret(getenv func(string) string, name string) (string, error) {
	r := reader{get: getenv, known: map[string]bool{}, fromFile: map[string]bool{}}
	v := r.secret(name)
	return v, errors.Join(r.errs...)
}

// CheckEnviron looks at every ROOTWARDEN_* variable in environ ("NAME=value", as
// os.Environ gives) that rootwarden does not read, and every SLACK_* one that is a
// near miss of ours. One whose closest known name is unset in c (getenv is what Load
// read, flags included) is an error: the setting meant is missing, and the process
// would run without it ("ROOTWARDEN_APPROVER is not a variable; did you mean
// ROOTWARDEN_APPROVERS (which is unset)?": nobody could approve). The others are
// warnings, as UnknownVariables words them.
func (c Config) CheckEnviron(environ []string, getenv func(string) string) (warnings []string, err error) {
	known := map[string]bool{}
	for _, k := range Variables() {
		known[k] = true
	}
	var errs []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if known[k] || testVariable(k) || (!strings.HasPrefix(k, "ROOTWARDEN_") && !strings.HasPrefix(k, "SLACK_")) {
			continue
		}
		near := suggest(k, known, "%s")
		switch {
		case near != "" && !c.isSet(near, getenv):
			errs = append(errs, fmt.Sprintf("%s is not a variable; did you mean %s (which is unset)?", k, near))
		case near != "":
			warnings = append(warnings, k+" is not a rootwarden variable and is ignored (did you mean "+near+"?)")
		case strings.HasPrefix(k, "ROOTWARDEN_"):
			warnings = append(warnings, k+" is not a rootwarden variable and is ignored")
		}
	}
	sort.Strings(warnings)
	if len(errs) > 0 {
		sort.Strings(errs)
		return warnings, errors.New(strings.Join(errs, "\n"))
	}
	return warnings, nil
}

// testVariable reports whether k is read by the test suite or CI only (benchmarks,
// chaos and soak runs, fuzzing, the deploy checks): never a mistake for rootwarden.
func testVariable(k string) bool {
	for _, p := range []string{"ROOTWARDEN_BENCH_", "ROOTWARDEN_CHAOS_", "ROOTWARDEN_SOAK", "ROOTWARDEN_FUZZ"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return k == "ROOTWARDEN_CFN_SPEC" || k == "ROOTWARDEN_HELM_RENDERED"
}

// isSet reports whether the setting of variable k was given: in getenv, or, for one
// read from the YAML file, by a value other than its default.
func (c Config) isSet(k string, getenv func(string) string) bool {
	if getenv(k) != "" {
		return true
	}
	s, ok := Lookup(k)
	if !ok {
		return false
	}
	if s.Kind == KindSecret && getenv(s.Name+"_FILE") != "" {
		return true
	}
	if s.Name == routesVar {
		return len(c.OnCall.Routes) > 0
	}
	if s.field == nil {
		return false
	}
	def, err := Load(func(string) string { return "" })
	if err != nil {
		return true
	}
	return !reflect.DeepEqual(s.field(&c), s.field(&def))
}
