package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/rootwarden/rootwarden/internal/model"
)

// Checker asks a detector to check one account now over request/reply on
// SubjectCheck. The detector also publishes the answer as a finding.
type Checker struct {
	NC *nats.Conn
}

var _ model.Checker = Checker{}

// Check implements model.Checker.
func (c Checker) Check(ctx context.Context, accountID, reason string) (model.Observation, error) {
	req := model.CheckRequest{SchemaVersion: model.SchemaVersion, RequestID: nats.NewInbox()[len(nats.InboxPrefix):],
		AccountID: accountID, Reason: reason}
	data, err := json.Marshal(req)
	if err != nil {
		return model.Observation{}, fmt.Errorf("encode check of %s: %w", accountID, err)
	}
	msg, err := c.NC.RequestWithContext(ctx, SubjectCheck, data)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return model.Observation{}, model.Wrap(model.CodeTransient, err, "check account %s: no detector is running", accountID)
		}
		return model.Observation{}, model.Wrap(model.CodeTransient, err, "check account %s", accountID)
	}
	var obs model.Observation
	if err := json.Unmarshal(msg.Data, &obs); err != nil {
		return model.Observation{}, fmt.Errorf("decode check answer for %s: %w", accountID, err)
	}
	if obs.AccountID != accountID {
		return model.Observation{}, model.Errorf(model.CodeInvalid, "check account %s: %s", accountID, orDefault(obs.Error, "answer for another account"))
	}
	return obs, nil
}
