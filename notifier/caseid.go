package notifier

// What a person may type after `/rootwarden case`: the full case id the message shows
// ("<account>-<n>-<opened>"), the short "<account>-<n>" that `rootwarden cases show`
// and `rootwarden sim click` take, or an account id (its current case). Each is
// resolved to a full case id here, from the account's current case and, for an older
// case, its events on RW_CASES.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// resolveCaseID returns the account and the full id of the case arg names. ok is false
// when arg is neither a case id nor an account id; id is "" when there is no such case.
func (n *Notifier) resolveCaseID(ctx context.Context, arg string) (account, id string, ok bool, err error) {
	short := false
	switch m := caseIDRE.FindStringSubmatch(arg); {
	case accountRE.MatchString(arg):
		account = arg
	case m != nil:
		account, short = m[1], m[3] == ""
		if !short {
			return account, arg, true, nil
		}
	default:
		return "", "", false, nil
	}
	e, err := n.b.Cases.Get(ctx, account)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		if !short {
			return account, "", true, nil // an account with no case ever
		}
	case err != nil:
		return account, "", true, fmt.Errorf("read the case of %s: %w", account, err)
	default:
		var cur model.Case
		if json.Unmarshal(e.Value(), &cur) == nil && cur.ID != "" &&
			(!short || cur.ID == arg || strings.HasPrefix(cur.ID, arg+"-")) {
			return account, cur.ID, true, nil
		}
		if !short {
			return account, "", true, nil
		}
	}
	// An older case of the account: the newest one of its events that the short id names.
	id, err = n.caseIDFromHistory(ctx, account, arg)
	return account, id, true, err
}

// caseIDFromHistory finds the full id of the case "<account>-<n>" names among the
// account's case events (the newest, should a fresh data dir have reused the number).
func (n *Notifier) caseIDFromHistory(ctx context.Context, account, short string) (string, error) {
	cons, err := n.b.JS.OrderedConsumer(ctx, bus.StreamCases, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.CaseSubject(account)}})
	if err != nil {
		return "", fmt.Errorf("read case events of %s: %w", account, err)
	}
	found := ""
	for ctx.Err() == nil {
		batch, err := cons.FetchNoWait(200)
		if err != nil {
			return "", fmt.Errorf("fetch case events of %s: %w", account, err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			var ev struct {
				CaseID string `json:"case_id"`
			}
			if json.Unmarshal(msg.Data(), &ev) == nil && (ev.CaseID == short || strings.HasPrefix(ev.CaseID, short+"-")) {
				found = ev.CaseID
			}
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), jetstream.ErrNoMessages) {
			return "", batch.Error()
		}
		if got == 0 {
			break
		}
	}
	return found, ctx.Err()
}
