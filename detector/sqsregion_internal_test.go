package detector

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestSQSRegionFromQueueURL(t *testing.T) {
	for url, want := range map[string]string{
		"https://sqs.us-east-1.amazonaws.com/123456789012/rootwarden":                     "us-east-1",
		"https://sqs-fips.us-gov-west-1.amazonaws.com/123456789012/rootwarden":            "us-gov-west-1",
		"https://us-east-1.queue.amazonaws.com/123456789012/rootwarden":                   "us-east-1",
		"https://sqs.cn-north-1.amazonaws.com.cn/123456789012/rootwarden":                 "cn-north-1",
		"https://vpce-0abc-1def.sqs.us-east-1.vpce.amazonaws.com/123456789012/rootwarden": "us-east-1",
		"http://sqs.us-east-1.localhost/123456789012/rootwarden":                          "eu-west-1",
		"http://127.0.0.1:4566/123456789012/rootwarden":                                   "eu-west-1",
		"https://sqs.us-east-1.amazonaws.com.evil.example/123456789012/rootwarden":        "eu-west-1",
	} {
		o := sqs.Options{Region: "eu-west-1"}
		sqsRegion(url)(&o)
		if o.Region != want {
			t.Errorf("%s: region %q, want %q", url, o.Region, want)
		}
	}
}
