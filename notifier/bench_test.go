package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/notifier"
)

// BenchmarkFlood: N cases found at once, posted against the Slack fake enforcing
// Slack's limits (chat.postMessage 1/s per channel with a burst of 3, Tier 3 50/min),
// while an approver clicks Approve on a posted case every few seconds.
//
//	go test ./notifier -run '^$' -bench Flood -benchtime 1x -timeout 60m
//
// ROOTWARDEN_BENCH_SLACK_SCALE=10 runs Slack's limits (and the notifier's rates)
// ten times faster, so that N = 1,000 takes 100 s instead of 17 min; the figures are
// then given in Slack's time (multiplied back), except the click latencies, which
// are wall-clock. ROOTWARDEN_BENCH_N picks the sizes
// (default "100,1000").
func BenchmarkFlood(b *testing.B) {
	scale := 1.0
	if v, err := strconv.ParseFloat(os.Getenv("ROOTWARDEN_BENCH_SLACK_SCALE"), 64); err == nil && v > 0 {
		scale = v
	}
	sizes := []int{100, 1000}
	if v := os.Getenv("ROOTWARDEN_BENCH_N"); v != "" {
		sizes = nil
		for _, f := range splitComma(v) {
			if n, err := strconv.Atoi(f); err == nil {
				sizes = append(sizes, n)
			}
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for range b.N {
				floodOnce(b, n, scale)
			}
		})
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func scaled(r notifier.Rate, scale float64) notifier.Rate {
	return notifier.Rate{Every: time.Duration(float64(r.Every) / scale), Burst: r.Burst}
}

func floodOnce(b *testing.B, n int, scale float64) {
	lim := slackfake.SlackLimits()
	lim.PostPerChannel.Every = time.Duration(float64(lim.PostPerChannel.Every) / scale)
	for k, r := range lim.Methods {
		r.Every = time.Duration(float64(r.Every) / scale)
		lim.Methods[k] = r
	}
	e := newEnvWith(b, []slackfake.Option{slackfake.WithLimits(lim)}, func(c *notifier.Config) {
		c.PostRate = scaled(notifier.DefaultPostRate, scale)
		c.Tier3Rate = scaled(notifier.DefaultTier3Rate, scale)
		c.EphemeralRate = scaled(notifier.DefaultEphemeralRate, scale)
	})
	e.run()
	cases := make([]model.Case, n)
	start := time.Now()
	for i := range cases {
		cases[i] = floodCase(i, e.clock.Now())
		e.publish(cases[i], model.EventOpened, "", model.System, "found")
	}

	// The approver: every 3 s (Slack time) one click on a posted, not yet clicked case.
	type lat struct{ edit, reply time.Duration }
	var clicks []lat
	done := make(chan struct{})
	clicked := make(chan struct{})
	go func() {
		defer close(clicked)
		rnd := rand.New(rand.NewPCG(1, 2))
		seen := map[int]bool{}
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(float64(3*time.Second) / scale)):
			}
			i, ts := -1, ""
			for range 50 {
				k := rnd.IntN(n)
				if seen[k] {
					continue
				}
				if ts = refTS(e, cases[k].ID); ts != "" {
					i = k
					break
				}
			}
			if i < 0 {
				continue
			}
			seen[i] = true
			c := cases[i]
			t0 := time.Now()
			if status, _ := e.deliver(slackfake.BlockAction(approverUser, "alice", notifier.ActionIDApprove,
				c.AccountID+"|"+c.ID, channelID, ts)); status != 200 {
				b.Errorf("click: HTTP %d", status)
				return
			}
			// The remediator's answer to the approval (2–7 ms in the P5 measurements).
			c.State = model.StateTicketed
			e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
			var l lat
			for l.edit == 0 || l.reply == 0 {
				m, _ := e.fake.Message(channelID, ts)
				if l.edit == 0 && m.Edits > 0 {
					l.edit = time.Since(t0)
				}
				if l.reply == 0 && len(m.Replies) > 0 {
					l.reply = time.Since(t0)
				}
				time.Sleep(2 * time.Millisecond)
			}
			clicks = append(clicks, l)
		}
	}()

	for posted := 0; posted < n; {
		time.Sleep(50 * time.Millisecond)
		posted = len(caseMessages(e))
	}
	all := time.Since(start)
	close(done)
	<-clicked

	slack := func(d time.Duration) float64 { return d.Seconds() * scale }
	every := slack(lim.PostPerChannel.Every)
	_, summaries := summaryMessage(e)
	floor := float64(n+len(clicks)+summaries-lim.PostPerChannel.Burst) * every
	var edits, replies []time.Duration
	for _, l := range clicks {
		edits, replies = append(edits, l.edit), append(replies, l.reply)
	}
	b.ReportMetric(slack(all), "s_all_in_slack")
	b.ReportMetric(floor, "s_floor")
	b.ReportMetric(float64(e.fake.RateLimitedCalls("")), "429s")
	b.ReportMetric(float64(e.fake.Calls("conversations.history"))/float64(n), "history/case")
	b.ReportMetric(float64(len(clicks)), "clicks")
	b.ReportMetric(ms(pct(edits, 50)), "edit_p50_ms")
	b.ReportMetric(ms(pct(edits, 99)), "edit_p99_ms")
	b.ReportMetric(ms(pct(replies, 50)), "reply_p50_ms")
	b.ReportMetric(ms(pct(replies, 99)), "reply_p99_ms")
	b.Logf("N=%d scale=%g: all in Slack %.1f s (floor %.1f s), 429s %d, posts %d, history calls %d, clicks %d, click→edit p50 %.0f ms p99 %.0f ms, click→reply p50 %.0f ms p99 %.0f ms",
		n, scale, slack(all), floor, e.fake.RateLimitedCalls(""), e.fake.Calls("chat.postMessage"), e.fake.Calls("conversations.history"),
		len(clicks), ms(pct(edits, 50)), ms(pct(edits, 99)), ms(pct(replies, 50)), ms(pct(replies, 99)))
}

func refTS(e *env, caseID string) string {
	ent, err := e.b.Slack.Get(context.Background(), caseID)
	if err != nil {
		return ""
	}
	var r model.SlackRef
	_ = json.Unmarshal(ent.Value(), &r)
	return r.TS
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*p+99)/100-1)]
}

// ms is a latency in wall-clock milliseconds (not scaled: the click path is not
// rate-bound except for the reply's one post slot).
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
