package notifier_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

// list puts accounts into the detector's inventory (rw_accounts), as a sweep would.
func (o *oncallEnv) list(accounts ...string) {
	o.t.Helper()
	for _, a := range accounts {
		data, _ := json.Marshal(map[string]any{"account_id": a, "account_name": "listed-" + a})
		if _, err := o.b.Accounts.Put(context.Background(), a, data); err != nil {
			o.t.Fatal(err)
		}
	}
}

// A slash command's response_url is a capability: a failed delayed answer logs why,
// never the URL; an answer Slack refuses (404: expired or used up; 500) is logged with
// its status instead of being dropped in silence.
func TestSlashCheckAnswerFailuresAreLoggedWithoutTheResponseURL(t *testing.T) {
	o := newOnCallEnv(t, false, func(c *notifier.Config) {
		c.Checker = checkerFunc(func(_ context.Context, acct, _ string) (model.Observation, error) {
			return model.Observation{AccountID: acct}, nil
		})
	})
	o.run()
	o.list("411111111111", "422222222222", "433333333333")

	const secretPath = "/commands/T0FAKE/1234567890/RESPONSEURLSECRET"
	if _, m := o.command(outsider, "check 411111111111", "http://127.0.0.1:1"+secretPath); !strings.Contains(m["text"].(string), "Checking account") {
		t.Fatalf("check answered %v", m["text"])
	}
	testutil.Eventually(t, "the failed answer is logged", func() bool {
		return strings.Contains(o.logs.String(), "answer not delivered")
	})
	if logs := o.logs.String(); strings.Contains(logs, "RESPONSEURLSECRET") || strings.Contains(logs, "1234567890") {
		t.Fatalf("the response_url reached the logs:\n%s", logs)
	}

	for acct, status := range map[string]int{"422222222222": http.StatusNotFound, "433333333333": http.StatusInternalServerError} {
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "expired_url", status)
		}))
		t.Cleanup(hook.Close)
		o.command(outsider, "check "+acct, hook.URL+secretPath)
		testutil.Eventually(t, "the refused answer is logged with its status", func() bool {
			for _, line := range strings.Split(o.logs.String(), "\n") {
				if strings.Contains(line, "slash command answer refused") && strings.Contains(line, "account="+acct) &&
					strings.Contains(line, "status="+strconv.Itoa(status)) {
					return true
				}
			}
			return false
		})
		o.clock.Add(time.Hour)
	}
	if strings.Contains(o.logs.String(), "RESPONSEURLSECRET") {
		t.Fatal("the response_url reached the logs")
	}
}
