package awsdeploy

import (
	"os"
	"strings"
	"testing"
)

// TestTemplatesMatchResourceSpec validates the templates against the CloudFormation
// resource specification named by ROOTWARDEN_CFN_SPEC (.ci/run fetches it from the npm
// package @aws-cdk/cfnspec). Without it the test is skipped; CI always sets it.
func TestTemplatesMatchResourceSpec(t *testing.T) {
	path := os.Getenv("ROOTWARDEN_CFN_SPEC")
	if path == "" {
		t.Skip("ROOTWARDEN_CFN_SPEC is not set (path to @aws-cdk/cfnspec spec/specification.json); .ci/run sets it")
	}
	spec, err := LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CloudFormation resource specification %s, %d resource types", spec.ResourceSpecificationVersion, len(spec.ResourceTypes))
	for _, name := range TemplateNames {
		tpl, err := LoadTemplate(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range spec.Validate(tpl) {
			t.Errorf("%s: %s", name, p)
		}
	}
}

// miniSpec is a tiny specification in the real file's shape, so the validator's own
// checks run without the npm package.
const miniSpec = `{
 "ResourceSpecificationVersion": "test",
 "PropertyTypes": {
  "AWS::Events::Rule.Target": {"Properties": {
    "Arn": {"PrimitiveType": "String", "Required": true},
    "Id": {"PrimitiveType": "String", "Required": true},
    "RoleArn": {"PrimitiveType": "String", "Required": false}}}
 },
 "ResourceTypes": {
  "AWS::SQS::Queue": {"Attributes": {"Arn": {}, "QueueName": {}},
   "Properties": {"QueueName": {"PrimitiveType": "String", "Required": false},
                  "VisibilityTimeout": {"PrimitiveType": "Integer", "Required": false}}},
  "AWS::Events::Rule": {"Attributes": {"Arn": {}},
   "Properties": {"EventPattern": {"PrimitiveType": "Json", "Required": false},
                  "Targets": {"Type": "List", "ItemType": "Target", "Required": false},
                  "State": {"PrimitiveType": "String", "Required": false}}},
  "AWS::Events::EventBus": {"Attributes": {"Arn": {}},
   "Properties": {"Name": {"PrimitiveType": "String", "Required": true}}}
 }
}`

func TestValidateFindsMistakes(t *testing.T) {
	f := t.TempDir() + "/spec.json"
	if err := os.WriteFile(f, []byte(miniSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	spec, err := LoadSpec(f)
	if err != nil {
		t.Fatal(err)
	}
	good := `
Parameters:
  Name: {Type: String}
Conditions:
  Named: !Not [!Equals [!Ref Name, ""]]
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !If [Named, !Ref Name, !Ref AWS::NoValue]
      VisibilityTimeout: 30
  R:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [aws.iam]}
      Targets:
        - Id: q
          Arn: !GetAtt Q.Arn
          RoleArn: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${Name}
Outputs:
  Url: {Value: !Ref Q}
`
	tpl, err := ParseTemplate([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p := spec.Validate(tpl); len(p) != 0 {
		t.Fatalf("a valid template has problems: %v", p)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown type", "AWS::SQS::Queue", "AWS::SQS::Queues", `resource type "AWS::SQS::Queues" is not in the specification`},
		{"unknown property", "VisibilityTimeout: 30", "VisibilityTimout: 30", "property VisibilityTimout is not in the specification"},
		{"wrong primitive", "VisibilityTimeout: 30", "VisibilityTimeout: soon", "want Integer"},
		{"missing nested required", "        - Id: q\n", "        - Name: q\n", "property Name is not in the specification"},
		{"missing required", "        - Id: q\n", "        -\n", "required property Id is missing"},
		{"bad ref", "Value: !Ref Q}", "Value: !Ref Queue}", "Ref Queue is not a parameter"},
		{"bad attribute", "!GetAtt Q.Arn", "!GetAtt Q.Url", "AWS::SQS::Queue has no attribute Url"},
		{"bad sub variable", "role/${Name}", "role/${RoleName}", "Fn::Sub variable ${RoleName} is not defined"},
		{"bad condition", "!If [Named,", "!If [HasName,", "Fn::If condition HasName is not defined"},
		{"list for a list", "      Targets:\n        - Id: q\n          Arn: !GetAtt Q.Arn\n          RoleArn: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${Name}\n", "      Targets: {Id: q, Arn: x}\n", "want a list, got a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(good, tc.from, tc.to, 1)
			if src == good {
				t.Fatalf("the mutation %q did not apply", tc.from)
			}
			tpl, err := ParseTemplate([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			p := spec.Validate(tpl)
			if !strings.Contains(strings.Join(p, "\n"), tc.want) {
				t.Errorf("want a problem containing %q, got %v", tc.want, p)
			}
		})
	}
}

func TestParseTemplateShortTags(t *testing.T) {
	tpl, err := ParseTemplate([]byte("Resources:\n  A:\n    Type: X\n    Properties:\n      P: !GetAtt B.Arn\n      Q: !Sub |\n        ${B}\n      R: !If [C, !Ref D, !Ref AWS::NoValue]\n      S: !Unknown x\n"))
	if err == nil || !strings.Contains(err.Error(), "unknown tag !Unknown") {
		t.Fatalf("want an unknown-tag error, got %v %v", tpl, err)
	}
	tpl, err = ParseTemplate([]byte("Resources:\n  A:\n    Type: X\n    Properties:\n      P: !GetAtt B.Arn\n      Q: !Sub |\n        ${B}\n      R: !If [C, !Ref D, !Ref AWS::NoValue]\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := tpl.Resources()["A"]["Properties"].(map[string]any)
	if got := render(p["P"]); got != "${B.Arn}" {
		t.Errorf("!GetAtt: got %v", got)
	}
	if got := p["Q"].(map[string]any)["Fn::Sub"]; got != "${B}\n" {
		t.Errorf("!Sub literal: got %q", got)
	}
	if got := p["R"].(map[string]any)["Fn::If"].([]any); len(got) != 3 || got[0] != "C" {
		t.Errorf("!If: got %v", got)
	}
}
