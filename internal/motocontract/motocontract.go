// Package motocontract runs rootwarden against moto (github.com/getmoto/moto), an
// implementation of the AWS APIs that is not ours, so that the in-repo simulator
// (internal/awssim) is not the only AWS the code has been tried against.
//
// Moto runs in launcher.py, a Python process that hosts moto's server in-process
// (ThreadedMotoServer) so that it can also set what no AWS API can: whether an
// account's root user has an access key. The launcher insists on moto 5.2.1, the
// version docs/aws-compatibility.md was checked against. The contract test is
// contract_test.go; Start is for any test that wants moto.
package motocontract

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// MotoVersion is the moto release the launcher accepts.
const MotoVersion = "5.2.1"

// exitUnavailable is launcher.py's exit code for "moto missing or another version".
const exitUnavailable = 3

// Moto is a running launcher.
type Moto struct {
	// URL is moto's endpoint, http://127.0.0.1:PORT: AWS_ENDPOINT_URL for the SDK.
	URL string

	t      *testing.T
	mu     sync.Mutex
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *syncBuffer
}

// LauncherPath is launcher.py beside this file.
func LauncherPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "launcher.py")
}

// Start runs launcher.py and waits until moto answers. It skips the test, saying
// why, when python3 or moto 5.2.1 is not installed. The launcher exits when the
// test ends (its stdin closes; if the test binary dies, the pipe closes with it).
func Start(t *testing.T) *Moto {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("moto_server not installed: no python3 on PATH (moto " + MotoVersion + " runs under Python)")
	}
	cmd := exec.Command(py, LauncherPath())
	// MOTO_ACCOUNT_ID would put every request in one account.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MOTO_ACCOUNT_ID=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", LauncherPath(), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	m := &Moto{t: t, stdin: stdin, lines: bufio.NewScanner(stdout), stderr: stderr}

	ready := make(chan string, 1)
	go func() {
		if m.lines.Scan() {
			ready <- m.lines.Text()
		}
		close(ready)
	}()
	select {
	case line, ok := <-ready:
		var port int
		if !ok || !strings.HasPrefix(line, "port ") {
			err := <-exited
			msg := strings.TrimSpace(m.stderrText())
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == exitUnavailable {
				t.Skip("moto_server not installed: " + msg)
			}
			t.Fatalf("launcher.py ended without a port (%v): %q\n%s", err, line, msg)
		}
		if _, err := fmt.Sscanf(line, "port %d", &port); err != nil || port <= 0 {
			t.Fatalf("launcher.py: %q is not \"port N\"", line)
		}
		m.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("launcher.py printed no port within 60 s\n%s", m.stderrText())
	}
	t.Cleanup(func() {
		_ = stdin.Close() // the launcher's signal to stop
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("launcher.py: %v\n%s", err, m.stderrText())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("launcher.py did not exit within 15 s of its stdin closing\n%s", m.stderrText())
		}
	})
	return m
}

// SetRootKeys sets whether the root user of account has an access key: IAM
// GetAccountSummary's AccountAccessKeysPresent in that account, in moto's backend.
func (m *Moto) SetRootKeys(account string, present bool) {
	m.t.Helper()
	v := "0"
	if present {
		v = "1"
	}
	if got := m.command("root-keys " + account + " " + v); got != "ok" {
		m.t.Fatalf("launcher.py root-keys %s %s: %s", account, v, got)
	}
}

// command sends one line and reads the answer.
func (m *Moto) command(line string) string {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := io.WriteString(m.stdin, line+"\n"); err != nil {
		m.t.Fatalf("launcher.py: write %q: %v\n%s", line, err, m.stderrText())
	}
	if !m.lines.Scan() {
		m.t.Fatalf("launcher.py: no answer to %q (%v)\n%s", line, m.lines.Err(), m.stderrText())
	}
	return m.lines.Text()
}

// stderrText is what the launcher (and moto's server) wrote to stderr so far.
func (m *Moto) stderrText() string { return m.stderr.String() }

// syncBuffer is a buffer the exec package's copier and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
