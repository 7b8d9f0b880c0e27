package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which .ci/browser.sh installs.
const chromiumPath = "/usr/bin/chromium"

// browser is a headless Chromium tab, and what its page logged as errors.
type browser struct {
	ctx context.Context

	mu     sync.Mutex
	errors []string
}

// newBrowser starts headless Chromium for the test, or skips the test when
// Chromium or the npm client is missing (it fails instead when
// LIVECTX_BROWSER=1, as in CI).
func newBrowser(t *testing.T) *browser {
	t.Helper()
	missing := func(what string, err error) {
		if os.Getenv("LIVECTX_BROWSER") == "1" {
			t.Fatalf("LIVECTX_BROWSER=1 but %s: %v", what, err)
		}
		t.Skipf("%s (%v); set LIVECTX_BROWSER=1 to make this a failure", what, err)
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(chromiumPath+" is missing: install it with .ci/browser.sh (apt-get install chromium)", err)
	}
	if err := checkClient("node_modules"); err != nil {
		missing("no client to serve", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	b := &browser{}
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				b.logError("console.error: " + strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			b.logError("exception: " + ev.ExceptionDetails.Text)
		}
	}))
	t.Cleanup(bcancel)
	b.ctx = bctx
	return b
}

func (b *browser) logError(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errors = append(b.errors, s)
}

// pageErrors returns what the page logged as errors so far.
func (b *browser) pageErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// run runs chromedp actions, failing the test on error.
func (b *browser) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls a JavaScript predicate in the page.
func (b *browser) waitFor(t *testing.T, what, predicate string, timeout time.Duration) {
	t.Helper()
	poll := chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(10*time.Millisecond))
	if _, err := chromedp.Run(b.ctx, poll); err != nil {
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s\npage errors: %q", what, predicate, err, text, b.pageErrors())
	}
}

// eval evaluates a JavaScript expression giving a string.
func (b *browser) eval(t *testing.T, expr string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return s
}

// joined is a predicate: the view is joined (the client marks it).
const joined = `document.querySelector("[data-phx-main]").classList.contains("phx-connected")`

// textIs is a predicate: the element with id has text want.
func textIs(id, want string) string {
	return fmt.Sprintf(`document.getElementById(%q).textContent === %q`, id, want)
}

// artifactsDir is where tests leave screenshots: $LIVECTX_ARTIFACTS, or
// testdata/artifacts at the root of the repository (ignored by git), as
// for the demo's browser test.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LIVECTX_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "testdata", "artifacts")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the page as a PNG named name in artifactsDir.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactsDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// clickN clicks the element with id n times, each once the previous click's
// diff has been applied (the client locks the button while it waits).
func (b *browser) clickN(t *testing.T, id string, n int) {
	t.Helper()
	for range n {
		b.run(t, "click #"+id, chromedp.Click(chromedp.ID(id)))
		b.waitFor(t, "the reply to the click on #"+id,
			fmt.Sprintf(`!document.getElementById(%q).hasAttribute("data-phx-ref-src")`, id), 10*time.Second)
	}
}

func TestTheUnmodifiedClientCountsClicks(t *testing.T) {
	b := newBrowser(t)
	st := newMemory(t)
	base := startServer(t, st, "A")

	b.run(t, "open the page", chromedp.Navigate(base+"/"))
	b.waitFor(t, "the view to join", joined, 30*time.Second)
	b.clickN(t, "inc", 3)
	b.waitFor(t, "the count at 3", textIs("count", "3"), 10*time.Second)

	elemID := b.eval(t, `document.querySelector("[data-phx-main]").id`)
	if n := storedCount(t, st, page{elemID: elemID}); n != 3 {
		t.Errorf("the store holds count %d, want 3", n)
	}
	b.screenshot(t, "liveview-counter.png")
	if errs := b.pageErrors(); len(errs) > 0 {
		t.Errorf("the page logged errors: %q", errs)
	}
}

func TestTheClientRecoversTheFormAndEmptiesTheListOnARejoin(t *testing.T) {
	b := newBrowser(t)
	st := newMemory(t)
	base := startServer(t, st, "A")

	b.run(t, "open the page", chromedp.Navigate(base+"/"))
	b.waitFor(t, "the view to join", joined, 30*time.Second)
	b.clickN(t, "inc", 2)
	b.run(t, "type", chromedp.SendKeys(chromedp.ID("text"), "hello"))
	b.waitFor(t, "the server's echo of the draft", textIs("echo", "hello"), 10*time.Second)
	b.clickN(t, "add", 3)
	b.waitFor(t, "three lines", `document.querySelectorAll("#lines li").length === 3`, 10*time.Second)
	b.screenshot(t, "liveview-form-and-list.png")

	// The socket drops; meanwhile the user types on. The client then
	// rejoins (its _mounts is 1) and replays the form (form recovery).
	b.run(t, "disconnect", chromedp.Evaluate[chromedp.Void](`liveSocket.disconnect()`))
	b.waitFor(t, "the view to leave", `!(`+joined+`)`, 10*time.Second)
	b.run(t, "type while disconnected", chromedp.SendKeys(chromedp.ID("text"), " world"))
	b.run(t, "reconnect", chromedp.Evaluate[chromedp.Void](`liveSocket.connect()`))
	b.waitFor(t, "the view to rejoin", joined, 30*time.Second)
	b.waitFor(t, "the recovered draft echoed", textIs("echo", "hello world"), 10*time.Second)
	b.waitFor(t, "the count kept", textIs("count", "2"), 10*time.Second)
	b.waitFor(t, "an empty list (temporary)", `document.querySelectorAll("#lines li").length === 0`, 10*time.Second)
	b.waitFor(t, "the resumed badge", textIs("resumed", "Resumed from the store"), 10*time.Second)

	var draft string
	elemID := b.eval(t, `document.querySelector("[data-phx-main]").id`)
	if !storedField(t, st, page{elemID: elemID}, "draft", &draft) || draft != "hello world" {
		t.Errorf("the store holds the draft %q, want the recovered %q", draft, "hello world")
	}
	b.screenshot(t, "liveview-after-rejoin.png")
	t.Logf("page errors (the disconnect may log some): %q", b.pageErrors())
}
