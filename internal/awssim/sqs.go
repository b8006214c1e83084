package awssim

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const defaultVisibility = 30 * time.Second

type queue struct {
	owner      string
	name       string
	visibility time.Duration
	msgs       []*message
	byHandle   map[string]*message
	wake       chan struct{} // closed and replaced on every send
}

type message struct {
	id           string
	body         string
	md5          string
	sent         time.Time
	firstReceive time.Time
	visibleAt    time.Time
	receives     int
	handle       string
}

// CreateQueue creates (or finds) a queue owned by the account and returns its
// URL, built on the Start server's URL (or SetBaseURL's). Requests find the
// queue by the URL's path, whatever its host.
func (s *Sim) CreateQueue(accountID, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(accountID)
	return s.queueURL("", s.createQueueLocked(accountID, name))
}

func (s *Sim) createQueueLocked(accountID, name string) *queue {
	key := accountID + "/" + name
	if q := s.queues[key]; q != nil {
		return q
	}
	q := &queue{owner: accountID, name: name, visibility: defaultVisibility, byHandle: map[string]*message{}, wake: make(chan struct{})}
	s.queues[key] = q
	return q
}

func (s *Sim) queueURL(host string, q *queue) string {
	base := s.baseURL
	if base == "" {
		base = "http://" + host
		if host == "" {
			base = "http://sqs.us-east-1.localhost"
		}
	}
	return base + "/" + q.owner + "/" + q.name
}

// queueByURL finds a queue from the path of its URL, whatever the host.
func (s *Sim) queueByURL(u string) *queue {
	if p, err := url.Parse(u); err == nil {
		return s.queues[strings.Trim(p.Path, "/")]
	}
	return nil
}

func (s *Sim) queueByName(name string) *queue {
	for _, q := range s.queues {
		if q.name == name {
			return q
		}
	}
	return nil
}

// SendMessage enqueues a raw body on the queue with that URL (or name).
func (s *Sim) SendMessage(queueURL, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queueByURL(queueURL)
	if q == nil {
		q = s.queueByName(queueURL)
	}
	if q == nil {
		panic("awssim: unknown queue " + queueURL)
	}
	s.enqueueLocked(q, body)
}

// QueuedMessage is what the simulator knows of a message still in a queue.
type QueuedMessage struct {
	ID        string
	Receives  int
	VisibleAt time.Time // on the simulator clock; hidden until then
}

// Queued lists the messages of the queue with that URL (or name), oldest first:
// tests assert on visibility and receive counts without receiving.
func (s *Sim) Queued(queueURL string) []QueuedMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queueByURL(queueURL)
	if q == nil {
		q = s.queueByName(queueURL)
	}
	if q == nil {
		return nil
	}
	out := make([]QueuedMessage, 0, len(q.msgs))
	for _, m := range q.msgs {
		out = append(out, QueuedMessage{ID: m.id, Receives: m.receives, VisibleAt: m.visibleAt})
	}
	return out
}

func (s *Sim) enqueueLocked(q *queue, body string) *message {
	sum := md5.Sum([]byte(body))
	m := &message{id: newUUID(), body: body, md5: hex.EncodeToString(sum[:]), sent: s.now()}
	q.msgs = append(q.msgs, m)
	close(q.wake)
	q.wake = make(chan struct{})
	return m
}

var errNoQueue = errf(400, "QueueDoesNotExist", "The specified queue does not exist.")

type sqsInput struct {
	QueueURL                    string   `json:"QueueUrl"`
	QueueName                   string   `json:"QueueName"`
	MessageBody                 *string  `json:"MessageBody"`
	ReceiptHandle               string   `json:"ReceiptHandle"`
	VisibilityTimeout           *int     `json:"VisibilityTimeout"`
	WaitTimeSeconds             *int     `json:"WaitTimeSeconds"`
	MaxNumberOfMessages         int      `json:"MaxNumberOfMessages"`
	AttributeNames              []string `json:"AttributeNames"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
	QueueOwnerAWSAccountID      string   `json:"QueueOwnerAWSAccountId"`
}

// sqsRequest decodes the JSON body of an SQS call; root sessions may call no SQS
// action.
func sqsRequest(req *request, c *cred) (sqsInput, *apiError) {
	var in sqsInput
	if c.kind == kindRootSession {
		return in, errf(400, "AccessDenied", "Access to the resource is denied.")
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return in, errf(400, "SerializationException", "cannot decode the request body")
	}
	return in, nil
}

// sqs serves every SQS action but ReceiveMessage. The lock is held.
func (s *Sim) sqs(req *request, c *cred) (any, *apiError) {
	in, aerr := sqsRequest(req, c)
	if aerr != nil {
		return nil, aerr
	}
	switch req.action {
	case "GetQueueUrl", "CreateQueue":
		owner := c.acct.ID
		if in.QueueOwnerAWSAccountID != "" {
			owner = in.QueueOwnerAWSAccountID
		}
		q := s.queues[owner+"/"+in.QueueName]
		if q == nil && req.action == "CreateQueue" {
			if in.QueueName == "" {
				return nil, errf(400, "InvalidParameterValue", "QueueName is required")
			}
			q = s.createQueueLocked(c.acct.ID, in.QueueName)
		}
		if q == nil {
			return nil, errNoQueue
		}
		return map[string]string{"QueueUrl": s.queueURL(req.host, q)}, nil
	}
	q := s.queueByURL(in.QueueURL)
	if q == nil {
		return nil, errNoQueue
	}
	now := s.now()
	switch req.action {
	case "SendMessage":
		if in.MessageBody == nil || *in.MessageBody == "" {
			return nil, errf(400, "MissingParameter", "The request must contain the parameter MessageBody.")
		}
		m := s.enqueueLocked(q, *in.MessageBody)
		return map[string]string{"MessageId": m.id, "MD5OfMessageBody": m.md5}, nil
	case "DeleteMessage":
		m := q.byHandle[in.ReceiptHandle]
		if m == nil {
			return nil, errf(400, "ReceiptHandleIsInvalid", "The input receipt handle \""+in.ReceiptHandle+"\" is not a valid receipt handle.")
		}
		delete(q.byHandle, in.ReceiptHandle)
		if i := slices.Index(q.msgs, m); i >= 0 {
			q.msgs = slices.Delete(q.msgs, i, i+1)
		}
		return nil, nil
	case "ChangeMessageVisibility":
		m := q.byHandle[in.ReceiptHandle]
		if m == nil {
			return nil, errf(400, "ReceiptHandleIsInvalid", "The input receipt handle is not a valid receipt handle.")
		}
		if !m.visibleAt.After(now) {
			return nil, errf(400, "MessageNotInflight", "The message referred to isn't in flight.")
		}
		if in.VisibilityTimeout == nil || *in.VisibilityTimeout < 0 || *in.VisibilityTimeout > 43200 {
			return nil, errf(400, "InvalidParameterValue", "VisibilityTimeout must be between 0 and 43200")
		}
		m.visibleAt = now.Add(time.Duration(*in.VisibilityTimeout) * time.Second)
		if *in.VisibilityTimeout == 0 {
			s.wakeLocked(q)
		}
		return nil, nil
	case "GetQueueAttributes":
		visible, inflight := 0, 0
		for _, m := range q.msgs {
			if m.visibleAt.After(now) {
				inflight++
			} else {
				visible++
			}
		}
		return map[string]any{"Attributes": map[string]string{
			"ApproximateNumberOfMessages":           strconv.Itoa(visible),
			"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inflight),
			"VisibilityTimeout":                     strconv.Itoa(int(q.visibility / time.Second)),
			"QueueArn":                              "arn:aws:sqs:us-east-1:" + q.owner + ":" + q.name,
		}}, nil
	}
	return nil, errf(400, "UnsupportedOperation", "unsupported operation "+req.action)
}

func (s *Sim) wakeLocked(q *queue) {
	close(q.wake)
	q.wake = make(chan struct{})
}

type sqsMessage struct {
	MessageID     string            `json:"MessageId"`
	ReceiptHandle string            `json:"ReceiptHandle"`
	MD5OfBody     string            `json:"MD5OfBody"`
	Body          string            `json:"Body"`
	Attributes    map[string]string `json:"Attributes,omitempty"`
}

// sqsReceive serves ReceiveMessage with real long polling. It takes the lock
// only to look at the queue, never while waiting.
func (s *Sim) sqsReceive(req *request, c *cred) (any, *apiError) {
	in, aerr := sqsRequest(req, c)
	if aerr != nil {
		return nil, aerr
	}
	maxN := in.MaxNumberOfMessages
	if maxN == 0 {
		maxN = 1
	}
	if maxN < 1 || maxN > 10 {
		return nil, errf(400, "InvalidParameterValue", "Value "+strconv.Itoa(maxN)+" for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.")
	}
	wait := 0
	if in.WaitTimeSeconds != nil {
		wait = *in.WaitTimeSeconds
	}
	if wait < 0 || wait > 20 {
		return nil, errf(400, "InvalidParameterValue", "Value "+strconv.Itoa(wait)+" for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.")
	}
	attrs := map[string]bool{}
	for _, n := range append(in.AttributeNames, in.MessageSystemAttributeNames...) {
		attrs[n] = true
	}
	deadline := time.NewTimer(time.Duration(wait) * time.Second)
	defer deadline.Stop()
	// Visibility timeouts run on the simulator clock: re-check now and then.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		q := s.queueByURL(in.QueueURL)
		if q == nil {
			s.mu.Unlock()
			return nil, errNoQueue
		}
		out := s.takeLocked(q, in, maxN, attrs)
		wake := q.wake
		s.mu.Unlock()
		if len(out) > 0 {
			return map[string]any{"Messages": out}, nil
		}
		if wait == 0 {
			return struct{}{}, nil
		}
		select {
		case <-wake:
		case <-tick.C:
		case <-deadline.C:
			return struct{}{}, nil
		case <-req.ctx.Done():
			return nil, errf(500, "RequestCanceled", "request canceled")
		}
	}
}

func (s *Sim) takeLocked(q *queue, in sqsInput, maxN int, attrs map[string]bool) []sqsMessage {
	now := s.now()
	vis := q.visibility
	if in.VisibilityTimeout != nil {
		vis = time.Duration(*in.VisibilityTimeout) * time.Second
	}
	var out []sqsMessage
	for _, m := range q.msgs {
		if len(out) == maxN {
			break
		}
		if m.visibleAt.After(now) {
			continue
		}
		if m.handle != "" {
			delete(q.byHandle, m.handle)
		}
		m.receives++
		if m.firstReceive.IsZero() {
			m.firstReceive = now
		}
		m.visibleAt = now.Add(vis)
		m.handle = m.id + "#" + randString(32, secretChars)
		q.byHandle[m.handle] = m
		sm := sqsMessage{MessageID: m.id, ReceiptHandle: m.handle, MD5OfBody: m.md5, Body: m.body}
		all := attrs["All"]
		add := func(name, v string) {
			if all || attrs[name] {
				if sm.Attributes == nil {
					sm.Attributes = map[string]string{}
				}
				sm.Attributes[name] = v
			}
		}
		add("ApproximateReceiveCount", strconv.Itoa(m.receives))
		add("SentTimestamp", strconv.FormatInt(m.sent.UnixMilli(), 10))
		add("ApproximateFirstReceiveTimestamp", strconv.FormatInt(m.firstReceive.UnixMilli(), 10))
		add("SenderId", q.owner)
		out = append(out, sm)
	}
	return out
}
