package check

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// rendered is one `helm template` output: ROOTWARDEN_HELM_RENDERED names a directory
// of files, one per values set (allinone.yaml, scaled.yaml, …), written by .ci/run.
type rendered struct {
	name    string
	objects []any
	pods    map[string]corev1.PodTemplateSpec // workload name → pod template
	kinds   map[string]int
}

func load(t *testing.T) []rendered {
	t.Helper()
	dir := os.Getenv("ROOTWARDEN_HELM_RENDERED")
	if dir == "" {
		t.Fatal("ROOTWARDEN_HELM_RENDERED is not set: .ci/run renders the chart with helm template into a directory and sets it")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rendered manifests in %s: %v", dir, err)
	}
	sort.Strings(files)
	var out []rendered
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := rendered{name: filepath.Base(f), pods: map[string]corev1.PodTemplateSpec{}, kinds: map[string]int{}}
		for i, doc := range bytes.Split(b, []byte("\n---")) {
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s document %d: %v", r.name, i, err)
			}
			obj, ok := map[string]any{
				"apps/v1/StatefulSet":                     &appsv1.StatefulSet{},
				"apps/v1/Deployment":                      &appsv1.Deployment{},
				"v1/Service":                              &corev1.Service{},
				"v1/Secret":                               &corev1.Secret{},
				"v1/ConfigMap":                            &corev1.ConfigMap{},
				"v1/ServiceAccount":                       &corev1.ServiceAccount{},
				"networking.k8s.io/v1/NetworkPolicy":      &networkingv1.NetworkPolicy{},
				"networking.k8s.io/v1/Ingress":            &networkingv1.Ingress{},
				"policy/v1/PodDisruptionBudget":           &policyv1.PodDisruptionBudget{},
				"monitoring.coreos.com/v1/ServiceMonitor": &monitoringv1.ServiceMonitor{},
				"monitoring.coreos.com/v1/PrometheusRule": &monitoringv1.PrometheusRule{},
			}[tm.APIVersion+"/"+tm.Kind]
			if !ok {
				t.Errorf("%s document %d: kind %s/%s is not one this check knows", r.name, i, tm.APIVersion, tm.Kind)
				continue
			}
			// Strict: an unknown or misspelt field, or a duplicate key, is an error.
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("%s %s document %d: %v", r.name, tm.Kind, i, err)
				continue
			}
			r.kinds[tm.Kind]++
			r.objects = append(r.objects, obj)
			switch o := obj.(type) {
			case *appsv1.StatefulSet:
				r.pods[o.Name] = o.Spec.Template
			case *appsv1.Deployment:
				r.pods[o.Name] = o.Spec.Template
			}
		}
		out = append(out, r)
	}
	return out
}

func stripComments(b []byte) []byte {
	var keep [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			keep = append(keep, l)
		}
	}
	return bytes.Join(keep, []byte("\n"))
}

func byName(t *testing.T, rs []rendered, name string) rendered {
	t.Helper()
	for _, r := range rs {
		if r.name == name {
			return r
		}
	}
	t.Fatalf("no rendering %s", name)
	return rendered{}
}

// TestPodsAreRestricted: the Pod Security Standard "restricted", a read-only root
// filesystem, and the three probes, on every workload of every rendering.
func TestPodsAreRestricted(t *testing.T) {
	for _, r := range load(t) {
		if len(r.pods) == 0 {
			t.Errorf("%s: no workload", r.name)
		}
		for name, p := range r.pods {
			where := r.name + " " + name
			ps := p.Spec.SecurityContext
			if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: pod securityContext is not runAsNonRoot + seccomp RuntimeDefault", where)
			}
			if ps != nil && (ps.FSGroup == nil || *ps.FSGroup != 65532) {
				t.Errorf("%s: fsGroup is not 65532: the PVC and secret files would not be readable", where)
			}
			if p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
				t.Errorf("%s: the Kubernetes API token is mounted; rootwarden never calls the API", where)
			}
			for _, c := range p.Spec.Containers {
				sc := c.SecurityContext
				switch {
				case sc == nil:
					t.Errorf("%s/%s: no securityContext", where, c.Name)
					continue
				case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
					t.Errorf("%s/%s: allowPrivilegeEscalation is not false", where, c.Name)
				case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
					t.Errorf("%s/%s: root filesystem is writable", where, c.Name)
				case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0:
					t.Errorf("%s/%s: capabilities are not drop [ALL]", where, c.Name)
				case sc.Privileged != nil && *sc.Privileged:
					t.Errorf("%s/%s: privileged", where, c.Name)
				}
				if c.StartupProbe == nil || c.ReadinessProbe == nil || c.LivenessProbe == nil {
					t.Errorf("%s/%s: startup, readiness and liveness probes are not all set", where, c.Name)
				} else if c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
					t.Errorf("%s/%s: readiness must be /readyz and liveness /healthz", where, c.Name)
				}
				mounted := map[string]bool{}
				for _, m := range c.VolumeMounts {
					mounted[m.MountPath] = true
				}
				if !mounted["/tmp"] {
					t.Errorf("%s/%s: no writable /tmp with a read-only root filesystem", where, c.Name)
				}
			}
		}
	}
}

// TestSecretsAreFiles: no secret reaches the process as an environment variable; each
// is a *_FILE path under the mounted Secret.
func TestSecretsAreFiles(t *testing.T) {
	secretVars := []string{"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "ROOTWARDEN_API_TOKEN",
		"ROOTWARDEN_JIRA_TOKEN", "ROOTWARDEN_GITHUB_TOKEN", "ROOTWARDEN_PAGERDUTY_TOKEN", "ROOTWARDEN_PAGERDUTY_ROUTING_KEY"}
	for _, r := range load(t) {
		for name, p := range r.pods {
			for _, c := range p.Spec.Containers {
				files := 0
				for _, e := range c.Env {
					for _, s := range secretVars {
						if e.Name == s {
							t.Errorf("%s %s: %s is set as an environment variable; use %s_FILE", r.name, name, s, s)
						}
						if e.Name == s+"_FILE" {
							files++
							if !strings.HasPrefix(e.Value, "/var/run/secrets/rootwarden/") {
								t.Errorf("%s %s: %s points outside the secret mount: %s", r.name, name, e.Name, e.Value)
							}
						}
					}
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						t.Errorf("%s %s: %s comes from a secretKeyRef; secrets are files", r.name, name, e.Name)
					}
				}
				if files == 0 {
					t.Errorf("%s %s: no *_FILE secret variable", r.name, name)
				}
			}
		}
	}
}

// TestAllInOneIsASingletonWithAVolume: the embedded NATS must never run twice.
func TestAllInOneIsASingletonWithAVolume(t *testing.T) {
	r := byName(t, load(t), "allinone.yaml")
	if r.kinds["StatefulSet"] != 1 || r.kinds["Deployment"] != 0 {
		t.Fatalf("all-in-one renders %d StatefulSets and %d Deployments, want 1 and 0", r.kinds["StatefulSet"], r.kinds["Deployment"])
	}
	for _, o := range r.objects {
		ss, ok := o.(*appsv1.StatefulSet)
		if !ok {
			continue
		}
		if ss.Spec.Replicas == nil || *ss.Spec.Replicas != 1 {
			t.Errorf("all-in-one replicas = %v, want 1", ss.Spec.Replicas)
		}
		if len(ss.Spec.VolumeClaimTemplates) != 1 {
			t.Errorf("all-in-one has %d volume claim templates, want 1 (the NATS store)", len(ss.Spec.VolumeClaimTemplates))
		}
		env := map[string]string{}
		for _, e := range ss.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		if env["ROOTWARDEN_DATA_DIR"] != "/data" || env["ROOTWARDEN_NATS_URL"] != "" {
			t.Errorf("all-in-one env: ROOTWARDEN_DATA_DIR=%q ROOTWARDEN_NATS_URL=%q", env["ROOTWARDEN_DATA_DIR"], env["ROOTWARDEN_NATS_URL"])
		}
		if got := ss.Spec.Template.Spec.Containers[0].Args; len(got) != 1 || got[0] != "run" {
			t.Errorf("all-in-one args = %v, want [run]", got)
		}
	}
}

// TestScaledRunsEachComponentAgainstNATS.
func TestScaledRunsEachComponentAgainstNATS(t *testing.T) {
	r := byName(t, load(t), "scaled.yaml")
	// The notifier runs one replica: a PDB with minAvailable 1 would block node drains.
	if r.kinds["StatefulSet"] != 0 || r.kinds["Deployment"] != 3 || r.kinds["PodDisruptionBudget"] != 2 {
		t.Fatalf("scaled renders %v, want 3 Deployments, 2 PDBs (detector, remediator) and no StatefulSet", r.kinds)
	}
	seen := map[string]bool{}
	for _, o := range r.objects {
		d, ok := o.(*appsv1.Deployment)
		if !ok {
			continue
		}
		c := d.Spec.Template.Spec.Containers[0]
		seen[strings.Join(c.Args, " ")] = true
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if !strings.HasPrefix(env["ROOTWARDEN_NATS_URL"], "nats://") || env["ROOTWARDEN_DATA_DIR"] != "" {
			t.Errorf("%s: ROOTWARDEN_NATS_URL=%q ROOTWARDEN_DATA_DIR=%q", d.Name, env["ROOTWARDEN_NATS_URL"], env["ROOTWARDEN_DATA_DIR"])
		}
		_, slackPort := env["ROOTWARDEN_SLACK_HTTP_ADDR"]
		if slackPort != (c.Args[0] == "notifier") {
			t.Errorf("%s: the Slack port belongs to the notifier only (set: %v)", d.Name, slackPort)
		}
	}
	for _, want := range []string{"detector", "remediator", "notifier"} {
		if !seen[want] {
			t.Errorf("scaled: no %s Deployment", want)
		}
	}
}

// TestSlackIngressExposesOnlySlack: only Slack's request URLs are public.
func TestSlackIngressExposesOnlySlack(t *testing.T) {
	r := byName(t, load(t), "allinone.yaml")
	found := false
	for _, o := range r.objects {
		ing, ok := o.(*networkingv1.Ingress)
		if !ok {
			continue
		}
		found = true
		paths := map[string]bool{}
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				paths[p.Path] = true
				if !map[string]bool{"/slack/interactions": true, "/slack/events": true, "/slack/commands": true}[p.Path] || p.PathType == nil || *p.PathType != networkingv1.PathTypeExact || p.Backend.Service.Port.Name != "slack" {
					t.Errorf("ingress exposes %s (%v) on port %q", p.Path, p.PathType, p.Backend.Service.Port.Name)
				}
			}
		}
		if len(paths) != 3 {
			t.Errorf("ingress paths %v, want Slack's interactions, events and commands URLs", paths)
		}
	}
	if !found {
		t.Error("allinone.yaml (rendered with ingress.enabled=true) has no Ingress")
	}
}

// TestAlerts: the PrometheusRule carries the alerts the operators rely on, each
// reading a rootwarden series.
func TestAlerts(t *testing.T) {
	r := byName(t, load(t), "allinone.yaml")
	want := map[string]string{
		"RootwardenSweepStale":      "rootwarden_sweep_last_success_timestamp_seconds",
		"RootwardenCheckErrorsHigh": "rootwarden_detector_check_errors_total",
		"RootwardenSLABreached":     "rootwarden_case_oldest_open_age_seconds",
		"RootwardenSlackFailing":    "rootwarden_slack_calls_total",
		"RootwardenConsumerLag":     "rootwarden_consumer_pending_messages",
	}
	want["RootwardenAccountsUnchecked"] = "rootwarden_remediator_unchecked_accounts"
	got := map[string]string{}
	for _, o := range r.objects {
		pr, ok := o.(*monitoringv1.PrometheusRule)
		if !ok {
			continue
		}
		for _, g := range pr.Spec.Groups {
			for _, rule := range g.Rules {
				got[rule.Alert] = rule.Expr.String()
				if rule.Alert != "" && (rule.Annotations["summary"] == "" || rule.Labels["severity"] == "") {
					t.Errorf("%s: no summary or severity", rule.Alert)
				}
				if strings.Contains(rule.Expr.String(), "{{") {
					t.Errorf("%s: an unrendered template in the expression: %s", rule.Alert, rule.Expr.String())
				}
			}
		}
	}
	for name, series := range want {
		if !strings.Contains(got[name], series) {
			t.Errorf("alert %s: missing or not on %s (expr %q)", name, series, got[name])
		}
	}
}

// TestChartSetsOnlyRealVariables: a variable the binary does not read is a silent
// misconfiguration, so every variable the chart sets must appear in internal/config.
func TestChartSetsOnlyRealVariables(t *testing.T) {
	files, err := filepath.Glob("../../../internal/config/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("internal/config not found: %v", err)
	}
	var src strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	known := src.String()
	for _, r := range load(t) {
		for name, p := range r.pods {
			for _, e := range p.Spec.Containers[0].Env {
				base, isFile := strings.CutSuffix(e.Name, "_FILE")
				switch {
				case strings.HasPrefix(e.Name, "AWS_"):
				case strings.Contains(known, `"`+e.Name+`"`):
				case isFile && secretRE(base).MatchString(known): // X_FILE of a secret X (internal/config/settings.go)
				default:
					t.Errorf("%s %s: the chart sets %s, which internal/config does not read", r.name, name, e.Name)
				}
			}
		}
	}
}

// secretRE matches the settings-table entry of a secret named name
// (`{Name: "X", …, Kind: KindSecret`), whose X_FILE the loader reads too.
func secretRE(name string) *regexp.Regexp {
	return regexp.MustCompile(`Name:\s*"` + regexp.QuoteMeta(name) + `",[^\n]*Kind:\s*KindSecret`)
}
