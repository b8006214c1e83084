package tracker

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// assigneeFake records issue creations and answers user searches and issue lists.
type assigneeFake struct {
	mu      sync.Mutex
	created []map[string]any
	refuse  bool // GitHub: 422 for any assignee
}

func (f *assigneeFake) handler(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/rest/api/3/search/jql":
		_, _ = w.Write([]byte(`{"issues":[]}`))
	case r.URL.Path == "/rest/api/3/user/search":
		if r.URL.Query().Get("query") == "pat@example.com" {
			_, _ = w.Write([]byte(`[{"accountId":"5b10ac8d82e05b22cc7d4ef5","emailAddress":"pat@example.com","active":true}]`))
			return
		}
		_, _ = w.Write([]byte(`[]`))
	case r.URL.Path == "/rest/api/3/issue":
		f.created = append(f.created, body)
		_, _ = w.Write([]byte(`{"id":"1","key":"SEC-1"}`))
	case r.Method == http.MethodGet:
		_, _ = w.Write([]byte(`[]`))
	default: // GitHub create
		if _, ok := body["assignees"]; ok && f.refuse {
			w.WriteHeader(422)
			_, _ = w.Write([]byte(`{"message":"Validation Failed","errors":[{"resource":"Issue","field":"assignees","code":"invalid"}]}`))
			return
		}
		f.created = append(f.created, body)
		_, _ = w.Write([]byte(`{"number":7,"html_url":"https://github.test/o/r/issues/7","state":"open"}`))
	}
}

func TestJiraAssignsTheOwnerFoundByEmail(t *testing.T) {
	for _, tc := range []struct{ email, want string }{{"pat@example.com", "5b10ac8d82e05b22cc7d4ef5"}, {"nobody@example.com", ""}} {
		f := &assigneeFake{}
		srv := httptest.NewServer(http.HandlerFunc(f.handler))
		j, err := NewJira(JiraConfig{BaseURL: srv.URL, Email: "bot@example.com", APIToken: "t", Project: "SEC", OwnerTag: "owner"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := testCase("111122223333-1")
		c.Tags = map[string]string{"owner": tc.email}
		if _, err := j.Open(ctxT(t), c, ""); err != nil {
			t.Fatalf("%s: %v", tc.email, err)
		}
		srv.Close()
		fields := f.created[0]["fields"].(map[string]any)
		got := ""
		if a, ok := fields["assignee"].(map[string]any); ok {
			got, _ = a["accountId"].(string)
		}
		if got != tc.want {
			t.Errorf("owner %s: assignee %q, want %q", tc.email, got, tc.want)
		}
	}
}

func TestGitHubAssignsTheOwnerLoginAndFallsBackWhenRefused(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		f := &assigneeFake{refuse: refuse}
		srv := httptest.NewServer(http.HandlerFunc(f.handler))
		g, err := NewGitHub(GitHubConfig{BaseURL: srv.URL, Token: "t", Owner: "o", Repo: "r", OwnerLoginTag: "github"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := testCase("111122223333-1")
		c.Tags = map[string]string{"github": "@pat"}
		ref, err := g.Open(ctxT(t), c, "")
		srv.Close()
		if err != nil || ref.ID != "7" {
			t.Fatalf("refuse=%v: %v %+v", refuse, err, ref)
		}
		if len(f.created) != 1 {
			t.Fatalf("refuse=%v: %d issues created, want 1", refuse, len(f.created))
		}
		_, assigned := f.created[0]["assignees"]
		if assigned == refuse {
			t.Errorf("refuse=%v: assignees sent %v", refuse, f.created[0]["assignees"])
		}
	}
}
