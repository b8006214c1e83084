package notifier

// The App Home: a user who opens rootwarden's Home tab (app_home_opened, over HTTP
// events or Socket Mode) sees the active cases they may see (visible.go), grouped by
// state and oldest first, with severity, account, owner, age and ticket, and the same
// buttons as the channel message (clicks go through the same gateway and checks). The
// tab is published with views.publish (scope: none beyond the bot; Home tab enabled in
// the manifest) and published again, for everyone who opened it recently, when cases
// move: a watch on KV rw_cases, debounced, in its own loop, which also keeps the index
// of active cases the tabs are built from (homeindex.go). A refusal of a click made in
// the Home tab has no channel to go to: it is shown at the top of the tab instead.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
)

const (
	homeViewerTTL  = 7 * 24 * time.Hour // refresh the tab of users who opened it this recently
	homeMaxViewers = 500
	homeNoticeTTL  = 5 * time.Minute
	homeMaxBlocks  = 100 // Slack's limit for a Home tab
	homePublishIn  = 10 * time.Second
)

type homeState struct {
	mu      sync.Mutex
	viewers map[string]time.Time // user → last app_home_opened
	notices map[string]string    // user → refusal to show at the top of the tab
	noticed map[string]time.Time
	// watching: the watch of rw_cases that refreshes the tabs is in place (a case
	// changed before it is shown at the next change or opening of the tab).
	watching  bool
	opening   map[string]bool // users whose tab is being built or waits for a slot
	published map[string]publishedHome
	sem       chan struct{} // homeMaxConcurrent openings at once

	index     caseIndex // homeindex.go
	rounds    roundCache
	caseReads atomic.Int64 // KV case reads made for tabs
}

// stateOrder is the order of the groups in the Home tab.
var stateOrder = []model.State{model.StateOpen, model.StateTicketed, model.StateVerifying, model.StateRiskAccepted}

var stateTitle = map[model.State]string{
	model.StateOpen:         ":large_orange_circle: Open — waiting for an on-call approver",
	model.StateTicketed:     ":ticket: Ticketed — waiting for someone to delete the keys",
	model.StateVerifying:    ":mag: Verifying with AWS",
	model.StateRiskAccepted: ":warning: Risk accepted",
}

// errHomeBusy: too many openings wait already; this one is dropped (the user sees
// the tab as last published, and the next opening or change publishes it).
var errHomeBusy = errors.New("too many App Home openings at once: this one is dropped")

// HomeOpened publishes the user's Home tab and remembers them for refreshes. At most
// homeMaxConcurrent tabs are built at once, from the shared round; an opening by a
// user whose tab is already on its way is dropped, and so is one beyond homeMaxQueued
// waiting openings.
func (n *Notifier) HomeOpened(ctx context.Context, user string) error {
	if user == "" {
		return errors.New("app_home_opened without a user")
	}
	n.home.mu.Lock()
	n.home.viewers[user] = n.now()
	if len(n.home.viewers) > homeMaxViewers {
		var oldest string
		for u, at := range n.home.viewers {
			if oldest == "" || at.Before(n.home.viewers[oldest]) {
				oldest = u
			}
		}
		delete(n.home.viewers, oldest)
	}
	if n.home.opening[user] {
		n.home.mu.Unlock()
		return nil // on its way already
	}
	if len(n.home.opening) >= homeMaxQueued {
		n.home.mu.Unlock()
		return errHomeBusy
	}
	n.home.opening[user] = true
	n.home.mu.Unlock()
	defer func() {
		n.home.mu.Lock()
		delete(n.home.opening, user)
		n.home.mu.Unlock()
	}()
	select {
	case n.home.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("App Home of %s: %w", user, ctx.Err())
	}
	defer func() { <-n.home.sem }()
	return n.publishHome(ctx, user)
}

// tellInHome shows text at the top of the user's Home tab (the answer to a click made
// there), without holding the interaction's answer.
func (n *Notifier) tellInHome(_ context.Context, user, text string) {
	n.home.mu.Lock()
	if n.home.noticed == nil {
		n.home.noticed = map[string]time.Time{}
	}
	n.home.notices[user], n.home.noticed[user] = text, n.now()
	n.home.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), homePublishIn)
		defer cancel()
		if err := n.publishHome(ctx, user); err != nil {
			n.log.Warn("views.publish of a refusal", "user", user, "err", slackErrText(err))
		}
	}()
}

func (n *Notifier) publishHome(ctx context.Context, user string) error {
	round, err := n.sharedRound(ctx, homeRoundTTL)
	if err != nil {
		return err
	}
	return n.publishHomeWith(ctx, user, round, false)
}

// homeView is one user's tab: the cases they may see, counted by state, and the
// first ones (by state, oldest first) as the tab shows them.
type homeView struct {
	total  int
	counts map[model.State]int
	shown  map[model.State][]*homeCase
	hidden int // hidden because their channel's members could not be read
	sweep  string
}

func (n *Notifier) viewFor(ctx context.Context, r *homeRound, v viewer) homeView {
	hv := homeView{counts: map[model.State]int{}, shown: map[model.State][]*homeCase{}, sweep: n.withCoverage(ctx, r.sweep)}
	for _, e := range r.cases {
		if v.sees(e) {
			hv.total++
			hv.counts[e.State]++
		}
	}
	budget := homeMaxShown
	for _, st := range stateOrder {
		for _, e := range r.cases {
			if budget == 0 {
				break
			}
			if e.State != st || !v.sees(e) {
				continue
			}
			if hc := n.show(ctx, r, e); !hc.gone {
				hv.shown[st] = append(hv.shown[st], hc)
				budget--
			}
		}
	}
	hv.hidden = v.hiddenUnread(r.cases)
	return hv
}

// publishHomeWith publishes the user's tab from round. A refresh skips the publish
// when the tab would show what it shows already (apart from its "Updated" time,
// within homeSameFor): a change to a case the user does not see, or below what the
// tab lists, costs no views.publish.
func (n *Notifier) publishHomeWith(ctx context.Context, user string, round *homeRound, refresh bool) error {
	n.home.mu.Lock()
	notice := n.home.notices[user]
	if notice != "" && n.now().Sub(n.home.noticed[user]) > homeNoticeTTL {
		delete(n.home.notices, user)
		notice = ""
	}
	n.home.mu.Unlock()
	v := n.viewerOf(ctx, user, channelsOf(round.cases))
	hv := n.viewFor(ctx, round, v)
	sum := hv.sum(v.approver, notice)
	n.home.mu.Lock()
	last, seen := n.home.published[user]
	n.home.mu.Unlock()
	if refresh && seen && last.sum == sum && time.Since(last.at) < homeSameFor {
		return nil
	}
	view := slack.HomeTabViewRequest{Type: slack.VTHomeTab, CallbackID: "rw_home",
		Blocks: slack.Blocks{BlockSet: n.homeBlocks(hv, v.approver, notice)}}
	if _, err := n.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: view}); err != nil {
		return fmt.Errorf("views.publish for %s: %w", user, err)
	}
	n.home.mu.Lock()
	if n.home.published == nil || len(n.home.published) > homeMaxViewers {
		n.home.published = map[string]publishedHome{}
	}
	n.home.published[user] = publishedHome{sum: sum, at: time.Now()}
	n.home.mu.Unlock()
	return nil
}

// homeSameFor: a refresh publishes an unchanged tab again after this long (its
// "Updated" time).
const homeSameFor = 10 * time.Minute

type publishedHome struct {
	sum uint64
	at  time.Time
}

// sum is a digest of what the tab shows, apart from its "Updated" time.
func (hv homeView) sum(approver bool, notice string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%v|%s|%d|%d|%s|%v\x00", approver, notice, hv.total, hv.hidden, hv.sweep, hv.counts)
	for _, st := range stateOrder {
		for _, c := range hv.shown[st] {
			fmt.Fprintf(h, "%s|%s|%s\x00", c.ID, c.State, c.line)
		}
	}
	return h.Sum64()
}

func (n *Notifier) homeBlocks(hv homeView, approver bool, notice string) []slack.Block {
	blocks := []slack.Block{slack.NewHeaderBlock(plain("rootwarden: active root access key cases"))}
	if notice != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(":no_entry: "+notice), nil, nil))
	}
	who := "You are an approver: you may approve, accept risks and revoke acceptances."
	if !approver {
		who = "You are not an approver right now: Re-check and \"I deleted the keys\" work for you; approvals are refused."
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(who+" Updated "+stamp(n.now()))))
	if hv.sweep != "" {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(hv.sweep)))
	}
	if hv.hidden > 0 {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf(
			":lock: %d cases are hidden: rootwarden could not read the members of their channels just now.", hv.hidden))))
	}
	if hv.total == 0 {
		return append(blocks, slack.NewSectionBlock(mrkdwn(":white_check_mark: No active cases."), nil, nil))
	}
	shown := 0
	for _, st := range stateOrder {
		group := hv.shown[st]
		if hv.counts[st] == 0 {
			continue
		}
		if len(blocks)+4 > homeMaxBlocks-1 {
			break
		}
		blocks = append(blocks, slack.NewDividerBlock(),
			slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*%s* (%d)", stateTitle[st], hv.counts[st])), nil, nil))
		for _, c := range group {
			if len(blocks)+2 > homeMaxBlocks-1 {
				break
			}
			blocks = append(blocks, slack.NewSectionBlock(mrkdwn(c.line), nil, nil))
			if btns := buttons(c.Case); len(btns) > 0 {
				blocks = append(blocks, slack.NewActionBlock("rw_home_"+c.ID, btns...))
			}
			shown++
		}
	}
	if shown < hv.total {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("…and %d more cases: see the case channel or `/rootwarden status`.", hv.total-shown))))
	}
	return blocks
}

// homeLine is one case in the Home tab.
func (n *Notifier) homeLine(ctx context.Context, c model.Case) string {
	s := fmt.Sprintf("*%s* · account *%s* · case `%s` · open %s", severityWord(c.Severity), esc(accountLabel(c)), esc(c.ID),
		human(n.now().Sub(c.OpenedAt)))
	if n.cfg.OwnerTag != "" {
		s += "\nOwner: " + ownerText(n.OwnerOf(ctx, c))
	}
	if c.Ticket != nil {
		if c.Ticket.URL != "" {
			s += " · " + escape.SlackLink(c.Ticket.URL, "ticket "+c.Ticket.ID)
		} else {
			s += " · ticket " + esc(c.Ticket.ID)
		}
	}
	if rec, _, err := n.loadRecord(ctx, c.ID); err == nil && rec != nil && rec.Permalink != "" {
		s += " · " + escape.SlackLink(rec.Permalink, "message")
	}
	return s + "\n" + n.lastCheckLine(ctx, c, false)
}

// homeLoop publishes the tabs of recent viewers again when cases move.
func (n *Notifier) homeLoop(ctx context.Context) {
	for ctx.Err() == nil {
		if err := n.watchHome(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("App Home refresh: watch failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// watchHome keeps the index of active cases (homeindex.go) and refreshes the tabs of
// recent viewers, debounced, when cases move.
func (n *Notifier) watchHome(ctx context.Context) error {
	w, err := n.b.Cases.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch cases: %w", err)
	}
	idx := &n.home.index
	defer func() {
		idx.mu.Lock()
		idx.live = false
		idx.mu.Unlock()
		n.home.mu.Lock()
		n.home.watching = false
		n.home.mu.Unlock()
		_ = w.Stop()
	}()
	loading := map[string]caseEntry{} // the current values, until the end marker
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch of cases ended")
			}
			switch {
			case loading != nil && e == nil:
				idx.mu.Lock()
				idx.m, idx.live = loading, true
				idx.version++
				idx.mu.Unlock()
				loading = nil
				n.home.mu.Lock()
				n.home.watching = true
				n.home.mu.Unlock()
			case loading != nil:
				n.applyEntry(loading, e)
			case e != nil:
				idx.mu.Lock()
				n.applyEntry(idx.m, e)
				idx.version++ // any change: a line may show it
				idx.mu.Unlock()
				if timer == nil {
					timer = time.After(n.cfg.HomeDebounce)
				}
			}
		case <-timer:
			timer = nil
			n.refreshHomes(ctx)
		}
	}
}

func (n *Notifier) refreshHomes(ctx context.Context) {
	now := n.now()
	n.home.mu.Lock()
	var users []string
	for u, at := range n.home.viewers {
		if now.Sub(at) > homeViewerTTL {
			delete(n.home.viewers, u)
			continue
		}
		users = append(users, u)
	}
	n.home.mu.Unlock()
	if len(users) == 0 {
		return
	}
	sort.Strings(users)
	round, err := n.sharedRound(ctx, 0)
	if err != nil {
		n.log.Warn("App Home refresh: cannot read the cases", "err", err)
		return
	}
	for _, u := range users {
		pctx, cancel := context.WithTimeout(ctx, homePublishIn)
		err := n.publishHomeWith(pctx, u, round, true)
		cancel()
		if err != nil && ctx.Err() == nil {
			n.log.Warn("App Home refresh failed", "user", u, "err", slackErrText(err))
		}
	}
}
