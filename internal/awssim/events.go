package awssim

import (
	"encoding/json"
	"strings"
	"time"
)

// EventBridge events carrying CloudTrail records, as they arrive in SQS.

type ebEvent struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     ctRecord `json:"detail"`
}

type ctRecord struct {
	EventVersion       string          `json:"eventVersion"`
	UserIdentity       ctIdentity      `json:"userIdentity"`
	EventTime          string          `json:"eventTime"`
	EventSource        string          `json:"eventSource"`
	EventName          string          `json:"eventName"`
	AWSRegion          string          `json:"awsRegion"`
	SourceIPAddress    string          `json:"sourceIPAddress"`
	UserAgent          string          `json:"userAgent"`
	RequestParameters  json.RawMessage `json:"requestParameters"`
	ResponseElements   json.RawMessage `json:"responseElements"`
	RequestID          string          `json:"requestID"`
	EventID            string          `json:"eventID"`
	ReadOnly           bool            `json:"readOnly"`
	EventType          string          `json:"eventType"`
	ManagementEvent    bool            `json:"managementEvent"`
	RecipientAccountID string          `json:"recipientAccountId"`
	EventCategory      string          `json:"eventCategory"`
	TLSDetails         *ctTLS          `json:"tlsDetails,omitempty"`
}

type ctIdentity struct {
	Type           string            `json:"type"`
	PrincipalID    string            `json:"principalId"`
	Arn            string            `json:"arn"`
	AccountID      string            `json:"accountId"`
	AccessKeyID    string            `json:"accessKeyId"`
	SessionContext *ctSessionContext `json:"sessionContext,omitempty"`
}

type ctSessionContext struct {
	Attributes struct {
		CreationDate     string `json:"creationDate"`
		MFAAuthenticated string `json:"mfaAuthenticated"`
	} `json:"attributes"`
}

type ctTLS struct {
	TLSVersion               string `json:"tlsVersion"`
	CipherSuite              string `json:"cipherSuite"`
	ClientProvidedHostHeader string `json:"clientProvidedHostHeader"`
}

// javaDate is CloudTrail's Java-style createDate ("Jun 1, 2024, 12:00:00 PM").
const javaDate = "Jan 2, 2006, 3:04:05 PM"

// RootKeyCreatedEvent is the EventBridge event of CloudTrail's CreateAccessKey
// made by the root user for itself (from a console session, as AWS requires).
func RootKeyCreatedEvent(account, keyID string, at time.Time) string {
	resp, _ := json.Marshal(map[string]any{"accessKey": map[string]string{
		"accessKeyId": keyID,
		"status":      "Active",
		"createDate":  at.UTC().Format(javaDate),
	}})
	return rootEvent(account, consoleIdentity(account, at), "iam.amazonaws.com", "CreateAccessKey", at,
		json.RawMessage("null"), resp, "AWS Internal")
}

// RootKeyDeletedEvent is the EventBridge event of CloudTrail's DeleteAccessKey
// made by the root user for its own key (from a console session).
func RootKeyDeletedEvent(account, keyID string, at time.Time) string {
	req, _ := json.Marshal(map[string]string{"accessKeyId": keyID})
	return rootEvent(account, consoleIdentity(account, at), "iam.amazonaws.com", "DeleteAccessKey", at,
		req, json.RawMessage("null"), "AWS Internal")
}

// RootKeyUsedEvent is the EventBridge event of an API call (eventName) signed
// with the root access key keyID: userIdentity type Root with that AKIA key
// and no sessionContext.
func RootKeyUsedEvent(account, keyID, eventName string, at time.Time) string {
	id := ctIdentity{Type: "Root", PrincipalID: account, Arn: "arn:aws:iam::" + account + ":root", AccountID: account, AccessKeyID: keyID}
	src := eventSourceOf(eventName)
	return rootEvent(account, id, src, eventName, at, json.RawMessage("null"), json.RawMessage("null"),
		"aws-cli/2.17.0 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8 cfg/retry-mode#standard md/command#"+strings.ToLower(eventName))
}

func consoleIdentity(account string, at time.Time) ctIdentity {
	sc := &ctSessionContext{}
	sc.Attributes.CreationDate = at.Add(-5 * time.Minute).UTC().Format(time.RFC3339)
	sc.Attributes.MFAAuthenticated = "true"
	return ctIdentity{Type: "Root", PrincipalID: account, Arn: "arn:aws:iam::" + account + ":root", AccountID: account,
		AccessKeyID: "ASIA" + randString(16, upperDigits), SessionContext: sc}
}

// eventSourceOf guesses the service of a well-known API call; IAM by default.
func eventSourceOf(eventName string) string {
	switch eventName {
	case "ListBuckets", "CreateBucket", "DeleteBucket", "PutBucketPolicy", "GetObject", "PutObject":
		return "s3.amazonaws.com"
	case "RunInstances", "DescribeInstances", "TerminateInstances", "DescribeRegions", "CreateSecurityGroup":
		return "ec2.amazonaws.com"
	case "GetCallerIdentity", "AssumeRole", "GetSessionToken":
		return "sts.amazonaws.com"
	}
	return "iam.amazonaws.com"
}

func rootEvent(account string, id ctIdentity, source, eventName string, at time.Time, req, resp json.RawMessage, ua string) string {
	t := at.UTC().Format(time.RFC3339)
	svc := strings.TrimSuffix(source, ".amazonaws.com")
	readOnly := strings.HasPrefix(eventName, "Get") || strings.HasPrefix(eventName, "List") || strings.HasPrefix(eventName, "Describe")
	ev := ebEvent{
		Version:    "0",
		ID:         newUUID(),
		DetailType: "AWS API Call via CloudTrail",
		Source:     "aws." + svc,
		Account:    account,
		Time:       t,
		Region:     "us-east-1",
		Resources:  []string{},
		Detail: ctRecord{
			EventVersion:       "1.10",
			UserIdentity:       id,
			EventTime:          t,
			EventSource:        source,
			EventName:          eventName,
			AWSRegion:          "us-east-1",
			SourceIPAddress:    "203.0.113.17",
			UserAgent:          ua,
			RequestParameters:  req,
			ResponseElements:   resp,
			RequestID:          newUUID(),
			EventID:            newUUID(),
			ReadOnly:           readOnly,
			EventType:          "AwsApiCall",
			ManagementEvent:    true,
			RecipientAccountID: account,
			EventCategory:      "Management",
			TLSDetails: &ctTLS{
				TLSVersion:               "TLSv1.3",
				CipherSuite:              "TLS_AES_128_GCM_SHA256",
				ClientProvidedHostHeader: svc + ".amazonaws.com",
			},
		},
	}
	b, _ := json.Marshal(ev)
	return string(b)
}
