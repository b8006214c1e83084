package detector

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// handleActivity publishes a root activity report for the account (with the name,
// OU and tags the inventory knows, for routing and the owner), then deletes the
// message. Failed sign-ins are counted; the FailedLoginThreshold-th of an account
// within its hour is reported, the others are deleted unreported.
func (d *Detector) handleActivity(ctx context.Context, act activityEvent, m sqstypes.Message, log *slog.Logger) {
	log = log.With("account", act.Account, "event_id", act.Item.EventID, "event_name", act.Item.EventName, "activity", act.Item.Kind)
	if act.Failed {
		n, report := d.failed.add(act.Account, orNow(act.Item.At, d.e.cfg.Now()))
		if !report {
			log.Debug("failed root sign-in counted", "failures_this_hour", n)
			d.deleteMessage(ctx, m, log)
			return
		}
		act.Item.Failures = n
	}
	rep := model.ActivityReport{SchemaVersion: model.SchemaVersion, ID: "activity-" + act.Item.EventID,
		AccountID: act.Account, Item: act.Item}
	if a, err := d.e.lookup(ctx, act.Account); err == nil {
		rep.AccountName, rep.OUPath, rep.Tags, rep.Management = a.Name, a.OUPath, a.Tags, a.Management
	} else {
		// Unknown or unreadable account: still ask (the question goes to the on-call
		// approver without an owner), the account id alone.
		log.Debug("root activity of an account not in the inventory", "err", safeError(err))
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := d.b.PublishJSON(pctx, bus.ActivitySubject(act.Account), rep.ID, rep); err != nil {
		n, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
		if n < maxReceives {
			log.Error("publish root activity failed; the message will come back", "err", safeError(err), "receives", n)
			if act.Failed {
				d.failed.undo(act.Account, orNow(act.Item.At, d.e.cfg.Now()))
			}
			return
		}
		log.Error("publish root activity failed too often; deleting the message", "err", safeError(err), "receives", n)
	} else {
		d.e.met.published.WithLabelValues("activity").Inc()
		log.Info("root activity published")
	}
	d.deleteMessage(ctx, m, log)
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}
