package awsdeploy

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Spec is the part of the CloudFormation resource specification
// (CloudFormationResourceSpecification.json, shipped as spec/specification.json in
// the npm package @aws-cdk/cfnspec) that Validate reads.
type Spec struct {
	ResourceSpecificationVersion string
	ResourceTypes                map[string]specType
	PropertyTypes                map[string]specType
}

type specType struct {
	Properties map[string]specProperty
	Attributes map[string]json.RawMessage
}

type specProperty struct {
	Required          bool
	PrimitiveType     string
	PrimitiveItemType string
	Type              string
	ItemType          string
}

// LoadSpec reads a specification file.
func LoadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CloudFormation spec: %w", err)
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode CloudFormation spec %s: %w", path, err)
	}
	if len(s.ResourceTypes) == 0 {
		return nil, fmt.Errorf("decode CloudFormation spec %s: no ResourceTypes", path)
	}
	return &s, nil
}

var pseudoParams = map[string]bool{
	"AWS::AccountId": true, "AWS::NotificationARNs": true, "AWS::NoValue": true, "AWS::Partition": true,
	"AWS::Region": true, "AWS::StackId": true, "AWS::StackName": true, "AWS::URLSuffix": true,
}

var topLevel = map[string]bool{
	"AWSTemplateFormatVersion": true, "Description": true, "Metadata": true, "Parameters": true,
	"Rules": true, "Mappings": true, "Conditions": true, "Transform": true, "Resources": true, "Outputs": true,
}

var resourceKeys = map[string]bool{
	"Type": true, "Properties": true, "Condition": true, "DependsOn": true, "DeletionPolicy": true,
	"UpdateReplacePolicy": true, "Metadata": true, "CreationPolicy": true, "UpdatePolicy": true,
}

// Validate checks a template against the specification: top-level sections, resource
// types, property names and required properties (nested property types included where
// the template writes them out), primitive types of literal values, and that every Ref,
// Fn::GetAtt (attribute included), Fn::Sub variable and condition names something
// defined. It returns every problem found, sorted.
func (s *Spec) Validate(t Template) []string {
	v := &validator{spec: s, t: t}
	v.run()
	sort.Strings(v.problems)
	return v.problems
}

type validator struct {
	spec     *Spec
	t        Template
	problems []string
}

func (v *validator) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) run() {
	for k := range v.t {
		if !topLevel[k] {
			v.addf("unknown top-level section %q", k)
		}
	}
	params, _ := v.t["Parameters"].(map[string]any)
	conds, _ := v.t["Conditions"].(map[string]any)
	res := v.t.Resources()
	if len(res) == 0 {
		v.addf("no Resources")
	}
	for name, c := range conds {
		v.refs("Conditions."+name, c)
	}
	for id, r := range res {
		where := "Resources." + id
		for k := range r {
			if !resourceKeys[k] {
				v.addf("%s: unknown resource attribute %q", where, k)
			}
		}
		if c, ok := r["Condition"].(string); ok {
			if _, found := conds[c]; !found {
				v.addf("%s: Condition %q is not defined", where, c)
			}
		}
		for _, d := range asList(r["DependsOn"]) {
			if _, found := res[fmt.Sprint(d)]; !found {
				v.addf("%s: DependsOn %q is not a resource", where, d)
			}
		}
		typ, _ := r["Type"].(string)
		rt, ok := v.spec.ResourceTypes[typ]
		if !ok {
			v.addf("%s: resource type %q is not in the specification", where, typ)
			continue
		}
		props, _ := r["Properties"].(map[string]any)
		if r["Properties"] != nil && props == nil {
			v.addf("%s: Properties is not a mapping", where)
		}
		v.object(where+".Properties", typ, rt, props)
		v.refs(where, r["Properties"])
	}
	outs, _ := v.t["Outputs"].(map[string]any)
	for name, o := range outs {
		om, _ := o.(map[string]any)
		if om == nil || om["Value"] == nil {
			v.addf("Outputs.%s: no Value", name)
			continue
		}
		if c, ok := om["Condition"].(string); ok {
			if _, found := conds[c]; !found {
				v.addf("Outputs.%s: Condition %q is not defined", name, c)
			}
		}
		v.refs("Outputs."+name, om["Value"])
	}
	_ = params
}

// object checks the properties of a resource or property type.
func (v *validator) object(where, resourceType string, st specType, props map[string]any) {
	for name, p := range st.Properties {
		if _, ok := props[name]; p.Required && !ok {
			v.addf("%s: required property %s is missing", where, name)
		}
	}
	for name, val := range props {
		p, ok := st.Properties[name]
		if !ok {
			v.addf("%s: property %s is not in the specification of %s", where, name, resourceType)
			continue
		}
		v.property(where+"."+name, resourceType, p, val)
	}
}

// property checks one value against its specification, descending into literal
// values and both branches of Fn::If.
func (v *validator) property(where, resourceType string, p specProperty, val any) {
	if fn, args, ok := intrinsic(val); ok {
		if fn == "Fn::If" {
			l := asList(args)
			if len(l) == 3 {
				for _, branch := range l[1:] {
					if isNoValue(branch) {
						continue
					}
					v.property(where, resourceType, p, branch)
				}
			}
		}
		return // other functions are resolved at deploy time
	}
	switch {
	case p.PrimitiveType != "":
		v.primitive(where, p.PrimitiveType, val)
	case p.Type == "List" || p.Type == "Map":
		var items []any
		switch c := val.(type) {
		case []any:
			if p.Type == "Map" {
				v.addf("%s: want a mapping, got a list", where)
				return
			}
			items = c
		case map[string]any:
			if p.Type == "List" {
				v.addf("%s: want a list, got a mapping", where)
				return
			}
			for _, e := range c {
				items = append(items, e)
			}
		default:
			v.addf("%s: want a %s, got %T", where, strings.ToLower(p.Type), val)
			return
		}
		for i, e := range items {
			ew := fmt.Sprintf("%s[%d]", where, i)
			if p.PrimitiveItemType != "" {
				if _, _, ok := intrinsic(e); !ok {
					v.primitive(ew, p.PrimitiveItemType, e)
				}
				continue
			}
			v.property(ew, resourceType, specProperty{Type: p.ItemType}, e)
		}
	case p.Type != "":
		pt, ok := v.spec.PropertyTypes[resourceType+"."+p.Type]
		if !ok {
			pt, ok = v.spec.PropertyTypes[p.Type] // shared types such as Tag
		}
		if !ok {
			v.addf("%s: property type %s is not in the specification", where, p.Type)
			return
		}
		m, isMap := val.(map[string]any)
		if !isMap {
			v.addf("%s: want a %s mapping, got %T", where, p.Type, val)
			return
		}
		v.object(where, resourceType, pt, m)
	}
}

func (v *validator) primitive(where, typ string, val any) {
	if _, _, ok := intrinsic(val); ok {
		return
	}
	switch typ {
	case "String":
		switch val.(type) {
		case string, int64, float64:
			return
		}
	case "Integer", "Long":
		switch x := val.(type) {
		case int64:
			return
		case string:
			if regexp.MustCompile(`^-?[0-9]+$`).MatchString(x) {
				return
			}
		}
	case "Double":
		switch val.(type) {
		case int64, float64:
			return
		}
	case "Boolean":
		switch x := val.(type) {
		case bool:
			return
		case string:
			if x == "true" || x == "false" {
				return
			}
		}
	case "Json":
		switch val.(type) {
		case map[string]any, string:
			return
		}
	case "Timestamp":
		if _, ok := val.(string); ok {
			return
		}
	}
	v.addf("%s: want %s, got %T %v", where, typ, val, val)
}

var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// refs checks that every reference under val names something defined.
func (v *validator) refs(where string, val any) {
	params, _ := v.t["Parameters"].(map[string]any)
	conds, _ := v.t["Conditions"].(map[string]any)
	res := v.t.Resources()
	defined := func(name string) bool {
		_, p := params[name]
		_, r := res[name]
		return p || r || pseudoParams[name]
	}
	attr := func(resID, a string) {
		r, ok := res[resID]
		if !ok {
			v.addf("%s: Fn::GetAtt %s.%s: no such resource", where, resID, a)
			return
		}
		typ, _ := r["Type"].(string)
		if rt, ok := v.spec.ResourceTypes[typ]; ok {
			if _, ok := rt.Attributes[a]; !ok {
				v.addf("%s: Fn::GetAtt %s.%s: %s has no attribute %s", where, resID, a, typ, a)
			}
		}
	}
	var walk func(any)
	walk = func(x any) {
		switch c := x.(type) {
		case map[string]any:
			if fn, args, ok := intrinsic(c); ok {
				switch fn {
				case "Ref":
					if s, _ := args.(string); !defined(s) {
						v.addf("%s: Ref %v is not a parameter, resource or pseudo parameter", where, args)
					}
				case "Condition":
					if _, ok := conds[fmt.Sprint(args)]; !ok {
						v.addf("%s: Condition %v is not defined", where, args)
					}
				case "Fn::If":
					if l := asList(args); len(l) == 3 {
						if _, ok := conds[fmt.Sprint(l[0])]; !ok {
							v.addf("%s: Fn::If condition %v is not defined", where, l[0])
						}
						walk(l[1])
						walk(l[2])
					} else {
						v.addf("%s: Fn::If wants [condition, then, else]", where)
					}
					return
				case "Fn::GetAtt":
					if l := asList(args); len(l) == 2 {
						attr(fmt.Sprint(l[0]), fmt.Sprint(l[1]))
					} else {
						v.addf("%s: Fn::GetAtt wants [resource, attribute]", where)
					}
					return
				case "Fn::Sub":
					str, vars := "", map[string]any{}
					switch a := args.(type) {
					case string:
						str = a
					case []any:
						if len(a) == 2 {
							str, _ = a[0].(string)
							vars, _ = a[1].(map[string]any)
							walk(a[1])
						}
					}
					for _, m := range subVar.FindAllStringSubmatch(str, -1) {
						name := m[1]
						if _, ok := vars[name]; ok {
							continue
						}
						if r, a, dot := strings.Cut(name, "."); dot && !pseudoParams[name] {
							attr(r, a)
						} else if !defined(name) {
							v.addf("%s: Fn::Sub variable ${%s} is not defined", where, name)
						}
					}
					return
				}
			}
			for _, e := range c {
				walk(e)
			}
		case []any:
			for _, e := range c {
				walk(e)
			}
		}
	}
	walk(val)
}

// intrinsic reports whether val is a one-key mapping naming an intrinsic function.
func intrinsic(val any) (fn string, args any, ok bool) {
	m, isMap := val.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
	}
	return "", nil, false
}

func isNoValue(val any) bool {
	fn, args, ok := intrinsic(val)
	return ok && fn == "Ref" && args == "AWS::NoValue"
}

func asList(x any) []any {
	switch c := x.(type) {
	case nil:
		return nil
	case []any:
		return c
	default:
		return []any{c}
	}
}
