package check

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
)

// dashboardFile is the dashboard deploy/grafana/gen writes.
const dashboardFile = repoRoot + "/deploy/grafana/rootwarden.json"

// synthetic are series Prometheus itself makes, not the binary.
var synthetic = map[string]bool{"up": true}

// exposedMetrics scrapes /metrics and returns every series name it can answer for:
// the sample names, and for histograms and summaries the _bucket, _sum and _count
// series of the family.
func exposedMetrics(t *testing.T, base string) map[string]bool {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
			if f[3] == "histogram" || f[3] == "summary" {
				names[f[2]+"_sum"], names[f[2]+"_count"] = true, true
			}
			if f[3] == "histogram" {
				names[f[2]+"_bucket"] = true
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	if len(names) == 0 {
		t.Fatal("/metrics exposes nothing")
	}
	return names
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true,
		"nan": true, "sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true,
		"stdvar": true, "topk": true, "bottomk": true, "quantile": true, "count_values": true, "group": true}
)

// metricNames returns the metric names a PromQL expression selects: identifiers that
// are not in a string, a label matcher, a range, a grouping clause, a function call
// or a keyword.
func metricNames(expr string) []string {
	e := promString.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRange.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	seen := map[string]bool{}
	for _, m := range promIdent.FindAllStringIndex(e, -1) {
		name := e[m[0]:m[1]]
		if m[0] > 0 && strings.ContainsRune("0123456789.$_", rune(e[m[0]-1])) { // 1e-9, $__rate_interval
			continue
		}
		if strings.HasPrefix(strings.TrimLeft(e[m[1]:], " \t\n"), "(") || promKeywords[strings.ToLower(name)] {
			continue // a function call, or a keyword
		}
		seen[name] = true
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestMetricNames: the extraction the next test relies on finds the metrics, and only
// them, in the shapes the dashboard and the rules use.
func TestMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`time() - max(rootwarden_sweep_last_success_timestamp_seconds{job="rw"}) > 3600`:                              "rootwarden_sweep_last_success_timestamp_seconds",
		`sum(rate(a_total{x=~"b|c", y!="d{e}"}[$__rate_interval])) / clamp_min(sum(rate(b_total[30m])), 1e-9) > 0.05`: "a_total b_total",
		`histogram_quantile(0.9, sum by (le, resolution) (increase(h_seconds_bucket{job=~"$job"}[1d])))`:              "h_seconds_bucket",
		`max by (stream, consumer) (p{job="j"} + q{job="j"}) > 100`:                                                   "p q",
		`absent(up{job="rw"} == 1)`:                                         "up",
		`sum without (instance) (x) and on (job) y offset 5m unless bool z`: "x y z",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// dashboardQueries returns every PromQL expression of the dashboard: the panels'
// targets and the variables' label_values queries.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []string
	labelValues := regexp.MustCompile(`^label_values\(\s*([^,]+),`)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					out = append(out, s)
				}
				if s, ok := x.(string); ok && (k == "query" || k == "definition") {
					if m := labelValues.FindStringSubmatch(s); m != nil {
						out = append(out, m[1])
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(d)
	if len(out) == 0 {
		t.Fatalf("%s: no queries", dashboardFile)
	}
	return out
}

// TestQueriesNameExposedMetrics: every metric the dashboard and the PrometheusRule
// query is one the running binary exposes on /metrics (a renamed or removed metric
// leaves a panel empty and an alert silent, with no error anywhere).
func TestQueriesNameExposedMetrics(t *testing.T) {
	objs, errText := helmTemplate(t, "prometheusRule.enabled=true")
	if errText != "" {
		t.Fatal(errText)
	}
	queries := map[string][]string{"dashboard": dashboardQueries(t)}
	for _, o := range objs {
		if pr, ok := o.(*monitoringv1.PrometheusRule); ok {
			for _, g := range pr.Spec.Groups {
				for _, r := range g.Rules {
					queries["rule "+r.Alert+r.Record] = append(queries["rule "+r.Alert+r.Record], r.Expr.String())
				}
			}
		}
	}
	if len(queries) < 2 {
		t.Fatal("the rendered chart has no PrometheusRule rules")
	}
	// The simulator's organization has root keys: the first sweep opens cases, and the
	// series that exist only once something happened (case transitions, consumer lag)
	// appear. Scrape until every referenced name is there, or 60 s.
	base := startAsDocumented(t).httpBase
	var exposed map[string]bool
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		exposed = exposedMetrics(t, base)
		missing := map[string]bool{}
		for _, exprs := range queries {
			for _, expr := range exprs {
				for _, n := range metricNames(expr) {
					if !exposed[n] && !synthetic[n] {
						missing[n] = true
					}
				}
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		t.Logf("not yet on /metrics: %v", missing)
	}
	checked := 0
	for where, exprs := range queries {
		for _, expr := range exprs {
			names := metricNames(expr)
			if len(names) == 0 {
				t.Errorf("%s: no metric in %q", where, expr)
			}
			for _, n := range names {
				checked++
				if !exposed[n] && !synthetic[n] {
					t.Errorf("%s queries %s, which /metrics does not expose (%q)", where, n, expr)
				}
			}
		}
	}
	t.Logf("%d metric references in %d places, all exposed", checked, len(queries))
}

// TestDashboardConfigMap: with grafanaDashboard.enabled the chart ships the dashboard
// as a ConfigMap Grafana's sidecar loads (label grafana_dashboard: "1"), and its JSON is
// deploy/grafana/rootwarden.json.
func TestDashboardConfigMap(t *testing.T) {
	objs, errText := helmTemplate(t, "grafanaDashboard.enabled=true")
	if errText != "" {
		t.Fatal(errText)
	}
	want, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		cm, ok := o.(*corev1.ConfigMap)
		if !ok {
			continue
		}
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("ConfigMap %s labels %v: no grafana_dashboard: \"1\"", cm.Name, cm.Labels)
		}
		if strings.TrimSpace(cm.Data["rootwarden.json"]) != strings.TrimSpace(string(want)) {
			t.Errorf("ConfigMap %s rootwarden.json is not %s: run (cd deploy/grafana/gen && go run .)", cm.Name, dashboardFile)
		}
		return
	}
	t.Error("grafanaDashboard.enabled=true renders no ConfigMap")
}
