package check

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// TestPromtool: the rules of the rendered PrometheusRule pass `promtool check rules`,
// and `promtool test rules` runs testdata/alerts_test.yaml against them, where every
// alert has a case that fires and a case that stays quiet. promtool is Debian's
// prometheus package; .ci/observability-checks installs it and sets
// ROOTWARDEN_REQUIRE_PROMTOOL=1, so CI never skips.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("ROOTWARDEN_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool is not on the PATH (apt-get install prometheus)")
		}
		t.Skip("promtool is not installed (apt-get install -y prometheus): the rules are not checked or unit-tested")
	}
	objs, errText := helmTemplate(t, "prometheusRule.enabled=true")
	if errText != "" {
		t.Fatal(errText)
	}
	var spec *monitoringv1.PrometheusRuleSpec
	var alerts []string
	for _, o := range objs {
		if pr, ok := o.(*monitoringv1.PrometheusRule); ok {
			spec = &pr.Spec
			for _, g := range pr.Spec.Groups {
				for _, r := range g.Rules {
					if r.Alert != "" {
						alerts = append(alerts, r.Alert)
					}
				}
			}
		}
	}
	if spec == nil || len(alerts) == 0 {
		t.Fatal("prometheusRule.enabled=true renders no PrometheusRule with alerts")
	}
	dir := t.TempDir()
	rules, err := yaml.Marshal(spec) // {groups: […]}: a Prometheus rule file
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("testdata/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"rules.yaml": rules, "alerts_test.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Every alert has a firing and a quiet case.
	fires, quiet := map[string]bool{}, map[string]bool{}
	var doc struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(tests, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range doc.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	sort.Strings(alerts)
	for _, a := range alerts {
		if !fires[a] || !quiet[a] {
			t.Errorf("alert %s: testdata/alerts_test.yaml needs a case where it fires (%v) and one where it stays quiet (%v)", a, fires[a], quiet[a])
		}
	}

	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
			continue
		}
		t.Logf("promtool %v: %s", args, regexp.MustCompile(`\s+`).ReplaceAllString(string(out), " "))
	}
}
