package awsdeploy

import (
	"reflect"
	"testing"
)

// The central stack alarms on its dead-letter queue (issue 19 item 12, newcomer D23):
// an event there is a root-user call rootwarden never processed. The alarm watches
// the depth of that queue (any message), and notifies the optional SNS topic.
func TestCentralStackAlarmsOnTheDeadLetterQueue(t *testing.T) {
	tpl, err := LoadTemplate("central.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var alarm map[string]any
	for id, r := range tpl.Resources() {
		if r["Type"] != "AWS::CloudWatch::Alarm" {
			continue
		}
		p, _ := r["Properties"].(map[string]any)
		dims, _ := p["Dimensions"].([]any)
		if len(dims) == 1 && reflect.DeepEqual(dims[0], map[string]any{"Name": "QueueName",
			"Value": map[string]any{"Fn::GetAtt": []any{"DeadLetterQueue", "QueueName"}}}) {
			if alarm != nil {
				t.Fatalf("two alarms on the dead-letter queue (%s)", id)
			}
			alarm = p
		}
	}
	if alarm == nil {
		t.Fatal("central.yaml has no CloudWatch alarm on the dead-letter queue (QueueName = DeadLetterQueue.QueueName)")
	}
	for k, want := range map[string]any{"Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible",
		"ComparisonOperator": "GreaterThanThreshold", "Threshold": int64(0), "TreatMissingData": "notBreaching"} {
		if got := alarm[k]; !reflect.DeepEqual(got, want) {
			t.Errorf("alarm %s = %#v, want %#v", k, got, want)
		}
	}
	topic := map[string]any{"Fn::If": []any{"AlarmTopic", []any{map[string]any{"Ref": "AlarmTopicArn"}}, map[string]any{"Ref": "AWS::NoValue"}}}
	for _, k := range []string{"AlarmActions", "OKActions"} {
		if !reflect.DeepEqual(alarm[k], topic) {
			t.Errorf("alarm %s = %#v, want the optional AlarmTopicArn", k, alarm[k])
		}
	}
	params, _ := tpl["Parameters"].(map[string]any)
	if p, _ := params["AlarmTopicArn"].(map[string]any); p == nil || p["Default"] != "" {
		t.Errorf("parameter AlarmTopicArn = %#v, want an optional one (default empty)", params["AlarmTopicArn"])
	}
}
