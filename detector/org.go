package detector

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
)

// Listing an Organization. Organizations answers at most 20 accounts a page, and a
// page needs the previous page's token, so one listing of 10,000 accounts is 500 calls
// one after another, each paced to its operation's published rate (pace.go). Two
// listings run at once on separate buckets (listOrganization): ListAccounts (8 pages a
// second: every account soonest) and the tree: ListRoots, then for every root and OU
// (listConcurrency at a time) ListOrganizationalUnitsForParent and
// ListAccountsForParent (5 a second each), from which each account's OU path falls
// out. Without permission for the tree (or on any error from ListRoots) ListAccounts
// alone lists, and OU paths are then looked up per account (ListParents,
// DescribeOrganizationalUnit, both cached per OU).

const (
	// listConcurrency of the tree walk: parents listed at once. Their pages share
	// their operation's bucket (pace.go), so this bounds the goroutines waiting on it,
	// not the rate.
	listConcurrency = 16
	// tagsMaxAge: account tags are read again when older than this plus a per-account
	// offset of up to the same again, so refreshes spread over sweeps.
	tagsMaxAge = time.Hour
)

// listTimeout bounds a listing of the organization: its throttled pages are retried
// until then (pace.go). 50,000 accounts are 2,500 ListAccounts pages: 5 minutes at the
// published 8 a second, 6.5 at the default share.
const listTimeout = time.Hour

// listOrganization lists the organization's ACTIVE accounts with two listings at once,
// each on its own Organizations buckets: ListAccounts (8 pages a second: every
// account soonest) and the tree (ListOrganizationalUnitsForParent and
// ListAccountsForParent, 5 a second each: the OU paths). fn gets each account once,
// from whichever listing names it first (not concurrently, a page at a time), so
// checks start at the pace of the faster listing; an account handed out by
// ListAccounts has no OU path yet (a check that finds root credentials reads it,
// routing.go). The accounts returned carry the tree's OU paths. Without permission
// for the tree, ListAccounts alone lists (OU paths then come per account); either
// listing failing otherwise fails the listing.
func (e *engine) listOrganization(ctx context.Context, mgmt string, fn func([]accountInfo) error) ([]accountInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	var (
		mu    sync.Mutex
		byID  = map[string]int{} // index in all
		all   []accountInfo
		fnErr error
	)
	collect := func(page []accountInfo) error {
		mu.Lock()
		defer mu.Unlock()
		if fnErr != nil {
			return fnErr
		}
		var fresh []accountInfo
		for _, a := range page {
			if i, ok := byID[a.ID]; ok {
				if a.OUKnown && !all[i].OUKnown {
					all[i].OUPath, all[i].OUKnown = a.OUPath, true
				}
				continue
			}
			byID[a.ID] = len(all)
			all = append(all, a)
			fresh = append(fresh, a)
		}
		if len(fresh) > 0 {
			fnErr = fn(fresh)
		}
		return fnErr
	}
	// The tree, once complete, has every account: ListAccounts then stops. ListAccounts
	// failing fails the listing: the tree stops too.
	treeCtx, stopTree := context.WithCancel(ctx)
	defer stopTree()
	flatCtx, stopFlat := context.WithCancel(ctx)
	defer stopFlat()
	var treeErr, flatErr error
	treeDone := make(chan struct{})
	go func() {
		defer close(treeDone)
		treeErr = e.listTree(treeCtx, mgmt, collect)
		if treeErr == nil {
			stopFlat()
		}
	}()
	flatErr = e.listFlat(flatCtx, mgmt, collect)
	if flatErr != nil && flatCtx.Err() != nil && ctx.Err() == nil {
		flatErr = nil // stopped: the tree listed every account
	}
	if flatErr != nil {
		stopTree()
	}
	<-treeDone
	mu.Lock()
	defer mu.Unlock()
	switch {
	case fnErr != nil:
		return all, fnErr
	case flatErr != nil:
		return all, flatErr
	case treeErr != nil && ctx.Err() != nil:
		return all, treeErr
	case treeErr != nil:
		e.log.Warn("cannot list the organization's tree; OU paths are read per account",
			"code", apiCode(treeErr), "err", safeError(treeErr))
	}
	e.noTree.Store(treeErr != nil)
	return all, nil
}

// listTree walks the organization's tree and hands fn the ACTIVE accounts one page
// at a time (fn is never called concurrently).
func (e *engine) listTree(ctx context.Context, mgmt string, fn func([]accountInfo) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var roots []orgtypes.Root
	rp := organizations.NewListRootsPaginator(e.org, &organizations.ListRootsInput{},
		func(o *organizations.ListRootsPaginatorOptions) { o.StopOnDuplicateToken = true })
	for rp.HasMorePages() {
		page, err := rp.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("organizations ListRoots: %w", err)
		}
		roots = append(roots, page.Roots...)
	}
	var (
		fnMu sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
		sem  = make(chan struct{}, listConcurrency)
	)
	fail := func(err error) { cancel(err) }
	var walk func(id, path string)
	walk = func(id, path string) {
		defer wg.Done()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-sem }()
		op := organizations.NewListOrganizationalUnitsForParentPaginator(e.org,
			&organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(id)},
			func(o *organizations.ListOrganizationalUnitsForParentPaginatorOptions) { o.StopOnDuplicateToken = true })
		for op.HasMorePages() {
			page, err := op.NextPage(ctx)
			if err != nil {
				fail(fmt.Errorf("organizations ListOrganizationalUnitsForParent %s: %w", id, err))
				return
			}
			for _, ou := range page.OrganizationalUnits {
				child, name := aws.ToString(ou.Id), aws.ToString(ou.Name)
				e.rememberOU(child, name, id)
				wg.Add(1)
				go walk(child, path+"/"+name)
			}
		}
		ap := organizations.NewListAccountsForParentPaginator(e.org,
			&organizations.ListAccountsForParentInput{ParentId: aws.String(id)},
			func(o *organizations.ListAccountsForParentPaginatorOptions) { o.StopOnDuplicateToken = true })
		for ap.HasMorePages() {
			page, err := ap.NextPage(ctx)
			if err != nil {
				fail(fmt.Errorf("organizations ListAccountsForParent %s: %w", id, err))
				return
			}
			fnMu.Lock()
			var batch []accountInfo
			for _, a := range page.Accounts {
				aid := aws.ToString(a.Id)
				if aid == "" || seen[aid] || !accountActive(a) {
					continue
				}
				seen[aid] = true
				batch = append(batch, accountInfo{ID: aid, Name: aws.ToString(a.Name), Management: aid == mgmt,
					OrgMember: aid != mgmt, OUPath: path, OUKnown: true})
			}
			var err2 error
			if len(batch) > 0 {
				err2 = fn(batch)
			}
			fnMu.Unlock()
			if err2 != nil {
				fail(err2)
				return
			}
		}
	}
	for _, r := range roots {
		name := aws.ToString(r.Name)
		if name == "" {
			name = "Root"
		}
		e.rememberOU(aws.ToString(r.Id), name, "")
		wg.Add(1)
		go walk(aws.ToString(r.Id), name)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// listFlat is the ListAccounts listing (no OU paths).
func (e *engine) listFlat(ctx context.Context, mgmt string, fn func([]accountInfo) error) error {
	p := organizations.NewListAccountsPaginator(e.org, &organizations.ListAccountsInput{},
		func(o *organizations.ListAccountsPaginatorOptions) { o.StopOnDuplicateToken = true })
	seen := map[string]bool{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("organizations ListAccounts: %w", err)
		}
		var batch []accountInfo
		for _, a := range page.Accounts {
			id := aws.ToString(a.Id)
			if id == "" || seen[id] || !accountActive(a) {
				continue
			}
			seen[id] = true
			batch = append(batch, accountInfo{ID: id, Name: aws.ToString(a.Name), Management: id == mgmt, OrgMember: id != mgmt})
		}
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
	}
	return nil
}

type ouNode struct{ name, parent string } // parent "" for a root

func (e *engine) rememberOU(id, name, parent string) {
	e.ouMu.Lock()
	e.ous[id] = ouNode{name: name, parent: parent}
	e.ouMu.Unlock()
}

// ouPath is the account's OU path ("Root/Prod/Payments") from ListParents and
// DescribeOrganizationalUnit, OU names cached. Management credentials.
func (e *engine) ouPath(ctx context.Context, account string) (string, error) {
	parent, root, err := e.parentOf(ctx, account)
	if err != nil {
		return "", err
	}
	var names []string
	for range 8 { // Organizations nests OUs at most 5 deep under the root
		e.ouMu.Lock()
		n, ok := e.ous[parent]
		e.ouMu.Unlock()
		if !ok {
			if root {
				n = ouNode{name: "Root"}
			} else {
				out, err := e.org.DescribeOrganizationalUnit(ctx, &organizations.DescribeOrganizationalUnitInput{OrganizationalUnitId: aws.String(parent)})
				if err != nil {
					return "", fmt.Errorf("organizations DescribeOrganizationalUnit %s: %w", parent, err)
				}
				up, upRoot, err := e.parentOf(ctx, parent)
				if err != nil {
					return "", err
				}
				n = ouNode{name: aws.ToString(out.OrganizationalUnit.Name), parent: up}
				if upRoot {
					e.rememberOU(up, "Root", "")
				}
			}
			e.rememberOU(parent, n.name, n.parent)
		}
		names = append([]string{n.name}, names...)
		if n.parent == "" {
			break
		}
		parent = n.parent
	}
	path := names[0]
	for _, n := range names[1:] {
		path += "/" + n
	}
	return path, nil
}

func (e *engine) parentOf(ctx context.Context, child string) (id string, root bool, err error) {
	out, err := e.org.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String(child)})
	if err != nil {
		return "", false, fmt.Errorf("organizations ListParents %s: %w", child, err)
	}
	if len(out.Parents) == 0 {
		return "", false, fmt.Errorf("organizations ListParents %s: no parent", child)
	}
	p := out.Parents[0]
	return aws.ToString(p.Id), p.Type == orgtypes.ParentTypeRoot, nil
}

// accountTags reads an account's Organizations tags (management credentials).
func (e *engine) accountTags(ctx context.Context, account string) (map[string]string, error) {
	tags := map[string]string{}
	p := organizations.NewListTagsForResourcePaginator(e.org, &organizations.ListTagsForResourceInput{ResourceId: aws.String(account)},
		func(o *organizations.ListTagsForResourcePaginatorOptions) { o.StopOnDuplicateToken = true })
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("organizations ListTagsForResource %s: %w", account, err)
		}
		for _, t := range page.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return tags, nil
}

// tagsStale reports whether a's tags (and OU path, when unknown) should be read again.
func (e *engine) tagsStale(a accountInfo) bool {
	if e.cfg.OrgRoleName == "" {
		return false
	}
	return !a.OUKnown || e.tagsOld(a)
}

// tagsOld reports whether a's tags should be read again (never read, or older than
// tagsMaxAge plus a per-account offset).
func (e *engine) tagsOld(a accountInfo) bool {
	if e.cfg.OrgRoleName == "" {
		return false
	}
	if a.TagsAt.IsZero() {
		return true
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(a.ID))
	offset := time.Duration(h.Sum32()%3600) * tagsMaxAge / 3600
	return e.cfg.Now().Sub(a.TagsAt) >= tagsMaxAge+offset
}

// refreshOrgDetails reads a's tags (and OU path when unknown), within routingWait.
// It returns a with what it could read and whether anything changed; failures keep
// the old values.
func (e *engine) refreshOrgDetails(ctx context.Context, a accountInfo) (accountInfo, bool) {
	ctx, cancel := context.WithTimeout(ctx, routingWait)
	defer cancel()
	fresh, err := e.readOrgDetails(ctx, a, true, true)
	if err != nil {
		e.log.Debug("account tags or OU path not read", "account", a.ID, "err", safeError(err))
	}
	return fresh, fresh.OUPath != a.OUPath || fresh.OUKnown != a.OUKnown || !fresh.TagsAt.Equal(a.TagsAt)
}

// sameOrgDetails: what an observation shows of the organization is the same.
func sameOrgDetails(a, b accountInfo) bool {
	return a.Name == b.Name && a.OUPath == b.OUPath && a.OUKnown == b.OUKnown && maps.Equal(a.Tags, b.Tags) &&
		a.Management == b.Management && a.OrgMember == b.OrgMember
}

// stillActive asks Organizations whether an account of the inventory is still
// ACTIVE, after a check of it was refused (a closed or suspended account refuses
// AssumeRole). It returns errNotActive (and forgets the account) when it is not, nil
// when it is or when the answer says nothing.
func (e *engine) stillActive(ctx context.Context, id string) error {
	if e.cfg.OrgRoleName == "" {
		return nil
	}
	out, err := e.org.DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: aws.String(id)})
	var nf *orgtypes.AccountNotFoundException
	switch {
	case errors.As(err, &nf):
		e.forget(id)
		return fmt.Errorf("account %s left the organization: %w", id, errNotActive)
	case err != nil || out.Account == nil:
		return nil
	case accountActive(*out.Account):
		return nil
	}
	state := string(out.Account.State)
	if state == "" {
		state = string(out.Account.Status)
	}
	e.forget(id)
	return fmt.Errorf("account %s is %s: %w", id, state, errNotActive)
}

func (e *engine) forget(id string) {
	e.dirMu.Lock()
	delete(e.dir, id)
	e.dirMu.Unlock()
}
