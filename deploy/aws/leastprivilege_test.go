package awsdeploy

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Principals that call AWS.
const (
	central     = "central"      // rootwarden's role in the central account (central.yaml), organization mode
	member      = "member"       // the read-only role in every account (member.yaml, management.yaml)
	single      = "single"       // rootwarden's identity in single-account mode (single-account-policy.json)
	rootSession = "root-session" // the member's root after sts:AssumeRoot: AWS's task policy grants it
	anyone      = "anyone"       // the call needs no permission (sts:GetCallerIdentity)
)

// awsCall is one operation the code calls and who calls it. This list is checked
// against the Go source below (TestCallListMatchesCode); when the simulator's call
// recorder is on main, the recorded (service, operation, caller) set can replace the
// source scan.
type awsCall struct {
	svc, op    string
	principals []string
	where      string
	// pending: granted ahead of a change in flight; may be absent from the code.
	pending string
}

var calls = []awsCall{
	{"sts", "GetCallerIdentity", []string{anyone}, "detector/aws.go callerAccount", ""},
	{"iam", "ListAccountAliases", []string{single}, "detector/aws.go eachAccount, single-account mode only", ""},
	{"organizations", "DescribeOrganization", []string{central}, "detector/aws.go eachAccount, managementAccount", ""},
	{"organizations", "ListAccounts", []string{central}, "detector/aws.go eachAccount (paginator)", ""},
	{"organizations", "DescribeAccount", []string{central}, "detector/aws.go lookup", ""},
	{"sts", "AssumeRole", []string{central}, "detector/aws.go credentialsFor", ""},
	{"iam", "GetAccountSummary", []string{central, member, single}, "detector/aws.go inspect", ""},
	{"iam", "GenerateCredentialReport", []string{central, member, single}, "detector/aws.go reportKeys", ""},
	{"iam", "GetCredentialReport", []string{central, member, single}, "detector/aws.go reportKeys", ""},
	{"iam", "ListOrganizationsFeatures", []string{central}, "detector/rootaccess.go readOrgRootAccess (organization mode: sweep and scan)", ""},
	{"sqs", "ReceiveMessage", []string{central, single}, "detector/sqs.go", ""},
	{"sqs", "DeleteMessage", []string{central, single}, "detector/sqs.go", ""},
	{"sts", "AssumeRoot", []string{central}, "remediator/assumeroot.go (EnableAssumeRoot=true only)", ""},
	{"iam", "ListAccessKeys", []string{rootSession}, "remediator/assumeroot.go (paginator)", ""},
	{"iam", "DeleteAccessKey", []string{rootSession}, "remediator/assumeroot.go", ""},
	// OU paths and account tags for routing and owners.
	{"organizations", "ListRoots", []string{central}, "detector/org.go OU tree", ""},
	{"organizations", "ListOrganizationalUnitsForParent", []string{central}, "detector/org.go OU tree", ""},
	{"organizations", "ListAccountsForParent", []string{central}, "detector/org.go OU tree", ""},
	{"organizations", "ListParents", []string{central}, "detector/org.go OU path of one account", ""},
	{"organizations", "DescribeOrganizationalUnit", []string{central}, "detector/org.go OU names", ""},
	{"organizations", "ListTagsForResource", []string{central}, "detector/org.go account tags", ""},
	// Security Hub out (EnableSecurityHub=out|both): lookup before write, then the workflow.
	{"securityhub", "GetFindings", []string{central}, "remediator/securityhub Mark", ""},
	{"securityhub", "BatchUpdateFindings", []string{central}, "remediator/securityhub Mark", ""},
	{"securityhub", "GetFindingsV2", []string{central}, "remediator/securityhub markV2 (ROOTWARDEN_SECURITYHUB_OCSF)", ""},
	{"securityhub", "BatchUpdateFindingsV2", []string{central}, "remediator/securityhub markV2 (ROOTWARDEN_SECURITYHUB_OCSF)", ""},
}

// iamAction is the IAM action an operation needs: its own name but where AWS says
// otherwise (the Security Hub V2 operations use the V1 actions, per the API reference).
func iamAction(svc, op string) string {
	switch svc + ":" + op {
	case "securityhub:GetFindingsV2":
		return "securityhub:GetFindings"
	case "securityhub:BatchUpdateFindingsV2":
		return "securityhub:BatchUpdateFindings"
	}
	return svc + ":" + op
}

// implied are actions no code calls by name but a called operation needs, per principal.
var implied = map[string]map[string]string{
	central: {"kms:Decrypt": "sqs:ReceiveMessage on a queue encrypted with a customer-managed key (QueueEncryption=KMS)"},
}

// services are the SDK clients the code may use; their operations are read from the
// client types so the scan knows every operation name.
var services = map[string]struct {
	importPath string
	client     any
}{
	"iam":           {"github.com/aws/aws-sdk-go-v2/service/iam", &iam.Client{}},
	"sts":           {"github.com/aws/aws-sdk-go-v2/service/sts", &sts.Client{}},
	"organizations": {"github.com/aws/aws-sdk-go-v2/service/organizations", &organizations.Client{}},
	"sqs":           {"github.com/aws/aws-sdk-go-v2/service/sqs", &sqs.Client{}},
	"securityhub":   {"github.com/aws/aws-sdk-go-v2/service/securityhub", &securityhub.Client{}},
}

func operations(client any) map[string]bool {
	ops := map[string]bool{}
	t := reflect.TypeOf(client)
	for i := range t.NumMethod() {
		m := t.Method(i)
		if m.Type.NumIn() >= 3 {
			if in := m.Type.In(2); in.Kind() == reflect.Pointer && in.Elem().Name() == m.Name+"Input" {
				ops[m.Name] = true
			}
		}
	}
	return ops
}

// scanCode finds every AWS SDK operation called in the module's non-test Go code
// (the simulator, which serves them, excluded): method calls whose name is an
// operation of a service the file imports, and New<Op>Paginator calls.
func scanCode(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	opsBySvc := map[string]map[string]bool{}
	svcByPath := map[string]string{}
	for name, s := range services {
		opsBySvc[name] = operations(s.client)
		svcByPath[s.importPath] = name
		if len(opsBySvc[name]) < 5 {
			t.Fatalf("found only %d operations on the %s client: the reflection no longer works", len(opsBySvc[name]), name)
		}
	}
	found := map[string][]string{} // "svc:Op" → positions
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == filepath.Join("internal", "awssim") || rel == "deploy" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && rel != "." {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		imported := map[string]string{} // local name → service
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if svc, ok := svcByPath[p]; ok {
				local := svc
				if im.Name != nil {
					local = im.Name.Name
				}
				imported[local] = svc
			}
		}
		if len(imported) == 0 {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			name := sel.Sel.Name
			pos := fmt.Sprintf("%s:%d", rel, fset.Position(call.Pos()).Line)
			if x, ok := sel.X.(*ast.Ident); ok {
				if svc, ok := imported[x.Name]; ok {
					if op, ok := strings.CutPrefix(name, "New"); ok {
						if op, ok = strings.CutSuffix(op, "Paginator"); ok && opsBySvc[svc][op] {
							found[svc+":"+op] = append(found[svc+":"+op], pos)
						}
					}
					return true // a package function, not a client method
				}
			}
			var cands []string
			for _, svc := range imported {
				if opsBySvc[svc][name] {
					cands = append(cands, svc)
				}
			}
			switch len(cands) {
			case 0:
			case 1:
				found[cands[0]+":"+name] = append(found[cands[0]+":"+name], pos)
			default:
				sort.Strings(cands)
				t.Errorf("%s: %s is an operation of %v, all imported here: name the service in the scan", pos, name, cands)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestCallListMatchesCode(t *testing.T) {
	found := scanCode(t)
	listed := map[string]awsCall{}
	for _, c := range calls {
		listed[c.svc+":"+c.op] = c
	}
	for k, pos := range found {
		if _, ok := listed[k]; !ok {
			t.Errorf("the code calls %s (%s) but the call list does not have it: add it with its principal, and grant it in deploy/aws", k, strings.Join(pos, ", "))
		}
	}
	for k, c := range listed {
		if _, ok := found[k]; !ok {
			if c.pending != "" {
				t.Logf("%s not in the code yet (pending: %s)", k, c.pending)
				continue
			}
			t.Errorf("the call list has %s (%s) but no code calls it: remove it and its grants", k, c.where)
		}
	}
	if len(found) < 10 {
		t.Fatalf("the scan found only %d operations: it no longer sees the SDK calls", len(found))
	}
}

// statement is one normalized IAM policy statement.
type statement struct {
	Sid        string
	Effect     string
	Actions    []string
	Resources  []string
	Principal  any
	Condition  map[string]any
	Conditions []string // template conditions that guard it (Fn::If)
}

// render turns intrinsic functions into strings: !Sub x → x, !Ref X → ${X},
// !GetAtt A.B → ${A.B}.
func render(v any) any {
	switch c := v.(type) {
	case map[string]any:
		if fn, args, ok := intrinsic(c); ok {
			switch fn {
			case "Ref":
				return "${" + fmt.Sprint(args) + "}"
			case "Fn::GetAtt":
				l := asList(args)
				parts := make([]string, len(l))
				for i, p := range l {
					parts[i] = fmt.Sprint(p)
				}
				return "${" + strings.Join(parts, ".") + "}"
			case "Fn::Sub":
				if s, ok := args.(string); ok {
					return s
				}
			}
		}
		out := map[string]any{}
		for k, e := range c {
			out[k] = render(e)
		}
		return out
	case []any:
		out := make([]any, len(c))
		for i, e := range c {
			out[i] = render(e)
		}
		return out
	}
	return v
}

func strs(v any) []string {
	var out []string
	for _, e := range asList(render(v)) {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// statements flattens a policy document, following both branches of Fn::If and
// recording the condition that guards each statement.
func statements(t *testing.T, where string, doc any) []statement {
	t.Helper()
	var out []statement
	var add func(v any, guards []string)
	add = func(v any, guards []string) {
		if fn, args, ok := intrinsic(v); ok {
			switch {
			case fn == "Fn::If":
				l := asList(args)
				c := fmt.Sprint(l[0])
				add(l[1], append(append([]string{}, guards...), c))
				add(l[2], append(append([]string{}, guards...), "!"+c))
			case fn == "Ref" && args == "AWS::NoValue":
			case fn == "Fn::Sub":
				s, _ := args.(string)
				var m map[string]any
				if err := json.Unmarshal([]byte(s), &m); err != nil {
					t.Fatalf("%s: a policy written as a !Sub string must be JSON: %v", where, err)
				}
				add(m, guards)
			default:
				t.Fatalf("%s: cannot read a policy built with %s", where, fn)
			}
			return
		}
		switch c := v.(type) {
		case []any:
			for _, e := range c {
				add(e, guards)
			}
		case map[string]any:
			if st, ok := c["Statement"]; ok {
				add(st, guards)
				return
			}
			s := statement{Effect: fmt.Sprint(c["Effect"]), Conditions: guards}
			if sid, ok := c["Sid"]; ok {
				s.Sid = fmt.Sprint(sid)
			}
			s.Actions = strs(c["Action"])
			s.Resources = strs(c["Resource"])
			s.Principal = render(c["Principal"])
			s.Condition, _ = render(c["Condition"]).(map[string]any)
			if c["NotAction"] != nil || c["NotResource"] != nil || c["NotPrincipal"] != nil {
				t.Errorf("%s: statement %q uses Not*: write what is allowed instead", where, s.Sid)
			}
			if s.Effect != "Allow" {
				t.Errorf("%s: statement %q has Effect %q; these templates only allow", where, s.Sid, s.Effect)
			}
			out = append(out, s)
		default:
			t.Fatalf("%s: unexpected policy part %T", where, v)
		}
	}
	add(doc, nil)
	return out
}

type policy struct {
	name       string // template/resource
	principal  string // code principal, or "" for infrastructure
	statements []statement
}

// policies reads every policy document of the templates and classifies it; a
// document nobody classified fails the test, so a new grant cannot slip past.
func policies(t *testing.T) []policy {
	t.Helper()
	var out []policy
	for _, name := range TemplateNames {
		tpl, err := LoadTemplate(name)
		if err != nil {
			t.Fatal(err)
		}
		for id, r := range tpl.Resources() {
			props, _ := r["Properties"].(map[string]any)
			where := name + "/" + id
			switch r["Type"] {
			case "AWS::IAM::Role":
				principal := map[string]string{
					"central.yaml/RootwardenRole":   central,
					"member.yaml/ReadOnlyRole":      member,
					"management.yaml/ReadOnlyRole":  member,
					"member.yaml/ForwarderRole":     "",
					"management.yaml/ForwarderRole": "",
				}
				p, ok := principal[where]
				if !ok {
					t.Errorf("%s: a role this test does not know: classify it", where)
					continue
				}
				out = append(out, policy{where + " (trust)", "trust", statements(t, where, props["AssumeRolePolicyDocument"])})
				var sts []statement
				for _, pol := range asList(props["Policies"]) {
					sts = append(sts, statements(t, where, pol.(map[string]any)["PolicyDocument"])...)
				}
				if props["ManagedPolicyArns"] != nil {
					t.Errorf("%s: managed policies grant what the code does not call; write the actions inline", where)
				}
				out = append(out, policy{where, p, sts})
			case "AWS::Organizations::ResourcePolicy":
				out = append(out, policy{where, "delegation", statements(t, where, props["Content"])})
			case "AWS::Events::EventBusPolicy":
				out = append(out, policy{where, "", statements(t, where, props["Statement"])})
			case "AWS::SQS::QueuePolicy":
				out = append(out, policy{where, "", statements(t, where, props["PolicyDocument"])})
			case "AWS::KMS::Key":
				out = append(out, policy{where, "", statements(t, where, props["KeyPolicy"])})
			case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group":
				t.Errorf("%s: %s is not expected in these templates", where, r["Type"])
			}
		}
	}
	b, err := os.ReadFile("single-account-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("single-account-policy.json: %v", err)
	}
	out = append(out, policy{"single-account-policy.json", single, statements(t, "single-account-policy.json", doc)})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func allows(p policy, action string) *statement {
	for i, s := range p.statements {
		for _, a := range s.Actions {
			if a == action {
				return &p.statements[i]
			}
		}
	}
	return nil
}

func TestEveryCallIsAllowedForItsCaller(t *testing.T) {
	ps := policies(t)
	byPrincipal := map[string][]policy{}
	for _, p := range ps {
		byPrincipal[p.principal] = append(byPrincipal[p.principal], p)
	}
	for _, want := range []string{central, member, single, "delegation"} {
		if len(byPrincipal[want]) == 0 {
			t.Fatalf("no policy for principal %s", want)
		}
	}
	for _, c := range calls {
		action := iamAction(c.svc, c.op)
		for _, pr := range c.principals {
			switch pr {
			case anyone, rootSession:
				continue // no permission needed / AWS's task policy IAMDeleteRootUserCredentials
			}
			for _, p := range byPrincipal[pr] {
				if allows(p, action) == nil {
					t.Errorf("%s does not allow %s, which %s calls (%s)", p.name, action, pr, c.where)
				}
			}
			if c.svc == "organizations" && pr == central {
				for _, p := range byPrincipal["delegation"] {
					if allows(p, action) == nil {
						t.Errorf("%s does not delegate %s, which %s calls from the central account (%s)", p.name, action, pr, c.where)
					}
				}
			}
		}
	}
}

func TestTemplatesGrantNothingTheCodeNeverCalls(t *testing.T) {
	need := map[string]map[string]bool{}
	for _, c := range calls {
		for _, pr := range c.principals {
			if need[pr] == nil {
				need[pr] = map[string]bool{}
			}
			need[pr][iamAction(c.svc, c.op)] = true
			if c.svc == "organizations" && pr == central {
				if need["delegation"] == nil {
					need["delegation"] = map[string]bool{}
				}
				need["delegation"][c.svc+":"+c.op] = true
			}
		}
	}
	for pr, acts := range implied {
		for a := range acts {
			need[pr][a] = true
		}
	}
	// Infrastructure grants: AWS services act on rootwarden's behalf; each is listed
	// with its reason and nothing else may appear.
	infra := map[string][]string{
		"central.yaml/EventBusPolicy":   {"events:PutEvents"},                            // organization accounts forward to the bus
		"central.yaml/QueuePolicy":      {"sqs:SendMessage"},                             // the bus rule delivers to the queue
		"central.yaml/QueueKey":         {"kms:*", "kms:GenerateDataKey", "kms:Decrypt"}, // key administration by the account; EventBridge encrypts
		"member.yaml/ForwarderRole":     {"events:PutEvents"},                            // the member rule puts on the central bus
		"management.yaml/ForwarderRole": {"events:PutEvents"},
	}
	for _, p := range policies(t) {
		var got []string
		for _, s := range p.statements {
			got = append(got, s.Actions...)
		}
		switch p.principal {
		case "trust":
			for _, a := range got {
				switch a {
				case "sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:TagSession":
				default:
					t.Errorf("%s: trust policy allows %s", p.name, a)
				}
			}
		case "":
			want, ok := infra[p.name]
			if !ok {
				t.Errorf("%s: an infrastructure policy this test does not know", p.name)
				continue
			}
			sort.Strings(got)
			got = slices.Compact(got) // one action in two statements (the Security Hub rules' own)
			sort.Strings(want)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s allows %v, want exactly %v", p.name, got, want)
			}
		default:
			for _, a := range got {
				if strings.ContainsAny(a, "*?") {
					t.Errorf("%s grants %s: no wildcards for a principal the code uses", p.name, a)
				} else if !need[p.principal][a] {
					t.Errorf("%s grants %s, which the code never calls as %s", p.name, a, p.principal)
				}
			}
		}
	}
}

// TestScopes checks the resources and conditions that keep the grants narrow.
func TestScopes(t *testing.T) {
	find := func(name, action string) *statement {
		for _, p := range policies(t) {
			if p.name == name {
				if s := allows(p, action); s != nil {
					return s
				}
			}
		}
		t.Fatalf("%s does not allow %s", name, action)
		return nil
	}
	eq := func(what string, got []string, want ...string) {
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	s := find("central.yaml/RootwardenRole", "sts:AssumeRoot")
	eq("AssumeRoot resource", s.Resources, "arn:${AWS::Partition}:iam::*:root")
	eq("AssumeRoot guard", s.Conditions, "AssumeRoot")
	if fmt.Sprint(s.Condition["StringEquals"]) != "map[sts:TaskPolicyArn:arn:${AWS::Partition}:iam::aws:policy/root-task/IAMDeleteRootUserCredentials]" {
		t.Errorf("AssumeRoot is not limited to the delete-root-credentials task policy: %v", s.Condition)
	}
	s = find("central.yaml/RootwardenRole", "sts:AssumeRole")
	eq("AssumeRole resource", s.Resources, "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}")
	s = find("central.yaml/RootwardenRole", "sqs:ReceiveMessage")
	eq("queue resource", s.Resources, "${Queue.Arn}")
	s = find("central.yaml/RootwardenRole", "kms:Decrypt")
	eq("kms guard", s.Conditions, "Kms")
	s = find("central.yaml/EventBusPolicy", "events:PutEvents")
	if fmt.Sprint(s.Condition) != "map[StringEquals:map[aws:PrincipalOrgID:${OrganizationId}]]" {
		t.Errorf("the bus policy is not limited to the organization: %v", s.Condition)
	}
	s = find("central.yaml/QueuePolicy", "sqs:SendMessage")
	if fmt.Sprint(s.Principal) != "map[Service:events.amazonaws.com]" || fmt.Sprint(s.Condition) != "map[ArnEquals:map[aws:SourceArn:[${BusToQueueRule.Arn} ${RootActivityToQueueRule.Arn}]]]" {
		t.Errorf("the queue policy is not limited to the bus rule: %v %v", s.Principal, s.Condition)
	}
	for _, p := range policies(t) {
		for _, s := range p.statements {
			if s.Sid == "SecurityHubRulesSend" && (fmt.Sprint(s.Conditions) != "[SecurityHubIn]" ||
				fmt.Sprint(s.Condition) != "map[ArnEquals:map[aws:SourceArn:[${SecurityHubToQueueRule.Arn} ${SecurityHubV2ToQueueRule.Arn}]]]") {
				t.Errorf("the Security Hub rules' send is not limited to them and to EnableSecurityHub in|both: %v %v", s.Conditions, s.Condition)
			}
			if slices.Contains(s.Actions, "securityhub:BatchUpdateFindings") && fmt.Sprint(s.Conditions) != "[SecurityHubOut]" {
				t.Errorf("%s: securityhub:BatchUpdateFindings granted outside EnableSecurityHub out|both: %v", p.name, s.Conditions)
			}
		}
	}
	for _, tpl := range []string{"member.yaml", "management.yaml"} {
		s = find(tpl+"/ReadOnlyRole (trust)", "sts:AssumeRole")
		want := "map[ArnEquals:map[aws:PrincipalArn:arn:${AWS::Partition}:iam::${CentralAccountId}:role/${CentralRoleName}] StringEquals:map[sts:ExternalId:${ExternalId}]]"
		if fmt.Sprint(s.Condition) != want {
			t.Errorf("%s: the read-only role's trust is not limited to rootwarden's role with the external id: %v", tpl, s.Condition)
		}
		s = find(tpl+"/ForwarderRole", "events:PutEvents")
		eq(tpl+" forwarder resource", s.Resources, "${CentralEventBusArn}")
	}
	s = find("management.yaml/DelegationPolicy", "organizations:ListAccounts")
	if fmt.Sprint(s.Principal) != "map[AWS:arn:${AWS::Partition}:iam::${CentralAccountId}:root]" {
		t.Errorf("the delegation is not to the central account: %v", s.Principal)
	}
}

// TestManagementRepeatsMember: StackSets skip the management account, so its stack
// must create exactly what every member gets.
func TestManagementRepeatsMember(t *testing.T) {
	m, err := LoadTemplate("member.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := LoadTemplate("management.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"Parameters", "Conditions", "Resources", "Outputs"} {
		ms, _ := m[section].(map[string]any)
		gs, _ := g[section].(map[string]any)
		for k, v := range ms {
			if !reflect.DeepEqual(v, gs[k]) {
				t.Errorf("management.yaml %s.%s differs from member.yaml's", section, k)
			}
		}
	}
}
