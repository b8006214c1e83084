package awssim

// Root activity events as they arrive in SQS through EventBridge (detector/activity.go
// names the sources): console sign-ins (source aws.signin, detail-type "AWS Console
// Sign In via CloudTrail"), root password change and recovery, root MFA device
// removal, root signing-certificate upload and sts:AssumeRoot. Shapes follow AWS's
// documented sample records.

import (
	"encoding/json"
	"time"
)

type signinRecord struct {
	EventVersion        string          `json:"eventVersion"`
	UserIdentity        ctIdentity      `json:"userIdentity"`
	EventTime           string          `json:"eventTime"`
	EventSource         string          `json:"eventSource"`
	EventName           string          `json:"eventName"`
	AWSRegion           string          `json:"awsRegion"`
	SourceIPAddress     string          `json:"sourceIPAddress"`
	UserAgent           string          `json:"userAgent"`
	ErrorMessage        string          `json:"errorMessage,omitempty"`
	RequestParameters   json.RawMessage `json:"requestParameters"`
	ResponseElements    json.RawMessage `json:"responseElements"`
	AdditionalEventData json.RawMessage `json:"additionalEventData,omitempty"`
	EventID             string          `json:"eventID"`
	ReadOnly            bool            `json:"readOnly"`
	EventType           string          `json:"eventType"`
	ManagementEvent     bool            `json:"managementEvent"`
	RecipientAccountID  string          `json:"recipientAccountId"`
	EventCategory       string          `json:"eventCategory"`
}

type signinEvent struct {
	Version    string       `json:"version"`
	ID         string       `json:"id"`
	DetailType string       `json:"detail-type"`
	Source     string       `json:"source"`
	Account    string       `json:"account"`
	Time       string       `json:"time"`
	Region     string       `json:"region"`
	Resources  []string     `json:"resources"`
	Detail     signinRecord `json:"detail"`
}

const browserUA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

func signin(account, eventName, ip string, at time.Time, resp, add json.RawMessage, errMsg string) string {
	t := at.UTC().Format(time.RFC3339)
	ev := signinEvent{Version: "0", ID: newUUID(), DetailType: "AWS Console Sign In via CloudTrail", Source: "aws.signin",
		Account: account, Time: t, Region: "us-east-1", Resources: []string{},
		Detail: signinRecord{EventVersion: "1.08",
			UserIdentity: ctIdentity{Type: "Root", PrincipalID: account, Arn: "arn:aws:iam::" + account + ":root", AccountID: account},
			EventTime:    t, EventSource: "signin.amazonaws.com", EventName: eventName, AWSRegion: "us-east-1",
			SourceIPAddress: ip, UserAgent: browserUA, ErrorMessage: errMsg, RequestParameters: json.RawMessage("null"),
			ResponseElements: resp, AdditionalEventData: add, EventID: newUUID(), EventType: "AwsConsoleSignIn",
			ManagementEvent: true, RecipientAccountID: account, EventCategory: "Management"}}
	b, _ := json.Marshal(ev)
	return string(b)
}

// RootConsoleLoginEvent is a root console sign-in (success or failure) from ip,
// with or without MFA.
func RootConsoleLoginEvent(account, ip string, success, mfa bool, at time.Time) string {
	result, errMsg := "Success", ""
	if !success {
		result, errMsg = "Failure", "Failed authentication"
	}
	mfaUsed := "No"
	if mfa {
		mfaUsed = "Yes"
	}
	resp, _ := json.Marshal(map[string]string{"ConsoleLogin": result})
	add, _ := json.Marshal(map[string]string{"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": mfaUsed})
	return signin(account, "ConsoleLogin", ip, at, resp, add, errMsg)
}

// RootPasswordEvent is PasswordUpdated, PasswordRecoveryRequested or
// PasswordRecoveryCompleted of the root user.
func RootPasswordEvent(account, eventName, ip string, at time.Time) string {
	resp, _ := json.Marshal(map[string]string{eventName: "Success"})
	return signin(account, eventName, ip, at, resp, nil, "")
}

// RootMFARemovedEvent is DeactivateMFADevice or DeleteVirtualMFADevice of the root
// user's own device, from a root console session.
func RootMFARemovedEvent(account, eventName string, at time.Time) string {
	req, _ := json.Marshal(map[string]string{"serialNumber": "arn:aws:iam::" + account + ":mfa/root-account-mfa-device"})
	return rootEvent(account, consoleIdentity(account, at), "iam.amazonaws.com", eventName, at, req, json.RawMessage("null"), "AWS Internal")
}

// RootSigningCertUploadedEvent is UploadSigningCertificate by the root user for itself.
func RootSigningCertUploadedEvent(account string, at time.Time) string {
	req, _ := json.Marshal(map[string]string{"certificateBody": "-----BEGIN CERTIFICATE-----\nMIIB…\n-----END CERTIFICATE-----"})
	resp, _ := json.Marshal(map[string]any{"certificate": map[string]string{"userName": "", "certificateId": "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "status": "Active"}})
	return rootEvent(account, consoleIdentity(account, at), "iam.amazonaws.com", "UploadSigningCertificate", at, req, resp, "AWS Internal")
}

// AssumeRootEvent is sts:AssumeRoot called from caller's role session sessionName
// (in the management account caller) for the member target.
func AssumeRootEvent(caller, role, sessionName, target string, at time.Time) string {
	id := ctIdentity{Type: "AssumedRole", PrincipalID: "AROAEXAMPLE:" + sessionName,
		Arn: "arn:aws:sts::" + caller + ":assumed-role/" + role + "/" + sessionName, AccountID: caller,
		AccessKeyID: "ASIA" + randString(16, upperDigits)}
	req, _ := json.Marshal(map[string]any{"targetPrincipal": target,
		"taskPolicyArn": map[string]string{"arn": "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials"}, "durationSeconds": 900})
	resp, _ := json.Marshal(map[string]any{"credentials": map[string]string{"accessKeyId": "ASIA" + randString(16, upperDigits),
		"sessionToken": "HIDDEN_DUE_TO_SECURITY_REASONS", "expiration": at.Add(15 * time.Minute).UTC().Format(javaDate)}})
	return rootEvent(caller, id, "sts.amazonaws.com", "AssumeRoot", at, req, resp, "aws-sdk-go-v2/1.32.0")
}
