package notifier_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

const (
	privChannel = "G0PRIV"
	guestUser   = "U0GUEST"
	memberUser  = "U0MEMBER"
	olgaUser    = "U0OLGA" // owns the private channel's account, not in the channel
)

// homeText opens user's Home tab and returns its text.
func (o *oncallEnv) homeText(user string) string {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.n.HomeOpened(ctx, user); err != nil {
		o.t.Fatalf("HomeOpened(%s): %v", user, err)
	}
	h, ok := o.fake.Home(user)
	if !ok {
		o.t.Fatalf("no Home tab published for %s", user)
	}
	return h.AllText() + fmt.Sprint(h.Buttons())
}

func (o *oncallEnv) commandText(user, text string) string {
	o.t.Helper()
	status, m := o.command(user, text, "")
	if status != http.StatusOK {
		o.t.Fatalf("/rootwarden %s answered %d", text, status)
	}
	return fmt.Sprint(m["text"])
}

// A case routed to a private channel is shown outside it (App Home, /rootwarden
// status and case) only to the channel's members, approvers and the account's owner;
// a member who leaves stops seeing it at once (member_left_channel), not when the
// cached member list expires.
func TestPrivateChannelCasesAreShownOnlyToWhoMaySeeThem(t *testing.T) {
	o := newOnCallEnv(t, false, func(c *notifier.Config) {
		c.Routes = []notifier.Route{{OU: "Root/Payments", Channel: privChannel}}
	})
	o.fake.AddUser(guestUser, "guest")
	o.fake.AddUser(memberUser, "member")
	o.fake.AddUserWithEmail(olgaUser, "olga", "olga@example.com")
	o.fake.AddPrivateChannel(privChannel, "payments-sec", memberUser)
	now := o.clock.Now()
	secret := baseCase("444444444444-1", now)
	secret.AccountID, secret.OUPath, secret.Tags = "444444444444", "Root/Payments", map[string]string{"owner": "Olga@example.com"}
	secret.AccountName = "payments-prod"
	public := baseCase("555555555555-1", now)
	public.AccountID, public.OUPath = "555555555555", "Root/Sandbox"
	o.putCase(secret)
	o.putCase(public)
	o.run()
	testutil.Eventually(t, "the App Home index", o.n.HomeWatching)

	sees := func(user string) (home, status, kase string) {
		return o.homeText(user), o.commandText(user, "status"), o.commandText(user, "case "+secret.ID)
	}
	check := func(who, user string, want bool) {
		t.Helper()
		home, status, kase := sees(user)
		if got := strings.Contains(home, secret.ID) || strings.Contains(home, "payments-prod"); got != want {
			t.Errorf("%s: Home tab shows the private case = %v, want %v", who, got, want)
		}
		if !strings.Contains(home, public.ID) {
			t.Errorf("%s: Home tab lacks the case of the default channel", who)
		}
		wantCount := "1 active cases"
		if want {
			wantCount = "2 active cases"
		}
		if !strings.Contains(status, wantCount) {
			t.Errorf("%s: status %q, want %q", who, status, wantCount)
		}
		if got := strings.Contains(kase, "*Case `"+secret.ID); got != want {
			t.Errorf("%s: /rootwarden case shows the private case = %v, want %v: %q", who, got, want, kase)
		}
		if !want && !strings.Contains(kase, "knows no case") {
			t.Errorf("%s: /rootwarden case of a hidden case answered %q, want as for an unknown case", who, kase)
		}
	}
	check("a guest outside the channel", guestUser, false)
	check("a member of the channel", memberUser, true)
	check("an approver", approverUser, true)
	check("the account's owner", olgaUser, true)

	// The member leaves: Slack sends member_left_channel.
	o.fake.RemoveChannelMember(privChannel, memberUser)
	reads := o.fake.Calls("conversations.members")
	status, _, err := slackfake.DeliverJSON(context.Background(), o.events.URL, signingSecret, slackfake.MemberLeftChannel(memberUser, privChannel))
	if err != nil || status != http.StatusOK {
		t.Fatalf("member_left_channel answered %d %v", status, err)
	}
	testutil.Eventually(t, "the member's leaving applied", func() bool {
		return !strings.Contains(o.commandText(memberUser, "status"), "2 active cases")
	})
	check("a member who left", memberUser, false)
	if got := o.fake.Calls("conversations.members"); got != reads {
		t.Errorf("conversations.members calls %d → %d: the leaving came from the event, not a new read", reads, got)
	}
	// Joining again shows it again.
	o.fake.SetChannelMembers(privChannel, memberUser)
	if status, _, err := slackfake.DeliverJSON(context.Background(), o.events.URL, signingSecret, slackfake.MemberJoinedChannel(memberUser, privChannel)); err != nil || status != http.StatusOK {
		t.Fatalf("member_joined_channel answered %d %v", status, err)
	}
	testutil.Eventually(t, "the member's joining applied", func() bool {
		return strings.Contains(o.commandText(memberUser, "status"), "2 active cases")
	})

	// The private case moves: its members' tabs are refreshed; the guest's tab, which
	// does not show it, is not published again.
	o.homeText(memberUser)
	guestHome, _ := o.fake.Home(guestUser)
	testutil.Eventually(t, "the App Home watch", o.n.HomeWatching)
	moved := secret
	moved.State = model.StateTicketed
	o.putCase(moved)
	testutil.Eventually(t, "the member's tab refreshed", func() bool {
		h, _ := o.fake.Home(memberUser)
		for _, b := range h.Buttons() {
			if b.BlockID == "rw_home_"+secret.ID && b.ActionID == notifier.ActionIDConfirmDeleted {
				return true
			}
		}
		return false
	})
	if h, _ := o.fake.Home(guestUser); h.Publishes != guestHome.Publishes {
		t.Errorf("the guest's tab was published again (%d → %d) for a change it does not show", guestHome.Publishes, h.Publishes)
	}
}

// When a channel's members cannot be read, its cases are hidden from non-approvers
// (fail closed), and the user is told that some are hidden.
func TestUnreadableMembersHideTheChannelsCases(t *testing.T) {
	o := newOnCallEnv(t, false, nil)
	o.fake.AddUser(guestUser, "guest")
	c := baseCase(account+"-1", o.clock.Now())
	o.putCase(c)
	o.run()
	testutil.Eventually(t, "the App Home index", o.n.HomeWatching)
	o.fake.FailNext("conversations.members", 1, slackfake.APIError("internal_error"))
	home := o.homeText(guestUser)
	if strings.Contains(home, c.ID) {
		t.Error("a case of a channel whose members could not be read is shown to a non-approver")
	}
	if !strings.Contains(home, "1 cases are hidden") {
		t.Errorf("the tab does not say that a case is hidden:\n%s", home)
	}
	if home := o.homeText(approverUser); !strings.Contains(home, c.ID) {
		t.Error("an approver does not see the case")
	}
}

// Twenty people opening the Home tab at once at 3,000 active cases all get it, from
// a shared build of the data: no opening reads every case (the old code read all
// 3,000 from KV per opening), and the KV case reads per opening are bounded by what
// one tab shows.
func TestTwentyHomeOpeningsAtOnceAtThousandsOfCases(t *testing.T) {
	o := newOnCallEnv(t, false, nil)
	const cases, openers = 3000, 20
	now := o.clock.Now()
	for i := range cases {
		acct := fmt.Sprintf("%012d", 700000000000+i)
		c := baseCase(acct+"-1", now)
		c.AccountID, c.OpenedAt = acct, now.Add(-time.Duration(i)*time.Second)
		c.Tags = map[string]string{"owner": "pat@example.com"}
		o.putCase(c)
	}
	users := make([]string, openers)
	for i := range users {
		users[i] = fmt.Sprintf("U0VIEWER%02d", i)
		o.fake.AddUser(users[i], users[i])
	}
	o.run()
	testutil.EventuallyWithin(t, 30*time.Second, "the App Home index", o.n.HomeWatching)
	msgsBefore, readsBefore := o.b.NC.Stats().OutMsgs, o.n.HomeCaseReads()
	errs := make([]error, openers)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errs[i] = o.n.HomeOpened(ctx, u)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("opening %d: %v", i, err)
		}
	}
	for _, u := range users {
		h, ok := o.fake.Home(u)
		if !ok || !strings.Contains(h.AllText(), "(3000)") || !strings.Contains(h.AllText(), "more cases") {
			t.Fatalf("%s: Home tab %v does not list the 3,000 open cases", u, ok)
		}
	}
	msgs, reads := o.b.NC.Stats().OutMsgs-msgsBefore, o.n.HomeCaseReads()-readsBefore
	t.Logf("%d openings at %d cases: %d KV case reads, %d NATS messages sent", openers, cases, reads, msgs)
	if reads > openers*notifier.HomeMaxShown {
		t.Errorf("%d KV case reads for %d openings, want at most %d per opening", reads, openers, notifier.HomeMaxShown)
	}
	if msgs >= cases {
		t.Errorf("%d NATS messages for %d openings at %d cases: the openings read every case", msgs, openers, cases)
	}
}
