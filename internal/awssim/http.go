package awssim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiError is an AWS error answer. Status 0 means 400.
type apiError struct {
	status  int
	code    string
	message string
	typ     string // Organizations' exception Type member, when it has one
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errf(status int, code, msg string) *apiError {
	return &apiError{status: status, code: code, message: msg}
}

const (
	versionIAM = "2010-05-08"
	versionSTS = "2011-06-15"

	targetOrgs = "AWSOrganizationsV20161128."
	targetSQS  = "AmazonSQS."
)

func (s *Sim) newHandler() http.Handler {
	mux := http.NewServeMux()
	s.registerControl(mux)
	mux.HandleFunc("/", s.serveAPI)
	return mux
}

// request is one parsed API call.
type request struct {
	ctx     context.Context
	service string // IAM, STS, Organizations, SQS
	action  string
	form    url.Values      // Query protocols
	body    json.RawMessage // JSON protocols
	keyID   string
	token   string
	sig     *sigV4
	host    string
}

func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	if r.Method != http.MethodPost {
		http.Error(w, "awssim: only POST is supported", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "awssim: read body", http.StatusBadRequest)
		return
	}
	req := &request{ctx: r.Context(), host: r.Host, token: r.Header.Get("X-Amz-Security-Token")}
	if req.sig = parseSigV4(r, body); req.sig != nil {
		req.keyID = req.sig.keyID
	}

	jsonProto := false
	switch target := r.Header.Get("X-Amz-Target"); {
	case strings.HasPrefix(target, targetOrgs):
		req.service, req.action, jsonProto = "Organizations", strings.TrimPrefix(target, targetOrgs), true
	case strings.HasPrefix(target, targetSQS):
		req.service, req.action, jsonProto = "SQS", strings.TrimPrefix(target, targetSQS), true
	case target != "":
		writeJSONError(w, reqID, "1.1", errf(400, "UnknownOperationException", "unknown target "+target))
		return
	default:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			writeQueryError(w, reqID, errf(400, "MalformedQueryString", "cannot parse the form"))
			return
		}
		req.form, req.action = form, form.Get("Action")
		switch form.Get("Version") {
		case versionIAM:
			req.service = "IAM"
		case versionSTS:
			req.service = "STS"
		default:
			writeQueryError(w, reqID, errf(400, "InvalidAction", "unknown Version "+strconv.Quote(form.Get("Version"))))
			return
		}
	}
	if jsonProto {
		if len(body) == 0 {
			body = []byte("{}")
		}
		req.body = body
	}

	out, aerr := s.call(req)
	if jsonProto {
		ver := "1.0"
		if req.service == "Organizations" {
			ver = "1.1"
		}
		if aerr != nil {
			writeJSONError(w, reqID, ver, aerr)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-"+ver)
		if out == nil {
			out = struct{}{}
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(out)
		return
	}
	if aerr != nil {
		writeQueryError(w, reqID, aerr)
		return
	}
	writeQueryResult(w, reqID, req.service, req.action, out)
}

// call runs the common pipeline: count, latency, authenticate, faults, operation.
func (s *Sim) call(req *request) (any, *apiError) {
	s.mu.Lock()
	s.calls[req.service+"."+req.action]++
	lat := s.latency
	s.mu.Unlock()

	s.mu.Lock()
	if c := s.creds[req.keyID]; c != nil {
		lat += c.acct.latency
	}
	s.mu.Unlock()
	if lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-req.ctx.Done():
			t.Stop()
			return nil, errf(500, "RequestCanceled", "request canceled")
		}
	}

	if aerr := s.checkSignature(req); aerr != nil {
		return nil, aerr
	}

	// SQS ReceiveMessage blocks; it takes the lock itself.
	if req.service == "SQS" && req.action == "ReceiveMessage" {
		c, aerr := s.authenticate(req)
		if aerr != nil {
			return nil, aerr
		}
		return s.sqsReceive(req, c)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c, aerr := s.authenticateLocked(req)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := s.faultsLocked(req, c); aerr != nil {
		return nil, aerr
	}
	if aerr := s.rateLimitedLocked(req, c); aerr != nil {
		return nil, aerr
	}
	switch req.service {
	case "IAM":
		return s.iam(req, c)
	case "STS":
		return s.sts(req, c)
	case "Organizations":
		return s.orgs(req, c)
	default:
		return s.sqs(req, c)
	}
}

// checkSignature verifies the SigV4 signature with the key's secret, outside
// the lock (secrets never change). Unknown keys are left to authenticateLocked.
func (s *Sim) checkSignature(req *request) *apiError {
	if s.opts.SkipSignatureCheck || req.sig == nil {
		return nil
	}
	s.mu.Lock()
	c := s.creds[req.keyID]
	s.mu.Unlock()
	if c == nil || req.sig.verify(c.secret) {
		return nil
	}
	code, status := "SignatureDoesNotMatch", 403
	if req.service == "Organizations" || req.service == "SQS" {
		code, status = "InvalidSignatureException", 400
	}
	return errf(status, code, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
}

func (s *Sim) authenticate(req *request) (*cred, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, aerr := s.authenticateLocked(req)
	if aerr != nil {
		return nil, aerr
	}
	return c, s.faultsLocked(req, c)
}

// principal is the caller as CallsByPrincipal records it.
func (c *cred) principal() string {
	if c.kind == kindRole {
		return "arn:aws:iam::" + c.acct.ID + ":role/" + c.role
	}
	return c.arn()
}

func (s *Sim) authenticateLocked(req *request) (*cred, *apiError) {
	json := req.service == "Organizations" || req.service == "SQS"
	if req.keyID == "" {
		code := "MissingAuthenticationToken"
		if json {
			code = "MissingAuthenticationTokenException"
		}
		return nil, errf(403, code, "Request is missing Authentication Token")
	}
	c := s.creds[req.keyID]
	if c == nil || c.token != req.token {
		code := "InvalidClientTokenId"
		if json {
			code = "UnrecognizedClientException"
		}
		return nil, errf(403, code, "The security token included in the request is invalid.")
	}
	s.served[Call{Service: req.service, Action: req.action, Principal: c.principal(), Account: c.acct.ID}]++
	if !c.expires.IsZero() && s.now().After(c.expires) {
		return nil, errf(400, "ExpiredToken", "The security token included in the request is expired")
	}
	return c, nil
}

// faultsLocked applies injected throttling and AccessDenied for the acting account.
func (s *Sim) faultsLocked(req *request, c *cred) *apiError {
	acc := c.acct
	share := s.throttleP > 0 && s.throttleRNG.Float64() < s.throttleP
	op := req.service + "." + req.action
	if acc.throttle > 0 || share || s.throttleOp[op] > 0 {
		switch {
		case share:
		case s.throttleOp[op] > 0:
			s.throttleOp[op]--
		default:
			acc.throttle--
		}
		s.throttled++
		switch req.service {
		case "Organizations":
			return errf(400, "TooManyRequestsException", "AWS Organizations can't complete your request because another request is already in progress. Try again later.")
		case "SQS":
			return errf(400, "RequestThrottled", "Rate exceeded")
		default:
			return errf(400, "Throttling", "Rate exceeded")
		}
	}
	if req.service == "IAM" && (acc.State == "SUSPENDED" || acc.State == "CLOSED") {
		// Sessions issued before the account was closed stop working with it.
		return errf(403, "AccessDenied", "User: "+c.arn()+" is not authorized to perform: iam:"+req.action+" because the account is "+strings.ToLower(acc.State))
	}
	if acc.accessDenied && req.service == "IAM" {
		return errf(403, "AccessDenied", "User: "+c.arn()+" is not authorized to perform: iam:"+req.action+" with an explicit deny in a service control policy")
	}
	return nil
}

func (c *cred) arn() string {
	switch c.kind {
	case kindAdmin:
		return "arn:aws:iam::" + c.acct.ID + ":user/" + adminUserName
	case kindRole:
		return "arn:aws:sts::" + c.acct.ID + ":assumed-role/" + c.role + "/" + c.session
	default:
		return "arn:aws:iam::" + c.acct.ID + ":root"
	}
}

const adminUserName = "rootwarden-admin"

// ---- Query protocol writers ----

func writeQueryResult(w http.ResponseWriter, reqID, service, action string, out any) {
	ns := "https://iam.amazonaws.com/doc/" + versionIAM + "/"
	if service == "STS" {
		ns = "https://sts.amazonaws.com/doc/" + versionSTS + "/"
	}
	w.Header().Set("Content-Type", "text/xml")
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString("<" + action + `Response xmlns="` + ns + `">`)
	if out != nil {
		b.WriteString("<" + action + "Result>")
		writeXML(&b, out)
		b.WriteString("</" + action + "Result>")
	}
	b.WriteString("<ResponseMetadata><RequestId>" + reqID + "</RequestId></ResponseMetadata>")
	b.WriteString("</" + action + "Response>")
	_, _ = io.WriteString(w, b.String())
}

// xmlNode is a tiny ordered XML tree: results are built as []xmlNode.
type xmlNode struct {
	name string
	text *string   // leaf
	kids []xmlNode // element
}

func leaf(name, text string) xmlNode { return xmlNode{name: name, text: &text} }
func elem(name string, kids ...xmlNode) xmlNode {
	return xmlNode{name: name, kids: kids}
}

func writeXML(b *strings.Builder, v any) {
	switch n := v.(type) {
	case []xmlNode:
		for _, k := range n {
			writeXML(b, k)
		}
	case xmlNode:
		b.WriteString("<" + n.name + ">")
		if n.text != nil {
			if strings.ContainsAny(*n.text, "<>&'\"\r\n\t") {
				_ = xml.EscapeText(b, []byte(*n.text))
			} else {
				b.WriteString(*n.text)
			}
		}
		for _, k := range n.kids {
			writeXML(b, k)
		}
		b.WriteString("</" + n.name + ">")
	}
}

type xmlErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Error   struct {
		Type    string
		Code    string
		Message string
	}
	RequestID string `xml:"RequestId"`
}

func writeQueryError(w http.ResponseWriter, reqID string, e *apiError) {
	var out xmlErrorResponse
	out.Error.Type = "Sender"
	if e.status >= 500 {
		out.Error.Type = "Receiver"
	}
	out.Error.Code, out.Error.Message, out.RequestID = e.code, e.message, reqID
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(statusOf(e))
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(out)
}

func writeJSONError(w http.ResponseWriter, reqID, ver string, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-"+ver)
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(statusOf(e))
	body := map[string]string{"__type": e.code, "message": e.message}
	if ver == "1.1" {
		// Organizations' error shapes name their members Message (and Type).
		body = map[string]string{"__type": e.code, "Message": e.message}
		if e.typ != "" {
			body["Type"] = e.typ
		}
	}
	_ = json.NewEncoder(w).Encode(body)
}

func statusOf(e *apiError) int {
	if e.status == 0 {
		return 400
	}
	return e.status
}

func newRequestID() string { return newUUID() }

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("awssim: random: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
