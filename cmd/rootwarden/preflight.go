package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/notifier"
)

// permanentError is a set-up mistake that retrying cannot fix: start-up stops with
// exit 2 and this one line.
type permanentError struct{ msg string }

func (e permanentError) Error() string { return e.msg }

func permanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// awsPreflight checks, before anything starts, that AWS answers as the detector needs.
type awsPreflight struct {
	sts     *sts.Client
	orgs    *organizations.Client
	orgRole string
}

func newAWSPreflight(cfg aws.Config, orgRole string) *awsPreflight {
	return &awsPreflight{sts: sts.NewFromConfig(cfg), orgs: organizations.NewFromConfig(cfg), orgRole: orgRole}
}

// check asks STS who we are and, in organization mode, whether this account may list
// the organization's accounts. The error is permanentError when retrying cannot help.
func (p *awsPreflight) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id, err := p.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return explainAWS(err, "")
	}
	if p.orgRole == "" {
		return nil
	}
	if _, err := p.orgs.ListAccounts(ctx, &organizations.ListAccountsInput{MaxResults: aws.Int32(1)}); err != nil {
		return explainAWS(err, aws.ToString(id.Account))
	}
	return nil
}

// explainAWS turns the SDK's error chains for the common set-up mistakes into one
// sentence saying what to do; other errors pass as they are (transient).
func explainAWS(err error, account string) error {
	if err == nil {
		return nil
	}
	if account == "" {
		account = "this account"
	} else {
		account = "account " + account
	}
	text := err.Error()
	var api smithy.APIError
	code := ""
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	op := ""
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		op = oe.Operation()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case strings.Contains(text, "failed to retrieve credentials") || strings.Contains(text, "no EC2 IMDS role found") ||
		strings.Contains(text, "static credentials are empty") || strings.Contains(text, "failed to refresh cached credentials"):
		return permanentError{"AWS: no credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an IAM role (IRSA, EKS Pod Identity, an instance profile)"}
	case code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" || code == "UnrecognizedClientException" || code == "ExpiredToken":
		return permanentError{fmt.Sprintf("AWS rejected the credentials (%s): check AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and renew expired ones", code)}
	case code == "AWSOrganizationsNotInUseException":
		return permanentError{fmt.Sprintf("ROOTWARDEN_ORG_ROLE_NAME (--org-role) is set but %s is not in an AWS Organization: unset it to check this account only", account)}
	case code == "AccessDeniedException" && op == "ListAccounts":
		return permanentError{fmt.Sprintf("ROOTWARDEN_ORG_ROLE_NAME (--org-role) is set but %s may not list the organization's accounts: run rootwarden in the management account or a delegated administrator (deploy/aws), with organizations:ListAccounts allowed", account)}
	case code == "AccessDenied" && op == "AssumeRole":
		return fmt.Errorf("AWS denied AssumeRole: check that the role exists in the member account and trusts rootwarden's role (and the external id): %w", err)
	}
	var send *smithyhttp.RequestSendError
	if errors.As(err, &send) {
		return unreachableAWS(err, oe)
	}
	return err
}

// unreachableAWS says which AWS endpoint did not answer, why (the network's own
// words), and what to check: AWS_ENDPOINT_URL when it is set (a local endpoint that is
// not running, a typo), else the network. It may pass: not a permanentError.
func unreachableAWS(err error, oe *smithy.OperationError) error {
	what := "AWS"
	if oe != nil {
		what = "AWS " + oe.Service() + " " + oe.Operation()
	}
	where := ""
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery, u.User = "", nil
			where = " " + u.Scheme + "://" + u.Host
		}
	}
	reason := "no answer"
	var ne *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		reason = dns.Error()
	case errors.As(err, &ne):
		reason = ne.Error()
	case errors.Is(err, context.DeadlineExceeded):
		reason = "timed out"
	}
	hint := "check the network, DNS and proxy (HTTPS_PROXY, NO_PROXY) to AWS, and AWS_REGION"
	if ep := os.Getenv("AWS_ENDPOINT_URL"); ep != "" {
		hint = fmt.Sprintf("AWS_ENDPOINT_URL is %s: is that endpoint running, and the one meant? (unset it for AWS itself)", ep)
	}
	return hintError{msg: fmt.Sprintf("%s: cannot reach%s (%s): %s", what, where, reason, hint), err: err}
}

// hintError replaces an error's text with a sentence that says what to do, and keeps
// the error for errors.Is and errors.As.
type hintError struct {
	msg string
	err error
}

func (e hintError) Error() string { return e.msg }
func (e hintError) Unwrap() error { return e.err }

// slackReachable checks that the Slack Web API base answers as the Web API does
// (api.test answers {"ok":…}). Set ROOTWARDEN_SLACK_API_URL that does not answer is a
// permanent mistake; slack.com not answering is a network problem that may pass.
func slackReachable(ctx context.Context, base string) error {
	name := "ROOTWARDEN_SLACK_API_URL"
	if base == "" {
		base, name = "https://slack.com/api/", ""
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, withSlash(base)+"api.test", nil)
	if err != nil {
		return permanentError{fmt.Sprintf("%s: %q is not a URL", name, base)}
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		var ne net.Error
		reason := "no answer"
		if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
			reason = errors.Unwrap(err).Error()
		}
		if name == "" {
			return fmt.Errorf("cannot reach %s (%s): check the network, DNS and proxy (HTTPS_PROXY)", base, reason)
		}
		return permanentError{fmt.Sprintf("%s: %s does not answer (%s): it must be the Slack Web API base ending in /api/, as `rootwarden sim` prints", name, base, reason)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode >= 500 && name == "" {
		return fmt.Errorf("slack.com answers HTTP %d", resp.StatusCode)
	}
	if !strings.Contains(string(body), `"ok"`) {
		where := name
		if where == "" {
			where = "Slack"
		}
		return permanentError{fmt.Sprintf("%s: %s answers HTTP %d, not as the Slack Web API: it must be the Web API base ending in /api/ (https://slack.com/api/)", where, base, resp.StatusCode)}
	}
	return nil
}

// Slack error codes that retrying cannot fix.
var slackPermanent = []string{"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
	"channel_not_found", "not_in_channel", "missing_scope", "no_permission", "invalid_token", "is_archived"}

// checkSlack runs the notifier's start-up check (token, channel) and sorts its
// answer: permanentError for a wrong token or channel, a plain error otherwise.
func checkSlack(ctx context.Context, n *notifier.Notifier) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := n.CheckSlack(ctx)
	if err == nil {
		return nil
	}
	text := err.Error()
	for _, code := range slackPermanent {
		if strings.Contains(text, code) {
			if code == "channel_not_found" {
				text += ": use the channel id (C…) of a channel the bot can see; invite the bot with /invite @rootwarden"
			}
			return permanentError{text}
		}
	}
	return err
}

// slackRetryDelay is the first pause before the Slack check is retried (it doubles up
// to 2 minutes).
var slackRetryDelay = 5 * time.Second

// waitForSlack retries the Slack check until it passes (nil), a permanent error
// comes back (returned: the process stops), or ctx ends.
func waitForSlack(ctx context.Context, n *notifier.Notifier, report func(error)) error {
	delay := slackRetryDelay
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		err := checkSlack(ctx, n)
		report(err)
		if err == nil || permanent(err) {
			return err
		}
		delay = min(2*delay, 2*time.Minute)
	}
}

// watchDependency re-runs probe and reports its result: every 30s while it fails,
// every 5 minutes while it works, until ctx ends.
func watchDependency(ctx context.Context, report func(error), probe func(context.Context) error) {
	if probe == nil {
		return
	}
	delay := 30 * time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		err := probe(ctx)
		if ctx.Err() != nil {
			return
		}
		report(err)
		if err != nil {
			delay = 30 * time.Second
		} else {
			delay = 5 * time.Minute
		}
	}
}

// checkApprovers looks each approver up in the workspace and returns one warning per
// id that Slack does not know (a typo there means nobody can approve, and nothing
// else would say so). Lookups Slack refuses for want of a scope are skipped.
func checkApprovers(ctx context.Context, api *slack.Client, approvers []string) []string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []string
	for _, a := range approvers {
		var err error
		if strings.HasPrefix(a, "S") {
			_, err = api.GetUserGroupMembersContext(ctx, a)
		} else {
			_, err = api.GetUserInfoContext(ctx, a)
		}
		if err == nil {
			continue
		}
		text := err.Error()
		switch {
		case strings.Contains(text, "user_not_found"):
			out = append(out, fmt.Sprintf("ROOTWARDEN_APPROVERS: %s is not a user of this Slack workspace: that entry can approve nothing (%s)", a, findUserHint))
		case strings.Contains(text, "no_such_subteam"):
			out = append(out, fmt.Sprintf("ROOTWARDEN_APPROVERS: %s is not a user group of this Slack workspace: nobody in it can approve", a))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

const findUserHint = "find a member's id: their profile → ⋮ → Copy member ID"
