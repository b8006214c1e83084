package notifier

// The App Home: a user who opens rootwarden's Home tab (app_home_opened, over HTTP
// events or Socket Mode) sees the active cases, grouped by state and oldest first, with
// severity, account, owner, age and ticket, and the same buttons as the channel
// message (clicks go through the same gateway and checks). The tab is published with
// views.publish (scope: none beyond the bot; Home tab enabled in the manifest) and
// published again, for everyone who opened it recently, when cases move: a watch on KV
// rw_cases, debounced, in its own loop. A refusal of a click made in the Home tab has no
// channel to go to: it is shown at the top of the tab instead.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
	watching bool
}

// stateOrder is the order of the groups in the Home tab.
var stateOrder = []model.State{model.StateOpen, model.StateTicketed, model.StateVerifying, model.StateRiskAccepted}

var stateTitle = map[model.State]string{
	model.StateOpen:         ":large_orange_circle: Open — waiting for an on-call approver",
	model.StateTicketed:     ":ticket: Ticketed — waiting for someone to delete the keys",
	model.StateVerifying:    ":mag: Verifying with AWS",
	model.StateRiskAccepted: ":warning: Risk accepted",
}

// HomeOpened publishes the user's Home tab and remembers them for refreshes.
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
	n.home.mu.Unlock()
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
	round, err := n.homeCases(ctx)
	if err != nil {
		return err
	}
	return n.publishHomeWith(ctx, user, round)
}

// homeCase is a case with its line in the Home tab (the same for every viewer).
type homeCase struct {
	model.Case
	line string
}

// homeRound is what one publication round shows every viewer.
type homeRound struct {
	cases []homeCase
	sweep string // how far the last sweep got (lastcheck.go)
}

// homeCases reads the active cases and renders their lines once per publication round.
func (n *Notifier) homeCases(ctx context.Context) (homeRound, error) {
	cases, err := n.activeCases(ctx)
	if err != nil {
		return homeRound{}, err
	}
	out := make([]homeCase, len(cases))
	for i, c := range cases {
		out[i] = homeCase{Case: c}
		if i < homeMaxBlocks { // never shown beyond: no lookups for them
			out[i].line = n.homeLine(ctx, c)
		}
	}
	return homeRound{cases: out, sweep: n.withCoverage(ctx, n.sweepLine(ctx))}, nil
}

func (n *Notifier) publishHomeWith(ctx context.Context, user string, round homeRound) error {
	n.home.mu.Lock()
	notice := n.home.notices[user]
	if notice != "" && n.now().Sub(n.home.noticed[user]) > homeNoticeTTL {
		delete(n.home.notices, user)
		notice = ""
	}
	n.home.mu.Unlock()
	approver, _ := n.isApprover(ctx, user)
	view := slack.HomeTabViewRequest{Type: slack.VTHomeTab, CallbackID: "rw_home",
		Blocks: slack.Blocks{BlockSet: n.homeBlocks(round, approver, notice)}}
	if _, err := n.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: view}); err != nil {
		return fmt.Errorf("views.publish for %s: %w", user, err)
	}
	return nil
}

// activeCases reads every active case, oldest first.
func (n *Notifier) activeCases(ctx context.Context) ([]model.Case, error) {
	lister, err := n.b.Cases.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	var out []model.Case
	for key := range lister.Keys() {
		e, err := n.b.Cases.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read case of account %s: %w", key, err)
		}
		var c model.Case
		if json.Unmarshal(e.Value(), &c) != nil || !c.State.Active() {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].OpenedAt.Equal(out[j].OpenedAt) {
			return out[i].OpenedAt.Before(out[j].OpenedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (n *Notifier) homeBlocks(round homeRound, approver bool, notice string) []slack.Block {
	cases := round.cases
	blocks := []slack.Block{slack.NewHeaderBlock(plain("rootwarden: active root access key cases"))}
	if notice != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(":no_entry: "+notice), nil, nil))
	}
	who := "You are an approver: you may approve, accept risks and revoke acceptances."
	if !approver {
		who = "You are not an approver right now: Re-check and \"I deleted the keys\" work for you; approvals are refused."
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(who+" Updated "+stamp(n.now()))))
	if round.sweep != "" {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(round.sweep)))
	}
	if len(cases) == 0 {
		return append(blocks, slack.NewSectionBlock(mrkdwn(":white_check_mark: No active cases."), nil, nil))
	}
	byState := map[model.State][]homeCase{}
	for _, c := range cases {
		byState[c.State] = append(byState[c.State], c)
	}
	shown := 0
	for _, st := range stateOrder {
		group := byState[st]
		if len(group) == 0 {
			continue
		}
		if len(blocks)+4 > homeMaxBlocks-1 {
			break
		}
		blocks = append(blocks, slack.NewDividerBlock(),
			slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*%s* (%d)", stateTitle[st], len(group))), nil, nil))
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
	if shown < len(cases) {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("…and %d more cases: see the case channel or `/rootwarden status`.", len(cases)-shown))))
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

func (n *Notifier) watchHome(ctx context.Context) error {
	w, err := n.b.Cases.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("watch cases: %w", err)
	}
	n.home.mu.Lock()
	n.home.watching = true
	n.home.mu.Unlock()
	defer func() {
		n.home.mu.Lock()
		n.home.watching = false
		n.home.mu.Unlock()
		_ = w.Stop()
	}()
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch of cases ended")
			}
			if e != nil && timer == nil {
				timer = time.After(n.cfg.HomeDebounce)
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
	round, err := n.homeCases(ctx)
	if err != nil {
		n.log.Warn("App Home refresh: cannot read the cases", "err", err)
		return
	}
	for _, u := range users {
		pctx, cancel := context.WithTimeout(ctx, homePublishIn)
		err := n.publishHomeWith(pctx, u, round)
		cancel()
		if err != nil && ctx.Err() == nil {
			n.log.Warn("App Home refresh failed", "user", u, "err", slackErrText(err))
		}
	}
}
