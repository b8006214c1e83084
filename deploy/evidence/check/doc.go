// Package check opens the evidence pack's HTML report in a real headless Chromium over
// the DevTools protocol (chromedp): the page must raise no console error or
// exception, make no network request beyond itself, and render; it writes the
// screenshot the README shows (docs/img/evidence-report.png). It is its own module
// so the main module does not depend on chromedp. .ci/evidence-checks runs it.
package check
