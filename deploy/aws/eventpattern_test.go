package awsdeploy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// match is EventBridge's matching for the pattern features these templates use: a list
// of literal values or {"prefix": …} / {"exists": …} matchers per field, nested objects.
func match(pattern map[string]any, event map[string]any) bool {
	for k, want := range pattern {
		got, present := event[k]
		switch w := want.(type) {
		case map[string]any:
			if list, isList := got.([]any); isList { // an array matches when one element does
				hit := false
				for _, e := range list {
					sub, ok := e.(map[string]any)
					hit = hit || (ok && match(w, sub))
				}
				if !hit {
					return false
				}
				continue
			}
			sub, ok := got.(map[string]any)
			if !ok || !match(w, sub) {
				return false
			}
		case []any:
			ok := false
			for _, alt := range w {
				if m, isMap := alt.(map[string]any); isMap {
					if p, has := m["prefix"]; has {
						s, isStr := got.(string)
						ok = ok || (isStr && strings.HasPrefix(s, fmt.Sprint(p)))
					}
					if e, has := m["exists"]; has {
						ok = ok || (present == (e == true))
					}
					continue
				}
				ok = ok || (present && fmt.Sprint(alt) == fmt.Sprint(got))
			}
			if !ok {
				return false
			}
		default:
			panic(fmt.Sprintf("pattern field %s: unsupported %T", k, want))
		}
	}
	return true
}

func cloudTrail(detailType, source, eventSource, eventName, idType, keyID string) map[string]any {
	ev := fmt.Sprintf(`{"detail-type": %q, "source": %q, "account": "333333333333", "region": "eu-west-1",
	  "detail": {"eventSource": %q, "eventName": %q, "userIdentity": {"type": %q, "accessKeyId": %q}}}`,
		detailType, source, eventSource, eventName, idType, keyID)
	var m map[string]any
	if err := json.Unmarshal([]byte(ev), &m); err != nil {
		panic(err)
	}
	return m
}

// TestRulesForwardRootKeyEvents: what reaches rootwarden's queue, as a person would
// describe it.
func TestRulesForwardRootKeyEvents(t *testing.T) {
	patterns := map[string]map[string]any{}
	for _, tc := range []struct{ tpl, id string }{
		{"member.yaml", "RootKeyUseRule"}, {"member.yaml", "RootKeyChangeRule"}, {"central.yaml", "BusToQueueRule"},
		{"member.yaml", "RootSignInRule"}, {"member.yaml", "RootPasswordRecoveryRule"},
		{"member.yaml", "RootCredentialActivityRule"}, {"member.yaml", "AssumeRootRule"},
		{"central.yaml", "RootActivityToQueueRule"},
	} {
		tpl, err := LoadTemplate(tc.tpl)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := tpl.Resources()[tc.id]["Properties"].(map[string]any)["EventPattern"].(map[string]any)
		if !ok {
			t.Fatalf("%s %s: no literal EventPattern", tc.tpl, tc.id)
		}
		patterns[tc.id] = p
	}
	const api, signIn = "AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"
	for _, tc := range []struct {
		name      string
		event     map[string]any
		forwarded string // the member rule that forwards it, or ""
	}{
		{"root key used on Lambda (any service)", cloudTrail(api, "aws.lambda", "lambda.amazonaws.com", "ListFunctions20150331", "Root", "AKIAEXAMPLE1"), "RootKeyUseRule"},
		{"root key used on S3", cloudTrail(api, "aws.s3", "s3.amazonaws.com", "PutBucketPolicy", "Root", "AKIAEXAMPLE2"), "RootKeyUseRule"},
		{"root creates an access key in the console", cloudTrail(api, "aws.iam", "iam.amazonaws.com", "CreateAccessKey", "Root", "ASIACONSOLE"), "RootKeyChangeRule"},
		{"root deletes its access key in the console", cloudTrail(api, "aws.iam", "iam.amazonaws.com", "DeleteAccessKey", "Root", "ASIACONSOLE"), "RootKeyChangeRule"},
		{"root console sign-in", cloudTrail(signIn, "aws.signin", "signin.amazonaws.com", "ConsoleLogin", "Root", ""), "RootSignInRule"},
		{"root console sign-in (the other spelling)", cloudTrail("AWS Console Signin via CloudTrail", "aws.signin", "signin.amazonaws.com", "ConsoleLogin", "Root", ""), "RootSignInRule"},
		{"IAM user console sign-in", cloudTrail(signIn, "aws.signin", "signin.amazonaws.com", "ConsoleLogin", "IAMUser", ""), ""},
		{"root password changed", cloudTrail(signIn, "aws.signin", "signin.amazonaws.com", "PasswordUpdated", "Root", ""), "RootSignInRule"},
		{"root password recovery requested", cloudTrail(signIn, "aws.signin", "signin.amazonaws.com", "PasswordRecoveryRequested", "Root", ""), "RootPasswordRecoveryRule"},
		{"root password recovery completed", cloudTrail(signIn, "aws.signin", "signin.amazonaws.com", "PasswordRecoveryCompleted", "Root", ""), "RootPasswordRecoveryRule"},
		{"root deactivates its MFA device", cloudTrail(api, "aws.iam", "iam.amazonaws.com", "DeactivateMFADevice", "Root", "ASIACONSOLE"), "RootCredentialActivityRule"},
		{"root deletes its virtual MFA device", cloudTrail(api, "aws.iam", "iam.amazonaws.com", "DeleteVirtualMFADevice", "Root", "ASIACONSOLE"), "RootCredentialActivityRule"},
		{"root uploads a signing certificate", cloudTrail(api, "aws.iam", "iam.amazonaws.com", "UploadSigningCertificate", "Root", "ASIACONSOLE"), "RootCredentialActivityRule"},
		{"IAM user deactivates an MFA device", cloudTrail(api, "aws.iam", "iam.amazonaws.com", "DeactivateMFADevice", "IAMUser", "AKIAUSERKEY"), ""},
		{"a role starts a root session", cloudTrail(api, "aws.sts", "sts.amazonaws.com", "AssumeRoot", "AssumedRole", "ASIAROLE"), "AssumeRootRule"},
		{"root in the console, not a key event", cloudTrail(api, "aws.ec2", "ec2.amazonaws.com", "RunInstances", "Root", "ASIACONSOLE"), ""},
		{"IAM user with a long-term key", cloudTrail(api, "aws.lambda", "lambda.amazonaws.com", "ListFunctions20150331", "IAMUser", "AKIAUSERKEY"), ""},
		{"IAM user creates a key", cloudTrail(api, "aws.iam", "iam.amazonaws.com", "CreateAccessKey", "IAMUser", "AKIAUSERKEY"), ""},
		{"assumed role", cloudTrail(api, "aws.sts", "sts.amazonaws.com", "GetCallerIdentity", "AssumedRole", "ASIAROLE"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, id := range []string{"RootKeyUseRule", "RootKeyChangeRule", "RootSignInRule", "RootPasswordRecoveryRule",
				"RootCredentialActivityRule", "AssumeRootRule"} {
				if match(patterns[id], tc.event) {
					got = append(got, id)
				}
			}
			want := []string{}
			if tc.forwarded != "" {
				want = []string{tc.forwarded}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("member rules matching: %v, want %v", got, want)
			}
			if tc.forwarded != "" && !match(patterns["BusToQueueRule"], tc.event) && !match(patterns["RootActivityToQueueRule"], tc.event) {
				t.Errorf("the central rule drops an event a member rule forwards")
			}
		})
	}
}

// TestSecurityHubRulesForwardFailedRootControls: what of Security Hub reaches the queue
// (EnableSecurityHub=in|both).
func TestSecurityHubRulesForwardFailedRootControls(t *testing.T) {
	tpl, err := LoadTemplate("central.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pattern := func(id string) map[string]any {
		p, ok := tpl.Resources()[id]["Properties"].(map[string]any)["EventPattern"].(map[string]any)
		if !ok {
			t.Fatalf("%s: no literal EventPattern", id)
		}
		return p
	}
	asff, ocsf := pattern("SecurityHubToQueueRule"), pattern("SecurityHubV2ToQueueRule")
	event := func(s string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	cspm := func(control, status, state string) map[string]any {
		return event(fmt.Sprintf(`{"source":"aws.securityhub","detail-type":"Security Hub Findings - Imported","detail":{"findings":[
		  {"AwsAccountId":"222222222222","Compliance":{"SecurityControlId":%q,"Status":%q},"RecordState":%q}]}}`, control, status, state))
	}
	v2 := func(control, status string) map[string]any {
		return event(fmt.Sprintf(`{"source":"aws.securityhub","detail-type":"Findings Imported V2","detail":{"findings":[
		  {"cloud":{"account":{"uid":"222222222222"}},"compliance":{"control":%q,"status":%q}}]}}`, control, status))
	}
	for _, tc := range []struct {
		name  string
		event map[string]any
		want  bool
	}{
		{"IAM.4 FAILED", cspm("IAM.4", "FAILED", "ACTIVE"), true},
		{"IAM.6 FAILED", cspm("IAM.6", "FAILED", "ACTIVE"), true},
		{"IAM.9 FAILED", cspm("IAM.9", "FAILED", "ACTIVE"), true},
		{"IAM.4 PASSED", cspm("IAM.4", "PASSED", "ACTIVE"), false},
		{"IAM.4 FAILED but archived", cspm("IAM.4", "FAILED", "ARCHIVED"), false},
		{"another control", cspm("S3.1", "FAILED", "ACTIVE"), false},
		{"OCSF IAM.4 Fail", v2("IAM.4", "Fail"), true},
		{"OCSF IAM.9 Pass", v2("IAM.9", "Pass"), false},
		{"OCSF another control", v2("EC2.2", "Fail"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := match(asff, tc.event) || match(ocsf, tc.event); got != tc.want {
				t.Errorf("reaches the queue: %v, want %v", got, tc.want)
			}
		})
	}
}
