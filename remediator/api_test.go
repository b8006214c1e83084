package remediator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

func apiGetT(t *testing.T, h http.Handler, path, token string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: content type %q", path, ct)
	}
	return rec.Code, rec.Body.Bytes()
}

func TestAPIIsOffWithoutToken(t *testing.T) {
	b := bustest.New(t)
	r := newRem(t, b, newClock(), nil, func(c *Config) { c.APIToken = "" })
	for _, p := range []string{"/api/v1/cases", "/api/v1/cases/" + caseID(acct, 1)} {
		code, body := apiGetT(t, r.APIHandler(), p, "anything")
		var e APIError
		if code != http.StatusNotFound || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "ROOTWARDEN_API_TOKEN") {
			t.Fatalf("%s: %d %s", p, code, body)
		}
	}
}

func TestAPIWrongTokenIs401(t *testing.T) {
	b := bustest.New(t)
	r := newRem(t, b, newClock(), nil)
	for _, tok := range []string{"", "wrong", testTk + "x"} {
		code, body := apiGetT(t, r.APIHandler(), "/api/v1/cases", tok)
		var e APIError
		if code != http.StatusUnauthorized || json.Unmarshal(body, &e) != nil || e.Code != "unauthorized" {
			t.Fatalf("token %q: %d %s", tok, code, body)
		}
		if strings.Contains(string(body), testTk) {
			t.Fatal("the answer leaks the token")
		}
	}
}

func TestAPIListsFiltersAndShowsHistory(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	r := newRem(t, b, clk, nil)
	other := "333333333333"
	steps := []func() error{
		func() error { return r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())) },
		func() error { return r.HandleFinding(ctx, observation(acct, false, model.SourceEvent, clk.Now())) },
		func() error { return r.HandleFinding(ctx, observation(acct, true, model.SourceEvent, clk.Now())) },
		func() error { return r.HandleFinding(ctx, observation(other, true, model.SourceSweep, clk.Now())) },
		func() error {
			return r.HandleAction(ctx, action(model.ActionApprove, other, CaseID(other, 1, t0.Add(4*time.Minute))))
		},
	}
	for _, s := range steps {
		clk.Add(time.Minute)
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	r.work(ctx, other)
	h := r.APIHandler()
	a1, a2, o1 := CaseID(acct, 1, t0.Add(time.Minute)), CaseID(acct, 2, t0.Add(3*time.Minute)), CaseID(other, 1, t0.Add(4*time.Minute))

	list := func(q string) []string {
		t.Helper()
		code, body := apiGetT(t, h, "/api/v1/cases"+q, testTk)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", q, code, body)
		}
		var l CaseList
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range l.Cases {
			ids = append(ids, c.ID+":"+string(c.State))
		}
		return ids
	}
	for q, want := range map[string]string{
		"":                             a2 + ":open," + o1 + ":ticketed",
		"?state=open":                  a2 + ":open",
		"?state=ticketed":              o1 + ":ticketed",
		"?state=resolved":              "",
		"?account=" + other:            o1 + ":ticketed",
		"?state=open&account=" + other: "",
	} {
		if got := strings.Join(list(q), ","); got != want {
			t.Errorf("list %q = %q, want %q", q, got, want)
		}
	}
	if code, _ := apiGetT(t, h, "/api/v1/cases?state=bogus", testTk); code != http.StatusBadRequest {
		t.Errorf("unknown state: %d", code)
	}

	// Raw JSON of the listing carries the documented fields.
	_, body := apiGetT(t, h, "/api/v1/cases?account="+other, testTk)
	for _, f := range []string{`"id"`, `"account_id"`, `"account_name"`, `"state"`, `"severity"`, `"ticket"`, `"system"`, `"url"`, `"opened_at"`, `"updated_at"`} {
		if !strings.Contains(string(body), f) {
			t.Errorf("listing lacks %s: %s", f, body)
		}
	}
	if strings.Contains(string(body), "action_ids") || strings.Contains(string(body), "outbox") {
		t.Errorf("listing shows internals: %s", body)
	}

	show := func(id string) CaseView {
		t.Helper()
		code, body := apiGetT(t, h, "/api/v1/cases/"+id, testTk)
		if code != http.StatusOK {
			t.Fatalf("show %s: %d %s", id, code, body)
		}
		var v CaseView
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	hist := func(v CaseView) string {
		var s []string
		for _, e := range v.History {
			s = append(s, string(e.Type))
		}
		return strings.Join(s, ",")
	}
	if v := show(o1); v.State != model.StateTicketed || hist(v) != "opened,ticketed,updated" || v.Ticket == nil {
		t.Errorf("show current: %s %s %+v", v.State, hist(v), v.Ticket)
	}
	if v := show(a1); v.State != model.StateResolved || hist(v) != "opened,resolved" {
		t.Errorf("show past case: %s %s", v.State, hist(v))
	}
	if v := show(a2); v.State != model.StateOpen || hist(v) != "opened" || v.History[0].Seq != 1 {
		t.Errorf("show new case: %s %s", v.State, hist(v))
	}
	if code, _ := apiGetT(t, h, "/api/v1/cases/"+caseID(acct, 9), testTk); code != http.StatusNotFound {
		t.Errorf("unknown case: %d", code)
	}
	if v := show(other + "-1"); v.ID != o1 { // "<account>-<n>" names the current case
		t.Errorf("short id shows %s, want %s", v.ID, o1)
	}
	if code, _ := apiGetT(t, h, "/api/v1/cases/nonsense", testTk); code != http.StatusBadRequest {
		t.Errorf("malformed id: %d", code)
	}
}
