package detector

// Root-credential posture: what each account's newest successful check says of every
// root credential (access keys, signing certificates, password; MFA), and the
// organization's centralized root access (IAM ListOrganizationsFeatures). Reported
// only — scan summary and JSON, metrics, the sweep's record — never a case: cases
// still open on root access keys alone (the remediator reads RootKeysPresent).
//
// ListOrganizationsFeatures is called with rootwarden's own (base) credentials, which
// must belong to the management account or the IAM delegated administrator for
// centralized root access; it needs trusted access for IAM in Organizations. Every
// refusal is a posture "unknown" with its reason, never a failed sweep or scan.
// https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListOrganizationsFeatures.html

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/model"
)

// orgRootAccessTimeout bounds one ListOrganizationsFeatures call (retries included).
const orgRootAccessTimeout = 30 * time.Second

// readOrgRootAccess reads the organization's centralized root access. ok is false in
// single-account mode (no organization is swept: nothing to read).
func (e *engine) readOrgRootAccess(ctx context.Context) (ra model.OrgRootAccess, ok bool) {
	if e.cfg.OrgRoleName == "" {
		return model.OrgRootAccess{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, orgRootAccessTimeout)
	defer cancel()
	out, err := e.iam.ListOrganizationsFeatures(ctx, &iam.ListOrganizationsFeaturesInput{})
	prev := e.posture.orgNow()
	if err != nil {
		ra.Error, ra.ErrorCode = describe(err)
		if hint := orgRootAccessHints[ra.ErrorCode]; hint != "" {
			ra.Error += " (" + hint + ")"
		}
		level := slog.LevelWarn // once per reason, not every sweep
		if prev != nil && !prev.Known && prev.ErrorCode == ra.ErrorCode {
			level = slog.LevelDebug
		}
		e.log.Log(ctx, level, "centralized root access unknown", "code", ra.ErrorCode, "err", ra.Error)
	} else {
		ra.Known, ra.OrganizationID = true, aws.ToString(out.OrganizationId)
		for _, f := range out.EnabledFeatures {
			switch f {
			case iamtypes.FeatureTypeRootCredentialsManagement:
				ra.RootCredentialsManagement = true
			case iamtypes.FeatureTypeRootSessions:
				ra.RootSessions = true
			}
		}
		level := slog.LevelInfo // when it changes
		if prev != nil && prev.Known && prev.RootCredentialsManagement == ra.RootCredentialsManagement && prev.RootSessions == ra.RootSessions {
			level = slog.LevelDebug
		}
		e.log.Log(ctx, level, "centralized root access read", "root_credentials_management", ra.RootCredentialsManagement,
			"root_sessions", ra.RootSessions)
	}
	e.posture.setOrg(ra)
	return ra, true
}

// orgRootAccessHints say what to do about each refusal AWS documents.
var orgRootAccessHints = map[string]string{
	"ServiceAccessNotEnabledException":                      "enable trusted access for IAM in AWS Organizations",
	"AccountNotManagementOrDelegatedAdministratorException": "rootwarden's identity must be in the management account or the IAM delegated administrator",
	"OrganizationNotFoundException":                         "the account is not in an AWS Organization",
	"OrganizationNotInAllFeaturesModeException":             "the organization must have all features enabled",
	"AccessDenied": "grant iam:ListOrganizationsFeatures",
}

// posture is each account's newest root-credential facts and the organization's
// centralized root access, for the metrics. Accounts the newest listing does not
// hold are not counted.
type posture struct {
	mu   sync.Mutex
	accs map[string]postureEntry
	org  *model.OrgRootAccess
}

type postureEntry struct {
	at time.Time
	rc *model.RootCredentials
}

// note keeps o's facts when o is a successful check newer than the account's last.
func (p *posture) note(o model.Observation) {
	if o.Failed() || o.RootCredentials == nil || o.AccountID == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.accs == nil {
		p.accs = map[string]postureEntry{}
	}
	if cur, ok := p.accs[o.AccountID]; ok && o.ObservedAt.Before(cur.at) {
		return
	}
	p.accs[o.AccountID] = postureEntry{at: o.ObservedAt, rc: o.RootCredentials}
}

func (p *posture) orgNow() *model.OrgRootAccess {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.org
}

func (p *posture) setOrg(ra model.OrgRootAccess) {
	p.mu.Lock()
	p.org = &ra
	p.mu.Unlock()
}

// PostureCounts is the organization's root-credential posture over checked accounts.
type PostureCounts struct {
	Accounts int                          `json:"accounts"` // with a successful check that reported root credentials
	With     map[model.CredentialType]int `json:"with"`     // accounts with a credential of that type
	Unknown  map[model.CredentialType]int `json:"unknown"`  // accounts whose summary did not say
	Free     int                          `json:"root_credential_free"`
}

// CountPosture counts root credentials over observations (the newest per account is
// the caller's business): failed checks and findings without RootCredentials are left out.
func CountPosture(obs []model.Observation) PostureCounts {
	c := PostureCounts{With: map[model.CredentialType]int{}, Unknown: map[model.CredentialType]int{}}
	for _, t := range model.CredentialTypes {
		c.With[t], c.Unknown[t] = 0, 0
	}
	for _, o := range obs {
		if o.Failed() || o.RootCredentials == nil {
			continue
		}
		c.Accounts++
		for _, t := range model.CredentialTypes {
			switch p, known := o.RootCredentials.Has(t); {
			case !known:
				c.Unknown[t]++
			case p:
				c.With[t]++
			}
		}
		if free, known := o.RootCredentials.Free(); free && known {
			c.Free++
		}
	}
	return c
}

// counts is the posture over the accounts of inventory (all noted when nil).
func (p *posture) counts(inventory map[string]accountInfo) (PostureCounts, *model.OrgRootAccess) {
	p.mu.Lock()
	defer p.mu.Unlock()
	obs := make([]model.Observation, 0, len(p.accs))
	for id, e := range p.accs {
		if inventory != nil {
			if _, ok := inventory[id]; !ok {
				continue
			}
		}
		obs = append(obs, model.Observation{AccountID: id, RootCredentials: e.rc})
	}
	return CountPosture(obs), p.org
}

// postureCollector exports the posture at every scrape.
type postureCollector struct {
	e                                  *engine
	with, unknown, free, mgmt, session *prometheus.Desc
}

func newPostureCollector(e *engine) *postureCollector {
	return &postureCollector{e: e,
		with: prometheus.NewDesc("rootwarden_accounts_with_root_credentials",
			"Accounts whose newest check reports a root credential of that type (access_keys, signing_certificates, password).", []string{"type"}, nil),
		unknown: prometheus.NewDesc("rootwarden_accounts_root_credentials_unknown",
			"Accounts whose newest check's account summary did not report that credential type (unknown, neither present nor absent).", []string{"type"}, nil),
		free: prometheus.NewDesc("rootwarden_accounts_root_credential_free",
			"Accounts whose newest check reports no root access key, signing certificate or password.", nil, nil),
		mgmt: prometheus.NewDesc("rootwarden_org_root_credentials_management_enabled",
			"1 when the organization has centralized root credentials management (RootCredentialsManagement) on, 0 when off; absent while unknown.", nil, nil),
		session: prometheus.NewDesc("rootwarden_org_root_sessions_enabled",
			"1 when the organization has privileged root sessions (RootSessions) on, 0 when off; absent while unknown.", nil, nil),
	}
}

func (c *postureCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.with, c.unknown, c.free, c.mgmt, c.session} {
		ch <- d
	}
}

func (c *postureCollector) Collect(ch chan<- prometheus.Metric) {
	c.e.dirMu.Lock()
	var inv map[string]accountInfo
	if len(c.e.dir) > 0 {
		inv = make(map[string]accountInfo, len(c.e.dir))
		for id := range c.e.dir {
			inv[id] = accountInfo{}
		}
	}
	c.e.dirMu.Unlock()
	n, org := c.e.posture.counts(inv)
	for _, t := range model.CredentialTypes {
		ch <- prometheus.MustNewConstMetric(c.with, prometheus.GaugeValue, float64(n.With[t]), string(t))
		ch <- prometheus.MustNewConstMetric(c.unknown, prometheus.GaugeValue, float64(n.Unknown[t]), string(t))
	}
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(n.Free))
	if org != nil && org.Known {
		ch <- prometheus.MustNewConstMetric(c.mgmt, prometheus.GaugeValue, b2f(org.RootCredentialsManagement))
		ch <- prometheus.MustNewConstMetric(c.session, prometheus.GaugeValue, b2f(org.RootSessions))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
