package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/evidence"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/remediator"
)

// rootwarden evidence writes the pack and its signature from a running remediator's
// evidence API, with the evidence token; evidence verify says the log is whole.
func TestEvidenceCommandWritesASignedPack(t *testing.T) {
	b := bustest.New(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, _ := ssh.MarshalPrivateKey(priv, "")
	signer, err := evidence.NewSigner(pem.EncodeToMemory(blk))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	r, err := remediator.New(remediator.Config{Now: func() time.Time { return now },
		Evidence: remediator.EvidenceConfig{Token: "aud-tok", Signer: signer, SLA: 24 * time.Hour}},
		nil, b, bus.Checker{NC: b.NC}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := model.Observation{SchemaVersion: 1, ID: "o1", AccountID: "222222222222", AccountName: "prod <x>",
		OUPath: "Root/Prod", Source: model.SourceSweep, ObservedAt: now, RootKeysPresent: true,
		Keys: []model.KeyDetail{{Slot: 1, Active: true}}}
	if err := r.HandleFinding(ctx, o); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.APIHandler())
	defer srv.Close()
	t.Setenv("ROOTWARDEN_API_URL", srv.URL)
	t.Setenv("ROOTWARDEN_EVIDENCE_TOKEN", "aud-tok")
	file := filepath.Join(t.TempDir(), "q4.json")
	var stdout, stderr bytes.Buffer
	if code := dispatch(ctx, []string{"evidence", "--from", "2026-10-01", "--to", "2026-12-31", "--ou", "Root/Prod", "-o", "json", "--file", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	body, _ := os.ReadFile(file)
	sig, err := os.ReadFile(file + ".sig")
	if err != nil {
		t.Fatalf("no signature beside the pack: %v (%s)", err, stderr.String())
	}
	if _, err := evidence.VerifySignature(body, sig); err != nil {
		t.Fatal(err)
	}
	var p evidence.Pack
	if err := json.Unmarshal(body, &p); err != nil || len(p.Cases) != 1 || p.Cases[0].AccountName != "prod <x>" {
		t.Fatalf("pack: %v %+v", err, p.Cases)
	}
	stdout.Reset()
	if code := dispatch(ctx, []string{"evidence", "verify"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "ok: no gap") {
		t.Fatalf("verify: exit %d: %s %s", code, stdout.String(), stderr.String())
	}
	t.Setenv("ROOTWARDEN_EVIDENCE_TOKEN", "wrong")
	if code := dispatch(ctx, []string{"evidence", "--from", "2026-10-01"}, &stdout, &stderr); code != 2 {
		t.Fatalf("a wrong token: exit %d", code)
	}
	if code := dispatch(ctx, []string{"evidence", "--from", "yesterday"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "2026-10-01") {
		t.Fatalf("a bad day: exit %d %s", code, stderr.String())
	}
}

// A signing key rootwarden cannot read stops the remediator at start-up with one line
// naming the variable, and never prints the key.
func TestUnreadableEvidenceKeyStopsStartUp(t *testing.T) {
	scanSim(t, 0)
	for k, v := range map[string]string{"ROOTWARDEN_HTTP_ADDR": "127.0.0.1:0", "ROOTWARDEN_CONFIG": "", "ROOTWARDEN_NATS_URL": "",
		"ROOTWARDEN_DATA_DIR": t.TempDir(), "ROOTWARDEN_EVIDENCE_SIGNING_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key-sekrit\n-----END OPENSSH PRIVATE KEY-----"} {
		t.Setenv(k, v)
	}
	code, _, errOut := runCLI(t, "remediator")
	if code != 2 || !strings.Contains(errOut, "ROOTWARDEN_EVIDENCE_SIGNING_KEY") || strings.Contains(errOut, "sekrit") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
