package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:generate go run ./gen ../../docs/configuration.md

// Kind is how a setting's text is read.
type Kind int

const (
	KindString   Kind = iota // text, trimmed
	KindSecret               // text, or the file named by NAME_FILE; never logged, no flag
	KindInt                  // a whole number from Min to Max
	KindDuration             // a positive Go duration: 90s, 15m, 24h
	KindBool                 // true or false (1, 0, t, f too)
	KindOneOf                // one of Values, case-insensitive
	KindList                 // ids separated by commas, spaces or new lines
	KindNames                // names separated by commas or new lines (a name may hold spaces: Won't Do)
	KindJSON                 // a JSON object (the field is a map[string]any)
	KindCustom               // read by its own code (routes), or outside this package (External)
)

// Setting is one row of the settings table: everything Load, the command line
// (cmd/rootwarden binds its flags through Lookup) and docs/configuration.md know
// about one variable.
type Setting struct {
	Name     string   // the environment variable
	Group    string   // the section of docs/configuration.md
	Kind     Kind     //
	Default  string   // as a user would write it; Load parses it as it parses the variable
	Min, Max int      // Int: the accepted range
	Values   []string // OneOf: the accepted values, lower-case
	// Flag is the command-line flag (without --) that overrides the variable, "" for
	// none; FlagValue names its value in the help (--concurrency N); Commands are the
	// commands that take it, comma-separated (cmd/rootwarden's tests check them
	// against the command line).
	Flag      string
	FlagValue string
	Commands  string
	// Required says when the setting must be set, in words ("" → optional).
	Required string
	// Doc is the description for docs/configuration.md (Markdown, one paragraph).
	// DefaultDoc replaces Default there when the default is not a value ("embedded
	// server", "API off").
	Doc        string
	DefaultDoc string
	// External settings are read outside this package (no Config field, not in the
	// YAML file); they are listed so that they are known and documented.
	External bool
	// field points at the Config field the setting fills (nil for Custom).
	field func(*Config) any
}

// YAMLKey is the setting's key in the YAML file (ROOTWARDEN_CONFIG), "" when the file
// cannot set it. The file also takes the variable's own name.
func (s Setting) YAMLKey() string {
	if s.External || s.Name == "ROOTWARDEN_CONFIG" {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(s.Name, "ROOTWARDEN_"))
}

// Settings returns a copy of the settings table, in the order of
// docs/configuration.md.
func Settings() []Setting { return append([]Setting(nil), settings...) }

// Lookup returns the setting of a variable (its _FILE variant included).
func Lookup(name string) (Setting, bool) {
	base := strings.TrimSuffix(name, "_FILE")
	for _, s := range settings {
		if s.Name == name || (s.Kind == KindSecret && s.Name == base) {
			return s, true
		}
	}
	return Setting{}, false
}

// settings is THE table of rootwarden's settings. Load reads each entry (read, below),
// the command line binds its flags to them, and `go generate ./internal/config` writes
// docs/configuration.md from them (a test fails when the file is stale).
//
// Adding a setting is one entry here, plus the Config field it fills:
//
//	{Name: "ROOTWARDEN_FOO_LIMIT", Group: groupRemediator, Kind: KindInt, Default: "10", Min: 1, Max: 100,
//		Doc: "What it changes, for whom; what 0 or unset means.",
//		field: func(c *Config) any { return &c.FooLimit }},
//
// then `go generate ./internal/config`. A secret is Kind: KindSecret (it gets NAME_FILE,
// no flag, and is redacted by Config.String); a flag is Flag, FlagValue and Commands,
// and the command's constructor calls envFlags.add with the variable. Checks that
// involve more than one setting stay in Validate (and the entry's Required says so).
var settings = []Setting{
	// Slack
	{Name: "SLACK_BOT_TOKEN", Group: groupSlack, Kind: KindSecret, Required: "notifier",
		Doc:   "The bot token `xoxb-…` (Slack app settings → OAuth & Permissions → Bot User OAuth Token). Not a user token `xoxp-`.",
		field: func(c *Config) any { return &c.SlackBotToken }},
	{Name: "SLACK_SIGNING_SECRET", Group: groupSlack, Kind: KindSecret, Required: "notifier, unless SLACK_APP_TOKEN is set",
		Doc:   "Verifies that requests to `POST /slack/…` come from Slack (Basic Information → Signing Secret).",
		field: func(c *Config) any { return &c.SlackSigningSecret }},
	{Name: "SLACK_APP_TOKEN", Group: groupSlack, Kind: KindSecret,
		Doc:   "An app-level token `xapp-…` (scope `connections:write`): Socket Mode, so Slack needs no public endpoint.",
		field: func(c *Config) any { return &c.SlackAppToken }},
	{Name: "ROOTWARDEN_SLACK_CHANNEL", Group: groupSlack, Kind: KindString, Required: "notifier",
		Flag: "channel", FlagValue: "ID", Commands: "run, notifier",
		Doc:   "The channel **id** (`C…`, `G…` private) of the on-call channel, not its name: open the channel, click its name; the id is at the bottom of the About tab.",
		field: func(c *Config) any { return &c.SlackChannel }},
	{Name: "ROOTWARDEN_APPROVERS", Group: groupSlack, Kind: KindList,
		Flag: "approvers", FlagValue: "IDS", Commands: "run, notifier", DefaultDoc: "nobody (fail closed)",
		Doc:   "Who may approve: Slack user ids `U…`/`W…` and user-group ids `S…`, separated by commas, spaces or new lines. Not names, emails or handles.",
		field: func(c *Config) any { return &c.Approvers }},
	{Name: "ROOTWARDEN_SLACK_ROUTES", Group: groupSlack, Kind: KindCustom, DefaultDoc: "all to ROOTWARDEN_SLACK_CHANNEL",
		Doc: "Routing rules: a case goes to the channel of the first rule its account matches. Rules separated by `;` or new lines: " +
			"`ou:Root/Prod/Payments=C…` (the unit and every unit below), `tag:team=payments=C…`, `account:111122223333=C…`. " +
			"In the YAML file, also a list of `{ou|tag|account: …, channel: C…}`."},
	{Name: "ROOTWARDEN_SLACK_API_URL", Group: groupSlack, Kind: KindString,
		Flag: "slack-api-url", FlagValue: "URL", Commands: "run, notifier", DefaultDoc: "`https://slack.com/api/`",
		Doc:   "The Slack Web API base URL, ending in `/api/` (`rootwarden sim`, proxies).",
		field: func(c *Config) any { return &c.SlackAPIURL }},
	{Name: "ROOTWARDEN_SLACK_HTTP_ADDR", Group: groupSlack, Kind: KindString,
		Flag: "slack-http-addr", FlagValue: "ADDR", Commands: "run, notifier", DefaultDoc: "on ROOTWARDEN_HTTP_ADDR",
		Doc:   "Serve the public Slack endpoints (`POST /slack/…`, and `/healthz`) on this address alone, and not on ROOTWARDEN_HTTP_ADDR, so an ingress exposes only them.",
		field: func(c *Config) any { return &c.SlackHTTPAddr }},
	{Name: "ROOTWARDEN_REMIND_AFTER", Group: groupSlack, Kind: KindDuration, Default: "30m",
		Doc:   "Remind the channel of a case still open after this long, then at this interval, up to ROOTWARDEN_MAX_REMINDERS times.",
		field: func(c *Config) any { return &c.RemindAfter }},
	{Name: "ROOTWARDEN_ACTIVITY_ANSWER_WITHIN", Group: groupSlack, Kind: KindDuration, Default: "15m",
		Doc:   "Root activity (a root console sign-in, password change or recovery, MFA removed, signing certificate uploaded, an AssumeRoot session rootwarden did not start) asks the account's owner \"was this you?\" by Slack DM; no answer within this counts as \"No\": critical, in the channel and on PagerDuty (docs/activity.md).",
		field: func(c *Config) any { return &c.ActivityAnswerWithin }},
	{Name: "ROOTWARDEN_MAX_REMINDERS", Group: groupSlack, Kind: KindInt, Default: "3", Min: 0, Max: 100,
		Doc:   "How many reminders per case; `0`: none.",
		field: func(c *Config) any { return &c.MaxReminders }},
	{Name: "ROOTWARDEN_SLA", Group: groupSlack, Kind: KindDuration, Default: "24h",
		Doc:   "A ticketed case not resolved within this is escalated in its channel, mentioning the approvers.",
		field: func(c *Config) any { return &c.SLA }},
	{Name: "ROOTWARDEN_MAX_RISK_ACCEPTANCE", Group: groupSlack, Kind: KindDuration, Default: "2160h",
		Doc:   "The longest risk acceptance anyone may grant (2160h is 90 days).",
		field: func(c *Config) any { return &c.MaxRiskAcceptance }},
	{Name: "ROOTWARDEN_OWNER_TAG", Group: groupSlack, Kind: KindString, Default: "owner",
		Doc:   "The account tag holding the owner's email (mentioned in Slack, the Jira assignee); `-`: none.",
		field: func(c *Config) any { return &c.OnCall.OwnerTag }},
	{Name: "ROOTWARDEN_OWNER_GITHUB_TAG", Group: groupSlack, Kind: KindString,
		Doc:   "The account tag holding the owner's GitHub login (the GitHub issue's assignee).",
		field: func(c *Config) any { return &c.OnCall.OwnerGitHubTag }},

	// PagerDuty
	{Name: "ROOTWARDEN_PAGERDUTY_TOKEN", Group: groupPagerDuty, Kind: KindSecret, Required: "when ROOTWARDEN_PAGERDUTY_SCHEDULES is set",
		Doc:   "A PagerDuty REST API token (read-only is enough): whoever is on call in ROOTWARDEN_PAGERDUTY_SCHEDULES may approve.",
		field: func(c *Config) any { return &c.OnCall.PagerDutyToken }},
	{Name: "ROOTWARDEN_PAGERDUTY_SCHEDULES", Group: groupPagerDuty, Kind: KindList, Required: "when ROOTWARDEN_PAGERDUTY_TOKEN is set",
		Doc:   "Schedule ids (`PABC123`, from the schedule's URL) whose on-call people may approve.",
		field: func(c *Config) any { return &c.OnCall.PagerDutySchedules }},
	{Name: "ROOTWARDEN_PAGERDUTY_ROUTING_KEY", Group: groupPagerDuty, Kind: KindSecret, DefaultDoc: "off",
		Doc:   "An Events API v2 integration key: critical cases open a PagerDuty incident.",
		field: func(c *Config) any { return &c.OnCall.PagerDutyRoutingKey }},
	{Name: "ROOTWARDEN_PAGERDUTY_API_URL", Group: groupPagerDuty, Kind: KindString, Default: "https://api.pagerduty.com",
		Doc:   "PagerDuty's REST API (tests; the EU service region is `https://api.eu.pagerduty.com`).",
		field: func(c *Config) any { return &c.OnCall.PagerDutyAPIURL }},
	{Name: "ROOTWARDEN_PAGERDUTY_EVENTS_URL", Group: groupPagerDuty, Kind: KindString, Default: "https://events.pagerduty.com",
		Doc:   "PagerDuty's Events API (tests; EU: `https://events.eu.pagerduty.com`).",
		field: func(c *Config) any { return &c.OnCall.PagerDutyEventsURL }},
	{Name: "ROOTWARDEN_ONCALL_CACHE_TTL", Group: groupPagerDuty, Kind: KindDuration, Default: "1m",
		Doc:   "How long a PagerDuty answer about who is on call is trusted.",
		field: func(c *Config) any { return &c.OnCall.OnCallCacheTTL }},

	// AWS and the detector
	{Name: "ROOTWARDEN_ORG_ROLE_NAME", Group: groupAWS, Kind: KindString,
		Flag: "org-role", FlagValue: "ROLE", Commands: "run, detector, scan", DefaultDoc: "this account only",
		Doc:   "The role to assume in every ACTIVE account of the Organization (`RootwardenReadOnly` in deploy/aws): set, the detector sweeps the whole Organization.",
		field: func(c *Config) any { return &c.OrgRoleName }},
	{Name: "ROOTWARDEN_ORG_EXTERNAL_ID", Group: groupAWS, Kind: KindString,
		Flag: "external-id", FlagValue: "ID", Commands: "run, detector, scan",
		Doc:   "The external id that role's trust policy requires. Only with ROOTWARDEN_ORG_ROLE_NAME.",
		field: func(c *Config) any { return &c.OrgExternalID }},
	{Name: "ROOTWARDEN_SCAN_INTERVAL", Group: groupAWS, Kind: KindDuration, Default: "15m",
		Flag: "scan-interval", FlagValue: "DURATION", Commands: "run, detector",
		Doc:   "Time between sweeps of every account (at least 1m).",
		field: func(c *Config) any { return &c.ScanInterval }},
	{Name: "ROOTWARDEN_SCAN_CONCURRENCY", Group: groupAWS, Kind: KindInt, Default: "64", Min: 1, Max: 4096,
		Flag: "concurrency", FlagValue: "N", Commands: "run, detector, scan",
		Doc:   "Accounts checked at once (lowered while AWS throttles); `run` and `scan` alike.",
		field: func(c *Config) any { return &c.Concurrency }},
	{Name: "ROOTWARDEN_ACCOUNT_TIMEOUT", Group: groupAWS, Kind: KindDuration, Default: "60s",
		Flag: "account-timeout", FlagValue: "DURATION", Commands: "run, detector, scan",
		Doc:   "Time limit of one account's check.",
		field: func(c *Config) any { return &c.AccountTimeout }},
	{Name: "ROOTWARDEN_ORG_API_SHARE", Group: groupAWS, Kind: KindInt, Default: "80", Min: 1, Max: 100,
		Doc:   "Percent of AWS's published Organizations and STS request rates (internal/awslimits) that the detectors use together, divided among the detectors seen. Leave room for Control Tower, AFT and other tools that draw on the same organization.",
		field: func(c *Config) any { return &c.OrgAPIShare }},
	{Name: "ROOTWARDEN_SQS_QUEUE_URL", Group: groupAWS, Kind: KindString,
		Flag: "sqs-queue-url", FlagValue: "URL", Commands: "run, detector", DefaultDoc: "none: sweeps only",
		Doc:   "The SQS queue receiving CloudTrail events from EventBridge (deploy/aws/central.yaml), like `https://sqs.us-east-1.amazonaws.com/123456789012/rootwarden-events`.",
		field: func(c *Config) any { return &c.SQSQueueURL }},
	{Name: "ROOTWARDEN_ASSUME_ROOT", Group: groupAWS, Kind: KindBool, Default: "false",
		Doc:   "After approval, delete member accounts' root access keys through `sts:AssumeRoot` (never the management account's). Off: a person deletes them, the ticket says how.",
		field: func(c *Config) any { return &c.AssumeRoot }},
	{Name: "ROOTWARDEN_SECURITYHUB", Group: groupAWS, Kind: KindOneOf, Default: "off", Values: []string{"off", "in", "out", "both"},
		Doc:   "AWS Security Hub both ways (docs/securityhub.md). `in`: FAILED findings of controls IAM.4, IAM.6 and IAM.9 arriving on the SQS queue (central.yaml with `EnableSecurityHub`) are hints: the detector checks the account with AWS, and an account it cannot check shows as unchecked with an error code naming Security Hub. `out`: the account's findings get workflow status NOTIFIED when a case opens, SUPPRESSED while a risk acceptance runs, RESOLVED once AWS verified the removal, each with a note naming the case (`securityhub:GetFindings`, `securityhub:BatchUpdateFindings`). `both` does both. Region and endpoint are the SDK's own (`AWS_REGION`, `AWS_ENDPOINT_URL_SECURITYHUB`).",
		field: func(c *Config) any { return &c.SecurityHub }},
	{Name: "ROOTWARDEN_SECURITYHUB_OCSF", Group: groupAWS, Kind: KindBool, Default: "false",
		Doc:   "Also update the new Security Hub's OCSF findings (`BatchUpdateFindingsV2`: `status_id`, `comment`), found by `cloud.account.uid` and `compliance.control`. Same IAM actions.",
		field: func(c *Config) any { return &c.SecurityHubOCSF }},
	{Name: "ROOTWARDEN_SECURITYHUB_SYNC", Group: groupAWS, Kind: KindDuration, Default: "1h",
		Doc:   "With `out`: how often the findings of open and risk-accepted cases are read again. AWS puts a finding that fails again back to NEW; rootwarden marks it again.",
		field: func(c *Config) any { return &c.SecurityHubSync }},
	{Name: "ROOTWARDEN_CASE_URL", Group: groupAWS, Kind: KindString, DefaultDoc: "none: the note names the case id only",
		Doc:   "The link to a case put in Security Hub notes: `%s` is replaced by the case id, like `https://rootwarden.example.com/api/v1/cases/%s`.",
		field: func(c *Config) any { return &c.CaseURL }},

	// Tickets
	{Name: "ROOTWARDEN_TRACKER", Group: groupTickets, Kind: KindOneOf, Default: "builtin", Values: []string{"builtin", "jira", "github"},
		Flag: "tracker", FlagValue: "NAME", Commands: "run, remediator",
		Doc:   "Where approved cases become tickets: `builtin` (the case itself, in the case API), `jira` (Jira Cloud) or `github` (GitHub Issues).",
		field: func(c *Config) any { return &c.Tracker }},
	{Name: "ROOTWARDEN_TICKET_POLL", Group: groupTickets, Kind: KindDuration, Default: "2m",
		Doc:   "How often open tickets are read: a ticket closed is a claim that the keys are deleted, which rootwarden verifies with AWS.",
		field: func(c *Config) any { return &c.TicketPoll }},
	{Name: "ROOTWARDEN_JIRA_URL", Group: groupTickets, Kind: KindString, Required: "ROOTWARDEN_TRACKER=jira",
		Doc:   "The Jira Cloud site, like `https://example.atlassian.net`.",
		field: func(c *Config) any { return &c.JiraURL }},
	{Name: "ROOTWARDEN_JIRA_EMAIL", Group: groupTickets, Kind: KindString, Required: "ROOTWARDEN_TRACKER=jira",
		Doc:   "The Atlassian account email the API token belongs to.",
		field: func(c *Config) any { return &c.JiraEmail }},
	{Name: "ROOTWARDEN_JIRA_TOKEN", Group: groupTickets, Kind: KindSecret, Required: "ROOTWARDEN_TRACKER=jira",
		Doc:   "An Atlassian API token of that account (id.atlassian.com → Security → API tokens); see docs/trackers.md for the project permissions it needs.",
		field: func(c *Config) any { return &c.JiraToken }},
	{Name: "ROOTWARDEN_JIRA_PROJECT", Group: groupTickets, Kind: KindString, Required: "ROOTWARDEN_TRACKER=jira",
		Doc:   "The project key, like `SEC`.",
		field: func(c *Config) any { return &c.JiraProject }},
	{Name: "ROOTWARDEN_JIRA_ISSUE_TYPE", Group: groupTickets, Kind: KindString, Default: "Task",
		Doc:   "The issue type of the tickets, by its name in the project (`Task`, `Bug`, `Security Finding`).",
		field: func(c *Config) any { return &c.JiraIssueType }},
	{Name: "ROOTWARDEN_JIRA_EXTRA_FIELDS", Group: groupTickets, Kind: KindJSON,
		Doc: "More fields for every issue rootwarden creates, as one JSON object of field ids to values in the shape Jira's REST API v3 takes: " +
			"`{\"customfield_10010\": {\"value\": \"Security\"}, \"components\": [{\"name\": \"AWS\"}], \"priority\": {\"name\": \"High\"}}`. " +
			"Set the fields your project requires: a create Jira refuses names the missing field and this variable. " +
			"rootwarden sets `project`, `issuetype`, `summary`, `description` and `labels` itself. In the YAML file, quote the object: `jira_extra_fields: '{\"components\": [{\"name\": \"AWS\"}]}'`.",
		field: func(c *Config) any { return &c.JiraExtraFields }},
	{Name: "ROOTWARDEN_JIRA_LABELS", Group: groupTickets, Kind: KindList,
		Doc:   "More labels for every issue, besides `rootwarden` and the case's own `rootwarden-case-…` label (which rootwarden searches by).",
		field: func(c *Config) any { return &c.JiraLabels }},
	{Name: "ROOTWARDEN_JIRA_DONE_STATUSES", Group: groupTickets, Kind: KindNames, DefaultDoc: "every status of the Done category",
		Doc: "The statuses that mean the work is done, comma-separated (`Done, Closed`): an issue moved to one is a claim that the keys are deleted, which rootwarden verifies with AWS, " +
			"and rootwarden closes issues into one of them. Unset: any status in Jira's Done status category (the green ones).",
		field: func(c *Config) any { return &c.JiraDoneStatuses }},
	{Name: "ROOTWARDEN_JIRA_WONT_DO_RESOLUTIONS", Group: groupTickets, Kind: KindNames, DefaultDoc: "none",
		Doc: "Resolutions that close an issue without doing the work, comma-separated (`Won't Do, Duplicate, Cannot Reproduce`): such a closure is not a claim that the keys are deleted. " +
			"rootwarden leaves the issue closed and the case ticketed (escalated at ROOTWARDEN_SLA); accepting the risk is done in Slack. Unset: every done issue is a claim.",
		field: func(c *Config) any { return &c.JiraWontDo }},
	{Name: "ROOTWARDEN_GITHUB_REPO", Group: groupTickets, Kind: KindString, Required: "ROOTWARDEN_TRACKER=github",
		Doc:   "The repository of the issues, `owner/name`.",
		field: func(c *Config) any { return &c.GitHubRepo }},
	{Name: "ROOTWARDEN_GITHUB_TOKEN", Group: groupTickets, Kind: KindSecret, Required: "ROOTWARDEN_TRACKER=github",
		Doc:   "A GitHub token that may read and write that repository's issues.",
		field: func(c *Config) any { return &c.GitHubToken }},
	{Name: "ROOTWARDEN_GITHUB_API_URL", Group: groupTickets, Kind: KindString, Default: "https://api.github.com",
		Doc:   "The GitHub API (GitHub Enterprise Server: `https://HOST/api/v3`).",
		field: func(c *Config) any { return &c.GitHubAPIURL }},

	// Service: HTTP, logs, NATS
	{Name: "ROOTWARDEN_CONFIG", Group: groupService, Kind: KindCustom, Flag: "config", FlagValue: "FILE",
		Commands: "every command",
		Doc: "A YAML file of settings: a flat mapping whose keys are the variables, or lower-case without `ROOTWARDEN_` " +
			"(the YAML key column). The environment and flags win over it; an unknown key is an error."},
	{Name: "ROOTWARDEN_HTTP_ADDR", Group: groupService, Kind: KindString, Default: ":8080",
		Flag: "http-addr", FlagValue: "ADDR", Commands: "run, detector, remediator, notifier",
		Doc:   "The address of `/healthz`, `/readyz`, `/metrics`, the case API and (unless ROOTWARDEN_SLACK_HTTP_ADDR) the Slack endpoints.",
		field: func(c *Config) any { return &c.HTTPAddr }},
	{Name: "ROOTWARDEN_API_TOKEN", Group: groupService, Kind: KindSecret, DefaultDoc: "API off",
		Doc:   "The bearer token of the case API (`/api/v1/…`) and of `rootwarden cases`; unset, the API is off.",
		field: func(c *Config) any { return &c.APIToken }},
	{Name: "ROOTWARDEN_EVIDENCE_TOKEN", Group: groupService, Kind: KindSecret, DefaultDoc: "evidence API off",
		Doc: "The bearer token of the evidence API (`GET /api/v1/evidence`, `/api/v1/evidence/verify`) and of `rootwarden evidence`: " +
			"read-only, for auditors; it opens nothing else, and the case API's token does not open it (docs/evidence.md).",
		field: func(c *Config) any { return &c.EvidenceToken }},
	{Name: "ROOTWARDEN_EVIDENCE_SIGNING_KEY", Group: groupService, Kind: KindSecret, DefaultDoc: "packs unsigned",
		Doc: "An SSH private key (OpenSSH format, Ed25519, ECDSA or RSA, no passphrase), usually as " +
			"`ROOTWARDEN_EVIDENCE_SIGNING_KEY_FILE`: evidence packs are signed with it in SSH signature format, namespace " +
			"`rootwarden-evidence`, which `ssh-keygen -Y verify` checks (docs/evidence.md).",
		field: func(c *Config) any { return &c.EvidenceSigningKey }},
	{Name: "ROOTWARDEN_HISTORY_RETENTION", Group: groupService, Kind: KindDuration, Default: "26280h",
		Doc: "How long the retained history (stream `RW_HISTORY`: per sweep the accounts listed, checked and unchecked with an error code; " +
			"per account the dates its root-credential posture changed) is kept; 26280h is 3 years, the audit log's own age. " +
			"It holds no personal data (docs/evidence.md: what is kept, and for how long).",
		field: func(c *Config) any { return &c.HistoryRetention }},
	{Name: "ROOTWARDEN_LOG_LEVEL", Group: groupService, Kind: KindOneOf, Default: "info", Values: []string{"debug", "info", "warn", "error"},
		Flag: "log-level", FlagValue: "LEVEL", Commands: "run, detector, remediator, notifier",
		Doc:   "The least important log lines written.",
		field: func(c *Config) any { return &c.LogLevel }},
	{Name: "ROOTWARDEN_LOG_FORMAT", Group: groupService, Kind: KindOneOf, Default: "text", Values: []string{"text", "json"},
		Flag: "log-format", FlagValue: "FORMAT", Commands: "run, detector, remediator, notifier, scan",
		Doc:   "Log lines as `slog` text or JSON, on stderr.",
		field: func(c *Config) any { return &c.LogFormat }},
	{Name: "ROOTWARDEN_PPROF", Group: groupService, Kind: KindBool, Default: "false",
		Doc:   "Serve Go's profiles at `/debug/pprof/` on ROOTWARDEN_HTTP_ADDR (never on the Slack address).",
		field: func(c *Config) any { return &c.PProf }},
	{Name: "ROOTWARDEN_DATA_DIR", Group: groupService, Kind: KindString,
		Flag: "data-dir", FlagValue: "DIR", Commands: "run, detector, remediator, notifier", DefaultDoc: "a temporary directory",
		Doc:   "The embedded NATS server's store. Set it in production: without it, cases do not survive a restart and every case is posted again.",
		field: func(c *Config) any { return &c.DataDir }},
	{Name: "ROOTWARDEN_NATS_URL", Group: groupService, Kind: KindString,
		Flag: "nats-url", FlagValue: "URL", Commands: "run, detector, remediator, notifier", DefaultDoc: "embedded server",
		Doc:   "External NATS servers, comma-separated (`nats://host:4222`); unset, `run` starts an embedded server on loopback.",
		field: func(c *Config) any { return &c.NATSURL }},
	{Name: "ROOTWARDEN_NATS_CREDS", Group: groupService, Kind: KindString,
		Doc:   "A NATS credentials file (JWT and NKey).",
		field: func(c *Config) any { return &c.NATSCreds }},
	{Name: "ROOTWARDEN_NATS_CA", Group: groupService, Kind: KindString,
		Doc:   "The CA file that signed the NATS servers' certificates.",
		field: func(c *Config) any { return &c.NATSCA }},
	{Name: "ROOTWARDEN_NATS_CERT", Group: groupService, Kind: KindString, Required: "with ROOTWARDEN_NATS_KEY",
		Doc:   "A client certificate file for NATS (mutual TLS).",
		field: func(c *Config) any { return &c.NATSCert }},
	{Name: "ROOTWARDEN_NATS_KEY", Group: groupService, Kind: KindString, Required: "with ROOTWARDEN_NATS_CERT",
		Doc:   "The client certificate's key file.",
		field: func(c *Config) any { return &c.NATSKey }},
	{Name: "ROOTWARDEN_NATS_REPLICAS", Group: groupService, Kind: KindInt, Default: "0", Min: 0, Max: 5,
		DefaultDoc: "automatic: 1 on one server, 3 on a cluster",
		Doc:        "Replicas of rootwarden's streams and buckets.",
		field:      func(c *Config) any { return &c.NATSReplicas }},
	{Name: "ROOTWARDEN_NATS_LISTEN", Group: groupService, Kind: KindString, DefaultDoc: "`127.0.0.1`, any free port",
		Doc:   "The embedded server's address, loopback only (it has no authentication); other processes on the host join with ROOTWARDEN_NATS_URL.",
		field: func(c *Config) any { return &c.NATSListen }},

	// Read by other commands
	{Name: "ROOTWARDEN_API_URL", Group: groupTools, Kind: KindCustom, External: true, Flag: "api-url", FlagValue: "URL", Commands: "cases, cases list, cases show, cases unchecked, evidence, evidence verify",
		DefaultDoc: "from ROOTWARDEN_HTTP_ADDR",
		Doc:        "Where `rootwarden cases` and `rootwarden evidence` find the API of a running rootwarden."},
	{Name: "ROOTWARDEN_SIM_URL", Group: groupTools, Kind: KindCustom, External: true, Flag: "sim-url", FlagValue: "URL", Commands: "sim click",
		Doc: "Where `rootwarden sim click` finds the simulator (`rootwarden sim` prints it)."},
	{Name: "ROOTWARDEN_BENCH", Group: groupTools, Kind: KindCustom, External: true,
		Doc: "Tests only: runs the benchmarks of `go test` (`short`, `1`), which are skipped otherwise."},
	{Name: "ROOTWARDEN_BENCH_LATENCY", Group: groupTools, Kind: KindCustom, External: true,
		Doc: "Tests only: the simulated AWS latency of the detector's benchmark (a duration)."},
}

// The sections of docs/configuration.md, in order.
const (
	groupSlack     = "Slack and cases"
	groupPagerDuty = "PagerDuty"
	groupAWS       = "AWS and the detector"
	groupTickets   = "Tickets"
	groupService   = "Service: HTTP, logs, NATS"
	groupTools     = "Read by other commands"
)

var groups = []string{groupSlack, groupPagerDuty, groupAWS, groupTickets, groupService, groupTools}

// read reads the setting into c through r.
func (s Setting) read(r *reader, c *Config) {
	if s.field == nil {
		return
	}
	var v any
	switch s.Kind {
	case KindString:
		v = r.str(s.Name, s.Default)
	case KindSecret:
		v = r.secret(s.Name)
	case KindInt:
		v = r.integer(s.Name, mustInt(s), s.Min, s.Max)
	case KindDuration:
		v = r.duration(s.Name, mustDuration(s))
	case KindBool:
		v = r.boolean(s.Name, mustBool(s))
	case KindOneOf:
		v = r.oneOf(s.Name, s.Default, s.Values...)
	case KindList:
		v = r.list(s.Name)
	case KindNames:
		v = r.names(s.Name)
	case KindJSON:
		v = r.object(s.Name)
	default:
		panic("config: " + s.Name + ": no reader for its kind")
	}
	switch p := s.field(c).(type) {
	case *string:
		*p = v.(string)
	case *int:
		*p = v.(int)
	case *bool:
		*p = v.(bool)
	case *time.Duration:
		*p = v.(time.Duration)
	case *[]string:
		*p = v.([]string)
	case *map[string]any:
		*p = v.(map[string]any)
	default:
		panic(fmt.Sprintf("config: %s: field of type %T", s.Name, p))
	}
}

// The table's defaults are parsed like the variables; TestSettingsTable proves each
// parses, so a panic here is a mistake in the table that no test run has seen.
func mustInt(s Setting) int {
	if s.Default == "" {
		return 0
	}
	n, err := strconv.Atoi(s.Default)
	if err != nil {
		panic("config: " + s.Name + ": default " + s.Default)
	}
	return n
}

func mustDuration(s Setting) time.Duration {
	if s.Default == "" {
		return 0
	}
	d, err := time.ParseDuration(s.Default)
	if err != nil {
		panic("config: " + s.Name + ": default " + s.Default)
	}
	return d
}

func mustBool(s Setting) bool {
	if s.Default == "" {
		return false
	}
	b, err := strconv.ParseBool(s.Default)
	if err != nil {
		panic("config: " + s.Name + ": default " + s.Default)
	}
	return b
}

// names reads names separated by commas or new lines; a name may hold spaces.
func (r *reader) names(k string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(r.get(k), func(c rune) bool { return c == ',' || c == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// object reads a JSON object (Kind JSON); a mistake names the variable and where
// in the text it is, never the text itself (it may hold a token).
func (r *reader) object(k string) map[string]any {
	v := r.str(k, "")
	if v == "" {
		return nil
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		msg := "is not a JSON object"
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case err == nil && m == nil:
			msg = "is not a JSON object (it is null)"
		case err == nil:
			msg = "is not one JSON object"
		case errors.As(err, &se):
			msg = fmt.Sprintf("is not a JSON object: %s at character %d", se.Error(), se.Offset)
		case errors.As(err, &te):
			msg = fmt.Sprintf("is not a JSON object (it is a JSON %s)", te.Value)
		}
		r.errs = append(r.errs, fmt.Errorf("%s: %s; want one object of field ids to values like {\"customfield_10010\": {\"value\": \"Security\"}}", r.name(k), msg))
		return nil
	}
	return m
}

// String renders the settings that differ from their zero value, by variable, with
// every secret as "(set)" and JSON objects by their keys: a Config in a log line or a
// test failure (%v, %+v) never shows a token.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("{")
	sep := ""
	add := func(k, v string) {
		b.WriteString(sep + k + "=" + v)
		sep = " "
	}
	for _, s := range settings {
		if s.field == nil {
			continue
		}
		switch p := s.field(&c).(type) {
		case *string:
			if *p == "" {
				continue
			}
			if s.Kind == KindSecret {
				add(s.Name, "(set)")
			} else {
				add(s.Name, strconv.Quote(*p))
			}
		case *int:
			if *p != 0 {
				add(s.Name, strconv.Itoa(*p))
			}
		case *bool:
			if *p {
				add(s.Name, "true")
			}
		case *time.Duration:
			if *p != 0 {
				add(s.Name, p.String())
			}
		case *[]string:
			if len(*p) > 0 {
				add(s.Name, strconv.Quote(strings.Join(*p, ",")))
			}
		case *map[string]any:
			if len(*p) > 0 {
				keys := make([]string, 0, len(*p))
				for k := range *p {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				add(s.Name, "{"+strings.Join(keys, ",")+"}")
			}
		}
	}
	if n := len(c.OnCall.Routes); n > 0 {
		add(routesVar, fmt.Sprintf("%d rules", n))
	}
	b.WriteString("}")
	return b.String()
}

// GoString keeps secrets out of %#v.
func (c Config) GoString() string { return "config.Config" + c.String() }
