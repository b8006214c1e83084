package pagerduty_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/pagerduty"
	"github.com/rootwarden/rootwarden/internal/pagerduty/pdfake"
)

const (
	token      = "u+PDTOKENSECRET"
	routingKey = "R0UTINGKEYSECRET0000000000000000"
)

func client(t *testing.T, f *pdfake.Server, mutate func(*pagerduty.Config)) *pagerduty.Client {
	t.Helper()
	cfg := pagerduty.Config{Token: token, Schedules: []string{"PSCHED1", "PSCHED2"}, RoutingKey: routingKey,
		APIURL: f.URL(), EventsURL: f.URL(), Timeout: time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := pagerduty.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOnCallIsWhoeverHasTheShiftAtThatTime(t *testing.T) {
	f := pdfake.New(token, routingKey)
	defer f.Close()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f.AddShift("PSCHED1", pdfake.User{ID: "PU1", Name: "Yesterday", Email: "yday@example.com"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	f.AddShift("PSCHED1", pdfake.User{ID: "PU2", Name: "Today", Email: "Today@Example.com"}, now.Add(-24*time.Hour), now.Add(24*time.Hour))
	f.AddShift("PSCHED2", pdfake.User{ID: "PU2", Name: "Today", Email: "today@example.com"}, now.Add(-time.Hour), now.Add(time.Hour))
	f.AddShift("POTHER", pdfake.User{ID: "PU3", Name: "Other", Email: "other@example.com"}, now.Add(-time.Hour), now.Add(time.Hour))
	c := client(t, f, nil)
	got, err := c.OnCallEmails(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[today@example.com]" {
		t.Fatalf("on call now = %v, want only today's person once", got)
	}
	got, err = c.OnCallEmails(context.Background(), now.Add(-30*time.Hour))
	if err != nil || fmt.Sprint(got) != "[yday@example.com]" {
		t.Fatalf("on call yesterday = %v %v", got, err)
	}
}

func TestOnCallFollowsPagination(t *testing.T) {
	f := pdfake.New(token, routingKey)
	defer f.Close()
	now := time.Now()
	for i := range 130 {
		f.AddShift("PSCHED1", pdfake.User{ID: fmt.Sprint("PU", i), Email: fmt.Sprintf("u%d@example.com", i)}, now.Add(-time.Hour), now.Add(time.Hour))
	}
	got, err := client(t, f, nil).OnCallEmails(context.Background(), now)
	if err != nil || len(got) != 130 {
		t.Fatalf("got %d people (%v), want 130", len(got), err)
	}
	if f.Calls("/oncalls") != 2 {
		t.Errorf("calls = %d, want 2 pages of 100", f.Calls("/oncalls"))
	}
}

func TestFailuresAreTypedAndNeverCarrySecrets(t *testing.T) {
	f := pdfake.New(token, routingKey)
	defer f.Close()
	var pe *pagerduty.Error
	_, err := client(t, f, func(c *pagerduty.Config) { c.Token = "wrong" }).OnCallEmails(context.Background(), time.Now())
	if !errors.As(err, &pe) || pe.Status != 401 || pe.Transient {
		t.Fatalf("bad token: %v", err)
	}
	f.FailNext("/oncalls", 1, 503)
	_, err = client(t, f, nil).OnCallEmails(context.Background(), time.Now())
	if !errors.As(err, &pe) || !pe.Transient {
		t.Fatalf("503: %v", err)
	}
	f.SetDown(true)
	_, err = client(t, f, nil).OnCallEmails(context.Background(), time.Now())
	if !errors.As(err, &pe) || pe.Status != 0 || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("down: %v", err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Fatal("secret in error")
	}
}

func TestTriggerDedupsByKeyAndResolve(t *testing.T) {
	f := pdfake.New(token, routingKey)
	defer f.Close()
	c := client(t, f, nil)
	ctx := context.Background()
	in := pagerduty.Incident{DedupKey: "111122223333-1", Summary: "root key in use", Source: "111122223333"}
	for range 2 {
		if err := c.Trigger(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	got, ok := f.Incident("111122223333-1")
	if !ok || got.Status != "triggered" || got.Triggers != 2 || f.Incidents() != 1 || got.Severity != "critical" {
		t.Fatalf("incident %+v (%d incidents)", got, f.Incidents())
	}
	if err := c.Resolve(ctx, "111122223333-1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Incident("111122223333-1"); got.Status != "resolved" {
		t.Fatalf("after resolve: %+v", got)
	}
	var pe *pagerduty.Error
	err := client(t, f, func(c *pagerduty.Config) { c.RoutingKey = "nope" }).Trigger(ctx, in)
	if !errors.As(err, &pe) || pe.Status != 400 || pe.Transient || !strings.Contains(err.Error(), "routing_key") {
		t.Fatalf("bad routing key: %v", err)
	}
}
