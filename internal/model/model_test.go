package model

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestSeverityOf(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	cases := []struct {
		name string
		obs  Observation
		want Severity
	}{
		{"a key never used is high", Observation{Keys: []KeyDetail{{Slot: 1, Active: true}}}, SeverityHigh},
		{"a key used 30 days ago is high", Observation{Keys: []KeyDetail{{Slot: 1, LastUsedAt: at(30 * 24 * time.Hour)}}}, SeverityHigh},
		{"a key used 2 days ago is critical", Observation{Keys: []KeyDetail{{Slot: 1}, {Slot: 2, LastUsedAt: at(48 * time.Hour)}}}, SeverityCritical},
		{"a call signed with a root key is critical", Observation{Event: &TrailEvent{EventName: "ListBuckets", KeyInUse: true}}, SeverityCritical},
		{"a root key created (not used) is high", Observation{Event: &TrailEvent{EventName: "CreateAccessKey"}}, SeverityHigh},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := SeverityOf(tc.obs, now); got != tc.want {
				t.Errorf("SeverityOf = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestActorString(t *testing.T) {
	for _, tc := range []struct {
		a    Actor
		want string
	}{
		{Actor{Kind: ActorSlack, ID: "U1", Name: "alice"}, "alice (U1)"},
		{Actor{Kind: ActorSlack, ID: "U1"}, "U1"},
		{Actor{Kind: ActorTicket, Name: "bob"}, "bob"},
		{Actor{Kind: ActorSystem}, "system"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.a, got, tc.want)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	base := errors.New("connection refused")
	err := fmt.Errorf("check account 1: %w", Wrap(CodeTransient, base, "no detector"))
	if ErrorCode(err) != CodeTransient || !errors.Is(err, base) {
		t.Errorf("wrapped code lost: %v", err)
	}
	if ErrorCode(base) != CodeInternal {
		t.Errorf("plain error code = %s, want internal", ErrorCode(base))
	}
	if State("").Active() || StateResolved.Active() || !StateVerifying.Active() {
		t.Error("Active() wrong")
	}
}
