package remediator

// The evidence API (read-only, for auditors): GET /api/v1/evidence and GET
// /api/v1/evidence/verify, bearer ROOTWARDEN_EVIDENCE_TOKEN, which is not the case
// API's token and opens nothing else (without it the evidence API is off: 404).
// The pack is built from the audit log (RW_CASES) by internal/evidence; each pack
// handed out is recorded on the audit log (bus.SubjectEvidence) with its SHA-256,
// and signed when ROOTWARDEN_EVIDENCE_SIGNING_KEY is set (header
// Rootwarden-Signature: the armored SSH signature, base64).

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/evidence"
	"github.com/rootwarden/rootwarden/internal/model"
)

// EvidenceConfig configures the evidence API (part of Config).
type EvidenceConfig struct {
	// Token is ROOTWARDEN_EVIDENCE_TOKEN; empty turns the evidence API off.
	Token string
	// Signer signs packs (ROOTWARDEN_EVIDENCE_SIGNING_KEY); nil: packs are unsigned.
	Signer *evidence.Signer
	// SLA is the time to remediate a pack counts breaches against (ROOTWARDEN_SLA).
	SLA time.Duration
	// Generator names the rootwarden version in packs.
	Generator string
}

// Headers of an evidence answer.
const (
	HeaderEvidenceSHA256 = "Rootwarden-Evidence-Sha256"
	HeaderSignature      = "Rootwarden-Signature"
	HeaderSigner         = "Rootwarden-Signer"
)

func (r *Remediator) evidenceRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/evidence", r.evidenceAuth(r.serveEvidence))
	mux.HandleFunc("GET /api/v1/evidence/verify", r.evidenceAuth(r.serveVerify))
}

func (r *Remediator) evidenceAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		want := r.cfg.Evidence.Token
		if want == "" {
			writeErr(w, http.StatusNotFound, model.CodeNotFound, "the evidence API is off: set ROOTWARDEN_EVIDENCE_TOKEN to turn it on")
			return
		}
		tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rootwarden-evidence"`)
			writeErr(w, http.StatusUnauthorized, model.CodeUnauthorized, "missing or wrong bearer token (the evidence API takes ROOTWARDEN_EVIDENCE_TOKEN)")
			return
		}
		next(w, req)
	}
}

// ParsePeriod reads from and to: a day (2026-10-01; to includes its whole day) or an
// RFC 3339 time. to defaults to now.
func ParsePeriod(from, to string, now time.Time) (time.Time, time.Time, error) {
	parse := func(s string, end bool) (time.Time, error) {
		if t, err := time.Parse("2006-01-02", s); err == nil {
			if end {
				t = t.AddDate(0, 0, 1)
			}
			return t, nil
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is neither a day (2026-10-01) nor an RFC 3339 time", s)
		}
		return t, nil
	}
	if from == "" {
		return time.Time{}, time.Time{}, errors.New("from is required (a day such as 2026-10-01)")
	}
	f, err := parse(from, false)
	if err != nil {
		return f, f, fmt.Errorf("from: %w", err)
	}
	t := now
	if to != "" {
		if t, err = parse(to, true); err != nil {
			return f, t, fmt.Errorf("to: %w", err)
		}
	}
	if !f.Before(t) {
		return f, t, errors.New("from must be before to")
	}
	return f.UTC(), t.UTC(), nil
}

func (r *Remediator) serveEvidence(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	now := r.cfg.Now()
	from, to, err := ParsePeriod(q.Get("from"), q.Get("to"), now)
	if err != nil {
		writeErr(w, http.StatusBadRequest, model.CodeInvalid, err.Error())
		return
	}
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if !strings.Contains(","+strings.Join(evidence.Formats, ",")+",", ","+format+",") {
		writeErr(w, http.StatusBadRequest, model.CodeInvalid, "unknown format "+format+" (json, csv, html)")
		return
	}
	pack, err := r.EvidencePack(req.Context(), from, to, q.Get("ou"))
	if err != nil {
		writeCodeErr(w, err)
		return
	}
	body, ctype, err := evidence.Render(pack, format)
	if err != nil {
		writeCodeErr(w, model.Wrap(model.CodeInternal, err, "render the evidence pack"))
		return
	}
	sum := sha256.Sum256(body)
	rec := model.EvidenceExport{SchemaVersion: model.SchemaVersion, At: now.UTC(), From: from, To: to,
		OU: q.Get("ou"), Format: format, SHA256: hex.EncodeToString(sum[:]), Cases: len(pack.Cases)}
	rec.ID = "evidence-" + strconv.FormatInt(now.UnixNano(), 36) + "-" + rec.SHA256[:12]
	var sig []byte
	if s := r.cfg.Evidence.Signer; s != nil {
		if sig, err = s.Sign(body); err != nil {
			writeCodeErr(w, model.Wrap(model.CodeInternal, err, "sign the evidence pack"))
			return
		}
		rec.Signer = s.PublicKey()
	}
	// Recorded before it is handed out: a pack nobody can find on the log was never given.
	if _, err := r.b.PublishJSON(req.Context(), bus.SubjectEvidence, rec.ID, rec); err != nil {
		writeCodeErr(w, model.Wrap(model.CodeTransient, err, "record the evidence export on the audit log"))
		return
	}
	r.log.Info("evidence pack exported", "from", from, "to", to, "ou", rec.OU, "format", format, "sha256", rec.SHA256, "cases", rec.Cases)
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(HeaderEvidenceSHA256, rec.SHA256)
	if sig != nil {
		w.Header().Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
		w.Header().Set(HeaderSigner, rec.Signer)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (r *Remediator) serveVerify(w http.ResponseWriter, req *http.Request) {
	rep, err := r.VerifyAuditLog(req.Context())
	if err != nil {
		writeCodeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// EvidencePack builds the pack of [from, to) for accounts at or under ou.
func (r *Remediator) EvidencePack(ctx context.Context, from, to time.Time, ou string) (evidence.Pack, error) {
	msgs, begins, err := readAuditLog(ctx, r.b)
	if err != nil {
		return evidence.Pack{}, err
	}
	heads, err := r.chainHeads(ctx)
	if err != nil {
		return evidence.Pack{}, err
	}
	rep := evidence.VerifyChain(msgs, heads)
	sweeps, posture, err := readHistory(ctx, r.b)
	if err != nil {
		return evidence.Pack{}, err
	}
	return evidence.Build(msgs, evidence.Options{From: from, To: to, OU: ou, SLA: r.cfg.Evidence.SLA,
		Generated: r.cfg.Now(), Generator: r.cfg.Evidence.Generator, RecordBegins: begins, Integrity: &rep,
		Sweeps: sweeps, Posture: posture,
		RoutedTo: func(caseID string) string { return r.routedTo(ctx, caseID) }}), nil
}

// VerifyAuditLog checks the audit log's hash chain against the cases' state.
func (r *Remediator) VerifyAuditLog(ctx context.Context) (evidence.Report, error) {
	msgs, _, err := readAuditLog(ctx, r.b)
	if err != nil {
		return evidence.Report{}, err
	}
	heads, err := r.chainHeads(ctx)
	if err != nil {
		return evidence.Report{}, err
	}
	return evidence.VerifyChain(msgs, heads), nil
}

// chainHeads is, per account, its last published event as the state records it:
// the event before the first outbox event while events wait to be published.
func (r *Remediator) chainHeads(ctx context.Context) (map[string]evidence.Head, error) {
	recs, err := r.records(ctx)
	if err != nil {
		return nil, err
	}
	heads := map[string]evidence.Head{}
	for _, rec := range recs {
		h := evidence.Head{Hash: rec.ChainHead, EventID: EventID(rec.ID, rec.Seq)}
		if len(rec.Outbox) > 0 {
			first := rec.Outbox[0]
			h.Hash = first.PrevHash
			h.EventID = ""
			if first.Seq > 1 {
				h.EventID = EventID(first.CaseID, first.Seq-1)
			}
		}
		if h.Hash != "" && h.Hash != model.ChainStart {
			heads[rec.AccountID] = h
		}
	}
	return heads, nil
}

// routedTo is the Slack channel a case was posted to, "" when unknown.
func (r *Remediator) routedTo(ctx context.Context, caseID string) string {
	e, err := r.b.Slack.Get(ctx, caseID)
	if err != nil {
		return ""
	}
	var ref model.SlackRef
	if json.Unmarshal(e.Value(), &ref) != nil {
		return ""
	}
	return ref.Channel
}

// readHistory reads the retained history (RW_HISTORY).
func readHistory(ctx context.Context, b *bus.Bus) ([]model.SweepHistory, []model.PostureHistory, error) {
	msgs, _, err := readStream(ctx, b, bus.StreamHistory)
	if err != nil {
		return nil, nil, err
	}
	var sweeps []model.SweepHistory
	var posture []model.PostureHistory
	for _, m := range msgs {
		switch {
		case strings.HasPrefix(m.Subject, bus.SubjectHistorySweep):
			var h model.SweepHistory
			if json.Unmarshal(m.Data, &h) == nil && h.SweepID != "" {
				sweeps = append(sweeps, h)
			}
		case strings.HasPrefix(m.Subject, bus.SubjectHistoryPosture):
			var h model.PostureHistory
			if json.Unmarshal(m.Data, &h) == nil && h.AccountID != "" {
				posture = append(posture, h)
			}
		}
	}
	return sweeps, posture, nil
}

// readAuditLog reads every message of RW_CASES and the time of the oldest one.
func readAuditLog(ctx context.Context, b *bus.Bus) ([]evidence.Message, time.Time, error) {
	return readStream(ctx, b, bus.StreamCases)
}

// readStream reads every message of a stream through an ephemeral consumer that it
// deletes when done (no consumer is left behind), and the time of the oldest one.
func readStream(ctx context.Context, b *bus.Bus, stream string) ([]evidence.Message, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	s, err := b.JS.Stream(ctx, stream)
	if err != nil {
		return nil, time.Time{}, model.Wrap(model.CodeTransient, err, "open %s", stream)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, time.Time{}, model.Wrap(model.CodeTransient, err, "read the state of %s", stream)
	}
	begins := info.State.FirstTime
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, time.Time{}, nil
	}
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: time.Minute, MemoryStorage: true})
	if err != nil {
		return nil, time.Time{}, model.Wrap(model.CodeTransient, err, "read %s", stream)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer dcancel()
		_ = s.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	var out []evidence.Message
	for done := false; !done; {
		batch, err := cons.Fetch(512, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, time.Time{}, model.Wrap(model.CodeTransient, err, "read %s", stream)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			out = append(out, evidence.Message{Seq: md.Sequence.Stream, Subject: m.Subject(), Time: md.Timestamp,
				Data: append([]byte(nil), m.Data()...)})
			if md.Sequence.Stream >= last {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && n == 0 {
			return nil, time.Time{}, model.Wrap(model.CodeTransient, err, "read %s", stream)
		}
		if n == 0 {
			break
		}
	}
	return out, begins, nil
}
