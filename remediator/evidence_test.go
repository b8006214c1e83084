package remediator

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/ssh"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/evidence"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

const evidenceTk = "auditor-only-token"

const (
	devAcct   = "333333333333"
	stillAcct = "444444444444"
)

// evidenceStory drives three cases through the real remediator on a real bus:
// acct (Root/Prod) approved, "deleted" by alice and verified by AWS; devAcct
// (Root/Dev) risk accepted; stillAcct (Root/Prod) opened and left open.
func evidenceStory(t *testing.T, opts ...opt) (*Remediator, *bus.Bus, *testutil.Clock) {
	t.Helper()
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	resp := startResponder(t, b, clk)
	resp.set(acct, true)
	r := newRem(t, b, clk, tracker.NewBuiltin(b), append([]opt{func(c *Config) {
		c.Evidence = EvidenceConfig{Token: evidenceTk, SLA: 24 * time.Hour, Generator: "rootwarden test"}
	}}, opts...)...)
	find := func(account, ou string, present bool, src model.Source) {
		t.Helper()
		o := observation(account, present, src, clk.Now())
		o.OUPath = ou
		if err := r.HandleFinding(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	act := func(a model.Action) {
		t.Helper()
		a.At = clk.Now()
		if err := r.HandleAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	find(acct, "Root/Prod/Payments", true, model.SourceSweep)
	clk.Add(10 * time.Minute)
	act(action(model.ActionApprove, acct, caseID(acct, 1)))
	r.work(ctx, acct)
	waitState(t, r, acct, model.StateTicketed)
	clk.Add(2 * time.Hour)
	resp.set(acct, false)
	act(action(model.ActionConfirmDeleted, acct, caseID(acct, 1)))
	r.work(ctx, acct)
	waitState(t, r, acct, model.StateResolved)

	clk.Set(t0.Add(time.Hour))
	find(devAcct, "Root/Dev", true, model.SourceEvent)
	clk.Add(5 * time.Minute)
	accept := action(model.ActionAcceptRisk, devAcct, CaseID(devAcct, 1, t0.Add(time.Hour)))
	accept.Reason = "legacy <b>billing</b> integration, moving in Q1"
	exp := t0.Add(60 * 24 * time.Hour)
	accept.Expires = &exp
	act(accept)

	clk.Set(t0.Add(3 * time.Hour))
	find(stillAcct, "Root/Prod", true, model.SourceSweep)
	clk.Set(t0.Add(50 * time.Hour))
	return r, b, clk
}

func streamCaseEvents(t *testing.T, b *bus.Bus) []model.CaseEvent {
	t.Helper()
	var out []model.CaseEvent
	for _, a := range []string{acct, devAcct, stillAcct} {
		out = append(out, allEvents(t, b, a)...)
	}
	return out
}

// The pack holds every transition of the audit log once, and nothing the log does
// not hold; its case facts are the log's.
func TestEvidencePackMatchesTheAuditLogOneToOne(t *testing.T) {
	r, b, _ := evidenceStory(t)
	ctx := ctxT(t)
	pack, err := r.EvidencePack(ctx, t0.Add(-24*time.Hour), t0.Add(7*24*time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	var fromPack []string
	for _, c := range pack.Cases {
		for _, e := range c.Timeline {
			fromPack = append(fromPack, e.EventID+" "+e.Type+" "+e.To)
		}
	}
	var fromLog []string
	for _, e := range streamCaseEvents(t, b) {
		fromLog = append(fromLog, e.ID+" "+string(e.Type)+" "+string(e.To))
	}
	slices.Sort(fromPack)
	slices.Sort(fromLog)
	if !slices.Equal(fromPack, fromLog) || len(fromLog) < 8 {
		t.Fatalf("pack transitions differ from the audit log:\npack %q\nlog  %q", fromPack, fromLog)
	}
	if !pack.Integrity.OK || pack.Integrity.BeforeChain != 0 || pack.Integrity.Chained != len(fromLog) {
		t.Fatalf("integrity: %+v", pack.Integrity)
	}
	byAcc := map[string]evidence.Case{}
	for _, c := range pack.Cases {
		byAcc[c.AccountID] = c
	}
	prod := byAcc[acct]
	if prod.Approved == nil || prod.Approved.By.Name != "alice" || prod.Ticket == nil || prod.Ticket.System != "builtin" {
		t.Errorf("approval or ticket missing: %+v", prod)
	}
	if prod.Removed == nil || prod.Removed.How != "person" || prod.Removed.By.Name != "alice" {
		t.Errorf("removal: %+v", prod.Removed)
	}
	if prod.Verified == nil || !strings.Contains(prod.Verified.Answer, "no root access keys") ||
		prod.TTRSeconds == nil || *prod.TTRSeconds != int64((2*time.Hour+10*time.Minute)/time.Second) {
		t.Errorf("verification or time to remediate: %+v %v", prod.Verified, prod.TTRSeconds)
	}
	dev := byAcc[devAcct]
	if len(dev.Risk) != 1 || dev.Risk[0].Reason != "legacy <b>billing</b> integration, moving in Q1" ||
		!dev.Risk[0].Expires.Equal(t0.Add(60*24*time.Hour)) || dev.Risk[0].By.Name != "alice" || dev.Detected.By != "event" {
		t.Errorf("risk acceptance: %+v", dev)
	}
	s := pack.Summary
	if s.CasesOpened != 3 || s.CasesResolved != 1 || s.CasesRiskAccepted != 1 || s.OpenAtEnd != 2 || s.SLABreaches != 1 ||
		s.TTRMedianSeconds != *prod.TTRSeconds {
		t.Errorf("summary: %+v", s)
	}
	var post evidence.Account
	for _, a := range pack.Accounts {
		if a.AccountID == acct {
			post = a
		}
	}
	if post.PostureAtFrom["access_keys"] != "unknown" || post.PostureAtTo["access_keys"] != "absent" || len(post.Changes) != 2 {
		t.Errorf("posture of %s: %+v", acct, post)
	}

	// A period after the first case was resolved starts with the keys absent and
	// holds no case of that account.
	later, err := r.EvidencePack(ctx, t0.Add(30*time.Hour), t0.Add(40*time.Hour), "Root/Prod")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range later.Cases {
		if c.AccountID != stillAcct {
			t.Errorf("later period, Root/Prod: unexpected case %s", c.CaseID)
		}
	}
	for _, a := range later.Accounts {
		if a.AccountID == acct && (a.PostureAtFrom["access_keys"] != "absent" || len(a.Changes) != 0) {
			t.Errorf("posture at the later start: %+v", a)
		}
		if a.AccountID == devAcct {
			t.Errorf("Root/Dev account in a Root/Prod pack")
		}
	}
}

// Deleting an event from the audit log, or rewriting one, is found and named.
func TestEvidenceVerifyNamesADeletedAndAnEditedEvent(t *testing.T) {
	r, b, _ := evidenceStory(t)
	ctx := ctxT(t)
	rep, err := r.VerifyAuditLog(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("untouched log: %+v %v", rep, err)
	}
	s, err := b.JS.Stream(ctx, bus.StreamCases)
	if err != nil {
		t.Fatal(err)
	}
	// Delete acct's second event (the approval).
	victim := findMsg(t, ctx, s, caseID(acct, 1)+"/2")
	if err := s.DeleteMsg(ctx, victim.Sequence); err != nil {
		t.Fatal(err)
	}
	rep, _ = r.VerifyAuditLog(ctx)
	if rep.OK || !hasProblem(rep, "missing", caseID(acct, 1)+"/2") {
		t.Fatalf("a deleted event went unnoticed: %+v", rep.Problems)
	}

	// Rewrite devAcct's risk acceptance (a softer reason), keeping every other byte:
	// the stream is rebuilt as someone with admin rights on NATS could.
	// And its first event (the detection): a CloudTrail event said nothing.
	var edited, editedFirst string
	evs := allEvents(t, b, devAcct)
	for _, e := range evs {
		if e.Type == model.EventRiskAccepted {
			edited = e.ID
		}
	}
	editedFirst = evs[0].ID
	var raws [][]byte
	for _, e := range evs {
		m := findMsg(t, ctx, s, e.ID)
		data := m.Data
		if e.ID == edited {
			data = []byte(strings.Replace(string(data), "moving in Q1", "approved by the CISO", 1))
		}
		if e.ID == editedFirst {
			data = []byte(strings.Replace(string(data), `"found_by":"event"`, `"found_by":"sweep"`, 1))
		}
		raws = append(raws, data)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(bus.CaseSubject(devAcct))); err != nil {
		t.Fatal(err)
	}
	for _, d := range raws {
		if _, err := b.JS.Publish(ctx, bus.CaseSubject(devAcct), d); err != nil {
			t.Fatal(err)
		}
	}
	rep, _ = r.VerifyAuditLog(ctx)
	for _, p := range rep.Problems {
		t.Log(p)
	}
	if !hasProblem(rep, "edited", edited) || !hasProblem(rep, "edited", editedFirst) {
		t.Fatalf("an edited event went unnoticed: %+v", rep.Problems)
	}
	if !hasProblem(rep, "missing", caseID(acct, 1)+"/2") {
		t.Fatalf("the deletion is no longer reported: %+v", rep.Problems)
	}
}

func findMsg(t *testing.T, ctx context.Context, s jetstream.Stream, eventID string) *jetstream.RawStreamMsg {
	t.Helper()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		var ev model.CaseEvent
		if json.Unmarshal(m.Data, &ev) == nil && ev.ID == eventID {
			return m
		}
	}
	t.Fatalf("event %s not in the stream", eventID)
	return nil
}

func hasProblem(rep evidence.Report, kind, eventID string) bool {
	for _, p := range rep.Problems {
		if p.Kind == kind && strings.Contains(p.EventID, eventID) {
			return true
		}
	}
	return false
}

// The evidence API takes its own token only; the pack is signed, the signature
// checks with ssh-keygen, and the export is recorded on the audit log with its hash.
func TestEvidenceAPITokenSignatureAndRecord(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKey(priv, "rootwarden evidence")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(blk)
	signer, err := evidence.NewSigner(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	r, b, _ := evidenceStory(t, func(c *Config) { c.Evidence.Signer = signer })
	h := r.APIHandler()
	get := func(path, tok string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := get("/api/v1/evidence?from=2026-11-01", testTk); rec.Code != http.StatusUnauthorized {
		t.Fatalf("the case API token opened the evidence API: %d", rec.Code)
	}
	if rec := get("/api/v1/cases", evidenceTk); rec.Code != http.StatusUnauthorized {
		t.Fatalf("the evidence token opened the case API: %d", rec.Code)
	}
	if rec := get("/api/v1/evidence?from=2026-12-01&to=2026-11-01", evidenceTk); rec.Code != http.StatusBadRequest {
		t.Fatalf("a reversed period: %d %s", rec.Code, rec.Body)
	}
	rec := get("/api/v1/evidence?from=2026-11-01&to=2026-12-31&format=json", evidenceTk)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	body := rec.Body.Bytes()
	var pack evidence.Pack
	if err := json.Unmarshal(body, &pack); err != nil || pack.SchemaVersion != 1 || len(pack.Cases) != 3 {
		t.Fatalf("pack: %v %+v", err, pack.Summary)
	}
	sig, err := base64.StdEncoding.DecodeString(rec.Header().Get(HeaderSignature))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.VerifySignature(body, sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if _, err := evidence.VerifySignature(append(slices.Clone(body), ' '), sig); err == nil {
		t.Fatal("a changed pack passed its signature")
	}
	sshKeygenVerify(t, signer.PublicKey(), body, sig)

	sum := sha256.Sum256(body)
	ctx := ctxT(t)
	s, _ := b.JS.Stream(ctx, bus.StreamCases)
	m, err := s.GetLastMsgForSubject(ctx, bus.SubjectEvidence)
	if err != nil {
		t.Fatalf("no export on the audit log: %v", err)
	}
	var exp model.EvidenceExport
	if err := json.Unmarshal(m.Data, &exp); err != nil || exp.SHA256 != hex.EncodeToString(sum[:]) || exp.Signer != signer.PublicKey() {
		t.Fatalf("export record %+v (want sha256 %x)", exp, sum)
	}
	// The case readers' consumers never see it, and reading left no consumer behind.
	for _, c := range []string{"csv", "html"} {
		if rec := get("/api/v1/evidence?from=2026-11-01&format="+c, evidenceTk); rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", c, rec.Code)
		}
	}
	names := s.ConsumerNames(ctx)
	for n := range names.Name() {
		t.Errorf("consumer %s left on RW_CASES", n)
	}
}

// sshKeygenVerify checks the signature with OpenSSH's own ssh-keygen, when present.
func sshKeygenVerify(t *testing.T, pub string, body, sig []byte) {
	t.Helper()
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Log("ssh-keygen not installed: the SSHSIG format is checked in Go only")
		return
	}
	dir := t.TempDir()
	pack, sigf, allowed := filepath.Join(dir, "pack.json"), filepath.Join(dir, "pack.json.sig"), filepath.Join(dir, "allowed_signers")
	_ = os.WriteFile(pack, body, 0o600)
	_ = os.WriteFile(sigf, sig, 0o600)
	_ = os.WriteFile(allowed, []byte(`rootwarden namespaces="rootwarden-evidence" `+pub+"\n"), 0o600)
	run := func(data []byte) (string, error) {
		cmd := exec.Command(keygen, "-Y", "verify", "-f", allowed, "-I", "rootwarden", "-n", "rootwarden-evidence", "-s", sigf)
		cmd.Stdin = strings.NewReader(string(data))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(body); err != nil {
		t.Fatalf("ssh-keygen -Y verify refused the pack: %v\n%s", err, out)
	}
	if out, err := run(append(slices.Clone(body), '\n')); err == nil {
		t.Fatalf("ssh-keygen -Y verify accepted a changed pack:\n%s", out)
	}
}

// The pack reports the coverage the sweeps of the period left on the history, and
// the remediator records each posture change there.
func TestEvidencePackShowsCoverageFromTheHistory(t *testing.T) {
	r, b, _ := evidenceStory(t)
	ctx := ctxT(t)
	sweep := model.SweepHistory{SchemaVersion: 1, SweepID: "20261127T110000Z-ab", StartedAt: t0.Add(-time.Hour)}
	listed, checked := sweep, sweep
	listed.Kind, listed.Listed = "listed", 40
	checked.Kind, checked.Checked, checked.Unchecked = "checked", 39, map[string]string{"555555555555": "AccessDenied"}
	checked.WithRootCredentials = map[string]int{"access_keys": 1}
	for i, h := range []model.SweepHistory{listed, checked} {
		if _, err := b.PublishJSON(ctx, bus.HistorySweepSubject(h.SweepID), fmt.Sprint("h", i), h); err != nil {
			t.Fatal(err)
		}
	}
	pack, err := r.EvidencePack(ctx, t0.Add(-24*time.Hour), t0.Add(7*24*time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	c := pack.Coverage
	if c == nil || c.Sweeps != 1 || c.AccountsListed != 40 || c.Checks != 39 || c.Unchecked["AccessDenied"] != 1 ||
		c.UncheckedAccounts["555555555555"] != "AccessDenied" {
		t.Fatalf("coverage %+v", c)
	}
	// The period starts a day before the first recorded sweep: the pack says so.
	if !slices.ContainsFunc(pack.Completeness, func(n string) bool { return strings.Contains(n, "history of sweeps begins at 2026-11-27T11:00:00Z") }) ||
		slices.ContainsFunc(pack.Completeness, func(n string) bool { return strings.Contains(n, "holds no sweep") }) {
		t.Errorf("completeness notes: %q", pack.Completeness)
	}
	_, posture, err := readHistory(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range posture {
		if p.AccountID == acct {
			got = append(got, p.Credentials["access_keys"])
		}
	}
	if !slices.Equal(got, []string{"present", "absent"}) {
		t.Errorf("posture history of %s: %q, want present then absent", acct, got)
	}
}
