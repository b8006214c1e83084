package awssim

import (
	"encoding/json"
	"maps"
	"sort"
	"strconv"
	"strings"
)

// The organization's tree: one root ("Root", id r-…) holding organizational units
// (ou-…) and accounts. An account added without a parent sits under the root.

type orgUnit struct {
	id, name, parent string
}

// rootName is the name AWS gives an organization's root.
const rootName = "Root"

// AddOU adds an organizational unit named name under parentID (an OU id from an
// earlier AddOU, or "" for the root) and returns its id. It panics without an
// organization (EnableOrganization first) or with an unknown parent.
func (s *Sim) AddOU(parentID, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.orgID == "" {
		panic("awssim: AddOU before EnableOrganization")
	}
	if parentID == "" {
		parentID = s.rootID
	}
	if parentID != s.rootID && s.ous[parentID] == nil {
		panic("awssim: AddOU under unknown parent " + parentID)
	}
	s.seq++
	id := "ou-" + strings.TrimPrefix(s.rootID, "r-") + "-" + strings.ToLower(randString(6, lowerDigits)) + strconv.FormatUint(s.seq, 36)
	s.ous[id] = &orgUnit{id: id, name: name, parent: parentID}
	return id
}

// MoveAccount puts an account under an OU ("" = the root).
func (s *Sim) MoveAccount(accountID, ouID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccount(accountID)
	if ouID != "" && s.ous[ouID] == nil {
		panic("awssim: MoveAccount to unknown OU " + ouID)
	}
	acc.parent = ouID
}

// SetAccountTags replaces an account's Organizations tags (ListTagsForResource).
func (s *Sim) SetAccountTags(accountID string, tags map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(accountID).tags = maps.Clone(tags)
}

// RemoveAccount takes an account out of the organization (it left, or was closed
// and is gone from the listing). Its credentials stop working.
func (s *Sim) RemoveAccount(accountID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccount(accountID)
	delete(s.accounts, accountID)
	for i, a := range s.order {
		if a == acc {
			s.order = append(s.order[:i:i], s.order[i+1:]...)
			break
		}
	}
	for id, c := range s.creds {
		if c.acct == acc {
			delete(s.creds, id)
		}
	}
}

// parentOf is an account's parent id (the root when none was set). The lock is held.
func (s *Sim) parentOf(a *account) string {
	if a.parent == "" {
		return s.rootID
	}
	return a.parent
}

// orgTree serves the tree operations of Organizations. The lock is held; the caller
// is the management account.
func (s *Sim) orgTree(req *request) (any, *apiError, bool) {
	var in struct {
		NextToken            string
		MaxResults           int
		ParentId             string
		ChildId              string
		OrganizationalUnitId string
		ResourceId           string
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return nil, errf(400, "SerializationException", "cannot decode the request body"), true
	}
	page := func(n int) (start, end int, aerr *apiError) {
		if in.NextToken != "" {
			v, err := strconv.Atoi(in.NextToken)
			if err != nil || v < 0 || v > n {
				return 0, 0, errf(400, "InvalidInputException", "You provided an invalid value for NextToken.")
			}
			start = v
		}
		size := s.pageSize
		if in.MaxResults > 0 && in.MaxResults < size {
			size = in.MaxResults
		}
		return start, min(start+size, n), nil
	}
	withToken := func(res map[string]any, end, n int) map[string]any {
		if end < n {
			res["NextToken"] = strconv.Itoa(end)
		}
		return res
	}
	knownParent := func(id string) bool { return id == s.rootID || s.ous[id] != nil }
	switch req.action {
	case "ListRoots":
		return map[string]any{"Roots": []map[string]any{{
			"Id": s.rootID, "Name": rootName, "PolicyTypes": []any{},
			"Arn": "arn:aws:organizations::" + s.mgmtID + ":root/" + s.orgID + "/" + s.rootID,
		}}}, nil, true
	case "ListOrganizationalUnitsForParent":
		if !knownParent(in.ParentId) {
			return nil, errf(400, "ParentNotFoundException", "We can't find a root or OU with the ParentId that you specified."), true
		}
		var ids []string
		for id, ou := range s.ous {
			if ou.parent == in.ParentId {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		start, end, aerr := page(len(ids))
		if aerr != nil {
			return nil, aerr, true
		}
		out := make([]map[string]string, 0, end-start)
		for _, id := range ids[start:end] {
			out = append(out, s.ouJSON(s.ous[id]))
		}
		return withToken(map[string]any{"OrganizationalUnits": out}, end, len(ids)), nil, true
	case "ListAccountsForParent":
		if !knownParent(in.ParentId) {
			return nil, errf(400, "ParentNotFoundException", "We can't find a root or OU with the ParentId that you specified."), true
		}
		var under []*account
		for _, a := range s.order {
			if s.parentOf(a) == in.ParentId {
				under = append(under, a)
			}
		}
		start, end, aerr := page(len(under))
		if aerr != nil {
			return nil, aerr, true
		}
		out := make([]orgAccount, 0, end-start)
		for _, a := range under[start:end] {
			out = append(out, s.orgAccount(a))
		}
		return withToken(map[string]any{"Accounts": out}, end, len(under)), nil, true
	case "ListParents":
		var parent string
		if a := s.accounts[in.ChildId]; a != nil {
			parent = s.parentOf(a)
		} else if ou := s.ous[in.ChildId]; ou != nil {
			parent = ou.parent
		} else {
			return nil, errf(400, "ChildNotFoundException", "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified."), true
		}
		typ := "ORGANIZATIONAL_UNIT"
		if parent == s.rootID {
			typ = "ROOT"
		}
		return map[string]any{"Parents": []map[string]string{{"Id": parent, "Type": typ}}}, nil, true
	case "DescribeOrganizationalUnit":
		ou := s.ous[in.OrganizationalUnitId]
		if ou == nil {
			return nil, errf(400, "OrganizationalUnitNotFoundException", "We can't find an OU with the OrganizationalUnitId that you specified."), true
		}
		return map[string]any{"OrganizationalUnit": s.ouJSON(ou)}, nil, true
	case "ListTagsForResource":
		a := s.accounts[in.ResourceId]
		if a == nil {
			return nil, errf(400, "TargetNotFoundException", "We can't find a resource with the ResourceId that you specified."), true
		}
		keys := make([]string, 0, len(a.tags))
		for k := range a.tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		start, end, aerr := page(len(keys))
		if aerr != nil {
			return nil, aerr, true
		}
		out := make([]map[string]string, 0, end-start)
		for _, k := range keys[start:end] {
			out = append(out, map[string]string{"Key": k, "Value": a.tags[k]})
		}
		return withToken(map[string]any{"Tags": out}, end, len(keys)), nil, true
	}
	return nil, nil, false
}

func (s *Sim) ouJSON(ou *orgUnit) map[string]string {
	return map[string]string{"Id": ou.id, "Name": ou.name,
		"Arn": "arn:aws:organizations::" + s.mgmtID + ":ou/" + s.orgID + "/" + ou.id}
}
