// Package securityhubfake is an AWS Security Hub (CSPM and the new OCSF Security
// Hub) that speaks the wire format the aws-sdk-go-v2 securityhub client sends and
// reads (restJson1), for tests and demos. It serves the four operations rootwarden
// calls, on the paths and methods of the SDK's serializers (service/securityhub
// v1.71.2, serializers.go):
//
//	POST  /findings                   GetFindings (ASFF; filters, paging)
//	PATCH /findings/batchupdate       BatchUpdateFindings (Workflow.Status, Note)
//	POST  /findingsv2                 GetFindingsV2 (OCSF; cloud.account.uid and
//	                                  compliance.control filters)
//	PATCH /findingsv2/batchupdatev2   BatchUpdateFindingsV2 (StatusId, Comment by metadata.uid)
//
// It misbehaves as the real service does: Throttle answers 429
// TooManyRequestsException; LoseAnswers lets an update take effect and then drops
// the connection without an answer; Refail puts a finding back to FAILED and
// Workflow NEW, as AWS does when a control fails again. It never checks signatures.
package securityhubfake

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Finding is one ASFF finding of a Security Hub CSPM control (the fields rootwarden reads).
type Finding struct {
	ID               string
	AccountID        string
	Region           string
	ControlID        string // Compliance.SecurityControlId: IAM.4, IAM.6, IAM.9
	ComplianceStatus string // PASSED, FAILED
	RecordState      string // ACTIVE, ARCHIVED
	WorkflowStatus   string // NEW, NOTIFIED, RESOLVED, SUPPRESSED
	Note             string
	NoteBy           string
	UpdatedAt        time.Time
}

// FindingV2 is one OCSF finding of the new Security Hub (the fields rootwarden reads).
type FindingV2 struct {
	MetadataUID      string // metadata.uid
	AccountID        string // cloud.account.uid
	ControlID        string // compliance.control
	ComplianceStatus string // compliance.status: Pass, Fail
	StatusID         int    // 1 New, 2 In Progress, 3 Suppressed, 4 Resolved, 5 Archived, 99 Other
	Comment          string
}

// Update is one applied change of a finding, in order: what a test compares.
type Update struct {
	FindingID string
	Status    string // Workflow.Status, or the OCSF status id as a string
	Note      string
}

// Server is the fake. Its zero value is not usable; call New.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	findings []*Finding
	v2       []*FindingV2
	updates  []Update
	calls    map[string]int
	throttle int
	lose     int
	refuse   int
}

// New starts a fake; Close it when done.
func New() *Server {
	s := &Server{calls: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Add stores findings (CSPM); a default for each empty field.
func (s *Server) Add(fs ...Finding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		if f.Region == "" {
			f.Region = "us-east-1"
		}
		if f.ID == "" {
			f.ID = fmt.Sprintf("arn:aws:securityhub:%s:%s:security-control/%s/finding/%d", f.Region, f.AccountID, f.ControlID, len(s.findings)+1)
		}
		if f.ComplianceStatus == "" {
			f.ComplianceStatus = "FAILED"
		}
		if f.RecordState == "" {
			f.RecordState = "ACTIVE"
		}
		if f.WorkflowStatus == "" {
			f.WorkflowStatus = "NEW"
		}
		if f.UpdatedAt.IsZero() {
			f.UpdatedAt = time.Now().UTC()
		}
		s.findings = append(s.findings, &f)
	}
}

// AddV2 stores OCSF findings.
func (s *Server) AddV2(fs ...FindingV2) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		if f.StatusID == 0 {
			f.StatusID = 1
		}
		if f.ComplianceStatus == "" {
			f.ComplianceStatus = "Fail"
		}
		s.v2 = append(s.v2, &f)
	}
}

// Get returns a copy of the CSPM finding with id (ok false: none).
func (s *Server) Get(id string) (Finding, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.findings {
		if f.ID == id {
			return *f, true
		}
	}
	return Finding{}, false
}

// Findings returns copies of every CSPM finding of account.
func (s *Server) Findings(account string) []Finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Finding
	for _, f := range s.findings {
		if f.AccountID == account {
			out = append(out, *f)
		}
	}
	return out
}

// GetV2 returns a copy of the OCSF finding with metadata.uid uid.
func (s *Server) GetV2(uid string) (FindingV2, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.v2 {
		if f.MetadataUID == uid {
			return *f, true
		}
	}
	return FindingV2{}, false
}

// Updates returns every change applied so far, in order.
func (s *Server) Updates() []Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.updates)
}

// Calls returns how many requests of op (GetFindings, BatchUpdateFindings,
// GetFindingsV2, BatchUpdateFindingsV2) arrived, throttled and lost ones included.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Refail does what AWS does when a control fails again: Compliance FAILED,
// Workflow NEW (V2: status New), a fresh UpdatedAt.
func (s *Server) Refail(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.findings {
		if f.ID == id {
			f.ComplianceStatus, f.WorkflowStatus, f.UpdatedAt = "FAILED", "NEW", time.Now().UTC()
		}
	}
	for _, f := range s.v2 {
		if f.MetadataUID == id {
			f.ComplianceStatus, f.StatusID = "Fail", 1
		}
	}
}

// Throttle makes the next n requests answer 429 TooManyRequestsException.
func (s *Server) Throttle(n int) { s.mu.Lock(); s.throttle = n; s.mu.Unlock() }

// Unprocess makes the next n BatchUpdateFindings calls leave their first finding
// unprocessed (ErrorCode ConcurrentUpdateError), as AWS does under contention.
func (s *Server) Unprocess(n int) { s.mu.Lock(); s.refuse = n; s.mu.Unlock() }

// LoseAnswers makes the next n updates take effect and then drop the connection
// without an answer.
func (s *Server) LoseAnswers(n int) { s.mu.Lock(); s.lose = n; s.mu.Unlock() }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	var op string
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/findings":
		op = "GetFindings"
	case r.Method == http.MethodPatch && r.URL.Path == "/findings/batchupdate":
		op = "BatchUpdateFindings"
	case r.Method == http.MethodPost && r.URL.Path == "/findingsv2":
		op = "GetFindingsV2"
	case r.Method == http.MethodPatch && r.URL.Path == "/findingsv2/batchupdatev2":
		op = "BatchUpdateFindingsV2"
	default:
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "no such operation: "+r.Method+" "+r.URL.Path)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeError(w, http.StatusBadRequest, "InvalidInputException", "content type must be application/json")
		return
	}
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidInputException", "malformed JSON: "+err.Error())
		return
	}
	s.mu.Lock()
	s.calls[op]++
	if s.throttle > 0 {
		s.throttle--
		s.mu.Unlock()
		writeError(w, http.StatusTooManyRequests, "TooManyRequestsException", "Rate exceeded")
		return
	}
	lose := false
	if strings.HasPrefix(op, "BatchUpdate") && s.lose > 0 {
		s.lose--
		lose = true
	}
	var out any
	var code int
	var errType, msg string
	switch op {
	case "GetFindings":
		out, code, errType, msg = s.getFindings(body)
	case "BatchUpdateFindings":
		out, code, errType, msg = s.batchUpdate(body)
	case "GetFindingsV2":
		out, code, errType, msg = s.getFindingsV2(body)
	case "BatchUpdateFindingsV2":
		out, code, errType, msg = s.batchUpdateV2(body)
	}
	s.mu.Unlock()
	if lose {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				_ = conn.Close()
				return
			}
		}
	}
	if errType != "" {
		writeError(w, code, errType, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-RequestId", fmt.Sprintf("shfake-%d", time.Now().UnixNano()))
	_ = json.NewEncoder(w).Encode(out)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.Header().Set("x-amzn-RequestId", fmt.Sprintf("shfake-%d", time.Now().UnixNano()))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Message": msg, "Code": typ})
}

// stringFilter is the ASFF StringFilter.
type stringFilter struct {
	Value      string
	Comparison string
}

func (f stringFilter) match(v string) bool {
	switch f.Comparison {
	case "", "EQUALS":
		return v == f.Value
	case "NOT_EQUALS":
		return v != f.Value
	case "PREFIX":
		return strings.HasPrefix(v, f.Value)
	case "PREFIX_NOT_EQUALS":
		return !strings.HasPrefix(v, f.Value)
	case "CONTAINS":
		return strings.Contains(v, f.Value)
	case "NOT_CONTAINS":
		return !strings.Contains(v, f.Value)
	}
	return false
}

// matchAll applies AWS's rule: filters on one field are ORed (EQUALS) or ANDed
// (the negative comparisons); fields are ANDed.
func matchAll(fs []stringFilter, v string) bool {
	if len(fs) == 0 {
		return true
	}
	any, neg := false, true
	hasPos := false
	for _, f := range fs {
		if strings.Contains(f.Comparison, "NOT") {
			neg = neg && f.match(v)
			continue
		}
		hasPos = true
		any = any || f.match(v)
	}
	return neg && (!hasPos || any)
}

func (s *Server) getFindings(body map[string]json.RawMessage) (any, int, string, string) {
	var filters map[string][]stringFilter
	if raw, ok := body["Filters"]; ok {
		var all map[string]json.RawMessage
		if err := json.Unmarshal(raw, &all); err != nil {
			return nil, 400, "InvalidInputException", "Filters: " + err.Error()
		}
		filters = map[string][]stringFilter{}
		for k, v := range all {
			switch k {
			case "AwsAccountId", "ComplianceSecurityControlId", "ComplianceStatus", "RecordState", "WorkflowStatus", "Id":
				var fs []stringFilter
				if err := json.Unmarshal(v, &fs); err != nil {
					return nil, 400, "InvalidInputException", k + ": " + err.Error()
				}
				filters[k] = fs
			default:
				return nil, 400, "InvalidInputException", "the fake does not filter on " + k
			}
		}
	}
	maxResults := 100
	if raw, ok := body["MaxResults"]; ok {
		if err := json.Unmarshal(raw, &maxResults); err != nil || maxResults < 1 || maxResults > 100 {
			return nil, 400, "InvalidInputException", "MaxResults must be 1..100"
		}
	}
	start := 0
	if raw, ok := body["NextToken"]; ok {
		var tok string
		_ = json.Unmarshal(raw, &tok)
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "page-"))
		if err != nil {
			return nil, 400, "InvalidInputException", "invalid NextToken"
		}
		start = n
	}
	var matched []*Finding
	for _, f := range s.findings {
		if matchAll(filters["AwsAccountId"], f.AccountID) && matchAll(filters["ComplianceSecurityControlId"], f.ControlID) &&
			matchAll(filters["ComplianceStatus"], f.ComplianceStatus) && matchAll(filters["RecordState"], f.RecordState) &&
			matchAll(filters["WorkflowStatus"], f.WorkflowStatus) && matchAll(filters["Id"], f.ID) {
			matched = append(matched, f)
		}
	}
	out := map[string]any{"Findings": []any{}}
	list := []any{}
	end := min(start+maxResults, len(matched))
	for _, f := range matched[min(start, len(matched)):end] {
		list = append(list, asff(f))
	}
	out["Findings"] = list
	if end < len(matched) {
		out["NextToken"] = "page-" + strconv.Itoa(end)
	}
	return out, 200, "", ""
}

func productArn(f *Finding) string {
	return "arn:aws:securityhub:" + f.Region + "::product/aws/securityhub"
}

// asff renders a finding as Security Hub returns it (the subset of AwsSecurityFinding
// the SDK needs to decode and rootwarden reads).
func asff(f *Finding) map[string]any {
	ts := f.UpdatedAt.UTC().Format(time.RFC3339Nano)
	m := map[string]any{
		"SchemaVersion": "2018-10-08",
		"Id":            f.ID,
		"ProductArn":    productArn(f),
		"ProductName":   "Security Hub",
		"CompanyName":   "AWS",
		"Region":        f.Region,
		"GeneratorId":   "security-control/" + f.ControlID,
		"AwsAccountId":  f.AccountID,
		"Types":         []string{"Software and Configuration Checks/Industry and Regulatory Standards"},
		"CreatedAt":     ts,
		"UpdatedAt":     ts,
		"Severity":      map[string]any{"Label": "CRITICAL", "Normalized": 90},
		"Title":         f.ControlID + " root user check",
		"Description":   "Security Hub control " + f.ControlID,
		"Resources":     []any{map[string]any{"Type": "AwsAccount", "Id": "AWS::::Account:" + f.AccountID, "Partition": "aws", "Region": f.Region}},
		"Compliance":    map[string]any{"Status": f.ComplianceStatus, "SecurityControlId": f.ControlID},
		"RecordState":   f.RecordState,
		"Workflow":      map[string]any{"Status": f.WorkflowStatus},
		"WorkflowState": f.WorkflowStatus,
	}
	if f.Note != "" {
		m["Note"] = map[string]any{"Text": f.Note, "UpdatedBy": f.NoteBy, "UpdatedAt": ts}
	}
	return m
}

var workflowStatuses = []string{"NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"}

func (s *Server) batchUpdate(body map[string]json.RawMessage) (any, int, string, string) {
	var in struct {
		FindingIdentifiers []struct{ Id, ProductArn string }
		Note               *struct{ Text, UpdatedBy string }
		Workflow           *struct{ Status string }
	}
	raw, _ := json.Marshal(body)
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, 400, "InvalidInputException", err.Error()
	}
	if len(in.FindingIdentifiers) == 0 || len(in.FindingIdentifiers) > 100 {
		return nil, 400, "InvalidInputException", "FindingIdentifiers must hold 1..100 items"
	}
	if in.Note != nil && (in.Note.Text == "" || in.Note.UpdatedBy == "" || len(in.Note.Text) > 512) {
		return nil, 400, "InvalidInputException", "Note needs Text (at most 512 characters) and UpdatedBy"
	}
	if in.Workflow != nil && !slices.Contains(workflowStatuses, in.Workflow.Status) {
		return nil, 400, "InvalidInputException", "invalid Workflow.Status " + in.Workflow.Status
	}
	processed := []any{}
	unprocessed := []any{}
	refuse := s.refuse > 0
	if refuse {
		s.refuse--
	}
	for i, id := range in.FindingIdentifiers {
		if refuse && i == 0 {
			unprocessed = append(unprocessed, map[string]any{"FindingIdentifier": map[string]any{"Id": id.Id, "ProductArn": id.ProductArn},
				"ErrorCode": "ConcurrentUpdateError", "ErrorMessage": "the finding is being updated by another request"})
			continue
		}
		var f *Finding
		for _, x := range s.findings {
			if x.ID == id.Id && productArn(x) == id.ProductArn {
				f = x
			}
		}
		ident := map[string]any{"Id": id.Id, "ProductArn": id.ProductArn}
		if f == nil {
			unprocessed = append(unprocessed, map[string]any{"FindingIdentifier": ident, "ErrorCode": "FindingNotFound",
				"ErrorMessage": "finding not found"})
			continue
		}
		u := Update{FindingID: f.ID}
		if in.Workflow != nil {
			f.WorkflowStatus, u.Status = in.Workflow.Status, in.Workflow.Status
		}
		if in.Note != nil {
			f.Note, f.NoteBy, u.Note = in.Note.Text, in.Note.UpdatedBy, in.Note.Text
		}
		// BatchUpdateFindings leaves UpdatedAt alone (API reference).
		s.updates = append(s.updates, u)
		processed = append(processed, ident)
	}
	return map[string]any{"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}, 200, "", ""
}

// getFindingsV2 serves the OCSF findings matching the string filters
// cloud.account.uid and compliance.control (EQUALS), ANDed.
func (s *Server) getFindingsV2(body map[string]json.RawMessage) (any, int, string, string) {
	var in struct {
		Filters struct {
			CompositeFilters []struct {
				StringFilters []struct {
					FieldName string
					Filter    stringFilter
				}
				Operator string
			}
		}
		MaxResults int
		NextToken  string
	}
	raw, _ := json.Marshal(body)
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, 400, "InvalidInputException", err.Error()
	}
	want := map[string][]stringFilter{}
	for _, cf := range in.Filters.CompositeFilters {
		for _, sf := range cf.StringFilters {
			switch sf.FieldName {
			case "cloud.account.uid", "compliance.control", "compliance.status":
				want[sf.FieldName] = append(want[sf.FieldName], sf.Filter)
			default:
				return nil, 400, "ValidationException", "the fake does not filter on " + sf.FieldName
			}
		}
	}
	list := []any{}
	for _, f := range s.v2 {
		if matchAll(want["cloud.account.uid"], f.AccountID) && matchAll(want["compliance.control"], f.ControlID) &&
			matchAll(want["compliance.status"], f.ComplianceStatus) {
			list = append(list, ocsf(f))
		}
	}
	return map[string]any{"Findings": list}, 200, "", ""
}

func ocsf(f *FindingV2) map[string]any {
	return map[string]any{
		"class_uid":    2003,
		"metadata":     map[string]any{"uid": f.MetadataUID, "product": map[string]any{"uid": "aws/securityhub"}},
		"cloud":        map[string]any{"account": map[string]any{"uid": f.AccountID}, "provider": "AWS"},
		"compliance":   map[string]any{"control": f.ControlID, "status": f.ComplianceStatus},
		"finding_info": map[string]any{"uid": f.MetadataUID, "title": f.ControlID},
		"status_id":    f.StatusID,
		"comment":      f.Comment,
	}
}

func (s *Server) batchUpdateV2(body map[string]json.RawMessage) (any, int, string, string) {
	var in struct {
		MetadataUids []string
		StatusId     *int
		Comment      *string
	}
	raw, _ := json.Marshal(body)
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, 400, "ValidationException", err.Error()
	}
	if len(in.MetadataUids) == 0 || len(in.MetadataUids) > 100 {
		return nil, 400, "ValidationException", "MetadataUids must hold 1..100 items"
	}
	processed, unprocessed := []any{}, []any{}
	for _, uid := range in.MetadataUids {
		var f *FindingV2
		for _, x := range s.v2 {
			if x.MetadataUID == uid {
				f = x
			}
		}
		if f == nil {
			unprocessed = append(unprocessed, map[string]any{"MetadataUid": uid, "ErrorCode": "ResourceNotFoundException",
				"ErrorMessage": "finding not found"})
			continue
		}
		u := Update{FindingID: uid}
		if in.StatusId != nil {
			f.StatusID, u.Status = *in.StatusId, strconv.Itoa(*in.StatusId)
		}
		if in.Comment != nil {
			f.Comment, u.Note = *in.Comment, *in.Comment
		}
		s.updates = append(s.updates, u)
		processed = append(processed, map[string]any{"MetadataUid": uid})
	}
	return map[string]any{"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}, 200, "", ""
}
