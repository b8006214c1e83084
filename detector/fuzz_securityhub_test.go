package detector

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/awssim"
)

// FuzzParseSecurityHubEvent: any body is either not a Security Hub event, or exactly
// one of a hint and a skip; a hint names only 12-digit accounts, each once, each with
// a root control, and never more than maxSecurityHubAccount; the input is not changed.
func FuzzParseSecurityHubEvent(f *testing.F) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	const admin, acct = "111111111111", "222222222222"
	asff := awssim.SecurityHubFindingEvent(admin, acct, "IAM.4", "FAILED", at)
	for _, s := range []string{
		asff,
		awssim.SecurityHubFindingEvent(admin, acct, "IAM.9", "PASSED", at),
		awssim.SecurityHubOCSFFindingEvent(admin, acct, "IAM.6", "Fail", at),
		strings.Replace(asff, `"SecurityControlId":"IAM.4"`, `"SecurityControlId":""`, 1), // ProductFields.ControlId
		strings.Replace(asff, `"ACTIVE"`, `"ARCHIVED"`, 1),
		strings.Replace(asff, acct, "12345", -1),
		strings.Replace(asff, "Security Hub Findings - Imported", "Security Hub Insight Results", 1),
		`{"source":"aws.securityhub","detail-type":"Findings Imported V2","id":"x","detail":{"findings":[{"cloud":{"account":{"uid":7}}}]}}`,
		`{"source":"aws.securityhub","detail-type":"Security Hub Findings - Imported","id":"x","detail":{"findings":null}}`,
		`{"source":"aws.securityhub","detail":"x"}`,
		`{"source":"aws.iam"}`, `[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		hint, sk, ok := parseSecurityHubEvent(body)
		if !bytes.Equal(orig, body) {
			t.Fatal("parseSecurityHubEvent modified its input")
		}
		if !ok {
			if hint != nil || sk != nil {
				t.Fatal("not a Security Hub event, yet a hint or a skip")
			}
			return
		}
		if (hint == nil) == (sk == nil) {
			t.Fatalf("want exactly one of hint and skip, got %+v and %+v", hint, sk)
		}
		if hint == nil {
			return
		}
		if len(hint.Accounts) == 0 || len(hint.Accounts) > maxSecurityHubAccount || hint.EventID == "" {
			t.Fatalf("hint %+v", hint)
		}
		seen := map[string]bool{}
		for _, a := range hint.Accounts {
			if !accountIDRE.MatchString(a) || seen[a] {
				t.Fatalf("account %q in %v", a, hint.Accounts)
			}
			seen[a] = true
			c, _, _ := strings.Cut(hint.Controls[a], " ")
			if !slices.Contains(securityHubControls, c) {
				t.Fatalf("account %s hinted by control %q", a, hint.Controls[a])
			}
		}
	})
}
