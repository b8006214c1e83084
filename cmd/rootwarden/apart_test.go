package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/config"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// The three components run as separate processes over one external NATS server: the
// detector finds the key, the remediator opens the case, the notifier posts it.
func TestComponentsRunApartOverExternalNATS(t *testing.T) {
	sim := scanSim(t, 1)
	member := "200000000001"
	sim.CreateRootKey(member, time.Now().AddDate(0, -1, 0))
	awsCfg, err := loadAWS(context.Background()) // the SDK's chain reads AWS_ENDPOINT_URL set by scanSim
	if err != nil {
		t.Fatal(err)
	}
	server := bustest.New(t) // a NATS server the components connect to
	sl := slackfake.New(slackfake.WithChannel("C0APART01", "oncall"), slackfake.WithBotToken("xoxb-apart"))
	slackURL := sl.Start()
	t.Cleanup(sl.Close)

	common := map[string]string{
		"ROOTWARDEN_NATS_URL": server.Server.ClientURL(), "ROOTWARDEN_SCAN_INTERVAL": "1h",
		"ROOTWARDEN_ORG_ROLE_NAME": "OrganizationAccountAccessRole", "ROOTWARDEN_LOG_LEVEL": "warn",
		"SLACK_BOT_TOKEN": "xoxb-apart", "SLACK_SIGNING_SECRET": "apart-secret", "ROOTWARDEN_SLACK_CHANNEL": "C0APART01",
		"ROOTWARDEN_SLACK_API_URL": slackURL, "ROOTWARDEN_APPROVERS": "U0APPROVER",
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	logs := &testutil.LogBuffer{}
	for _, role := range []config.Role{config.RoleDetector, config.RoleRemediator, config.RoleNotifier} {
		env := map[string]string{"ROOTWARDEN_HTTP_ADDR": "127.0.0.1:0"}
		for k, v := range common {
			env[k] = v
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := runServe(ctx, []config.Role{role}, logs, serveOptions{getenv: func(k string) string { return env[k] }, aws: &awsCfg}); code != 0 {
				t.Errorf("%s exited %d", role, code)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	deadline := time.Now().Add(30 * time.Second)
	for {
		var found bool
		for _, m := range sl.Messages("C0APART01") {
			if m.Metadata == nil {
				continue
			}
			if id, _ := m.Metadata.EventPayload["case_id"].(string); strings.HasPrefix(id, member+"-1-") {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Slack message for the member's case; logs:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e, err := server.Cases.Get(context.Background(), member)
	if err != nil {
		t.Fatal(err)
	}
	var c model.Case
	if err := json.Unmarshal(e.Value(), &c); err != nil || c.State != model.StateOpen {
		t.Fatalf("case: %v %+v", err, c)
	}
}
