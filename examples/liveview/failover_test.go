package main

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// failoverBound is how soon the client must be back on the other node.
const failoverBound = 5 * time.Second

// TestThePageSurvivesLosingItsNode is the failover: nodes A and B (real
// processes) on one Redis, behind a reverse proxy; the unmodified client is
// given state, the node serving it is killed with SIGKILL, and the client
// rejoins the other node through the proxy with the state intact.
func TestThePageSurvivesLosingItsNode(t *testing.T) {
	urls := redisURLs(t)
	for _, backend := range slices.Sorted(maps.Keys(urls)) {
		t.Run(backend, func(t *testing.T) {
			b := newBrowser(t)
			storeURL := urls[backend]
			bin := nodeBinary(t, "")
			nodes := map[string]*node{
				"A": startNode(t, bin, "A", "127.0.0.1:0", storeURL),
				"B": startNode(t, bin, "B", "127.0.0.1:0", storeURL),
			}
			base := startProxy(t, nodes["A"], nodes["B"])
			st := openStore(t, storeURL)

			b.run(t, "open the page through the proxy", chromedp.Navigate(base+"/"))
			b.waitFor(t, "the view to join", joined, 30*time.Second)
			b.clickN(t, "inc", 5)
			b.waitFor(t, "the count at 5", textIs("count", "5"), 10*time.Second)
			b.run(t, "type", chromedp.SendKeys(chromedp.ID("text"), "typed before the kill"))
			b.waitFor(t, "the draft echoed", textIs("echo", "typed before the kill"), 10*time.Second)
			b.clickN(t, "add", 2)
			b.waitFor(t, "two lines", `document.querySelectorAll("#lines li").length === 2`, 10*time.Second)

			serving := b.eval(t, `document.getElementById("node").textContent`)
			victim, ok := nodes[serving]
			if !ok {
				t.Fatalf("the page names node %q", serving)
			}
			other := map[string]string{"A": "B", "B": "A"}[serving]
			b.screenshot(t, "liveview-failover-"+backend+"-before.png")

			start := time.Now()
			victim.kill(syscall.SIGKILL)
			b.waitFor(t, "the client to rejoin node "+other, joined+` && `+textIs("node", other), failoverBound)
			took := time.Since(start)
			t.Logf("failover (%s): node %s killed with SIGKILL; the unmodified client rejoined node %s through the proxy in %v",
				backend, serving, other, took.Round(time.Millisecond))

			b.waitFor(t, "the count at 5 on the new node", textIs("count", "5"), 5*time.Second)
			b.waitFor(t, "the draft on the new node", textIs("echo", "typed before the kill")+
				` && document.getElementById("text").value === "typed before the kill"`, 5*time.Second)
			b.waitFor(t, "the resumed badge", textIs("resumed", "Resumed from the store"), 5*time.Second)
			b.waitFor(t, "an empty list (temporary)", `document.querySelectorAll("#lines li").length === 0`, 5*time.Second)

			b.clickN(t, "inc", 1)
			b.waitFor(t, "the count at 6", textIs("count", "6"), 10*time.Second)
			elemID := b.eval(t, `document.querySelector("[data-phx-main]").id`)
			if n := storedCount(t, st, page{elemID: elemID}); n != 6 {
				t.Errorf("the store holds count %d, want 6", n)
			}
			var draft string
			if storedField(t, st, page{elemID: elemID}, "draft", &draft); draft != "typed before the kill" {
				t.Errorf("the store holds the draft %q", draft)
			}
			b.screenshot(t, "liveview-failover-"+backend+"-after.png")
			st.Delete(context.Background(), strings.TrimPrefix(elemID, elementPrefix))
		})
	}
}

// TestThePageResumesAfterARestartOnBolt stops the one node and starts it
// again on the same bolt file and address; the client reconnects by itself
// and the page resumes.
func TestThePageResumesAfterARestartOnBolt(t *testing.T) {
	b := newBrowser(t)
	bin := nodeBinary(t, "")
	storeURL := "bolt://" + filepath.Join(t.TempDir(), "page.db") + "?ttl=1h"
	addr := freeAddr(t)
	n := startNode(t, bin, "A", addr, storeURL)

	b.run(t, "open the page", chromedp.Navigate("http://"+n.addr+"/"))
	b.waitFor(t, "the view to join", joined, 30*time.Second)
	b.clickN(t, "inc", 3)
	b.run(t, "type", chromedp.SendKeys(chromedp.ID("text"), "kept on disk"))
	b.waitFor(t, "the draft echoed", textIs("echo", "kept on disk"), 10*time.Second)
	b.screenshot(t, "liveview-bolt-before-restart.png")

	n.kill(syscall.SIGTERM)
	start := time.Now()
	startNode(t, bin, "A", addr, storeURL)
	b.waitFor(t, "the client to rejoin the restarted node", joined+` && `+textIs("resumed", "Resumed from the store"), 10*time.Second)
	t.Logf("restart on bolt: the client rejoined %v after the node was started again", time.Since(start).Round(time.Millisecond))
	b.waitFor(t, "the count at 3", textIs("count", "3"), 5*time.Second)
	b.waitFor(t, "the draft", textIs("echo", "kept on disk"), 5*time.Second)
	b.clickN(t, "inc", 1)
	b.waitFor(t, "the count at 4", textIs("count", "4"), 10*time.Second)
	b.screenshot(t, "liveview-bolt-after-restart.png")
}

// TestARollingDeployResumesOnTheNextVersion is the failover during a
// rolling deploy: node A runs version 1 of the view, node B (started once
// the page has state, as a deploy adds it) runs version 2, whose context
// type changed (the counter became an int64 stored as "clicks", migrated
// from version 1's "count"). A is stopped; the client rejoins B, which
// shows what version 1 stored.
func TestARollingDeployResumesOnTheNextVersion(t *testing.T) {
	urls := redisURLs(t)
	for _, backend := range slices.Sorted(maps.Keys(urls)) {
		t.Run(backend, func(t *testing.T) {
			b := newBrowser(t)
			storeURL := urls[backend]
			v1, v2 := nodeBinary(t, ""), nodeBinary(t, "nextversion")
			a := startNode(t, v1, "A", "127.0.0.1:0", storeURL)
			bAddr := freeAddr(t)
			base := startProxy(t, a, &node{addr: bAddr}) // B is not up yet: the proxy falls back to A
			st := openStore(t, storeURL)

			b.run(t, "open the page through the proxy", chromedp.Navigate(base+"/"))
			b.waitFor(t, "the view to join version 1", joined+` && `+textIs("version", "1"), 30*time.Second)
			b.clickN(t, "inc", 5)
			b.run(t, "type", chromedp.SendKeys(chromedp.ID("text"), "typed on version 1"))
			b.waitFor(t, "the draft echoed", textIs("echo", "typed on version 1"), 10*time.Second)
			b.waitFor(t, "the count at 5", textIs("count", "5"), 10*time.Second)
			elemID := b.eval(t, `document.querySelector("[data-phx-main]").id`)
			p := page{elemID: elemID}
			if n := storedCount(t, st, p); n != 5 {
				t.Fatalf("version 1 stored count %d, want 5", n)
			}
			b.screenshot(t, "liveview-deploy-"+backend+"-before.png")

			startNode(t, v2, "B", bAddr, storeURL)
			start := time.Now()
			a.kill(syscall.SIGTERM)
			b.waitFor(t, "the client to rejoin node B, version 2", joined+` && `+textIs("node", "B")+` && `+textIs("version", "2"), failoverBound)
			t.Logf("failover (%s, rolling deploy): node A (version 1) stopped; the client rejoined node B (version 2) in %v",
				backend, time.Since(start).Round(time.Millisecond))
			b.waitFor(t, "the count at 5, migrated", textIs("count", "5"), 5*time.Second)
			b.waitFor(t, "the draft", textIs("echo", "typed on version 1"), 5*time.Second)
			b.waitFor(t, "nothing lost", textIs("lost", ""), 5*time.Second)

			b.clickN(t, "inc", 1)
			b.waitFor(t, "the count at 6", textIs("count", "6"), 10*time.Second)
			var clicks int64
			var count int
			if !storedField(t, st, p, "clicks", &clicks) || clicks != 6 {
				t.Errorf("the store holds clicks %d, want 6 (version 2's field)", clicks)
			}
			if !storedField(t, st, p, "count", &count) || count != 5 {
				t.Errorf("the store holds count %d, want version 1's 5 kept until it is retired", count)
			}
			b.screenshot(t, "liveview-deploy-"+backend+"-after.png")
			st.Delete(context.Background(), strings.TrimPrefix(elemID, elementPrefix))
		})
	}
}
