package check

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// repoRoot is the main module's directory, seen from this module.
const repoRoot = "../../.."

// chartREADME holds the install commands TestInstallAsDocumented runs.
const chartREADME = repoRoot + "/deploy/helm/rootwarden/README.md"

// helmCommand is how the tests run helm: ROOTWARDEN_HELM, else helm v3.22.0 from the
// Go module proxy (as .ci/deploy-checks does).
func helmCommand() []string {
	if h := strings.Fields(os.Getenv("ROOTWARDEN_HELM")); len(h) > 0 {
		return h
	}
	return []string{"go", "run", "helm.sh/helm/v3/cmd/helm@v3.22.0"}
}

// installBlock returns the first ```sh block after the marker comment that names
// TestInstallAsDocumented in the chart README.
func installBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(chartREADME)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "TestInstallAsDocumented")
	if i < 0 {
		t.Fatalf("%s: no block marked for TestInstallAsDocumented", chartREADME)
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	if start < 0 {
		t.Fatalf("%s: no ```sh block after the TestInstallAsDocumented marker", chartREADME)
	}
	s = s[start+len("```sh\n"):]
	end := strings.Index(s, "\n```")
	if end < 0 {
		t.Fatalf("%s: the install block is not closed", chartREADME)
	}
	return s[:end+1]
}

// documentedInstall is what the README's commands produce: the rendered manifests of
// `helm install` (as helm template with the same arguments) and the keys of the
// Secret `kubectl create secret` creates.
type documentedInstall struct {
	manifests  []byte
	secretKeys []string
}

// runInstallBlock runs the README's block in bash with kubectl, aws and helm as shell
// functions: kubectl and aws record their arguments, helm install becomes helm
// template with the same arguments and --kube-version (a helm built by go run assumes
// Kubernetes 1.20; the chart requires 1.25).
func runInstallBlock(t *testing.T) documentedInstall {
	t.Helper()
	dir := t.TempDir()
	helm := strings.Join(quoteAll(helmCommand()), " ")
	script := `set -euo pipefail
kubectl() { printf '%s\0' "$@" >> "$RW_DIR/kubectl.args"; printf '\n' >> "$RW_DIR/kubectl.args"; }
aws() { :; }
helm() {
  [ "$1" = install ] || { echo "the install block runs helm $1; the test knows only helm install" >&2; return 1; }
  shift
  ` + helm + ` template "$@" --kube-version 1.31.0 > "$RW_DIR/rendered.yaml"
}
` + installBlock(t)
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "RW_DIR="+dir,
		// The shell variables the README leaves to the reader.
		"CLUSTER=test", "ROLE_ARN=arn:aws:iam::222222222222:role/rootwarden",
		"IMAGE_REPOSITORY=111111111111.dkr.ecr.us-east-1.amazonaws.com/rootwarden",
		"EXTERNAL_ID=rootwarden-documented-install",
		"QUEUE_URL=https://sqs.us-east-1.amazonaws.com/222222222222/rootwarden-events")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the chart README's install block failed: %v\n%s", err, out)
	}
	var d documentedInstall
	if d.manifests, err = os.ReadFile(filepath.Join(dir, "rendered.yaml")); err != nil {
		t.Fatalf("the install block ran no helm install: %v", err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "kubectl.args"))
	for _, line := range strings.Split(string(args), "\n") {
		a := strings.Split(strings.TrimSuffix(line, "\x00"), "\x00")
		if !strings.Contains(strings.Join(a, " "), "create secret generic") {
			continue
		}
		for _, arg := range a {
			for _, flag := range []string{"--from-file=", "--from-literal="} {
				if kv, ok := strings.CutPrefix(arg, flag); ok {
					key, _, _ := strings.Cut(kv, "=")
					d.secretKeys = append(d.secretKeys, key)
				}
			}
		}
	}
	if len(d.secretKeys) == 0 {
		t.Fatal("the install block creates no Secret with kubectl create secret generic --from-file")
	}
	return d
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return out
}

// runPod returns the pod template of the rendered workload (all-in-one: the
// StatefulSet).
func runPod(t *testing.T, manifests []byte) corev1.PodTemplateSpec {
	t.Helper()
	for _, doc := range bytes.Split(manifests, []byte("\n---")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil || tm.Kind != "StatefulSet" {
			continue
		}
		var ss appsv1.StatefulSet
		if err := yaml.UnmarshalStrict(doc, &ss); err != nil {
			t.Fatal(err)
		}
		return ss.Spec.Template
	}
	t.Fatal("the documented install renders no StatefulSet")
	return corev1.PodTemplateSpec{}
}

// started is the binary running as the documented install would run it.
type started struct {
	httpBase string // http://127.0.0.1:port, the chart's http port
	env      []string
	log      *bytes.Buffer
}

var (
	startOnce   sync.Once
	startResult *started
	startErr    error
	stopAll     []func() // run in reverse order after stopProcs
	stopProcs   context.CancelFunc
)

func TestMain(m *testing.M) {
	code := m.Run()
	if stopProcs != nil {
		stopProcs() // before waiting for them
	}
	for i := len(stopAll) - 1; i >= 0; i-- {
		stopAll[i]()
	}
	os.Exit(code)
}

// startAsDocumented renders the chart with the README's commands and starts the
// rootwarden binary with the rendered container's arguments and environment, the
// Secret volume as a directory holding only the keys kubectl created, against
// `rootwarden sim` (local AWS and Slack). Started once per test binary.
func startAsDocumented(t *testing.T) *started {
	t.Helper()
	startOnce.Do(func() { startResult, startErr = start(t) })
	if startErr != nil {
		t.Fatal(startErr)
	}
	return startResult
}

func start(t *testing.T) (*started, error) {
	d := runInstallBlock(t)
	pod := runPod(t, d.manifests)
	c := pod.Spec.Containers[0]

	dir, err := os.MkdirTemp("", "rootwarden-install-")
	if err != nil {
		return nil, err
	}
	stopAll = append(stopAll, func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "rootwarden")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rootwarden")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/rootwarden: %v\n%s", err, out)
	}

	// The simulator: local AWS and Slack; its env file names the endpoints.
	httpAddr, slackAddr := freeAddr(t), freeAddr(t)
	envFile := filepath.Join(dir, "sim.env")
	ctx, cancel := context.WithCancel(context.Background())
	stopProcs = cancel
	sim := exec.CommandContext(ctx, bin, "sim", "--addr", "127.0.0.1:0", "--env-file", envFile, "--rootwarden-addr", httpAddr, "--data-dir", filepath.Join(dir, "sim-data"))
	simLog := &bytes.Buffer{}
	sim.Stdout, sim.Stderr = simLog, simLog
	if err := sim.Start(); err != nil {
		return nil, err
	}
	stopAll = append(stopAll, func() { _ = sim.Wait() })
	simEnv, err := waitEnvFile(envFile, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("rootwarden sim: %v\n%s", err, simLog)
	}

	// The Secret volume: only the keys the README's kubectl created, with the
	// simulator's values.
	mounts := map[string]string{} // mount path → directory standing in for it
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = filepath.Join(dir, "volumes", m.Name)
		if err := os.MkdirAll(mounts[m.MountPath], 0o700); err != nil {
			return nil, err
		}
	}
	secretDir := ""
	for _, v := range pod.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name && strings.HasPrefix(m.MountPath, "/var/run/secrets/rootwarden") {
				secretDir = mounts[m.MountPath]
			}
		}
	}
	if secretDir == "" {
		return nil, fmt.Errorf("the rendered pod mounts no Secret at /var/run/secrets/rootwarden")
	}
	simSecret := map[string]string{"slack-bot-token": "SLACK_BOT_TOKEN", "slack-signing-secret": "SLACK_SIGNING_SECRET",
		"api-token": "ROOTWARDEN_API_TOKEN"}
	for _, key := range d.secretKeys {
		val := "documented-install-" + key
		if v, ok := simEnv[simSecret[key]]; ok {
			val = v
		}
		if err := os.WriteFile(filepath.Join(secretDir, key), []byte(val+"\n"), 0o400); err != nil {
			return nil, err
		}
	}

	// The environment: the rendered container's, with paths under a mount moved to
	// its directory, and what points at the cluster (AWS, Slack, listen addresses)
	// pointed at the simulator. Nothing else is added.
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			return nil, fmt.Errorf("%s comes from valueFrom; the test knows only plain values", e.Name)
		}
		v, longest := e.Value, ""
		for mp := range mounts { // the innermost mount holding the path, once
			if (v == mp || strings.HasPrefix(v, mp+"/")) && len(mp) > len(longest) {
				longest = mp
			}
		}
		if longest != "" {
			v = mounts[longest] + strings.TrimPrefix(v, longest)
		}
		env[e.Name] = v
	}
	for k, v := range simEnv {
		switch k {
		case "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "ROOTWARDEN_API_TOKEN": // files, above
		case "ROOTWARDEN_SIM_URL": // for `rootwarden sim click`, not read by run
		default:
			env[k] = v
		}
	}
	if _, ok := env["ROOTWARDEN_SLACK_HTTP_ADDR"]; ok {
		env["ROOTWARDEN_SLACK_HTTP_ADDR"] = slackAddr
	}
	env["HOME"] = dir
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	sort.Strings(envList)

	run := exec.CommandContext(ctx, bin, c.Args...)
	run.Env = envList
	run.Dir = dir
	s := &started{httpBase: "http://" + httpAddr, env: envList, log: &bytes.Buffer{}}
	run.Stdout, run.Stderr = s.log, s.log
	if err := run.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	stopAll = append(stopAll, func() { <-exited })
	deadline := time.After(90 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("rootwarden %s exited (%v) before /readyz answered 200.\nenvironment:\n  %s\nlog:\n%s",
				strings.Join(c.Args, " "), err, strings.Join(envList, "\n  "), s.log)
		case <-deadline:
			return nil, fmt.Errorf("/readyz did not answer 200 within 90 s.\nenvironment:\n  %s\nlog:\n%s", strings.Join(envList, "\n  "), s.log)
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get(s.httpBase + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var exportLine = regexp.MustCompile(`^export ([A-Z0-9_]+)=(.*)$`)

func waitEnvFile(path string, within time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			env := map[string]string{}
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if m := exportLine.FindStringSubmatch(sc.Text()); m != nil {
					env[m[1]] = m[2]
				}
			}
			if env["AWS_ENDPOINT_URL"] != "" {
				return env, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("%s not written within %s", path, within)
}

// TestInstallAsDocumented: the chart README's install commands, pasted, give a pod
// that starts and becomes ready. The binary runs with the rendered environment and a
// Secret volume holding only the keys the README's kubectl command creates, against
// the simulator, until /readyz answers 200.
func TestInstallAsDocumented(t *testing.T) {
	s := startAsDocumented(t)
	resp, err := http.Get(s.httpBase + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz answered %d", resp.StatusCode)
	}
	for _, e := range s.env {
		if strings.HasPrefix(e, "AWS_ROLE_ARN=") || strings.HasPrefix(e, "AWS_WEB_IDENTITY_TOKEN_FILE=") {
			t.Errorf("the documented install sets %s: the README's identity is EKS Pod Identity", e)
		}
	}
}
