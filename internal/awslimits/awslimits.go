// Package awslimits is the one table of the request rates AWS publishes for the calls
// rootwarden makes with its own (management or delegated-administrator) account. The
// detector paces itself to a share of them (detector/pace.go) and the simulator
// throttles beyond them (internal/awssim), so both read the same numbers.
//
// Sources:
//   - Organizations, "Quotas for AWS Organizations", section "Throttling limits"
//     (token buckets per operation, per calling account; slightly higher per
//     organization, shared by every caller in it):
//     https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html
//     Throttled calls answer TooManyRequestsException (HTTP 400). Pages hold at most
//     20 items (MaxResults 1–20).
//   - STS, "IAM and AWS STS quotas", "STS request quotas": 600 requests a second per
//     account and Region for AssumeRole and the other credential calls; cross-account
//     AssumeRole counts against the calling account:
//     https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
//
// IAM publishes no request rate for GetAccountSummary or the credential report, and
// those calls are made in each member account, so they are not in the table: the
// detector adapts to IAM's throttling instead (detector/limit.go).
package awslimits

// Source is where the Organizations figures are published.
const Source = "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html"

// STSSource is where the STS figure is published.
const STSSource = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"

// Bucket is one token bucket: Rate requests a second refill it, up to Burst.
type Bucket struct {
	Rate  float64
	Burst int
}

// Organizations is the published per-account bucket of each Organizations operation
// rootwarden calls (checked 2026-12-07). Operations not listed here have no published
// rate; Unlisted is used for them.
var Organizations = map[string]Bucket{
	"ListAccounts":                     {Rate: 8, Burst: 12},
	"ListAccountsForParent":            {Rate: 5, Burst: 8},
	"ListOrganizationalUnitsForParent": {Rate: 5, Burst: 8},
	"ListParents":                      {Rate: 5, Burst: 8},
	"ListChildren":                     {Rate: 6, Burst: 10},
	"ListRoots":                        {Rate: 1, Burst: 2},
	"DescribeOrganization":             {Rate: 1, Burst: 2},
	"DescribeAccount":                  {Rate: 20, Burst: 30},
	"ListTagsForResource":              {Rate: 10, Burst: 15},
	"ListDelegatedAdministrators":      {Rate: 5, Burst: 8},
}

// OrganizationsPerOrg is the organization-wide bucket of the same operations (every
// caller in the organization draws on it: Control Tower, AFT, other tools).
var OrganizationsPerOrg = map[string]Bucket{
	"ListAccounts":                     {Rate: 9, Burst: 15},
	"ListAccountsForParent":            {Rate: 6, Burst: 10},
	"ListOrganizationalUnitsForParent": {Rate: 6, Burst: 10},
	"ListParents":                      {Rate: 6, Burst: 10},
	"ListChildren":                     {Rate: 7, Burst: 12},
	"ListRoots":                        {Rate: 1, Burst: 3},
	"DescribeAccount":                  {Rate: 24, Burst: 36},
	"ListTagsForResource":              {Rate: 12, Burst: 18},
	"ListDelegatedAdministrators":      {Rate: 6, Burst: 10},
}

// Unlisted paces Organizations operations without a published rate
// (DescribeOrganizationalUnit): as the slowest listed tree operation.
var Unlisted = Bucket{Rate: 5, Burst: 8}

// STS is the published per-account, per-Region rate of the STS credential calls
// (AssumeRole, GetCallerIdentity, …), one bucket shared by all of them. AWS publishes
// no burst; one second's worth is assumed.
var STS = Bucket{Rate: 600, Burst: 600}

// MaxPageSize is the most items an Organizations page holds.
const MaxPageSize = 20

// OrganizationsBucket is op's published per-account bucket (Unlisted when none is).
func OrganizationsBucket(op string) Bucket {
	if b, ok := Organizations[op]; ok {
		return b
	}
	return Unlisted
}
