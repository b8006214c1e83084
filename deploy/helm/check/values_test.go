package check

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// helmTemplate renders the chart with the minimum every install sets and the given
// --set values; it returns the documents decoded strictly, or the error text.
func helmTemplate(t *testing.T, sets ...string) ([]any, string) {
	t.Helper()
	h := helmCommand()
	args := append(h[1:], "template", "rootwarden", "deploy/helm/rootwarden", "--kube-version", "1.31.0", "-n", "rootwarden",
		"--set", "image.repository=registry.example/rootwarden", "--set", "secrets.existingSecret=rootwarden")
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(h[0], args...)
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, stderr.String()
	}
	var objs []any
	for _, doc := range bytes.Split(out, []byte("\n---")) {
		var tm metav1.TypeMeta
		if yaml.Unmarshal(doc, &tm) != nil || tm.Kind == "" {
			continue
		}
		var obj any
		switch tm.Kind {
		case "NetworkPolicy":
			obj = &networkingv1.NetworkPolicy{}
		case "PrometheusRule":
			obj = &monitoringv1.PrometheusRule{}
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		default:
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s: %v", tm.Kind, err)
		}
		objs = append(objs, obj)
	}
	return objs, ""
}

func networkPolicy(t *testing.T, objs []any) *networkingv1.NetworkPolicy {
	t.Helper()
	for _, o := range objs {
		if np, ok := o.(*networkingv1.NetworkPolicy); ok {
			return np
		}
	}
	t.Fatal("no NetworkPolicy rendered")
	return nil
}

// TestNetworkPolicyAllowsPodIdentity: with the defaults the pod can reach the EKS Pod
// Identity agent (169.254.170.23 and fd00:ec2::23, TCP 80), the identity the docs set
// up; networkPolicy.eksPodIdentityAgent=false removes that rule.
func TestNetworkPolicyAllowsPodIdentity(t *testing.T) {
	allows := func(np *networkingv1.NetworkPolicy) map[string]bool {
		got := map[string]bool{}
		for _, e := range np.Spec.Egress {
			for _, to := range e.To {
				if to.IPBlock == nil {
					continue
				}
				for _, p := range e.Ports {
					if p.Port != nil && p.Port.IntValue() == 80 {
						got[to.IPBlock.CIDR] = true
					}
				}
			}
		}
		return got
	}
	objs, errText := helmTemplate(t)
	if errText != "" {
		t.Fatal(errText)
	}
	got := allows(networkPolicy(t, objs))
	for _, cidr := range []string{"169.254.170.23/32", "fd00:ec2::23/128"} {
		if !got[cidr] {
			t.Errorf("the default NetworkPolicy does not allow the Pod Identity agent %s on TCP 80 (egress to port 80: %v)", cidr, got)
		}
	}
	objs, errText = helmTemplate(t, "networkPolicy.eksPodIdentityAgent=false")
	if errText != "" {
		t.Fatal(errText)
	}
	if got := allows(networkPolicy(t, objs)); len(got) != 0 {
		t.Errorf("eksPodIdentityAgent=false still allows %v on port 80", got)
	}
}

// TestSlackIngressCIDRs: behind an ALB (target-type ip) Slack's requests come from VPC
// addresses; networkPolicy.slackIngressCIDRs lets them reach the Slack port.
func TestSlackIngressCIDRs(t *testing.T) {
	objs, errText := helmTemplate(t, "networkPolicy.slackIngressCIDRs={10.0.0.0/16}")
	if errText != "" {
		t.Fatal(errText)
	}
	found := false
	for _, in := range networkPolicy(t, objs).Spec.Ingress {
		slackPort := len(in.Ports) == 1 && in.Ports[0].Port != nil && in.Ports[0].Port.StrVal == "slack"
		for _, from := range in.From {
			if from.IPBlock != nil && from.IPBlock.CIDR == "10.0.0.0/16" {
				found = true
				if !slackPort {
					t.Errorf("10.0.0.0/16 is allowed to %v, want the slack port only", in.Ports)
				}
			}
		}
	}
	if !found {
		t.Error("networkPolicy.slackIngressCIDRs={10.0.0.0/16} allows nothing from 10.0.0.0/16")
	}
}

// TestScaledRunsOneNotifier: two notifiers post duplicate thread replies and burst
// summaries (issue 19 item 11), so scaled mode renders one and refuses more.
func TestScaledRunsOneNotifier(t *testing.T) {
	objs, errText := helmTemplate(t, "mode=scaled")
	if errText != "" {
		t.Fatal(errText)
	}
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok && d.Spec.Template.Spec.Containers[0].Args[0] == "notifier" {
			if n := d.Spec.Replicas; n == nil || *n != 1 {
				t.Errorf("scaled notifier replicas = %v, want 1", replicas(n))
			}
		}
	}
	_, errText = helmTemplate(t, "mode=scaled", "components.notifier.replicas=2")
	if !strings.Contains(errText, "components.notifier.replicas") {
		t.Errorf("components.notifier.replicas=2 rendered, or failed without naming the value: %q", errText)
	}
}

// TestAlertThresholdsFollowConfig: the sweep and SLA alerts follow the settings the
// binary runs with (set once, in config), and a value that is not a duration stops the
// render naming it.
func TestAlertThresholdsFollowConfig(t *testing.T) {
	objs, errText := helmTemplate(t, "prometheusRule.enabled=true", "config.ROOTWARDEN_SLA=1h30m", "config.ROOTWARDEN_SCAN_INTERVAL=20m")
	if errText != "" {
		t.Fatal(errText)
	}
	want := map[string]string{
		"RootwardenSLABreached": "> 5400", // 1h30m
		"RootwardenSweepStale":  "> 4200", // 2 × 20m + 30m
	}
	for _, o := range objs {
		pr, ok := o.(*monitoringv1.PrometheusRule)
		if !ok {
			continue
		}
		for _, g := range pr.Spec.Groups {
			for _, r := range g.Rules {
				if w, ok := want[r.Alert]; ok {
					if !strings.HasSuffix(strings.TrimSpace(r.Expr.String()), w) {
						t.Errorf("%s: expr %q, want it to end with %q", r.Alert, r.Expr.String(), w)
					}
					delete(want, r.Alert)
				}
			}
		}
	}
	for a := range want {
		t.Errorf("no alert %s", a)
	}
	_, errText = helmTemplate(t, "prometheusRule.enabled=true", "config.ROOTWARDEN_SLA=1d")
	if !strings.Contains(errText, "config.ROOTWARDEN_SLA") {
		t.Errorf("config.ROOTWARDEN_SLA=1d rendered, or failed without naming the value: %q", errText)
	}
	_, errText = helmTemplate(t, "prometheusRule.slaSeconds=60")
	if errText == "" {
		t.Error("prometheusRule.slaSeconds, the second knob for the SLA, is still accepted")
	}
}

// TestImageRepositoryRequired: no image is published, so an install without
// image.repository stops at render time with the hint, not at ImagePullBackOff.
func TestImageRepositoryRequired(t *testing.T) {
	_, errText := helmTemplate(t, "image.repository=")
	if !strings.Contains(errText, "image.repository is required") || !strings.Contains(errText, "docs/install.md") {
		t.Errorf("an empty image.repository: %q, want the one-line hint to docs/install.md", errText)
	}
}

func replicas(n *int32) any {
	if n == nil {
		return "unset"
	}
	return *n
}
