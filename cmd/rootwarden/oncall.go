package main

import (
	"fmt"
	"net/http"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/config"
	"github.com/rootwarden/rootwarden/internal/pagerduty"
	"github.com/rootwarden/rootwarden/notifier"
)

// notifierOnCall builds the notifier's on-call settings: routing rules, owner tag,
// PagerDuty (on-call approvers and incidents) and the detector for slash checks.
func notifierOnCall(cfg config.Config, b *bus.Bus) (notifier.OnCallConfig, error) {
	oc := cfg.OnCall
	out := notifier.OnCallConfig{OwnerTag: oc.OwnerTag, OnCallCacheTTL: oc.OnCallCacheTTL, Checker: bus.Checker{NC: b.NC},
		SweepEvery: cfg.ScanInterval}
	for _, r := range oc.Routes {
		out.Routes = append(out.Routes, notifier.Route(r))
	}
	if oc.PagerDutyToken == "" && oc.PagerDutyRoutingKey == "" {
		return out, nil
	}
	pd, err := pagerduty.New(pagerduty.Config{Token: oc.PagerDutyToken, Schedules: oc.PagerDutySchedules,
		RoutingKey: oc.PagerDutyRoutingKey, APIURL: oc.PagerDutyAPIURL, EventsURL: oc.PagerDutyEventsURL,
		Client: &http.Client{}})
	if err != nil {
		return out, fmt.Errorf("PagerDuty: %w", err)
	}
	if pd.OnCallEnabled() {
		out.OnCall = pd
	}
	if pd.EventsEnabled() {
		out.Pager = pd
	}
	return out, nil
}
