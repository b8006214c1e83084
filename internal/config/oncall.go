package config

// The on-call settings of the notifier: which Slack channel a case goes to (routing
// rules), which account tag names its owner, and who is on call in PagerDuty. They are
// parsed and checked here, in one place, so that a mistake stops start-up with one
// line naming the variable (and the rule) at fault.

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// OnCall holds routing, owner and PagerDuty settings. Field comments name the variable;
// in the YAML file the same names work lower-case without ROOTWARDEN_ (slack_routes).
type OnCall struct {
	// Routes (ROOTWARDEN_SLACK_ROUTES) send a case to the channel of the first rule
	// its account matches; ROOTWARDEN_SLACK_CHANNEL catches the rest. Environment form:
	// rules separated by ";" or new lines, each "ou:Root/Prod=C…", "tag:team=payments=C…"
	// or "account:111122223333=C…". YAML: a list of {ou|tag|account: …, channel: C…}.
	Routes []Route

	OwnerTag       string // ROOTWARDEN_OWNER_TAG: account tag holding the owner's email (default "owner"; "-" → off)
	OwnerGitHubTag string // ROOTWARDEN_OWNER_GITHUB_TAG: account tag holding the owner's GitHub login (GitHub tracker)

	PagerDutyToken      string        // ROOTWARDEN_PAGERDUTY_TOKEN: REST API token (read-only is enough)
	PagerDutySchedules  []string      // ROOTWARDEN_PAGERDUTY_SCHEDULES: schedule ids whose on-call people may approve
	PagerDutyRoutingKey string        // ROOTWARDEN_PAGERDUTY_ROUTING_KEY: Events API v2 integration key (critical cases page)
	PagerDutyAPIURL     string        // ROOTWARDEN_PAGERDUTY_API_URL (default https://api.pagerduty.com)
	PagerDutyEventsURL  string        // ROOTWARDEN_PAGERDUTY_EVENTS_URL (default https://events.pagerduty.com)
	OnCallCacheTTL      time.Duration // ROOTWARDEN_ONCALL_CACHE_TTL: how long a PagerDuty answer is trusted (default 1m)
}

// Route is one routing rule: exactly one of OU, TagKey (with TagValue) or Account is set.
// OU matches the unit and every unit below it.
type Route struct {
	OU       string // "Root/Prod/Payments"
	TagKey   string
	TagValue string
	Account  string // 12 digits
	Channel  string // C… or G…
}

// String renders the rule in the environment form, for error lines and logs.
func (r Route) String() string {
	switch {
	case r.OU != "":
		return "ou:" + r.OU + "=" + r.Channel
	case r.TagKey != "":
		return "tag:" + r.TagKey + "=" + r.TagValue + "=" + r.Channel
	}
	return "account:" + r.Account + "=" + r.Channel
}

const routesVar = "ROOTWARDEN_SLACK_ROUTES"

// onCall finishes the on-call settings the table has read into oc: the owner tag's
// "-", the routing rules (path is the YAML file, "" → none) and the checks of
// PagerDuty's settings. Mistakes are added to r.errs, each one line naming the variable.
func (r *reader) onCall(oc *OnCall, getenv func(string) string, path string) {
	if oc.OwnerTag == "-" {
		oc.OwnerTag = ""
	}
	flat := r.get(routesVar) // marks the key known; the flattened YAML value is not used
	var err error
	if v, ok := lookupEnv(getenv, routesVar); ok {
		oc.Routes, err = ParseRoutes(v)
	} else if flat != "" && path != "" {
		oc.Routes, err = routesFromYAML(path)
	}
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %w", routesVar, err))
	}
	switch {
	case oc.PagerDutyToken != "" && len(oc.PagerDutySchedules) == 0:
		r.errs = append(r.errs, fmt.Errorf("ROOTWARDEN_PAGERDUTY_SCHEDULES: required when ROOTWARDEN_PAGERDUTY_TOKEN is set (the schedule ids, e.g. PABC123, whose on-call people may approve)"))
	case oc.PagerDutyToken == "" && len(oc.PagerDutySchedules) > 0:
		r.errs = append(r.errs, fmt.Errorf("ROOTWARDEN_PAGERDUTY_TOKEN: required when ROOTWARDEN_PAGERDUTY_SCHEDULES is set (a PagerDuty REST API token)"))
	}
	for _, s := range oc.PagerDutySchedules {
		if !isPDID(s) {
			r.errs = append(r.errs, fmt.Errorf("ROOTWARDEN_PAGERDUTY_SCHEDULES: %q is not a PagerDuty schedule id (letters and digits, e.g. PABC123; find it in the schedule's URL)", s))
		}
	}
	for name, v := range map[string]string{"ROOTWARDEN_PAGERDUTY_API_URL": oc.PagerDutyAPIURL, "ROOTWARDEN_PAGERDUTY_EVENTS_URL": oc.PagerDutyEventsURL} {
		if p, err := url.Parse(v); err != nil || p.Host == "" || (p.Scheme != "https" && p.Scheme != "http") {
			r.errs = append(r.errs, fmt.Errorf("%s: %q is not an http(s) URL", name, v))
		}
	}
}

func isPDID(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ParseRoutes reads the environment form: rules separated by ";" or new lines.
func ParseRoutes(s string) ([]Route, error) {
	var out []Route
	n := 0
	for _, f := range strings.FieldsFunc(s, func(c rune) bool { return c == ';' || c == '\n' }) {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n++
		kind, rest, ok := strings.Cut(f, ":")
		eq := strings.LastIndexByte(rest, '=')
		if !ok || eq < 0 {
			return nil, fmt.Errorf("rule %d %q: want ou:<path>=<channel>, tag:<key>=<value>=<channel> or account:<id>=<channel>", n, f)
		}
		rt, err := newRoute(strings.ToLower(strings.TrimSpace(kind)), strings.TrimSpace(rest[:eq]), strings.TrimSpace(rest[eq+1:]))
		if err != nil {
			return nil, fmt.Errorf("rule %d %q: %w", n, f, err)
		}
		out = append(out, rt)
	}
	return out, nil
}

func newRoute(kind, match, channel string) (Route, error) {
	var rt Route
	switch kind {
	case "ou":
		p := strings.Trim(match, "/ ")
		if p != "Root" && !strings.HasPrefix(p, "Root/") {
			return rt, fmt.Errorf("OU path %q must start at the root, e.g. Root/Prod/Payments", match)
		}
		if strings.Contains(p, "//") {
			return rt, fmt.Errorf("OU path %q has an empty unit name", match)
		}
		rt.OU = p
	case "tag":
		k, v, ok := strings.Cut(match, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return rt, fmt.Errorf("tag rule %q: want key=value", match)
		}
		rt.TagKey, rt.TagValue = strings.TrimSpace(k), strings.TrimSpace(v)
	case "account":
		if len(match) != 12 || strings.Trim(match, "0123456789") != "" {
			return rt, fmt.Errorf("%q is not a 12-digit AWS account id (in YAML, quote it)", match)
		}
		rt.Account = match
	default:
		return rt, fmt.Errorf("unknown rule kind %q (want ou, tag or account)", kind)
	}
	switch {
	case channel == "":
		return rt, fmt.Errorf("no channel")
	case strings.HasPrefix(channel, "#"):
		return rt, fmt.Errorf("%q is a channel name: use the channel id (C…; in Slack: channel details → bottom of the About tab)", channel)
	case !strings.ContainsRune("CG", rune(channel[0])) || strings.ContainsAny(channel, " ,;="):
		return rt, fmt.Errorf("%q is not a channel id (C… or G…)", channel)
	}
	rt.Channel = channel
	return rt, nil
}

// routesFromYAML reads the routing rules of the YAML file: a list of mappings, or a
// string in the environment form.
func routesFromYAML(path string) ([]Route, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err // readYAML has reported it already, with its position
	}
	var v any
	for k, val := range raw {
		if key := strings.ToUpper(k); key == routesVar || "ROOTWARDEN_"+key == routesVar {
			v = val
		}
	}
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		return ParseRoutes(t)
	case []any:
		out := make([]Route, 0, len(t))
		for i, e := range t {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("rule %d: want a mapping like {ou: Root/Prod, channel: C0123456789}", i+1)
			}
			var kinds []string
			var kind, match, channel string
			for k, val := range m {
				s := strings.TrimSpace(fmt.Sprint(val))
				switch strings.ToLower(k) {
				case "channel":
					channel = s
				case "ou", "tag", "account":
					kind, match = strings.ToLower(k), s
					kinds = append(kinds, kind)
				default:
					return nil, fmt.Errorf("rule %d: unknown key %q (want ou, tag or account, and channel)", i+1, k)
				}
			}
			if len(kinds) != 1 {
				return nil, fmt.Errorf("rule %d: want exactly one of ou, tag or account", i+1)
			}
			rt, err := newRoute(kind, match, channel)
			if err != nil {
				return nil, fmt.Errorf("rule %d: %w", i+1, err)
			}
			out = append(out, rt)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a list of rules")
}
