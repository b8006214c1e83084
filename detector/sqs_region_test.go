package detector_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

var scopeRE = regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request`)

// IAM events reach EventBridge in us-east-1, so the queue lives there, while the
// operator's AWS_REGION is often their home region. SQS requests go to the region of
// the client, not to the host of the QueueUrl: the detector must talk to SQS in the
// queue's own region, or every ReceiveMessage fails and events are never seen.
func TestSQSQueueIsReadInItsOwnRegion(t *testing.T) {
	w := newWorld(t, 1, true, awssim.Options{})
	w.sim.CreateQueue(mgmtID, "rootwarden-events")

	// A recording proxy in front of the simulator: which region signs each SQS call.
	target, _ := url.Parse(w.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	regions := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.") {
			if m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
				mu.Lock()
				regions[m[1]] = true
				mu.Unlock()
			}
		}
		proxy.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)

	ak, sk := w.sim.AdminCredentials(mgmtID)
	awsCfg, err := awssim.SDKConfig(context.Background(), srv.URL, credentials.NewStaticCredentialsProvider(ak, sk, ""))
	if err != nil {
		t.Fatal(err)
	}
	awsCfg.Region = "eu-west-1" // AWS_REGION: the operator's home region

	cfg := w.config("OrganizationAccountAccessRole")
	cfg.SQSQueueURL = "https://sqs.us-east-1.amazonaws.com/" + mgmtID + "/rootwarden-events"
	b := bustest.New(t)
	d, err := detector.New(cfg, w.logger(), b, awsCfg)
	if err != nil {
		t.Fatal(err)
	}
	runDetector(t, d)
	key := w.sim.CreateRootKey(member(1), w.clock.Now())
	w.sim.SendMessage(cfg.SQSQueueURL, awssim.RootKeyUsedEvent(member(1), key, "ListBuckets", w.clock.Now()))
	waitFindings(t, b, 1, bySource(model.SourceEvent))
	testutil.Eventually(t, "an SQS call", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(regions) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(regions) != 1 || !regions["us-east-1"] {
		t.Errorf("SQS calls signed for regions %v, want only the queue's us-east-1", regions)
	}
}
