package check

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromium finds the browser, or skips with what to install.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on this machine (apt-get install -y chromium): the report's browser check did not run")
	return ""
}

// The report opens in Chromium without a console error, an exception or any request
// other than its own file, shows its summary, charts and case timelines, and is
// captured as the README's picture.
func TestReportInChromium(t *testing.T) {
	page := os.Getenv("ROOTWARDEN_EVIDENCE_HTML")
	if page == "" {
		t.Skip("ROOTWARDEN_EVIDENCE_HTML names the report to open (.ci/evidence-checks makes one)")
	}
	page, _ = filepath.Abs(page)
	browser := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser),
		chromedp.Flag("no-sandbox", true), chromedp.WindowSize(1280, 1000), chromedp.Flag("hide-scrollbars", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()

	var mu sync.Mutex
	var problems, requests []string
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeAssert {
				problems = append(problems, "console "+string(e.Type))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *network.EventRequestWillBeSent:
			requests = append(requests, e.Request.URL)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, "log "+string(e.Entry.Source)+": "+e.Entry.Text)
			}
		case *network.EventLoadingFailed:
			problems = append(problems, "load failed: "+e.ErrorText)
		}
	}))
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// Attach the tab, turn on the browser log (CSP violations, blocked loads), then open.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page),
		chromedp.WaitVisible(chromedp.CSS("section[aria-label=summary]"))); err != nil {
		t.Fatalf("open the report in Chromium: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	summary, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".cards")))
	if err != nil {
		t.Fatal(err)
	}
	cases, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("article.case").length`))
	if err != nil {
		t.Fatal(err)
	}
	charts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".chart svg rect, .chart svg polyline").length`))
	if err != nil {
		t.Fatal(err)
	}
	// The README's picture: the first screen (summary, charts, the accounts), PNG.
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, u := range requests {
		if !strings.HasPrefix(u, "file://"+page) && !strings.HasPrefix(u, "data:") {
			t.Errorf("the report requested %s: it must be self-contained", u)
		}
	}
	if len(problems) > 0 {
		t.Errorf("console errors or failures: %q", problems)
	}
	if !strings.Contains(title, "Root credential evidence") || !strings.Contains(strings.ToLower(summary), "median time to remediate") {
		t.Errorf("title %q, summary %q", title, summary)
	}
	if cases == 0 || charts < 3 {
		t.Errorf("cases %d, chart shapes %d", cases, charts)
	}
	if out := os.Getenv("ROOTWARDEN_EVIDENCE_PNG"); out != "" {
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, len(shot))
	}
}
