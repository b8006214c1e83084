package detector_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
)

// orgsRefuse answers an Organizations call with AWS's JSON 1.1 error of that code.
func orgsRefuse(rw http.ResponseWriter, code string) {
	rw.Header().Set("Content-Type", "application/x-amz-json-1.1")
	rw.Header().Set("X-Amzn-ErrorType", code)
	rw.WriteHeader(http.StatusBadRequest)
	_, _ = io.WriteString(rw, `{"__type":"`+code+`","message":"injected"}`)
}

// interceptedDetector is a detector of the management account whose AWS calls pass
// through refuse first: it gets the call's X-Amz-Target and body, and returns the
// error code to answer with ("" lets the call through to the simulator).
func interceptedDetector(t *testing.T, w *world, b *bus.Bus, refuse func(target, body string) string) *detector.Detector {
	t.Helper()
	simURL, _ := url.Parse(w.url)
	proxy := httputil.NewSingleHostReverseProxy(simURL)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if code := refuse(r.Header.Get("X-Amz-Target"), string(body)); code != "" {
			orgsRefuse(rw, code)
			return
		}
		proxy.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	ak, sk := w.sim.AdminCredentials(mgmtID)
	awsCfg, err := awssim.SDKConfig(context.Background(), srv.URL, credentials.NewStaticCredentialsProvider(ak, sk, ""))
	if err != nil {
		t.Fatal(err)
	}
	d, err := detector.New(w.config("OrganizationAccountAccessRole"), w.logger(), b, awsCfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
