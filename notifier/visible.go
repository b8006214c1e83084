package notifier

// Who sees which case outside its channel (App Home, `/rootwarden status` and
// `/rootwarden case`). A case is shown to:
//   - approvers (the configured users and user groups, and whoever is on call);
//   - the owner of its account, when the owner tag's email is the user's Slack email
//     (rootwarden addresses no question to a person yet: the owner is the one it
//     tells);
//   - members of the channel it is routed to (conversations.members, cached for
//     memberTTL, and updated at once by member_left_channel / member_joined_channel).
//
// It fails closed: when a channel's members cannot be read, its cases are hidden from
// everyone but approvers and owners, and the user is told that some are hidden.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/model"
)

const (
	memberTTL      = 5 * time.Minute // a channel's members are read again this often
	memberMaxPages = 50              // 50 pages of 1,000: a channel of 50,000 members
	viewerTTL      = time.Hour       // a user's email, for the owner rule
	viewerMax      = 2000

	keyMembers   = "conversations.members" // pacer keys (Tier 4; paced as Tier 3)
	keyUsersInfo = "users.info"
)

type membership struct {
	mu       sync.Mutex
	channels map[string]*memberSet // channel → its members
	fetch    sync.Mutex            // one conversations.members walk at a time
	emails   map[string]viewerEmail
}

type memberSet struct {
	users map[string]bool
	at    time.Time
}

type viewerEmail struct {
	email string
	at    time.Time
}

// isMember reports whether user is a member of channel, from the channel's members
// cached for memberTTL.
func (n *Notifier) isMember(ctx context.Context, channel, user string) (bool, error) {
	ms := &n.members
	fresh := func() (member, ok bool) {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		if s := ms.channels[channel]; s != nil && n.now().Sub(s.at) < memberTTL && !n.now().Before(s.at) {
			return s.users[user], true
		}
		return false, false
	}
	if member, ok := fresh(); ok {
		return member, nil
	}
	ms.fetch.Lock()
	defer ms.fetch.Unlock()
	if member, ok := fresh(); ok { // read by whoever held the walk
		return member, nil
	}
	at := n.now()
	users := map[string]bool{}
	params := &slack.GetUsersInConversationParameters{ChannelID: channel, Limit: 1000}
	for page := 0; ; page++ {
		if page == memberMaxPages {
			return false, fmt.Errorf("conversations.members of %s: more than %d pages", channel, memberMaxPages)
		}
		var ids []string
		var cursor string
		err := n.slackCall(withPrio(ctx, prioHuman), keyMembers, func(cctx context.Context) error {
			var err error
			ids, cursor, err = n.api.GetUsersInConversationContext(cctx, params)
			return err
		})
		if err != nil {
			return false, fmt.Errorf("conversations.members of %s: %w", channel, err)
		}
		for _, id := range ids {
			users[id] = true
		}
		if cursor == "" {
			break
		}
		params.Cursor = cursor
	}
	ms.mu.Lock()
	if ms.channels == nil {
		ms.channels = map[string]*memberSet{}
	}
	ms.channels[channel] = &memberSet{users: users, at: at}
	ms.mu.Unlock()
	return users[user], nil
}

// memberChanged applies member_left_channel / member_joined_channel to a cached set
// (a set not cached is read when it is needed).
func (n *Notifier) memberChanged(channel, user string, joined bool) {
	ms := &n.members
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if s := ms.channels[channel]; s != nil {
		if joined {
			s.users[user] = true
		} else {
			delete(s.users, user)
		}
	}
}

// emailOf is the user's Slack email (lower case), cached; "" when unknown.
func (n *Notifier) emailOf(ctx context.Context, user string) string {
	ms := &n.members
	ms.mu.Lock()
	e, ok := ms.emails[user]
	ms.mu.Unlock()
	if ok && n.now().Sub(e.at) < viewerTTL && !n.now().Before(e.at) {
		return e.email
	}
	var u *slack.User
	err := n.slackCall(withPrio(ctx, prioHuman), keyUsersInfo, func(cctx context.Context) error {
		var err error
		u, err = n.api.GetUserInfoContext(cctx, user)
		return err
	})
	if err != nil || u == nil {
		return "" // the owner rule does not apply; membership still may
	}
	email := strings.ToLower(strings.TrimSpace(u.Profile.Email))
	ms.mu.Lock()
	if ms.emails == nil || len(ms.emails) >= viewerMax {
		ms.emails = map[string]viewerEmail{}
	}
	ms.emails[user] = viewerEmail{email: email, at: n.now()}
	ms.mu.Unlock()
	return email
}

// viewer is what decides which cases one user sees.
type viewer struct {
	approver   bool
	email      string
	member     map[string]bool // channel → the user is a member
	unreadable map[string]bool // channels whose members could not be read
}

// viewerOf works out what user may see among cases routed to channels.
func (n *Notifier) viewerOf(ctx context.Context, user string, channels map[string]bool) viewer {
	v := viewer{member: map[string]bool{}, unreadable: map[string]bool{}}
	if ok, _ := n.isApprover(ctx, user); ok {
		v.approver = true
		return v
	}
	if n.cfg.OwnerTag != "" {
		v.email = n.emailOf(ctx, user)
	}
	for ch := range channels {
		member, err := n.isMember(ctx, ch, user)
		if err != nil {
			n.log.Warn("channel members unreadable: its cases are hidden from non-approvers", "channel", ch, "err", slackErrText(err))
			v.unreadable[ch] = true
			continue
		}
		v.member[ch] = member
	}
	return v
}

// sees reports whether the viewer may see the case.
func (v viewer) sees(e caseEntry) bool {
	return v.approver || v.member[e.Channel] || v.email != "" && e.OwnerEmail == v.email
}

// hiddenUnread is how many of cases are hidden only because their channel's members
// could not be read.
func (v viewer) hiddenUnread(cases []caseEntry) int {
	k := 0
	for _, e := range cases {
		if !v.sees(e) && v.unreadable[e.Channel] {
			k++
		}
	}
	return k
}

// canSee reports whether user may see case c (the `/rootwarden case` answer).
func (n *Notifier) canSee(ctx context.Context, user string, c model.Case) bool {
	e := n.entryOf(c)
	return n.viewerOf(ctx, user, map[string]bool{e.Channel: true}).sees(e)
}

// channelsOf is the set of channels the cases are routed to.
func channelsOf(cases []caseEntry) map[string]bool {
	out := map[string]bool{}
	for _, e := range cases {
		out[e.Channel] = true
	}
	return out
}
