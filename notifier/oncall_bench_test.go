package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/pagerduty"
	"github.com/rootwarden/rootwarden/internal/pagerduty/pdfake"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/notifier"
)

func benchNotifier(b *testing.B, withPD bool) (*notifier.Notifier, *slackfake.Server, func(model.Case)) {
	b.Helper()
	bs := bustest.New(b)
	fake := slackfake.New(slackfake.WithBotToken(botToken), slackfake.WithChannel(channelID, "root-keys"))
	url := fake.Start()
	b.Cleanup(fake.Close)
	fake.AddUserWithEmail(approverUser, "alice", "alice@example.com")
	fake.AddUserWithEmail(todayUser, "bob", "bob@example.com")
	fake.AddUserWithEmail(ownerUser, "pat", "pat@example.com")
	cfg := notifier.Config{Channel: channelID, SigningSecret: signingSecret, Approvers: []string{approverUser}}
	cfg.OwnerTag = "owner"
	if withPD {
		pd := pdfake.New(pdToken, pdKey)
		b.Cleanup(pd.Close)
		pd.AddShift(pdSchedule, pdfake.User{ID: "PBOB", Email: "bob@example.com"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		c, err := pagerduty.New(pagerduty.Config{Token: pdToken, Schedules: []string{pdSchedule}, APIURL: pd.URL()})
		if err != nil {
			b.Fatal(err)
		}
		cfg.OnCall = c
	}
	n, err := notifier.New(cfg, nil, bs, slack.New(botToken, slack.OptionAPIURL(url)))
	if err != nil {
		b.Fatal(err)
	}
	put := func(c model.Case) {
		data, _ := json.Marshal(c)
		if _, err := bs.Cases.Put(context.Background(), c.AccountID, data); err != nil {
			b.Fatal(err)
		}
	}
	return n, fake, put
}

// BenchmarkAppHomeOpened answers one app_home_opened: read every current case from KV,
// render the tab (owners from the lookup cache) and one views.publish to the local
// Slack fake. Floor: one views.publish round trip plus one KV read per account.
func BenchmarkAppHomeOpened(b *testing.B) {
	for _, count := range []int{10, 500} {
		b.Run(fmt.Sprintf("%d_accounts", count), func(b *testing.B) {
			n, fake, put := benchNotifier(b, false)
			now := time.Now()
			for i := range count {
				acct := fmt.Sprintf("%012d", 800000000000+i)
				c := baseCase(acct+"-1", now)
				c.AccountID, c.OpenedAt = acct, now.Add(-time.Duration(i)*time.Minute)
				c.Tags = map[string]string{"owner": "pat@example.com"}
				put(c)
			}
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if err := n.HomeOpened(ctx, approverUser); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if _, ok := fake.Home(approverUser); !ok {
				b.Fatal("no home published")
			}
		})
	}
}

// BenchmarkOnCallApproval is a signed approval click by the PagerDuty on-call person,
// the on-call answer cached: verify, read the case, check on-call, publish the action.
func BenchmarkOnCallApproval(b *testing.B) {
	n, _, put := benchNotifier(b, true)
	c := baseCase(account+"-1", time.Now())
	put(c)
	srv := httptest.NewServer(n.InteractionsHandler())
	b.Cleanup(srv.Close)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		status, body, err := slackfake.Deliver(ctx, srv.URL, signingSecret, slackfake.BlockAction(todayUser, "bob",
			notifier.ActionIDApprove, notifier.ButtonValue(c.AccountID, c.ID), channelID, "1.000001"))
		if err != nil || status != 200 {
			b.Fatal(status, string(body), err)
		}
	}
}
