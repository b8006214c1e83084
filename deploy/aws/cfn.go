// Package awsdeploy owns rootwarden's CloudFormation templates (central.yaml,
// member.yaml, management.yaml) and the checks that keep them honest: a reader for
// templates with CloudFormation's short tags, a validator against the CloudFormation
// resource specification, and (in its tests) the least-privilege comparison of the
// policies with the AWS operations the code calls.
package awsdeploy

import (
	"embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Templates holds the three templates.
//
//go:embed central.yaml member.yaml management.yaml
var Templates embed.FS

// TemplateNames are the files in Templates.
var TemplateNames = []string{"central.yaml", "member.yaml", "management.yaml"}

// Template is a parsed template: maps are map[string]any, lists []any, scalars string,
// int64, float64, bool or nil; a short tag (!Sub x) becomes its long form
// (map{"Fn::Sub": x}, !Ref x → map{"Ref": x}).
type Template map[string]any

// Resources is the template's Resources section.
func (t Template) Resources() map[string]map[string]any {
	out := map[string]map[string]any{}
	rs, _ := t["Resources"].(map[string]any)
	for id, r := range rs {
		if m, ok := r.(map[string]any); ok {
			out[id] = m
		}
	}
	return out
}

// LoadTemplate reads and parses one of Templates.
func LoadTemplate(name string) (Template, error) {
	b, err := Templates.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read template %s: %w", name, err)
	}
	return ParseTemplate(b)
}

// ParseTemplate parses a YAML template, short tags included.
func ParseTemplate(b []byte) (Template, error) {
	f, err := parser.ParseBytes(b, 0)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, fmt.Errorf("parse template: want one YAML document, got %d", len(f.Docs))
	}
	v, err := value(f.Docs[0].Body)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse template: the document is not a mapping")
	}
	return Template(m), nil
}

// shortTags maps CloudFormation's short tags to their intrinsic function names.
var shortTags = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!Sub": "Fn::Sub", "!GetAtt": "Fn::GetAtt", "!Join": "Fn::Join", "!Select": "Fn::Select",
	"!Split": "Fn::Split", "!If": "Fn::If", "!Equals": "Fn::Equals", "!Not": "Fn::Not",
	"!And": "Fn::And", "!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64",
	"!Cidr": "Fn::Cidr", "!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue",
	"!Transform": "Fn::Transform", "!Length": "Fn::Length", "!ToJsonString": "Fn::ToJsonString",
}

func value(n ast.Node) (any, error) {
	pos := func() string {
		if t := n.GetToken(); t != nil && t.Position != nil {
			return fmt.Sprintf("line %d", t.Position.Line)
		}
		return "?"
	}
	switch n := n.(type) {
	case *ast.MappingNode:
		m := make(map[string]any, len(n.Values))
		for _, kv := range n.Values {
			k, err := value(kv.Key)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(k)
			}
			if _, dup := m[ks]; dup {
				return nil, fmt.Errorf("%s: duplicate key %q", pos(), ks)
			}
			v, err := value(kv.Value)
			if err != nil {
				return nil, err
			}
			m[ks] = v
		}
		return m, nil
	case *ast.MappingValueNode:
		return value(&ast.MappingNode{BaseNode: n.BaseNode, Values: []*ast.MappingValueNode{n}})
	case *ast.SequenceNode:
		l := make([]any, 0, len(n.Values))
		for _, e := range n.Values {
			v, err := value(e)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case *ast.TagNode:
		fn, ok := shortTags[n.Start.Value]
		if !ok {
			return nil, fmt.Errorf("%s: unknown tag %s", pos(), n.Start.Value)
		}
		v, err := value(n.Value)
		if err != nil {
			return nil, err
		}
		if s, ok := v.(string); ok && fn == "Fn::GetAtt" {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("%s: !GetAtt %q is not Resource.Attribute", pos(), s)
			}
			v = []any{res, attr}
		}
		return map[string]any{fn: v}, nil
	case *ast.StringNode:
		return n.Value, nil
	case *ast.LiteralNode:
		return n.Value.Value, nil
	case *ast.IntegerNode:
		switch v := n.Value.(type) {
		case int64:
			return v, nil
		case uint64:
			return int64(v), nil
		default:
			return strconv.ParseInt(n.Token.Value, 0, 64)
		}
	case *ast.FloatNode:
		return n.Value, nil
	case *ast.BoolNode:
		return n.Value, nil
	case *ast.NullNode:
		return nil, nil
	case *ast.AnchorNode:
		return value(n.Value)
	case nil:
		return nil, nil
	default:
		return nil, fmt.Errorf("%s: unsupported YAML node %s", pos(), n.Type())
	}
}
