package detector

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/wait"
)

// maxInFlightEvents bounds the event messages handled at once by one detector.
const maxInFlightEvents = 64

// maxReceives is how often a message whose finding could not be published comes
// back before it is deleted anyway (the next sweep still sees the account).
const maxReceives = 10

// pollEvents long-polls the SQS queue until ctx ends. Every message ends deleted:
// after its observation is published, or at once when it is malformed or irrelevant.
func (d *Detector) pollEvents(ctx context.Context) error {
	log := d.log.With("queue", d.e.cfg.SQSQueueURL)
	backoff := time.Second
	lastErr := ""
	// Messages are handled each on its own; the next receive asks for as many as
	// there are free slots (at most 10, SQS's limit), so one slow account never
	// holds up the events after it. slots holds a token per free slot; a receive
	// takes the tokens of what it asks for and gives back what it did not get; each
	// message gives its token back when it is done.
	slots := make(chan struct{}, maxInFlightEvents)
	for range maxInFlightEvents {
		slots <- struct{}{}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		select {
		case <-slots:
		case <-ctx.Done():
			return nil
		}
		asked := 1
		for asked < 10 {
			select {
			case <-slots:
				asked++
				continue
			default:
			}
			break
		}
		out, err := d.e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(d.e.cfg.SQSQueueURL),
			MaxNumberOfMessages: int32(asked),
			WaitTimeSeconds:     20,
			// Hidden while its check runs (presence, then the details: up to
			// AccountTimeout each), so another detector does not check the same event
			// meanwhile; SQS allows at most 12 hours.
			VisibilityTimeout:           int32(min(2*d.e.cfg.AccountTimeout+30*time.Second, 12*time.Hour) / time.Second),
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
		})
		unused := asked
		if err == nil {
			unused -= len(out.Messages)
		}
		for range unused {
			slots <- struct{}{} // asked for, not received: free again
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			msg, code := describe(err)
			if msg != lastErr {
				log.Warn("sqs ReceiveMessage failed; retrying", "code", code, "err", msg, "retry_in", backoff.String())
				lastErr = msg
			}
			if !wait.Sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		if lastErr != "" {
			log.Info("sqs ReceiveMessage works again")
			lastErr = ""
		}
		backoff = time.Second
		for _, m := range out.Messages {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { slots <- struct{}{} }()
				d.handleMessage(ctx, m)
			}()
		}
	}
	return nil
}

// handleMessage checks the account an event names and publishes the observation, then
// deletes the message.
func (d *Detector) handleMessage(ctx context.Context, m sqstypes.Message) {
	log := d.log.With("sqs_message_id", aws.ToString(m.MessageId))
	if act, ok := parseActivity([]byte(aws.ToString(m.Body))); ok {
		d.handleActivity(ctx, act, m, log) // root activity (activity_sqs.go)
		return
	}
	trig, sk := parseEvent([]byte(aws.ToString(m.Body)))
	if sk != nil {
		if hint, shSkip, ok := parseSecurityHubEvent([]byte(aws.ToString(m.Body))); ok {
			d.handleSecurityHub(ctx, m, hint, shSkip, log) // not CloudTrail: a Security Hub finding (securityhub.go)
			return
		}
		if sk.Malformed {
			d.e.met.ignored.WithLabelValues("malformed").Inc()
			log.Warn("deleting malformed event message", "reason", sk.Reason)
		} else {
			d.e.met.ignored.WithLabelValues("irrelevant").Inc()
			log.Debug("deleting irrelevant event message", "reason", sk.Reason)
		}
		d.deleteMessage(ctx, m, log)
		return
	}
	log = log.With("account", trig.Account, "event_id", trig.Event.EventID, "event_name", trig.Event.EventName,
		"key_in_use", trig.Event.KeyInUse)
	if d.coalesce(ctx, trig, m, log) {
		return // folded into the account's next check (coalesce.go)
	}
	log.Info("root access-key event; checking the account")
	obs, details := d.checkByID(ctx, trig.Account, model.SourceEvent)
	if obs.ErrorCode == "UnknownAccount" {
		d.e.met.ignored.WithLabelValues("unknown_account").Inc()
		log.Warn("deleting event of an account this detector does not check")
		d.deleteMessage(ctx, m, log)
		return
	}
	ev := trig.Event
	stamp := func(o *model.Observation, id string) {
		o.ID, o.Event = id, &ev
	}
	stamp(&obs, "event-"+trig.Event.EventID)
	// Presence first: the finding goes out as soon as the summary answered; the key
	// details follow as a second finding. A redelivered message publishes the same
	// ids again, which the findings stream drops as duplicates.
	if !d.publishEvent(ctx, trig, m, obs, log) {
		return
	}
	if details != nil {
		full, ok := details(ctx)
		if ok {
			stamp(&full, obs.ID+"-details")
			if !d.publishEvent(ctx, trig, m, full, log) {
				return
			}
		}
	}
	d.deleteMessage(ctx, m, log)
}

// publishEvent publishes an event's finding; false means the message must stay
// (shutting down, or publishing failed and the message will come back).
func (d *Detector) publishEvent(ctx context.Context, trig *trigger, m sqstypes.Message, obs model.Observation, log *slog.Logger) bool {
	if ctx.Err() != nil {
		return false // shutting down: the message comes back after its visibility timeout
	}
	if err := d.publish(ctx, obs); err != nil {
		n, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
		if n < maxReceives {
			log.Error("publish event finding failed; the message will come back", "err", safeError(err), "receives", n)
			d.forgetEvent(trig) // not a repeat when it comes back (coalesce.go)
			return false
		}
		log.Error("publish event finding failed too often; deleting the message", "err", safeError(err), "receives", n)
	}
	return true
}

func (d *Detector) deleteMessage(ctx context.Context, m sqstypes.Message, log *slog.Logger) {
	_, err := d.e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(d.e.cfg.SQSQueueURL), ReceiptHandle: m.ReceiptHandle})
	if err != nil && !errors.Is(err, context.Canceled) {
		msg, code := describe(err)
		log.Warn("sqs DeleteMessage failed", "code", code, "err", msg)
	}
}

// checkByID decides presence in a known account (see engine.checkPresence), or
// answers UnknownAccount.
func (d *Detector) checkByID(ctx context.Context, accountID string, src model.Source) (model.Observation, func(context.Context) (model.Observation, bool)) {
	a, err := d.e.lookup(ctx, accountID)
	if err != nil {
		obs := model.Observation{SchemaVersion: model.SchemaVersion, AccountID: accountID, Source: src,
			ObservedAt: d.e.cfg.Now().UTC(), Keys: []model.KeyDetail{}}
		obs.Error, obs.ErrorCode = describe(err)
		if errors.Is(err, errUnknownAccount) {
			obs.Error = "account " + accountID + " is not among the accounts this detector checks"
		}
		return obs, nil
	}
	obs, details := d.e.checkPresence(ctx, a, src)
	if obs.ErrorCode == "AccessDenied" {
		if err := d.e.stillActive(ctx, accountID); err != nil {
			obs.Error, obs.ErrorCode = describe(err)
		}
	}
	return obs, details
}

// publish puts obs on the findings stream with its ID as the Nats-Msg-Id.
func (d *Detector) publish(ctx context.Context, obs model.Observation) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	dup, err := d.b.PublishJSON(pctx, bus.FindingSubject(obs.AccountID), obs.ID, obs)
	if err != nil {
		return err
	}
	if dup {
		d.log.Debug("finding already published", "account", obs.AccountID, "id", obs.ID)
		return nil
	}
	d.e.met.published.WithLabelValues(string(obs.Source)).Inc()
	level := slog.LevelInfo
	if obs.Source == model.SourceSweep {
		level = slog.LevelDebug // the sweep's summary line says it (sweeplog.go)
		d.sweeps.add(obs, false)
	}
	d.log.Log(ctx, level, "finding published", "account", obs.AccountID, "id", obs.ID, "source", obs.Source,
		"root_keys", rootKeysLog(obs), "error_code", obs.ErrorCode)
	return nil
}
