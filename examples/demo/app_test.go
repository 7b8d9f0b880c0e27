package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/livectx/livectx/store"
)

// startDemo starts the demo on a free port over storeURL and stops it at
// the end of the test, unless the test stops it first.
func startDemo(t *testing.T, addr, storeURL string) *running {
	t.Helper()
	d, err := start(context.Background(), addr, storeURL, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start demo on %s: %v", storeURL, err)
	}
	t.Cleanup(func() { d.Stop(context.Background()) })
	return d
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func event(t *testing.T, d *running, id, ev, value string) eventReply {
	t.Helper()
	res, err := http.PostForm("http://"+d.Addr()+"/event?id="+id, url.Values{"event": {ev}, "value": {value}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("event %s: %s %s", ev, res.Status, b)
	}
	var r eventReply
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatalf("event %s: %v", ev, err)
	}
	return r
}

// number returns the number that re (with one group) finds in html.
func number(t *testing.T, re, html string) int {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("%s not found in %q", re, html)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const (
	countRE  = `id="count">(-?\d+)<`
	storedRE = `id="stored" data-bytes="(\d+)"`
	photoRE  = `id="photo-bytes" data-bytes="(\d+)"`
)

func TestAPageWithoutAnIDRedirectsToANewOne(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	for _, path := range []string{"/", "/?id=", "/?id=bad%2Fid", "/?id=" + strings.Repeat("a", maxIDLen+1)} {
		res, body := get(t, "http://"+d.Addr()+path)
		if res.Request.URL.Path != "/" || !validID(res.Request.URL.Query().Get("id")) || !strings.Contains(body, `id="count">0<`) {
			t.Errorf("GET %s ended at %s, want a fresh page with a new id", path, res.Request.URL)
		}
	}
}

func TestEventsChangeTheCounterAndTheText(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	event(t, d, "p1", "inc", "")
	event(t, d, "p1", "inc", "")
	r := event(t, d, "p1", "dec", "")
	if got := number(t, countRE, r.Live); got != 1 {
		t.Errorf("count after +, +, - = %d, want 1", got)
	}
	r = event(t, d, "p1", "input", "héllo <b>")
	if !strings.Contains(r.Live, `id="echo">héllo &lt;b&gt;<`) {
		t.Errorf("the text is not echoed, escaped: %s", r.Live)
	}
	r = event(t, d, "p1", "input", strings.Repeat("x", maxText+50))
	if !strings.Contains(r.Live, strings.Repeat("x", maxText)+"<") {
		t.Errorf("a long text is not cut to %d characters", maxText)
	}
	if event(t, d, "p2", "inc", ""); number(t, countRE, event(t, d, "p1", "inc", "").Live) != 2 {
		t.Error("an event on another page changed this one")
	}
}

func TestPhotosReachTheBrowserButNeverTheStore(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	before := number(t, storedRE, event(t, d, "p", "inc", "").Live)
	r := event(t, d, "p", "photos", "")
	if n := strings.Count(r.Append, "<img "); n != photosPer {
		t.Errorf("the photos event appended %d images, want %d", n, photosPer)
	}
	photoBytes, stored := number(t, photoRE, r.Live), number(t, storedRE, r.Live)
	if photoBytes < 20_000 || stored != before {
		t.Errorf("photos carried %d bytes and the store holds %d (was %d); want many bytes carried and none stored", photoBytes, stored, before)
	}
	rec, err := d.app.st.Load(context.Background(), "p")
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Fields["photos"]; len(got) != 1 || got[0] != 0xc0 {
		t.Errorf("stored photos field = %x, want msgpack nil", got)
	}
	r = event(t, d, "p", "inc", "")
	if r.Append != "" || number(t, photoRE, r.Live) != 0 {
		t.Errorf("the render after the photos one still carries photos: %q", r.Append)
	}
}

func TestARestartedServerResumesThePage(t *testing.T) {
	stores := []struct{ name, url string }{
		{"on a bolt file", "bolt://" + filepath.Join(t.TempDir(), "demo.db") + "?ttl=1h"},
		{"on Redis", "redis://" + miniredis.RunT(t).Addr() + "/0?prefix=demo:&ttl=1h"},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			d := startDemo(t, "127.0.0.1:0", st.url)
			event(t, d, "p", "inc", "")
			event(t, d, "p", "inc", "")
			event(t, d, "p", "input", "still here")
			event(t, d, "p", "photos", "")
			if err := d.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			d = startDemo(t, "127.0.0.1:0", st.url)
			_, page := get(t, "http://"+d.Addr()+"/?id=p")
			if number(t, countRE, page) != 2 || !strings.Contains(page, `value="still here"`) || !strings.Contains(page, "Resumed from the store") {
				t.Errorf("after a restart the page did not resume (count 2, text, resumed badge):\n%s", page)
			}
			if strings.Contains(page, "<img ") {
				t.Error("after a restart the page shows photos, which were never stored")
			}
		})
	}
}

func TestBadRequestsAreRefused(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	base := "http://" + d.Addr()
	cases := []struct {
		name, path string
		form       url.Values
		want       int
	}{
		{"an unknown event", "/event?id=p", url.Values{"event": {"explode"}}, http.StatusBadRequest},
		{"an event without an id", "/event", url.Values{"event": {"inc"}}, http.StatusBadRequest},
		{"an event with a bad id", "/event?id=a%2Fb", url.Values{"event": {"inc"}}, http.StatusBadRequest},
		{"an oversized form", "/event?id=p", url.Values{"event": {"input"}, "value": {strings.Repeat("x", 8<<10)}}, http.StatusBadRequest},
		{"an unknown path", "/nope", nil, http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := http.PostForm(base+c.path, c.form)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != c.want {
				t.Errorf("POST %s: %s, want %d", c.path, res.Status, c.want)
			}
		})
	}
}

func TestTheAssetsAreServedByTheBinary(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	for _, p := range []string{"/static/app.js", "/static/style.css"} {
		if res, body := get(t, "http://"+d.Addr()+p); res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %s, %d bytes", p, res.Status, len(body))
		}
	}
}

func TestAClickOnAStaleSocketIsAppliedToTheStoredCount(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	event(t, d, "p", "inc", "")
	// Another server writes the record: this server's socket is stale.
	if _, err := d.app.st.Apply(context.Background(), "p", store.Change{Set: map[string][]byte{"count": {0x07}}}); err != nil {
		t.Fatal(err)
	}
	if got := number(t, countRE, event(t, d, "p", "inc", "").Live); got != 8 {
		t.Errorf("count after +1 on a stale socket = %d, want 8 (the other server's 7, plus one)", got)
	}
}

func TestEvictedPagesComeBackFromTheStore(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	d.app.mu.Lock()
	d.app.maxOpen = 2
	d.app.mu.Unlock()
	for i, id := range []string{"a", "b", "c", "d"} {
		for range i + 1 {
			event(t, d, id, "inc", "")
		}
	}
	d.app.mu.Lock()
	open := len(d.app.sockets)
	d.app.mu.Unlock()
	if open > 2 {
		t.Errorf("%d sockets open, want at most 2", open)
	}
	for i, id := range []string{"a", "b", "c", "d"} {
		if _, page := get(t, "http://"+d.Addr()+"/?id="+id); number(t, countRE, page) != i+1 {
			t.Errorf("page %s shows count %d after eviction, want %d", id, number(t, countRE, page), i+1)
		}
	}
}

func TestFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{{"-store", "nope://"}, {"extra"}, {"-bogus"}} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
