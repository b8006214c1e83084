package awssim_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

func TestSQSSendReceiveDelete(t *testing.T) {
	e := newEnv(t, awssim.Options{Now: time.Now})
	url := e.sim.CreateQueue(mgmtID, "rootwarden-events")
	if !strings.HasPrefix(url, e.url+"/") {
		t.Fatalf("queue URL %s is not on the simulator %s", url, e.url)
	}
	q := e.admin(t, mgmtID).sqs

	got, err := q.GetQueueUrl(ctx(t), &sqs.GetQueueUrlInput{QueueName: aws.String("rootwarden-events")})
	if err != nil || aws.ToString(got.QueueUrl) != url {
		t.Fatalf("GetQueueUrl = %v, %v; want %s", got, err, url)
	}
	_, err = q.GetQueueUrl(ctx(t), &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
	apiErr(t, err, "QueueDoesNotExist", 400)

	// The SDK checks MD5OfMessageBody on send and MD5OfBody on receive.
	body := awssim.RootKeyCreatedEvent(prodID, "AKIAEXAMPLEEXAMPLE01", time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC))
	if _, err := q.SendMessage(ctx(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	e.sim.SendMessage(url, "second ✓ unicode body")

	out, err := q.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 1,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	if len(out.Messages) != 2 || aws.ToString(out.Messages[0].Body) != body {
		t.Fatalf("received %d messages", len(out.Messages))
	}
	if rc := out.Messages[0].Attributes["ApproximateReceiveCount"]; rc != "1" {
		t.Fatalf("ApproximateReceiveCount = %q, want 1", rc)
	}
	if _, ok := out.Messages[0].Attributes["SentTimestamp"]; ok {
		t.Fatalf("unrequested attribute returned: %v", out.Messages[0].Attributes)
	}

	// In flight: nothing visible.
	empty, err := q.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if err != nil || len(empty.Messages) != 0 {
		t.Fatalf("in-flight messages visible: %v, %v", empty, err)
	}
	if _, err := q.DeleteMessage(ctx(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	_, err = q.DeleteMessage(ctx(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("bogus")})
	apiErr(t, err, "ReceiptHandleIsInvalid", 400)

	// ChangeMessageVisibility to 0 makes the second message visible again at once.
	if _, err := q.ChangeMessageVisibility(ctx(t), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: out.Messages[1].ReceiptHandle, VisibilityTimeout: 0,
	}); err != nil {
		t.Fatalf("ChangeMessageVisibility: %v", err)
	}
	again, err := q.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
	if err != nil || len(again.Messages) != 1 {
		t.Fatalf("re-receive: %v, %v", again, err)
	}
	if m := again.Messages[0]; aws.ToString(m.Body) != "second ✓ unicode body" || m.Attributes["ApproximateReceiveCount"] != "2" || m.Attributes["SentTimestamp"] == "" {
		t.Fatalf("re-received %q attrs %v", aws.ToString(m.Body), m.Attributes)
	}
	// The deleted message never comes back.
	if _, err := q.DeleteMessage(ctx(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: again.Messages[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	attrs, err := q.GetQueueAttributes(ctx(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url)})
	if err != nil || attrs.Attributes["ApproximateNumberOfMessages"] != "0" || attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
		t.Fatalf("queue attributes = %v, %v", attrs, err)
	}
}

func TestSQSVisibilityTimeoutExpires(t *testing.T) {
	e := newEnv(t, awssim.Options{})
	url := e.sim.CreateQueue(mgmtID, "q")
	q := e.admin(t, mgmtID).sqs
	e.sim.SendMessage(url, "hello")
	if out, err := q.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v %v", out, err)
	}
	e.clock.Add(29 * time.Second)
	if out, _ := q.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); len(out.Messages) != 0 {
		t.Fatal("message visible before the 30s default visibility timeout")
	}
	e.clock.Add(2 * time.Second)
	if out, _ := q.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); len(out.Messages) != 1 {
		t.Fatal("message not visible again after the visibility timeout")
	}
}

func TestSQSLongPolling(t *testing.T) {
	e := newEnv(t, awssim.Options{Now: time.Now})
	url := e.sim.CreateQueue(mgmtID, "events")
	q := e.admin(t, mgmtID).sqs

	t.Run("returns as soon as a message is sent", func(t *testing.T) {
		type result struct {
			out *sqs.ReceiveMessageOutput
			err error
			d   time.Duration
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			out, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 10})
			done <- result{out, err, time.Since(start)}
		}()
		time.Sleep(200 * time.Millisecond)
		select {
		case r := <-done:
			t.Fatalf("ReceiveMessage returned before any message: %+v", r)
		default:
		}
		sender := e.admin(t, prodID).sqs
		if _, err := sender.SendMessage(ctx(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("wake up")}); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || len(r.out.Messages) != 1 || aws.ToString(r.out.Messages[0].Body) != "wake up" {
			t.Fatalf("long poll = %+v, %v", r.out, r.err)
		}
		if r.d > 2*time.Second {
			t.Fatalf("long poll took %v after the send, want prompt", r.d)
		}
	})
	t.Run("empty queue waits for WaitTimeSeconds", func(t *testing.T) {
		start := time.Now()
		out, err := q.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1})
		if err != nil || len(out.Messages) != 0 {
			t.Fatalf("empty long poll = %v, %v", out, err)
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
			t.Fatalf("empty long poll took %v, want about 1s", d)
		}
	})
	t.Run("closing the server ends a pending long poll", func(t *testing.T) {
		sim := awssim.New(awssim.Options{})
		sim.AddAccount(awssim.Account{ID: standaloneID})
		srv := sim.Start()
		u := sim.CreateQueue(standaloneID, "q")
		c := (&env{sim: sim, url: srv.URL}).admin(t, standaloneID)
		go func() {
			_, _ = c.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(u), WaitTimeSeconds: 20})
		}()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		srv.Close()
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Close took %v with a long poll pending", d)
		}
	})
	t.Run("honours request context cancellation", func(t *testing.T) {
		c, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := q.ReceiveMessage(c, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20})
		if err == nil {
			t.Fatal("cancelled long poll succeeded")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("cancelled long poll took %v", d)
		}
	})
}
