package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/store"
)

// chromiumPath is Debian's chromium, which .ci/browser.sh installs.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium for the test, or skips the test when
// Chromium is missing (it fails instead when LIVECTX_BROWSER=1, as in CI).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("LIVECTX_BROWSER") == "1" {
			t.Fatalf("LIVECTX_BROWSER=1 but %s is missing (run .ci/browser.sh): %v", chromiumPath, err)
		}
		t.Skipf("%s is missing: install it with .ci/browser.sh (apt-get install chromium) to run the browser test; set LIVECTX_BROWSER=1 to make its absence a failure", chromiumPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 1400),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx
}

// artifactsDir is where the test leaves screenshots: $LIVECTX_ARTIFACTS, or
// testdata/artifacts at the root of the repository (ignored by git).
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

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactsDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// waitFor polls a JavaScript predicate in the page.
func waitFor(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, predicate, err, page)
	}
}

func evalInt(t *testing.T, ctx context.Context, expr string) int {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s = %q: %v", expr, s, err)
	}
	return n
}

func TestABrowserSessionSurvivesAServerRestartOnBolt(t *testing.T) {
	ctx := newBrowser(t)
	storeURL := "bolt://" + filepath.Join(t.TempDir(), "demo.db") + "?ttl=1h"
	d := startDemo(t, "127.0.0.1:0", storeURL)
	addr := d.Addr()

	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+addr+"/"),
		chromedp.WaitVisible(chromedp.ID("inc")),
	); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	waitFor(t, ctx, "the page's script", `document.body.dataset.pending === "0"`)
	waitFor(t, ctx, "a new page", `document.getElementById("restored").textContent === "New page"`)
	waitFor(t, ctx, "a token in the address and a session cookie no script can read",
		`location.search.startsWith("?t=") && !location.search.includes("id=") && !document.cookie.includes("`+sessionCookie+`")`)

	// Click + three times and - once, then type.
	for _, b := range []string{"inc", "inc", "inc", "dec"} {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID(b))); err != nil {
			t.Fatalf("click %s: %v", b, err)
		}
	}
	waitFor(t, ctx, "the counter at 2", `document.getElementById("count").textContent === "2"`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("text"), "hello livectx")); err != nil {
		t.Fatalf("type: %v", err)
	}
	waitFor(t, ctx, "the server's echo of the text", `document.getElementById("echo").textContent === "hello livectx"`)

	// Load the photos: the browser gets them, the store does not.
	storedBefore := evalInt(t, ctx, `document.getElementById("stored").dataset.bytes`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("photos"))); err != nil {
		t.Fatalf("click photos: %v", err)
	}
	waitFor(t, ctx, "the gallery", `document.querySelectorAll("#gallery img").length === `+strconv.Itoa(photosPer)+
		` && Array.from(document.querySelectorAll("#gallery img")).every(i => i.complete && i.naturalWidth > 0)`)
	photoBytes := evalInt(t, ctx, `document.getElementById("photo-bytes").dataset.bytes`)
	stored := evalInt(t, ctx, `document.getElementById("stored").dataset.bytes`)
	t.Logf("the photos render carried %d bytes of photos; the store holds %d bytes for the page (%d before)", photoBytes, stored, storedBefore)
	if photoBytes < 20_000 || stored != storedBefore || stored > 200 {
		t.Errorf("photos carried %d bytes, the store holds %d (was %d): want many bytes carried and a small, unchanged stored figure", photoBytes, stored, storedBefore)
	}
	screenshot(t, ctx, "demo-before-restart.png")

	// Restart the server on the same file and address, and reload.
	if err := d.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	startDemo(t, addr, storeURL)
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("inc"))); err != nil {
		t.Fatalf("reload: %v", err)
	}
	waitFor(t, ctx, "the resumed badge", `document.getElementById("restored").textContent === "Resumed from the store"`)
	waitFor(t, ctx, "the counter resumed at 2", `document.getElementById("count").textContent === "2"`)
	waitFor(t, ctx, "the text resumed", `document.getElementById("text").value === "hello livectx"`)
	waitFor(t, ctx, "an empty gallery (photos were never stored)", `document.querySelectorAll("#gallery img").length === 0`)

	// The resumed page still works.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("inc"))); err != nil {
		t.Fatalf("click + after the restart: %v", err)
	}
	waitFor(t, ctx, "the counter at 3", `document.getElementById("count").textContent === "3"`)
	screenshot(t, ctx, "demo-resumed-after-restart.png")
}

// What a user sees after a deploy changed the page's type: the older build
// stored count as a string. The page opens, starts count over, keeps the
// text and says which field it could not keep.
func TestABrowserSeesWhatATypeChangeCouldNotKeep(t *testing.T) {
	ctx := newBrowser(t)
	d := startDemo(t, "127.0.0.1:0", "memory://")
	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+d.Addr()+"/"),
		chromedp.WaitVisible(chromedp.ID("inc")),
	); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	waitFor(t, ctx, "the page's script", `document.body.dataset.pending === "0"`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("inc")), chromedp.SendKeys(chromedp.ID("text"), "kept")); err != nil {
		t.Fatalf("click and type: %v", err)
	}
	waitFor(t, ctx, "the server's echo of the text", `document.getElementById("echo").textContent === "kept"`)
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.id`))
	if err != nil {
		t.Fatal(err)
	}
	older, err := codec.Marshal("three") // count, as the older build stored it
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.app.st.Apply(context.Background(), id, store.Change{Set: map[string][]byte{"count": older}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("reset"))); err != nil {
		t.Fatalf("reload after the type change: %v", err)
	}
	waitFor(t, ctx, "count started over, the text kept", `document.getElementById("count").textContent === "0" && document.getElementById("text").value === "kept"`)
	waitFor(t, ctx, "the notice names count", `document.getElementById("reset").textContent.includes("count")`)
	screenshot(t, ctx, "demo-after-type-change.png")
}
