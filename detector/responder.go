package detector

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/rootwarden/rootwarden/internal/model"
)

// onCheck answers one request on bus.SubjectCheck (queue group bus.QueueCheck): a
// model.CheckRequest in, a model.Observation out. The check runs in its own goroutine
// so a slow account does not hold up the next request.
func (d *Detector) onCheck(ctx context.Context, m *nats.Msg) {
	if ctx.Err() != nil {
		return
	}
	select {
	case d.checkSem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	started := d.track(func() {
		defer func() { <-d.checkSem }()
		answer := func(obs model.Observation) {
			data, err := json.Marshal(obs)
			if err != nil {
				d.log.Error("encode check answer", "err", err)
				return
			}
			if m.Reply == "" {
				return
			}
			if err := m.Respond(data); err != nil {
				d.log.Warn("reply to check request", "account", obs.AccountID, "err", safeError(err))
			}
		}
		var req model.CheckRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			d.log.Warn("invalid check request", "reason", "not JSON")
			answer(model.Observation{SchemaVersion: model.SchemaVersion, Source: model.SourceCheck,
				ObservedAt: d.e.cfg.Now().UTC(), Keys: []model.KeyDetail{},
				Error: "check request is not a JSON CheckRequest", ErrorCode: "InvalidRequest"})
			return
		}
		if _, details := d.checkRequest(ctx, req, answer); details != nil {
			details() // after the answer: a verification needs presence only
		}
	})
	if !started {
		<-d.checkSem
	}
}

// checkRequest decides presence in the requested account, hands the observation to
// answer (when set) and then publishes it as a finding (not for an unknown or invalid
// account: there is nothing to find there). The requester, who waits, has the answer
// one publish acknowledgement (a synced write) sooner; the finding is on the stream
// before checkRequest returns. When the key details are still to be read it also
// returns details, which reads them and publishes them as a second finding.
func (d *Detector) checkRequest(ctx context.Context, req model.CheckRequest, answer func(model.Observation)) (model.Observation, func()) {
	log := d.log.With("account", req.AccountID, "request_id", req.RequestID)
	if !accountIDRE.MatchString(req.AccountID) {
		log.Warn("invalid check request", "reason", "account id is not 12 digits")
		obs := model.Observation{SchemaVersion: model.SchemaVersion, AccountID: req.AccountID, Source: model.SourceCheck,
			RequestID: req.RequestID, ObservedAt: d.e.cfg.Now().UTC(), Keys: []model.KeyDetail{},
			Error: "account id must be 12 digits", ErrorCode: "UnknownAccount"}
		if answer != nil {
			answer(obs)
		}
		return obs, nil
	}
	log.Info("check requested", "reason", req.Reason)
	obs, details := d.checkByID(ctx, req.AccountID, model.SourceCheck)
	obs.RequestID = req.RequestID
	if req.RequestID != "" {
		obs.ID = "check-" + req.RequestID
	} else {
		obs.ID = "check-" + newID()
	}
	if answer != nil {
		answer(obs)
	}
	if obs.ErrorCode == "UnknownAccount" {
		log.Warn("check of an unknown account")
		return obs, nil
	}
	if err := d.publish(ctx, obs); err != nil {
		log.Error("publish check finding failed", "err", safeError(err))
	}
	if details == nil {
		return obs, nil
	}
	return obs, func() {
		full, ok := details(ctx)
		if !ok {
			return
		}
		// Not an answer to the request (that was the presence): no RequestID, so the
		// remediator takes it as news about the account, ordered by ObservedAt.
		full.ID = obs.ID + "-details"
		if err := d.publish(ctx, full); err != nil {
			log.Error("publish check details failed", "err", safeError(err))
		}
	}
}
