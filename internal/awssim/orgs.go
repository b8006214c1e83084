package awssim

import (
	"encoding/json"
	"strconv"
)

type orgAccount struct {
	ID              string  `json:"Id"`
	Arn             string  `json:"Arn"`
	Email           string  `json:"Email"`
	Name            string  `json:"Name"`
	Status          string  `json:"Status"`
	State           string  `json:"State"`
	JoinedMethod    string  `json:"JoinedMethod"`
	JoinedTimestamp float64 `json:"JoinedTimestamp"`
}

// orgs serves an Organizations action. The lock is held.
func (s *Sim) orgs(req *request, c *cred) (any, *apiError) {
	if s.orgID == "" {
		return nil, errf(400, "AWSOrganizationsNotInUseException", "Your account is not a member of an organization.")
	}
	if c.kind == kindRootSession {
		return nil, errf(400, "AccessDeniedException", "You don't have permissions to access this resource.")
	}
	// Any member may describe its organization; the rest is for the management account.
	if req.action != "DescribeOrganization" && c.acct.ID != s.mgmtID {
		return nil, errf(400, "AccessDeniedException", "You don't have permissions to access this resource.")
	}
	if out, aerr, ok := s.orgTree(req); ok {
		return out, aerr
	}
	var in struct {
		NextToken  string
		MaxResults int
		AccountId  string
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return nil, errf(400, "SerializationException", "cannot decode the request body")
	}
	switch req.action {
	case "DescribeOrganization":
		m := s.accounts[s.mgmtID]
		return map[string]any{"Organization": map[string]any{
			"Id":                 s.orgID,
			"Arn":                "arn:aws:organizations::" + s.mgmtID + ":organization/" + s.orgID,
			"FeatureSet":         "ALL",
			"MasterAccountArn":   "arn:aws:organizations::" + s.mgmtID + ":account/" + s.orgID + "/" + s.mgmtID,
			"MasterAccountEmail": m.Email,
			"MasterAccountId":    s.mgmtID,
			"AvailablePolicyTypes": []map[string]string{
				{"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"},
			},
		}}, nil
	case "ListAccounts":
		start := 0
		if in.NextToken != "" {
			n, err := strconv.Atoi(in.NextToken)
			if err != nil || n < 0 || n > len(s.order) {
				return nil, errf(400, "InvalidInputException", "You provided an invalid value for NextToken.")
			}
			start = n
		}
		size := s.pageSize
		if in.MaxResults > 0 && in.MaxResults < size {
			size = in.MaxResults
		}
		end := min(start+size, len(s.order))
		out := make([]orgAccount, 0, end-start)
		for _, a := range s.order[start:end] {
			out = append(out, s.orgAccount(a))
		}
		res := map[string]any{"Accounts": out}
		if end < len(s.order) {
			res["NextToken"] = strconv.Itoa(end)
		}
		return res, nil
	case "DescribeAccount":
		a := s.accounts[in.AccountId]
		if a == nil {
			return nil, errf(400, "AccountNotFoundException", "You specified an account that doesn't exist.")
		}
		return map[string]any{"Account": s.orgAccount(a)}, nil
	}
	return nil, errf(400, "UnknownOperationException", "unknown operation "+req.action)
}

func (s *Sim) orgAccount(a *account) orgAccount {
	status := a.State
	switch a.State {
	case "ACTIVE", "SUSPENDED", "PENDING_CLOSURE":
	case "CLOSED":
		status = "SUSPENDED"
	default:
		status = "ACTIVE"
	}
	method := "INVITED"
	if !a.Management {
		method = "CREATED"
	}
	return orgAccount{
		ID:              a.ID,
		Arn:             "arn:aws:organizations::" + s.mgmtID + ":account/" + s.orgID + "/" + a.ID,
		Email:           a.Email,
		Name:            a.Name,
		Status:          status,
		State:           a.State,
		JoinedMethod:    method,
		JoinedTimestamp: float64(a.Created.Unix()),
	}
}
