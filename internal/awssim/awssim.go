// Package awssim is an in-process AWS simulator for tests, benchmarks and
// `rootwarden demo`. It owns the fake state of a set of AWS accounts (root
// access keys, an IAM admin user, roles, an Organization, SQS queues) and
// serves it on ONE HTTP endpoint speaking the real wire protocols of IAM and
// STS (Query, told apart by the Version form field), Organizations (JSON 1.1)
// and SQS (JSON 1.0), so unmodified aws-sdk-go-v2 clients work against it with
// AWS_ENDPOINT_URL=<sim url> and AWS_REGION=us-east-1 (Sim.ClientConfig builds
// such a configuration in process). It never reaches the network beyond the
// loopback listener it starts and never logs secrets.
//
// The caller is the key id in the SigV4 Authorization header: the signature is
// verified with that key's secret (Options.SkipSignatureCheck turns it off),
// temporary credentials need their session token and expire on the simulator
// clock. Request time and signing region are not checked, so a fake clock and
// any region work. The acting account is the key's account (for a session,
// the account it was issued for).
//
// Operations and rules:
//   - IAM: GetAccountSummary, GenerateCredentialReport, GetCredentialReport
//     (a snapshot taken at generation, reused for 4 hours), ListAccountAliases,
//     ListAccessKeys, DeleteAccessKey, UpdateAccessKey, GetAccessKeyLastUsed.
//     Key operations without UserName act on the caller: with root keys or a
//     root session, on the root user's keys. Root credentials beyond keys
//     (rootcreds.go), for the root caller without UserName: GetLoginProfile,
//     CreateLoginProfile, DeleteLoginProfile, ListSigningCertificates,
//     DeleteSigningCertificate, ListMFADevices, DeactivateMFADevice, GetUser.
//     GetAccountSummary reports AccountAccessKeysPresent, AccountPasswordPresent,
//     AccountSigningCertificatesPresent and AccountMFAEnabled from them.
//     Centralized root access: ListOrganizationsFeatures,
//     EnableOrganizationsRootCredentialsManagement, EnableOrganizationsRootSessions
//     (management account or IAM delegated administrator, trusted access for IAM
//     on; the Enable actions management account only).
//   - STS: GetCallerIdentity (always allowed), AssumeRole (role must exist,
//     ExternalId must match, target not SUSPENDED or CLOSED), AssumeRoot (caller in the management account and
//     not root, root sessions enabled, target an ACTIVE member, a root-task
//     TaskPolicyArn, DurationSeconds <= 900; the IAM credential tasks need
//     RootCredentialsManagement, S3/SQS unlocking RootSessions; the IAM delegated
//     administrator may call it too). A root session may only call the IAM
//     actions its task policy allows, as AWS's managed policy documents list them
//     (IAMAuditRootUserCredentials reads, IAMDeleteRootUserCredentials reads and
//     deletes keys, certificates, the password and deactivates MFA; neither
//     allows anything else): any other answers AccessDenied (403).
//   - Organizations: DescribeOrganization (any member); for the management
//     account only (else AccessDeniedException): ListAccounts, DescribeAccount,
//     and the tree (AddOU, MoveAccount): ListRoots (one root, "Root"),
//     ListOrganizationalUnitsForParent, ListAccountsForParent, ListParents,
//     DescribeOrganizationalUnit, ListTagsForResource (SetAccountTags), all paged
//     by SetPageSize. Without EnableOrganization: AWSOrganizationsNotInUseException.
//   - Published rates (internal/awslimits), on unless Options.NoRateLimits: every
//     Organizations operation has its token bucket per calling account (ListAccounts
//     8/s burst 12, ListAccountsForParent 5/s burst 8, ListTagsForResource 10/s
//     burst 15, …; real time, not the simulator clock) and answers
//     TooManyRequestsException beyond it, in AWS's JSON 1.1 shape
//     {"__type":"TooManyRequestsException","Message":…,"Type":…}; STS allows 600
//     calls a second per calling account (Throttling beyond). Pages hold at most
//     20 items (MaxResults above 20 is treated as 20). RateLimited counts the
//     refusals per operation.
//   - SQS: GetQueueUrl, CreateQueue, SendMessage, ReceiveMessage (real long
//     polling), DeleteMessage, ChangeMessageVisibility, GetQueueAttributes.
//
// A SUSPENDED or CLOSED account refuses IAM calls (AccessDenied), also with
// sessions issued before.
//
// Faults: SetLatency (every call), SetAccountLatency (calls acting in one
// account), SetAccessDenied (IAM calls acting in an account), DenyAssumeRole
// (AssumeRole into an account), Throttle (next n calls acting in an account
// answer Throttling, which the SDK retries), SetThrottleShare (a seeded share of
// all calls answer the service's throttling error; ThrottledCalls counts them).
//
// Record: Calls counts per "Service.Action"; CallsByPrincipal counts per
// (service, action, caller principal, account) for least-privilege checks.
// Go API methods panic on an unknown account id: that is a bug in the caller.
//
// HTTP control surface (JSON, on the same handler, unauthenticated: keep the
// simulator on loopback). Secrets are only returned by the call creating them.
//
//	GET    /_sim/healthz                        {"status":"ok"}
//	GET    /_sim/calls                          per "Service.Action" counts
//	GET    /_sim/calls-by-principal             {"calls":[{"service","action","principal","account","calls"}],"throttled":n}
//	POST   /_sim/accounts                       body: Account ({"id","name","email","management",
//	                                            "state","alias","created","rootMFA"}); adds it
//	GET    /_sim/accounts/{id}/root-keys        []RootKey
//	POST   /_sim/accounts/{id}/root-keys        optional {"created"} → {"accessKeyId","secretAccessKey"}
//	DELETE /_sim/accounts/{id}/root-keys/{key}  deletes a root key (204; 404 when absent)
//	GET    /_sim/accounts/{id}/root-credentials RootCredentials (keys, password, certificates, MFA)
//	POST   /_sim/accounts/{id}/root-password    optional {"created"}: gives root a password (204)
//	DELETE /_sim/accounts/{id}/root-password    removes it (204)
//	POST   /_sim/accounts/{id}/root-signing-certificates → {"certificateId"} (409 at 2)
//	POST   /_sim/accounts/{id}/root-mfa-devices {"type":"virtual|hardware"} → {"serialNumber"}
//	GET    /_sim/organization/features          OrgFeatures
//	PUT    /_sim/organization/features          OrgFeatures ({"iamTrustedAccess","iamDelegatedAdmin",
//	                                            "rootCredentialsManagement","rootSessions"})
//	POST   /_sim/accounts/{id}/faults           {"accessDenied":bool,"denyAssumeRole":bool,"throttle":n}
//	POST   /_sim/faults                         {"latency":"50ms","throttleShare":0.15,"seed":7} (either or both)
//	POST   /_sim/queues/{name}/messages         raw body, enqueued as is
//	POST   /_sim/queues/{name}/events           {"kind":"created|used|deleted","account",
//	                                            "keyId","eventName","time"}: a CloudTrail event
package awssim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options configures a Sim.
type Options struct {
	// Now is the simulator clock (report ages, session expiry, visibility
	// timeouts). Nil means time.Now.
	Now func() time.Time
	// ReportDelay is how long a credential report takes to generate. Zero
	// means the report is COMPLETE on the first call after STARTED.
	ReportDelay time.Duration
	// SkipSignatureCheck accepts any SigV4 signature from a known key id. By
	// default signatures are verified with the key's secret, as AWS does.
	SkipSignatureCheck bool
	// NoRateLimits turns off AWS's published request rates (internal/awslimits:
	// Organizations' token bucket per operation and calling account, STS's 600/s
	// per calling account), which are on by default: beyond them a call answers
	// TooManyRequestsException (Organizations) or Throttling (STS), as AWS does.
	// Unit tests that need speed more than realism turn them off.
	NoRateLimits bool
}

// Account describes one simulated AWS account.
type Account struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Email      string `json:"email"`
	Management bool   `json:"management"`
	// State is the Organizations account state; empty means ACTIVE.
	State string `json:"state"`
	// Alias is the IAM account alias (ListAccountAliases); may be empty.
	Alias string `json:"alias"`
	// Created is the root user's creation time; zero means 2020-01-01.
	Created time.Time `json:"created"`
	// RootMFA gives a new account's root user a virtual MFA device (AddMFADevice adds
	// more; the devices decide the credential report and the summary).
	RootMFA bool `json:"rootMFA"`
}

// RootKey is a root user access key as the simulator stores it.
type RootKey struct {
	ID              string    `json:"accessKeyId"`
	Active          bool      `json:"active"`
	Created         time.Time `json:"created"`
	LastUsed        time.Time `json:"lastUsed"` // zero: never used
	LastUsedRegion  string    `json:"lastUsedRegion"`
	LastUsedService string    `json:"lastUsedService"`
}

// Sim is the simulator. All methods are safe for concurrent use.
type Sim struct {
	opts Options

	mu          sync.Mutex
	accounts    map[string]*account
	order       []*account // insertion order, for ListAccounts
	creds       map[string]*cred
	queues      map[string]*queue // key: "account/name"
	orgID       string
	mgmtID      string
	features    OrgFeatures // centralized root access (rootcreds.go)
	omitKeys    []string    // GetAccountSummary keys left out (OmitSummaryKey)
	pageSize    int
	latency     time.Duration
	calls       map[string]int
	served      map[Call]int
	rootID      string
	ous         map[string]*orgUnit
	throttleP   float64     // share of calls answered Throttling
	throttleRNG *mrand.Rand // seeded: the same seed throttles the same calls in order
	throttled   int
	throttledOp map[string]int // "Service.Action" → calls refused beyond the published rate
	throttleOp  map[string]int // "Service.Action" → next calls to answer throttling (ThrottleOperation)
	rateLimits  bool
	buckets     map[bucketKey]*rate.Limiter
	baseURL     string
	seq         uint64
	sessions    uint64

	handler http.Handler
}

type account struct {
	Account
	keys         []*RootKey     // at most 2
	password     *time.Time     // the root login profile's creation; nil: no password
	certs        []*SigningCert // root signing certificates, at most 2
	mfa          []*MFADevice   // root MFA devices
	roles        []role
	admin        *cred
	report       *report
	accessDenied bool
	denyAssume   bool
	throttle     int
	latency      time.Duration // extra wait of every call acting in the account
	parent       string        // OU id; "" = the root
	tags         map[string]string
}

type role struct{ name, externalID string }

type report struct {
	started time.Time
	csv     []byte
}

type credKind int

const (
	kindRootKey credKind = iota + 1
	kindAdmin
	kindRole
	kindRootSession
)

type cred struct {
	id      string
	secret  string
	token   string // session token; "" for long-term keys
	kind    credKind
	acct    *account
	role    string // role name (kindRole)
	session string // session name (kindRole)
	policy  string // task policy (kindRootSession)
	expires time.Time
	userID  string // AIDA…/AROA… id
}

// New returns an empty simulator.
func New(opts Options) *Sim {
	s := &Sim{
		opts:     opts,
		accounts: make(map[string]*account),
		creds:    make(map[string]*cred),
		queues:   make(map[string]*queue),
		pageSize: 20,
		calls:    make(map[string]int),
		served:   make(map[Call]int),
		ous:      make(map[string]*orgUnit),

		throttledOp: make(map[string]int),
		throttleOp:  make(map[string]int),
		rateLimits:  !opts.NoRateLimits,
		buckets:     make(map[bucketKey]*rate.Limiter),
	}
	s.handler = s.newHandler()
	return s
}

func (s *Sim) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// Start serves the simulator on a loopback httptest server. Close it when
// done: closing also ends pending long polls and latency waits at once.
func (s *Sim) Start() *httptest.Server {
	srv := httptest.NewUnstartedServer(s.handler)
	base, cancel := context.WithCancel(context.Background())
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Listener = &cancelListener{Listener: srv.Listener, cancel: cancel}
	srv.Start()
	s.mu.Lock()
	if s.baseURL == "" {
		s.baseURL = srv.URL
	}
	s.mu.Unlock()
	return srv
}

// cancelListener cancels the server's base context when the listener closes,
// which httptest.Server.Close does before waiting for requests to finish.
type cancelListener struct {
	net.Listener
	cancel context.CancelFunc
}

func (l *cancelListener) Close() error {
	l.cancel()
	return l.Listener.Close()
}

// Handler returns the single HTTP handler serving IAM, STS, Organizations,
// SQS and the /_sim/ control surface.
func (s *Sim) Handler() http.Handler { return s.handler }

// SetBaseURL sets the URL queue URLs are built from when the handler is
// served by the caller rather than Start.
func (s *Sim) SetBaseURL(u string) {
	s.mu.Lock()
	s.baseURL = strings.TrimRight(u, "/")
	s.mu.Unlock()
}

// AddAccount adds (or replaces the description of) an account and returns its
// id. A non-management account gets the role OrganizationAccountAccessRole.
func (s *Sim) AddAccount(a Account) string {
	if a.ID == "" {
		panic("awssim: AddAccount without ID")
	}
	if a.State == "" {
		a.State = "ACTIVE"
	}
	if a.Name == "" {
		a.Name = "account-" + a.ID
	}
	if a.Email == "" {
		a.Email = "aws+" + a.ID + "@example.com"
	}
	if a.Created.IsZero() {
		a.Created = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.accounts[a.ID]; ok {
		old.Account = a
		if a.RootMFA && !old.mfaEnabled() {
			s.addMFALocked(old, MFAVirtual)
		}
		return a.ID
	}
	acc := &account{Account: a}
	if a.RootMFA {
		s.addMFALocked(acc, MFAVirtual)
	}
	if !a.Management {
		acc.roles = []role{{name: "OrganizationAccountAccessRole"}}
	}
	s.accounts[a.ID] = acc
	s.order = append(s.order, acc)
	return a.ID
}

// SetAccountState changes an account's Organizations state (ACTIVE, SUSPENDED, …).
func (s *Sim) SetAccountState(accountID, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(accountID).State = state
}

// EnableOrganization makes every account a member of an Organization whose
// management account is mgmtID.
func (s *Sim) EnableOrganization(mgmtID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(mgmtID).Management = true
	s.mgmtID = mgmtID
	s.orgID = "o-" + strings.ToLower(randString(10, lowerDigits))
	s.rootID = "r-" + strings.ToLower(randString(4, lowerDigits))
}

// AdminCredentials returns the long-term access key of the account's IAM user
// "rootwarden-admin" (not root), creating it on first use.
func (s *Sim) AdminCredentials(accountID string) (akid, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccount(accountID)
	if acc.admin == nil {
		c := &cred{id: s.newKeyID("AKIA"), secret: newSecret(), kind: kindAdmin, acct: acc, userID: s.newKeyID("AIDA")}
		acc.admin = c
		s.creds[c.id] = c
	}
	return acc.admin.id, acc.admin.secret
}

// AddRole adds a role (optionally requiring an external id) to an account.
func (s *Sim) AddRole(accountID, name, externalID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccount(accountID)
	for i := range acc.roles {
		if acc.roles[i].name == name {
			acc.roles[i].externalID = externalID
			return
		}
	}
	acc.roles = append(acc.roles, role{name: name, externalID: externalID})
}

// CreateRootKey adds an active root access key created at `created` and
// returns its id (AKIA…). It panics when the account already has two.
func (s *Sim) CreateRootKey(accountID string, created time.Time) string {
	id, _, err := s.createRootKey(accountID, created)
	if err != nil {
		panic("awssim: " + err.Error())
	}
	return id
}

var errTwoKeys = errors.New("the account already has 2 root access keys")

func (s *Sim) createRootKey(accountID string, created time.Time) (id, secret string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccount(accountID)
	if len(acc.keys) >= 2 {
		return "", "", fmt.Errorf("account %s: %w", accountID, errTwoKeys)
	}
	if created.IsZero() {
		created = s.now()
	}
	c := &cred{id: s.newKeyID("AKIA"), secret: newSecret(), kind: kindRootKey, acct: acc}
	s.creds[c.id] = c
	acc.keys = append(acc.keys, &RootKey{ID: c.id, Active: true, Created: created.UTC()})
	return c.id, c.secret, nil
}

// SetRootKeyActive activates or deactivates a root key.
func (s *Sim) SetRootKeyActive(accountID, keyID string, active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.mustAccount(accountID).key(keyID); k != nil {
		k.Active = active
	}
}

// DeleteRootKey deletes a root key (as the root user in the console would).
func (s *Sim) DeleteRootKey(accountID, keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteRootKeyLocked(s.mustAccount(accountID), keyID)
}

func (s *Sim) deleteRootKeyLocked(acc *account, keyID string) bool {
	for i, k := range acc.keys {
		if k.ID == keyID {
			acc.keys = append(acc.keys[:i:i], acc.keys[i+1:]...)
			delete(s.creds, keyID)
			return true
		}
	}
	return false
}

// UseRootKey records a use of a root key (the credential report's and
// GetAccessKeyLastUsed's last-used fields).
func (s *Sim) UseRootKey(accountID, keyID string, at time.Time, region, service string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.mustAccount(accountID).key(keyID); k != nil {
		k.LastUsed, k.LastUsedRegion, k.LastUsedService = at.UTC(), region, service
	}
}

// RootKeys returns copies of the account's current root keys.
func (s *Sim) RootKeys(accountID string) []RootKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccount(accountID)
	out := make([]RootKey, 0, len(acc.keys))
	for _, k := range acc.keys {
		out = append(out, *k)
	}
	return out
}

// RootKeySecret returns the secret of a root key, so a test can sign as root.
func (s *Sim) RootKeySecret(accountID, keyID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.creds[keyID]; c != nil && c.kind == kindRootKey && c.acct.ID == accountID {
		return c.secret
	}
	return ""
}

// SetLatency makes every API call wait d first (the wait ends early when the
// request's context does).
func (s *Sim) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// SetAccountLatency makes every call acting in the account (with its credentials
// or a role session in it) wait d more, on top of SetLatency: one slow account.
func (s *Sim) SetAccountLatency(accountID string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(accountID).latency = d
}

// SetThrottleShare makes a share (0..1) of all API calls answer with the service's
// throttling error (IAM and STS Throttling, Organizations TooManyRequestsException,
// SQS RequestThrottled), which the SDK retries. The choice is drawn from a random
// sequence seeded with seed: the n-th call after this one is throttled or not the
// same way in every run (which call is n-th depends on the caller's order). 0 ends it.
func (s *Sim) SetThrottleShare(share float64, seed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleP = min(max(share, 0), 1)
	s.throttleRNG = mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// ThrottledCalls is the number of calls answered with a throttling error so far
// (Throttle and SetThrottleShare together).
func (s *Sim) ThrottledCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// SetAccessDenied makes every IAM call acting in the account fail with
// AccessDenied (403).
func (s *Sim) SetAccessDenied(accountID string, denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(accountID).accessDenied = denied
}

// DenyAssumeRole makes sts:AssumeRole into the account fail with AccessDenied.
func (s *Sim) DenyAssumeRole(accountID string, denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(accountID).denyAssume = denied
}

// Throttle makes the next n calls acting in the account answer Throttling.
func (s *Sim) Throttle(accountID string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(accountID).throttle = n
}

// ThrottleOperation makes the next n calls of one operation ("Organizations.ListAccounts",
// "STS.AssumeRole", …), whoever makes them, answer the service's throttling error.
func (s *Sim) ThrottleOperation(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleOp[op] = n
}

// SetRootSessions enables or disables centralized root access as a whole: both
// organization features (RootCredentialsManagement, RootSessions) and, when enabling,
// trusted access for IAM. SetOrgFeatures sets them one by one.
func (s *Sim) SetRootSessions(enabled bool) {
	s.mu.Lock()
	s.features.RootCredentialsManagement, s.features.RootSessions = enabled, enabled
	if enabled {
		s.features.IAMTrustedAccess = true
	}
	s.mu.Unlock()
}

// SetPageSize sets the page size of the Organizations listings (default 20, AWS's
// most; a request's MaxResults can only lower it). A larger one is for simulator-only
// comparisons: AWS never answers more than 20.
func (s *Sim) SetPageSize(n int) {
	if n < 1 {
		n = 1
	}
	s.mu.Lock()
	s.pageSize = n
	s.mu.Unlock()
}

// Calls returns a copy of the per "Service.Action" call counts (IAM, STS,
// Organizations, SQS), throttled and failed calls included.
func (s *Sim) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Call is one kind of API call the simulator served: which operation, who made it,
// and in which account it acted.
type Call struct {
	Service string `json:"service"` // IAM, STS, Organizations, SQS
	Action  string `json:"action"`  // e.g. GetAccountSummary
	// Principal is the caller: arn:aws:iam::ACCT:user/NAME for an IAM user,
	// arn:aws:iam::ACCT:role/NAME for any session of a role (the role, not the
	// session), arn:aws:iam::ACCT:root for root keys and AssumeRoot sessions.
	Principal string `json:"principal"`
	Account   string `json:"account"` // the account the credentials belong to
}

// CallsByPrincipal returns, for every (service, action, principal) the simulator
// served since the last ResetCalls, how many calls there were. Only authenticated
// calls are recorded; throttled and denied ones are included (the caller asked for
// them). A least-privilege test compares the set of keys with a policy.
func (s *Sim) CallsByPrincipal() map[Call]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Call]int, len(s.served))
	for k, v := range s.served {
		out[k] = v
	}
	return out
}

// ResetCalls clears the call counts (Calls and CallsByPrincipal).
func (s *Sim) ResetCalls() {
	s.mu.Lock()
	clear(s.calls)
	clear(s.served)
	s.mu.Unlock()
}

func (s *Sim) mustAccount(id string) *account {
	acc := s.accounts[id]
	if acc == nil {
		panic("awssim: unknown account " + id)
	}
	return acc
}

func (a *account) key(id string) *RootKey {
	for _, k := range a.keys {
		if k.ID == id {
			return k
		}
	}
	return nil
}

func (a *account) hasRootKeys() bool { return len(a.keys) > 0 }

const (
	upperDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	lowerDigits = "abcdefghijklmnopqrstuvwxyz0123456789"
	secretChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// newKeyID returns prefix + 16 characters, unique within the simulator.
func (s *Sim) newKeyID(prefix string) string {
	s.seq++
	// 6 sequence characters make ids unique; 10 random ones make them look real.
	seq := make([]byte, 6)
	n := s.seq
	for i := len(seq) - 1; i >= 0; i-- {
		seq[i] = upperDigits[n%32]
		n /= 32
	}
	return prefix + randString(10, upperDigits) + string(seq)
}

func randString(n int, alphabet string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("awssim: random: %v", err))
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func newSecret() string { return randString(40, secretChars) }
