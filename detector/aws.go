package detector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/model"
)

// accountInfo is one account to check and how.
type accountInfo struct {
	ID         string `json:"account_id"`
	Name       string `json:"account_name,omitempty"`
	Management bool   `json:"management,omitempty"`
	OrgMember  bool   `json:"org_member,omitempty"`
	// OUPath is the account's place in the organization ("Root/Prod/Payments");
	// OUKnown says it was read (an account directly under the root has "Root").
	OUPath  string            `json:"ou_path,omitempty"`
	OUKnown bool              `json:"ou_known,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	TagsAt  time.Time         `json:"tags_at,omitzero"` // when Tags were read; zero: never
}

// engine is the AWS side shared by Detector and Scanner: account enumeration and the
// check of one account. It holds no bus.
type engine struct {
	cfg  Config
	log  *slog.Logger
	met  *metrics
	iam  *iam.Client
	sts  *sts.Client
	org  *organizations.Client
	sqs  *sqs.Client
	root string // role session name

	callerMu sync.Mutex
	caller   string // account id of the base credentials, once known

	dirMu sync.Mutex
	dir   map[string]accountInfo // the inventory: the last listing, kept in rw_accounts by detectors
	mgmt  string                 // the organization's management account, once known

	ouMu sync.Mutex
	ous  map[string]ouNode // OU and root names by id, learnt from listings and lookups
	// noTree: the last listing could not walk the tree, so OU paths come per account
	// (background reads include them).
	noTree atomic.Bool

	cache *caches
	lim   *limiter // member-account checks (IAM, STS), adaptive
	pace  *pacer   // Organizations and STS at their published rates (pace.go)
	rt    *routing // tags and OU paths of accounts with a finding first (routing.go)

	posture posture // root-credential posture for the metrics (rootaccess.go)
}

func newEngine(cfg Config, log *slog.Logger, awsCfg aws.Config) (*engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(awsCfg)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "detector")
	met, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	lim := newLimiter(cfg.Concurrency)
	if cfg.Metrics != nil {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rootwarden_detector_check_concurrency",
			Help: "Account checks allowed at once now: ROOTWARDEN_SCAN_CONCURRENCY, lowered while AWS throttles."},
			func() float64 { l, _ := lim.current(); return l })
		if _, err := register[prometheus.GaugeFunc](cfg.Metrics, g); err != nil {
			return nil, err
		}
	}
	awsCfg = tuneAWS(awsCfg, cfg, lim.throttled)
	pace := newPacer(cfg.OrgAPIShare)
	e := &engine{
		cfg: cfg,
		log: log,
		met: met,
		iam: iam.NewFromConfig(awsCfg),
		sts: sts.NewFromConfig(awsCfg, func(o *sts.Options) {
			o.APIOptions = append(o.APIOptions, pace.apiOption("STS"))
		}),
		// Organizations has its own retryer: its throttling is paced and retried
		// (pace.go), and never lowers the member-account checks (limit.go).
		org: organizations.NewFromConfig(awsCfg, func(o *organizations.Options) {
			o.Retryer = newPatientRetryer(cfg.MaxAttempts, cfg.MaxBackoff)
			o.RetryMaxAttempts = 0 // would cap the throttled retries
			o.APIOptions = append(o.APIOptions, pace.apiOption("Organizations"))
		}),
		sqs:   sqs.NewFromConfig(awsCfg, sqsRegion(cfg.SQSQueueURL)),
		root:  "rootwarden-detector",
		dir:   map[string]accountInfo{},
		ous:   map[string]ouNode{},
		cache: newCaches(),
		lim:   lim,
		pace:  pace,
	}
	e.rt = newRouting(e)
	if cfg.Metrics != nil {
		if _, err := register[*postureCollector](cfg.Metrics, newPostureCollector(e)); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// queueHostRE finds the region in the host of an AWS queue URL:
// sqs.REGION.amazonaws.com, the legacy REGION.queue.amazonaws.com, or a VPC endpoint
// …sqs.REGION.vpce.amazonaws.com (and the .cn partition).
var queueHostRE = regexp.MustCompile(`^(?:sqs(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com|([a-z0-9-]+)\.queue\.amazonaws\.com|.+\.sqs\.([a-z0-9-]+)\.vpce\.amazonaws\.com)(?:\.cn)?$`)

// sqsRegion makes the SQS client talk to the region of the queue. The SDK sends every
// request to the client's region whatever the QueueUrl says, and IAM events reach
// EventBridge in us-east-1 while AWS_REGION is often the operator's home region.
func sqsRegion(queueURL string) func(*sqs.Options) {
	return func(o *sqs.Options) {
		u, err := url.Parse(queueURL)
		if err != nil {
			return
		}
		if m := queueHostRE.FindStringSubmatch(strings.ToLower(u.Hostname())); m != nil {
			if r := m[1] + m[2] + m[3]; r != "" {
				o.Region = r
			}
		}
	}
}

// tuneAWS sets the standard retryer (MaxAttempts, MaxBackoff; every throttled attempt
// is told to onThrottle) and lets the SDK's own HTTP client keep as many idle
// connections per host as checks run at once.
func tuneAWS(awsCfg aws.Config, cfg Config, onThrottle func()) aws.Config {
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1" // IAM, STS and Organizations are global
	}
	attempts, backoff := cfg.MaxAttempts, cfg.MaxBackoff
	awsCfg.Retryer = func() aws.Retryer {
		return throttleSignal{onThrottle: onThrottle, RetryerV2: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			if backoff > 0 {
				o.MaxBackoff = backoff
			}
			// One client serves every account; AWS throttles per account, so a shared
			// retry quota would let one throttled account starve the others. The
			// per-account timeout bounds the retries instead.
			o.RateLimiter = ratelimit.None
		})}
	}
	conns := max(cfg.Concurrency+8, awshttp.DefaultHTTPTransportMaxIdleConnsPerHost)
	switch c := awsCfg.HTTPClient.(type) {
	case *awshttp.BuildableClient:
		awsCfg.HTTPClient = c.WithTransportOptions(func(t *http.Transport) { t.MaxIdleConnsPerHost = conns })
	case nil:
		awsCfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) { t.MaxIdleConnsPerHost = conns })
	}
	return awsCfg
}

// callerAccount is the account of the base credentials (sts GetCallerIdentity).
func (e *engine) callerAccount(ctx context.Context) (string, error) {
	e.callerMu.Lock()
	defer e.callerMu.Unlock()
	if e.caller != "" {
		return e.caller, nil
	}
	out, err := e.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("sts GetCallerIdentity: %w", err)
	}
	e.caller = aws.ToString(out.Account)
	return e.caller, nil
}

// listAccounts enumerates the accounts to check and refreshes the directory.
func (e *engine) listAccounts(ctx context.Context) ([]accountInfo, error) {
	var all []accountInfo
	err := e.eachAccount(ctx, func(page []accountInfo) error {
		all = append(all, page...)
		return nil
	})
	return all, err
}

// eachAccount enumerates the accounts to check, handing them to fn a page at a time
// as Organizations returns them (so checks start while the listing goes on), and
// refreshes the directory when the listing is complete.
func (e *engine) eachAccount(ctx context.Context, fn func([]accountInfo) error) error {
	caller, err := e.callerAccount(ctx)
	if err != nil {
		return err
	}
	var accounts []accountInfo
	if e.cfg.OrgRoleName == "" {
		a := accountInfo{ID: caller, Management: true}
		out, err := e.iam.ListAccountAliases(ctx, &iam.ListAccountAliasesInput{})
		if err != nil {
			e.log.Debug("no account alias", "account", caller, "err", safeError(err))
		} else if len(out.AccountAliases) > 0 {
			a.Name = out.AccountAliases[0]
		}
		accounts = []accountInfo{a}
		if err := fn(accounts); err != nil {
			return err
		}
	} else {
		org, err := e.org.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
		if err != nil {
			var nf *orgtypes.AWSOrganizationsNotInUseException
			if errors.As(err, &nf) {
				return fmt.Errorf("ROOTWARDEN_ORG_ROLE_NAME is set but account %s is not in an AWS Organization: %w", caller, err)
			}
			return fmt.Errorf("organizations DescribeOrganization: %w", err)
		}
		mgmt := ""
		if org.Organization != nil {
			mgmt = aws.ToString(org.Organization.MasterAccountId)
		}
		e.dirMu.Lock()
		e.mgmt = mgmt
		e.dirMu.Unlock()
		accounts, err = e.listOrganization(ctx, mgmt, fn)
		if err != nil {
			return err
		}
	}
	dir := make(map[string]accountInfo, len(accounts))
	e.dirMu.Lock()
	for _, a := range accounts {
		if old, ok := e.dir[a.ID]; ok {
			a = mergeListed(a, old)
		}
		dir[a.ID] = a
	}
	e.dir = dir
	e.dirMu.Unlock()
	return nil
}

// mergeListed keeps what a listing does not say (tags, an OU path read earlier).
func mergeListed(listed, old accountInfo) accountInfo {
	listed.Tags, listed.TagsAt = old.Tags, old.TagsAt
	if !listed.OUKnown && old.OUKnown {
		listed.OUPath, listed.OUKnown = old.OUPath, true
	}
	return listed
}

// accountActive prefers State (Status is being retired).
func accountActive(a orgtypes.Account) bool {
	if a.State != "" {
		return a.State == orgtypes.AccountStateActive
	}
	return a.Status == orgtypes.AccountStatusActive
}

var (
	errUnknownAccount = errors.New("unknown account")
	errNotActive      = errors.New("account is not ACTIVE")
)

// lookup finds one account for an event or an on-demand check: the caller's own
// account, or (with an organization role) the inventory's entry, or for an account
// the inventory does not hold, the organization's answer for that id (organizations
// DescribeAccount, then its OU path and tags). Accounts that are not ACTIVE cannot
// be checked.
func (e *engine) lookup(ctx context.Context, id string) (accountInfo, error) {
	caller, err := e.callerAccount(ctx)
	if err != nil {
		return accountInfo{}, err
	}
	if e.cfg.OrgRoleName == "" {
		if id != caller {
			return accountInfo{}, errUnknownAccount
		}
		e.dirMu.Lock()
		a, ok := e.dir[id]
		e.dirMu.Unlock()
		if ok {
			return a, nil
		}
		accounts, err := e.listAccounts(ctx)
		if err != nil || len(accounts) == 0 {
			return accountInfo{ID: id, Management: true}, nil // the alias is a nicety
		}
		return accounts[0], nil
	}
	e.dirMu.Lock()
	a, ok := e.dir[id]
	e.dirMu.Unlock()
	if ok {
		return a, nil // the inventory: no Organizations call on an event's path
	}
	if e.cache.isUnknown(id, e.cfg.Now()) { // asked lately: no Organizations call (cache.go)
		return accountInfo{}, errUnknownAccount
	}
	mgmt, err := e.managementAccount(ctx)
	if err != nil {
		return accountInfo{}, err
	}
	out, err := e.org.DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: aws.String(id)})
	if err != nil {
		var nf *orgtypes.AccountNotFoundException
		if errors.As(err, &nf) {
			e.cache.markUnknown(id, e.cfg.Now())
			return accountInfo{}, errUnknownAccount
		}
		return accountInfo{}, fmt.Errorf("organizations DescribeAccount %s: %w", id, err)
	}
	if out.Account == nil {
		e.cache.markUnknown(id, e.cfg.Now())
		return accountInfo{}, errUnknownAccount
	}
	if !accountActive(*out.Account) {
		state := string(out.Account.State)
		if state == "" {
			state = string(out.Account.Status)
		}
		return accountInfo{}, fmt.Errorf("account %s is %s: %w", id, state, errNotActive)
	}
	// An account the inventory does not know yet (it joined since the last sweep):
	// its OU path and tags are read now, once, and kept until the sweep lists it.
	a = accountInfo{ID: id, Name: aws.ToString(out.Account.Name), Management: id == mgmt, OrgMember: id != mgmt}
	a, _ = e.refreshOrgDetails(ctx, a)
	e.dirMu.Lock()
	e.dir[id] = a
	e.dirMu.Unlock()
	return a, nil
}

// managementAccount is the organization's management account id, asked once.
func (e *engine) managementAccount(ctx context.Context) (string, error) {
	e.dirMu.Lock()
	mgmt := e.mgmt
	e.dirMu.Unlock()
	if mgmt != "" {
		return mgmt, nil
	}
	org, err := e.org.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil {
		return "", fmt.Errorf("organizations DescribeOrganization: %w", err)
	}
	if org.Organization != nil {
		mgmt = aws.ToString(org.Organization.MasterAccountId)
	}
	e.dirMu.Lock()
	e.mgmt = mgmt
	e.dirMu.Unlock()
	return mgmt, nil
}

// check checks one account within the account timeout, key details included, in one
// observation (sweeps and scans: nobody waits for them). It never fails: errors are
// in the observation (Error, ErrorCode). ID, SweepID, RequestID and Event are the
// caller's to set.
func (e *engine) check(ctx context.Context, a accountInfo, src model.Source) model.Observation {
	obs, details := e.checkPresence(ctx, a, src)
	if details == nil {
		return obs
	}
	full, ok := details(ctx)
	if !ok {
		obs.KeyDetailsPending = false // none will follow
		return obs
	}
	return full
}

// checkPresence decides presence (one IAM GetAccountSummary, with cached session
// credentials one call in all) and returns the observation at once, stamped with
// the time the summary answered. When keys are present and no credential report of
// the account is known, it also returns details: the observation's KeyDetailsPending
// is set, and details (its own account timeout) reads the report and returns the
// same observation with the keys, or false when the report could not be read.
func (e *engine) checkPresence(ctx context.Context, a accountInfo, src model.Source) (model.Observation, func(context.Context) (model.Observation, bool)) {
	start := time.Now()
	obs := model.Observation{
		SchemaVersion: model.SchemaVersion,
		AccountID:     a.ID,
		AccountName:   a.Name,
		Management:    a.Management,
		OrgMember:     a.OrgMember,
		OUPath:        a.OUPath,
		Tags:          maps.Clone(a.Tags),
		Source:        src,
		Keys:          []model.KeyDetail{},
	}
	var opt func(*iam.Options)
	cctx, cancel := context.WithTimeout(ctx, e.cfg.AccountTimeout)
	err := e.lim.acquire(cctx)
	if err == nil {
		opt, err = e.presence(cctx, a, &obs)
		e.lim.release()
	}
	cancel()
	if obs.ObservedAt.IsZero() {
		obs.ObservedAt = e.cfg.Now().UTC()
	}
	if err == nil && obs.RootKeysPresent {
		// A case: its channel and owner come from the account's tags and OU path,
		// read first (routing.go), with the member-check slot already given back.
		routed, rerr := e.rt.forCase(ctx, a)
		obs.OUPath, obs.Tags = routed.OUPath, maps.Clone(routed.Tags)
		if rerr != nil {
			obs.RoutingError = routingError(rerr)
			e.log.Warn("root credentials found; routing facts not read", "account", a.ID, "err", safeError(rerr))
		}
	}
	defer func() {
		e.met.checked.WithLabelValues(string(src)).Inc()
		e.met.duration.WithLabelValues(string(src)).Observe(time.Since(start).Seconds())
	}()
	if err != nil {
		obs.Error, obs.ErrorCode = describe(err)
		obs.RootKeysPresent, obs.Keys, obs.RootCredentials = false, []model.KeyDetail{}, nil
		e.met.errors.WithLabelValues(string(src)).Inc()
		e.log.Warn("account check failed", "account", a.ID, "source", src, "code", obs.ErrorCode, "err", obs.Error)
		return obs, nil
	}
	e.posture.note(obs)
	if !obs.RootKeysPresent {
		e.log.Debug("account checked", "account", a.ID, "source", src, "root_keys", false)
		return obs, nil
	}
	if r, ok := e.cache.report(a.ID, e.cfg.Now()); ok {
		obs.Keys, obs.ReportAt = slices.Clone(r.keys), ptrTime(r.at)
		e.log.Debug("account checked", "account", a.ID, "source", src, "root_keys", true, "keys", len(obs.Keys), "report", "cached")
		return obs, nil
	}
	obs.KeyDetailsPending = true
	return obs, func(ctx context.Context) (model.Observation, bool) {
		full := obs
		full.KeyDetailsPending = false
		ctx, cancel := context.WithTimeout(ctx, e.cfg.AccountTimeout)
		defer cancel()
		if err := e.lim.acquire(ctx); err != nil {
			return obs, false
		}
		defer e.lim.release()
		keys, at, err := e.reportKeys(ctx, a.ID, opt)
		if at != nil {
			full.ReportAt = ptrTime(*at)
		}
		if err != nil {
			// Presence is decided; details are best effort.
			msg, code := describe(err)
			e.log.Warn("credential report unavailable; keys present per account summary",
				"account", a.ID, "code", code, "err", msg)
			return obs, false
		}
		full.Keys = keys
		e.log.Debug("key details read", "account", a.ID, "source", src, "keys", len(keys))
		return full, true
	}
}

func ptrTime(t time.Time) *time.Time {
	t = t.UTC()
	return &t
}

// presence asks the account summary (the truth) and sets obs.RootKeysPresent and
// obs.ObservedAt (when the summary answered). It returns the call option that signs
// as the account, for the details. Cached session credentials that AWS refuses are
// dropped, and the summary asked once more with fresh ones.
func (e *engine) presence(ctx context.Context, a accountInfo, obs *model.Observation) (func(*iam.Options), error) {
	for attempt := 0; ; attempt++ {
		creds, cached, err := e.credentialsFor(ctx, a)
		if err != nil {
			return nil, err
		}
		opt := func(o *iam.Options) {
			if creds != nil {
				o.Credentials = creds
			}
		}
		sum, err := e.iam.GetAccountSummary(ctx, &iam.GetAccountSummaryInput{}, opt)
		if err != nil {
			if creds != nil && authError(err) {
				e.cache.dropSession(a.ID)
				if cached && attempt == 0 {
					continue
				}
			}
			return nil, fmt.Errorf("iam GetAccountSummary in %s: %w", a.ID, err)
		}
		obs.ObservedAt = e.cfg.Now().UTC()
		n, ok := sum.SummaryMap[string(iamtypes.SummaryKeyTypeAccountAccessKeysPresent)]
		if !ok {
			return nil, model.Errorf(model.CodeInternal, "iam GetAccountSummary in %s: no AccountAccessKeysPresent in the summary", a.ID)
		}
		obs.RootKeysPresent = n > 0 // the summary is current; a stale report must never say otherwise
		obs.RootCredentials = rootCredentials(sum.SummaryMap)
		return opt, nil
	}
}

// rootCredentials reads every root credential from GetAccountSummary's SummaryMap
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountSummary.html,
// keys in the SDK's SummaryKeyType): 1 present, 0 absent. A key the answer does not
// carry stays nil, unknown (moto and older API versions have no AccountPasswordPresent).
func rootCredentials(m map[string]int32) *model.RootCredentials {
	fact := func(k iamtypes.SummaryKeyType) *bool {
		n, ok := m[string(k)]
		if !ok {
			return nil
		}
		b := n > 0
		return &b
	}
	return &model.RootCredentials{
		AccessKeys:          fact(iamtypes.SummaryKeyTypeAccountAccessKeysPresent),
		SigningCertificates: fact(iamtypes.SummaryKeyTypeAccountSigningCertificatesPresent),
		Password:            fact(iamtypes.SummaryKeyTypeAccountPasswordPresent),
		MFAEnabled:          fact(iamtypes.SummaryKeyTypeAccountMFAEnabled),
	}
}

// authError: AWS refused the credentials themselves (expired, revoked, or the role's
// permissions changed), so cached session credentials must not be used again.
func authError(err error) bool {
	switch apiCode(err) {
	case "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
		"AccessDenied", "AccessDeniedException", "SignatureDoesNotMatch":
		return true
	}
	return false
}

// credentialsFor returns nil (the base credentials) for the caller's own account,
// otherwise session credentials of the organization role in that account: cached
// ones (cached true) until credMargin before they expire, else from AssumeRole.
func (e *engine) credentialsFor(ctx context.Context, a accountInfo) (p aws.CredentialsProvider, cached bool, err error) {
	caller, err := e.callerAccount(ctx)
	if err != nil {
		return nil, false, err
	}
	if a.ID == caller || e.cfg.OrgRoleName == "" {
		if a.ID != caller {
			return nil, false, model.Errorf(model.CodeNotFound, "account %s is not the caller's account %s and no organization role is configured", a.ID, caller)
		}
		return nil, false, nil
	}
	if p := e.cache.sessionFor(a.ID, e.cfg.Now()); p != nil {
		return p, true, nil
	}
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(roleARN(a.ID, e.cfg.OrgRoleName)),
		RoleSessionName: aws.String(e.root),
		DurationSeconds: aws.Int32(int32(sessionDuration / time.Second)),
	}
	if e.cfg.ExternalID != "" {
		in.ExternalId = aws.String(e.cfg.ExternalID)
	}
	out, err := e.sts.AssumeRole(ctx, in)
	if err != nil {
		return nil, false, fmt.Errorf("sts AssumeRole %s: %w", aws.ToString(in.RoleArn), err)
	}
	c := out.Credentials
	if c == nil {
		return nil, false, model.Errorf(model.CodeInternal, "sts AssumeRole %s: no credentials in the answer", aws.ToString(in.RoleArn))
	}
	p = credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	if c.Expiration != nil {
		e.cache.keepSession(a.ID, p, *c.Expiration)
	}
	return p, false, nil
}

func roleARN(account, role string) string {
	role = strings.Trim(role, "/")
	return "arn:aws:iam::" + account + ":role/" + role
}

// reportKeys reads the root row of a credential report no older than 4 hours,
// generating one when needed and polling while AWS builds it (bounded by ctx).
func (e *engine) reportKeys(ctx context.Context, account string, opt func(*iam.Options)) ([]model.KeyDetail, *time.Time, error) {
	wait := 100 * time.Millisecond
	pause := func() error {
		t := time.NewTimer(wait)
		defer t.Stop()
		wait = min(2*wait, time.Second)
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for credential report: %w", ctx.Err())
		case <-t.C:
			return nil
		}
	}
	generated := false
	generate := func() error {
		generated = true
		for range 60 {
			out, err := e.iam.GenerateCredentialReport(ctx, &iam.GenerateCredentialReportInput{}, opt)
			if err != nil {
				return fmt.Errorf("iam GenerateCredentialReport: %w", err)
			}
			if out.State == iamtypes.ReportStateTypeComplete {
				return nil
			}
			if err := pause(); err != nil {
				return err
			}
		}
		return errors.New("iam GenerateCredentialReport: report not complete after 60 polls")
	}
	for range 60 {
		out, err := e.iam.GetCredentialReport(ctx, &iam.GetCredentialReportInput{}, opt)
		if err == nil {
			if out.GeneratedTime != nil && e.cfg.Now().Sub(*out.GeneratedTime) >= reportMaxAge && !generated {
				if err := generate(); err != nil {
					return nil, out.GeneratedTime, err
				}
				continue
			}
			keys, err := parseRootKeys(out.Content)
			if err != nil {
				return nil, out.GeneratedTime, err
			}
			if out.GeneratedTime != nil {
				e.cache.keepReport(account, keys, *out.GeneratedTime)
			}
			return keys, out.GeneratedTime, nil
		}
		switch apiCode(err) {
		case "ReportNotPresent", "ReportExpired":
			if err := generate(); err != nil {
				return nil, nil, err
			}
		case "ReportInProgress":
			if err := pause(); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("iam GetCredentialReport: %w", err)
		}
	}
	return nil, nil, errors.New("iam GetCredentialReport: no report after 60 attempts")
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// describe turns an error into a message fit for an observation and a short code:
// the AWS error code when there is one. Secrets never survive (see redact).
func describe(err error) (msg, code string) {
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae):
		code = ae.ErrorCode()
	case errors.Is(err, context.DeadlineExceeded):
		code = "Timeout"
	case errors.Is(err, context.Canceled):
		code = "Canceled"
	case errors.Is(err, errUnknownAccount):
		code = "UnknownAccount"
	case errors.Is(err, errNotActive):
		code = "AccountNotActive"
	default:
		var me *model.Error
		if errors.As(err, &me) {
			code = string(me.Code)
		} else {
			code = "Error"
		}
	}
	msg = err.Error()
	var oe *smithy.OperationError
	if ae != nil && errors.As(err, &oe) && strings.HasSuffix(msg, oe.Error()) {
		// "<what we did>: <code>: <AWS message> (request id …)" instead of the SDK's
		// long chain.
		msg = strings.TrimSuffix(msg, oe.Error()) + code
		if m := ae.ErrorMessage(); m != "" {
			msg += ": " + m
		}
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.ServiceRequestID() != "" {
			msg += " (request id " + re.ServiceRequestID() + ")"
		}
	}
	return strings.ReplaceAll(redact(msg), "\n", " "), code
}

var secretPatterns = []*regexp.Regexp{
	// key=value forms of secrets, tokens and signatures
	regexp.MustCompile(`(?i)((?:secret[_ ]?access[_ ]?key|secretaccesskey|session[_ ]?token|security[_ ]?token|x-amz-security-token|signature|password|token)["']?\s*[=:]\s*["']?)[^\s"',&;]+`),
	// a bare 40-character AWS secret access key
	regexp.MustCompile(`(^|[^A-Za-z0-9/+])[A-Za-z0-9/+]{40}([^A-Za-z0-9/+=]|$)`),
}

// redact removes anything shaped like a secret from s.
func redact(s string) string {
	s = secretPatterns[0].ReplaceAllString(s, "${1}REDACTED")
	s = secretPatterns[1].ReplaceAllString(s, "${1}REDACTED${2}")
	return s
}

// safeError is err's text, redacted, on one line.
func safeError(err error) string {
	if err == nil {
		return ""
	}
	return strings.ReplaceAll(redact(err.Error()), "\n", " ")
}

// newID is a random identifier (16 hex characters).
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func instanceName() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "detector"
	}
	return fmt.Sprintf("%s-%d-%s", h, os.Getpid(), newID()[:6])
}
