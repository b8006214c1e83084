package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRoutesCompactEnvironmentForm(t *testing.T) {
	c, err := Load(env(map[string]string{routesVar: "ou:Root/Prod/Payments=C0PAY; tag:team=data=eng=C0DATA\naccount:111122223333=C0SBX"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{{OU: "Root/Prod/Payments", Channel: "C0PAY"}, {TagKey: "team", TagValue: "data=eng", Channel: "C0DATA"},
		{Account: "111122223333", Channel: "C0SBX"}}
	if len(c.OnCall.Routes) != len(want) {
		t.Fatalf("routes %+v", c.OnCall.Routes)
	}
	for i := range want {
		if c.OnCall.Routes[i] != want[i] {
			t.Errorf("rule %d = %+v, want %+v", i+1, c.OnCall.Routes[i], want[i])
		}
	}
	if c.OnCall.OwnerTag != "owner" || c.OnCall.OnCallCacheTTL != time.Minute {
		t.Errorf("defaults: %+v", c.OnCall)
	}
}

func TestRoutesFromYAMLListAndEnvironmentWins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rootwarden.yaml")
	yml := "slack_channel: C0DEFAULT\nslack_routes:\n  - ou: Root/Prod\n    channel: C0PROD\n  - tag: team=payments\n    channel: C0PAY\n  - account: \"012345678901\"\n    channel: C0SBX\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"ROOTWARDEN_CONFIG": path}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.OnCall.Routes) != 3 || c.OnCall.Routes[0].OU != "Root/Prod" || c.OnCall.Routes[1].TagValue != "payments" ||
		c.OnCall.Routes[2].Account != "012345678901" {
		t.Fatalf("routes from YAML: %+v", c.OnCall.Routes)
	}
	c, err = Load(env(map[string]string{"ROOTWARDEN_CONFIG": path, routesVar: "account:111122223333=C0ENV"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.OnCall.Routes) != 1 || c.OnCall.Routes[0].Channel != "C0ENV" {
		t.Fatalf("environment must win: %+v", c.OnCall.Routes)
	}
}

func TestOnCallMistakesNameTheVariableAndRule(t *testing.T) {
	cases := []struct{ name, key, val, want string }{
		{"channel name instead of id", routesVar, "ou:Root/Prod=#payments", "rule 1"},
		{"second rule wrong", routesVar, "ou:Root/Prod=C0PROD;tag:team=C0X", "rule 2"},
		{"ou not from root", routesVar, "ou:Prod/Payments=C0PAY", "must start at the root"},
		{"unknown kind", routesVar, "label:x=C0X", "unknown rule kind"},
		{"short account id", routesVar, "account:1234=C0X", "12-digit"},
		{"token without schedules", "ROOTWARDEN_PAGERDUTY_TOKEN", "u+abc", "ROOTWARDEN_PAGERDUTY_SCHEDULES"},
		{"schedules without token", "ROOTWARDEN_PAGERDUTY_SCHEDULES", "PABC123", "ROOTWARDEN_PAGERDUTY_TOKEN"},
		{"bad cache ttl", "ROOTWARDEN_ONCALL_CACHE_TTL", "soon", "ROOTWARDEN_ONCALL_CACHE_TTL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(map[string]string{tc.key: tc.val}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not say %q", err, tc.want)
			}
		})
	}
	_, err := Load(env(map[string]string{"ROOTWARDEN_PAGERDUTY_TOKEN": "u+abc", "ROOTWARDEN_PAGERDUTY_SCHEDULES": "pdsched"}))
	if err == nil || !strings.Contains(err.Error(), "ROOTWARDEN_PAGERDUTY_SCHEDULES") {
		t.Fatalf("lower-case schedule id accepted: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "u+abc") {
		t.Fatal("the PagerDuty token appears in an error")
	}
}
