package awssim

import (
	"encoding/json"
	"fmt"
	"time"
)

// SecurityHubFindingEvent is the EventBridge event "Security Hub Findings - Imported"
// of Security Hub CSPM carrying one ASFF control finding (control IAM.4, IAM.6 or
// IAM.9; status PASSED or FAILED) about account, as the delegated administrator's
// bus (adminAccount) receives it.
func SecurityHubFindingEvent(adminAccount, account, control, status string, at time.Time) string {
	ts := at.UTC().Format(time.RFC3339Nano)
	id := fmt.Sprintf("arn:aws:securityhub:us-east-1:%s:security-control/%s/finding/%s-%d", account, control, account, at.Unix())
	finding := map[string]any{
		"SchemaVersion": "2018-10-08",
		"Id":            id,
		"ProductArn":    "arn:aws:securityhub:us-east-1::product/aws/securityhub",
		"GeneratorId":   "security-control/" + control,
		"AwsAccountId":  account,
		"Types":         []string{"Software and Configuration Checks/Industry and Regulatory Standards"},
		"CreatedAt":     ts,
		"UpdatedAt":     ts,
		"Severity":      map[string]any{"Label": "CRITICAL", "Normalized": 90},
		"Title":         control + " root user control",
		"Resources":     []any{map[string]any{"Type": "AwsAccount", "Id": "AWS::::Account:" + account, "Partition": "aws", "Region": "us-east-1"}},
		"Compliance":    map[string]any{"Status": status, "SecurityControlId": control},
		"ProductFields": map[string]string{"ControlId": control},
		"RecordState":   "ACTIVE",
		"Workflow":      map[string]string{"Status": "NEW"},
	}
	return securityHubEnvelope(adminAccount, "Security Hub Findings - Imported", id, finding, at)
}

// SecurityHubOCSFFindingEvent is the new Security Hub's "Findings Imported V2" event
// carrying one OCSF compliance finding (status "Fail" or "Pass").
func SecurityHubOCSFFindingEvent(adminAccount, account, control, status string, at time.Time) string {
	uid := fmt.Sprintf("ocsf-%s-%s-%d", account, control, at.Unix())
	finding := map[string]any{
		"class_uid":    2003,
		"metadata":     map[string]any{"uid": uid, "product": map[string]any{"uid": "aws/securityhub"}, "version": "1.5.0"},
		"cloud":        map[string]any{"account": map[string]any{"uid": account}, "provider": "AWS", "region": "us-east-1"},
		"compliance":   map[string]any{"control": control, "status": status},
		"finding_info": map[string]any{"uid": uid, "title": control},
		"status_id":    1,
		"time":         at.UnixMilli(),
	}
	return securityHubEnvelope(adminAccount, "Findings Imported V2", uid, finding, at)
}

func securityHubEnvelope(adminAccount, detailType, resource string, finding any, at time.Time) string {
	b, _ := json.Marshal(map[string]any{
		"version":     "0",
		"id":          fmt.Sprintf("sh-%d-%d", at.UnixNano(), len(resource)),
		"detail-type": detailType,
		"source":      "aws.securityhub",
		"account":     adminAccount,
		"time":        at.UTC().Format(time.RFC3339),
		"region":      "us-east-1",
		"resources":   []string{resource},
		"detail":      map[string]any{"findings": []any{finding}},
	})
	return string(b)
}
