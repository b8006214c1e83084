package evidence

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

// Keys made by ssh-keygen itself (OpenSSH format) sign packs that ssh-keygen -Y
// verify accepts, for each key type an operator may have; a changed pack, another
// namespace or another key are refused.
func TestSignatureVerifiesWithSSHKeygen(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed (apt-get install openssh-client): the stock-tool check needs it")
	}
	pack := []byte(`{"schema_version":1,"kind":"rootwarden.evidence"}` + "\n")
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(typ, func(t *testing.T) {
			dir := t.TempDir()
			key := filepath.Join(dir, "key")
			if out, err := exec.Command(keygen, "-q", "-t", typ, "-N", "", "-C", "rootwarden", "-f", key).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v %s", err, out)
			}
			pem, _ := os.ReadFile(key)
			s, err := NewSigner(pem)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.Sign(pack)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := VerifySignature(pack, sig); err != nil {
				t.Fatalf("own verify: %v", err)
			}
			file, sigf, allowed := filepath.Join(dir, "pack.json"), filepath.Join(dir, "pack.json.sig"), filepath.Join(dir, "allowed")
			_ = os.WriteFile(file, pack, 0o600)
			_ = os.WriteFile(sigf, sig, 0o600)
			_ = os.WriteFile(allowed, []byte(`auditor namespaces="rootwarden-evidence" `+s.PublicKey()+"\n"), 0o600)
			verify := func(data []byte, ns string) error {
				cmd := exec.Command(keygen, "-Y", "verify", "-f", allowed, "-I", "auditor", "-n", ns, "-s", sigf)
				cmd.Stdin = strings.NewReader(string(data))
				out, err := cmd.CombinedOutput()
				if err != nil {
					return &exec.ExitError{Stderr: out}
				}
				return nil
			}
			if err := verify(pack, Namespace); err != nil {
				t.Fatalf("ssh-keygen -Y verify refused a good pack: %s", err.(*exec.ExitError).Stderr)
			}
			if verify(append([]byte("x"), pack...), Namespace) == nil {
				t.Fatal("ssh-keygen accepted a changed pack")
			}
			if verify(pack, "file") == nil {
				t.Fatal("ssh-keygen accepted the signature in another namespace")
			}
		})
	}
}

func TestSignerRefusesAKeyWithAPassphrase(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed")
	}
	key := filepath.Join(t.TempDir(), "key")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "secret", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	pem, _ := os.ReadFile(key)
	if _, err := NewSigner(pem); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("want a passphrase error, got %v", err)
	}
}

// A value a spreadsheet would run as a formula is quoted in the CSV; each case event
// is one row.
func TestCSVNeutralisesFormulas(t *testing.T) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ev := model.CaseEvent{ID: "c-1/1", CaseID: "c-1", AccountID: "1", Seq: 1, Type: model.EventOpened, To: model.StateOpen,
		At: at, Reason: "=HYPERLINK(\"https://evil\")", Actor: model.System,
		Case: model.Case{AccountName: "@SUM(1)", OpenedAt: at, FoundBy: model.SourceSweep}}
	p := Build([]Message{{Seq: 1, Subject: "rootwarden.cases.1", Data: mustJSON(t, ev)}},
		Options{From: at.Add(-time.Hour), To: at.Add(time.Hour)})
	b, err := CSV(p)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows: %v %v", rows, err)
	}
	for _, v := range rows[1] {
		if strings.HasPrefix(v, "=") || strings.HasPrefix(v, "@") {
			t.Errorf("formula left as is: %q", v)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every value from AWS, Slack or a tracker is escaped where it lands in the HTML
// report: a hostile account name, OU, reason or ticket URL stays text.
func TestHTMLEscapesEveryOutsideValue(t *testing.T) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	hostile := `<img src=x onerror=alert(1)>"'&`
	snap := model.Case{AccountName: hostile, OUPath: "Root/" + hostile, OpenedAt: at, FoundBy: model.SourceSweep,
		Severity: "high\" onmouseover=\"x", Ticket: &model.TicketRef{System: "jira", ID: hostile, URL: "javascript:alert(1)"}}
	evs := []model.CaseEvent{
		{ID: "c-1/1", CaseID: "c-1", AccountID: "1", Seq: 1, Type: model.EventOpened, To: model.StateOpen, At: at, Reason: hostile, Actor: model.System, Case: snap},
		{ID: "c-1/2", CaseID: "c-1", AccountID: "1", Seq: 2, Type: model.EventTicketed, From: model.StateOpen, To: model.StateTicketed, At: at.Add(time.Minute),
			Reason: "</li></ol><script>alert(1)</script>", Actor: model.Actor{Kind: model.ActorSlack, ID: "U1", Name: hostile}, Case: snap},
	}
	var msgs []Message
	for i, e := range evs {
		msgs = append(msgs, Message{Seq: uint64(i + 1), Subject: "rootwarden.cases.1", Data: mustJSON(t, e)})
	}
	p := Build(msgs, Options{From: at.Add(-time.Hour), To: at.Add(time.Hour), RoutedTo: func(string) string { return "<#C1|x>" + hostile }})
	b, err := HTML(p)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, bad := range []string{"<img", "<script", `" onmouseover`, `href="javascript`} {
		if strings.Contains(page, bad) {
			t.Errorf("unescaped %q in the report", bad)
		}
	}
	if !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Error("the hostile name is not shown as text")
	}
}
