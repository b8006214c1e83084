package awssim

import (
	"strconv"
	"strings"
	"time"
)

// sts serves an STS action. The lock is held.
func (s *Sim) sts(req *request, c *cred) (any, *apiError) {
	switch req.action {
	case "GetCallerIdentity":
		userID := c.acct.ID
		switch c.kind {
		case kindAdmin:
			userID = c.userID
		case kindRole:
			userID = c.userID + ":" + c.session
		}
		return []xmlNode{leaf("UserId", userID), leaf("Account", c.acct.ID), leaf("Arn", c.arn())}, nil
	case "AssumeRole":
		return s.assumeRole(req, c)
	case "AssumeRoot":
		return s.assumeRoot(req, c)
	}
	return nil, errf(400, "InvalidAction", "The action "+req.action+" is not valid for this web service.")
}

func (s *Sim) assumeRole(req *request, c *cred) (any, *apiError) {
	if c.kind == kindRootSession {
		return nil, denied(c, "sts:AssumeRole")
	}
	roleArn, session := req.form.Get("RoleArn"), req.form.Get("RoleSessionName")
	if roleArn == "" || session == "" {
		return nil, errf(400, "ValidationError", "RoleArn and RoleSessionName are required")
	}
	dur, aerr := duration(req, 3600, 900, 43200)
	if aerr != nil {
		return nil, aerr
	}
	acctID, roleName, ok := parseRoleArn(roleArn)
	notAuthorized := errf(403, "AccessDenied", "User: "+c.arn()+" is not authorized to perform: sts:AssumeRole on resource: "+roleArn)
	if !ok {
		return nil, errf(400, "ValidationError", "invalid RoleArn "+roleArn)
	}
	target := s.accounts[acctID]
	if target == nil || target.denyAssume || target.State == "SUSPENDED" || target.State == "CLOSED" {
		return nil, notAuthorized
	}
	var r *role
	for i := range target.roles {
		if target.roles[i].name == roleName {
			r = &target.roles[i]
		}
	}
	if r == nil || (r.externalID != "" && r.externalID != req.form.Get("ExternalId")) {
		return nil, notAuthorized
	}
	nc := s.newSession(kindRole, target, dur)
	nc.role, nc.session, nc.userID = roleName, session, s.newKeyID("AROA")
	return []xmlNode{
		credentialsXML(nc),
		elem("AssumedRoleUser", leaf("AssumedRoleId", nc.userID+":"+session), leaf("Arn", nc.arn())),
		leaf("PackedPolicySize", "0"),
	}, nil
}

func (s *Sim) assumeRoot(req *request, c *cred) (any, *apiError) {
	if c.kind == kindRootKey || c.kind == kindRootSession {
		return nil, denied(c, "sts:AssumeRoot")
	}
	dur, aerr := duration(req, 900, 0, 900)
	if aerr != nil {
		return nil, aerr
	}
	policy := ""
	for k, v := range req.form {
		if strings.EqualFold(k, "TaskPolicyArn.arn") && len(v) > 0 {
			policy = v[0]
		}
	}
	target := req.form.Get("TargetPrincipal")
	switch {
	case target == "":
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'targetPrincipal' failed to satisfy constraint: Member must not be null")
	case policy == "":
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'taskPolicyArn' failed to satisfy constraint: Member must not be null")
	}
	if _, known := rootTaskPolicies[policy]; !known {
		return nil, errf(400, "ValidationError", "The TaskPolicyArn "+policy+" is not a root task policy")
	}
	delegated := s.features.IAMDelegatedAdmin != "" && c.acct.ID == s.features.IAMDelegatedAdmin
	if s.orgID == "" || (c.acct.ID != s.mgmtID && !delegated) {
		return nil, denied(c, "sts:AssumeRoot")
	}
	// The credential tasks need root credentials management; S3/SQS unlocking needs
	// root sessions (privileged root actions).
	if credentialTasks[policy] && !s.features.RootCredentialsManagement {
		return nil, errf(403, "AccessDenied", "Root credentials management is not enabled for this organization. Enable centralized root access (EnableOrganizationsRootCredentialsManagement).")
	}
	if !credentialTasks[policy] && !s.features.RootSessions {
		return nil, errf(403, "AccessDenied", "Root sessions are not enabled for this organization. Enable centralized root access (EnableOrganizationsRootSessions).")
	}
	acc := s.accounts[target]
	if acc == nil || acc.ID == s.mgmtID || acc.Management || acc.State != "ACTIVE" {
		return nil, errf(403, "AccessDenied", "User: "+c.arn()+" is not authorized to perform: sts:AssumeRoot on resource: "+target+": the target must be an active member account of the organization")
	}
	nc := s.newSession(kindRootSession, acc, dur)
	nc.policy = policy
	return []xmlNode{credentialsXML(nc)}, nil
}

func denied(c *cred, action string) *apiError {
	return errf(403, "AccessDenied", "User: "+c.arn()+" is not authorized to perform: "+action)
}

// duration reads DurationSeconds within [lo, hi].
func duration(req *request, def, lo, hi int) (time.Duration, *apiError) {
	v := req.form.Get("DurationSeconds")
	if v == "" {
		return time.Duration(def) * time.Second, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, errf(400, "ValidationError", "1 validation error detected: Value '"+v+"' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to "+strconv.Itoa(hi))
	}
	return time.Duration(n) * time.Second, nil
}

func parseRoleArn(arn string) (acct, name string, ok bool) {
	// arn:aws:iam::123456789012:role/path/Name
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return "", "", false
	}
	name = parts[5][strings.LastIndexByte(parts[5], '/')+1:]
	return parts[4], name, name != ""
}

// pruneEvery is how many sessions are issued between sweeps of expired ones.
const pruneEvery = 4096

func (s *Sim) newSession(kind credKind, acc *account, d time.Duration) *cred {
	now := s.now()
	s.sessions++
	if s.sessions%pruneEvery == 0 {
		for id, c := range s.creds {
			if !c.expires.IsZero() && now.After(c.expires) {
				delete(s.creds, id)
			}
		}
	}
	c := &cred{id: s.newKeyID("ASIA"), secret: newSecret(), token: "IQoJb3JpZ2luX2VjE" + randString(80, secretChars),
		kind: kind, acct: acc, expires: now.Add(d)}
	s.creds[c.id] = c
	return c
}

func credentialsXML(c *cred) xmlNode {
	return elem("Credentials",
		leaf("AccessKeyId", c.id),
		leaf("SecretAccessKey", c.secret),
		leaf("SessionToken", c.token),
		leaf("Expiration", c.expires.UTC().Format(time.RFC3339)))
}
