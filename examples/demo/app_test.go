package main

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/token"
)

// testKeys are the demo's signing keys in tests; a restarted demo gets the
// same ones, as a restarted server would from its environment.
var testKeys = [][]byte{bytes.Repeat([]byte("demo-key"), 4)}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startDemo starts the demo on a free port over storeURL and stops it at
// the end of the test, unless the test stops it first.
func startDemo(t *testing.T, addr, storeURL string) *running {
	t.Helper()
	d, err := start(context.Background(), addr, storeURL, testKeys, quiet)
	if err != nil {
		t.Fatalf("start demo on %s: %v", storeURL, err)
	}
	t.Cleanup(func() { d.Stop(context.Background()) })
	return d
}

// visitor is a browser: a cookie jar holding its session, and the id and
// tokens of the page it last opened.
type visitor struct {
	t      *testing.T
	base   string
	client *http.Client
	id     string
	tok    string
	csrf   string
}

// newVisitor is a browser with no cookie yet; it follows redirects unless
// stopAtRedirects.
func newVisitor(t *testing.T, base string, stopAtRedirects bool) *visitor {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &visitor{t: t, base: base, client: &http.Client{Jar: jar}}
	if stopAtRedirects {
		v.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return v
}

// session returns the visitor's session cookie.
func (v *visitor) session() string {
	u, _ := url.Parse(v.base)
	for _, c := range v.client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	return ""
}

var (
	idRE    = regexp.MustCompile(`data-id="([^"]*)"`)
	tokenRE = regexp.MustCompile(`data-token="([^"]*)"`)
	csrfRE  = regexp.MustCompile(`data-csrf="([^"]*)"`)
)

// get requests path and returns the response and its body.
func (v *visitor) get(path string) (*http.Response, string) {
	v.t.Helper()
	res, err := v.client.Get(v.base + path)
	if err != nil {
		v.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return res, string(b)
}

// open requests path, which must end at a page, and keeps the page's id and
// tokens; it returns the page.
func (v *visitor) open(path string) string {
	v.t.Helper()
	res, page := v.get(path)
	m, tm, cm := idRE.FindStringSubmatch(page), tokenRE.FindStringSubmatch(page), csrfRE.FindStringSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil || tm == nil || cm == nil {
		v.t.Fatalf("GET %s: %s, not a page:\n%s", path, res.Status, page)
	}
	v.id, v.tok, v.csrf = m[1], html.UnescapeString(tm[1]), html.UnescapeString(cm[1])
	return page
}

// post sends an event form with header h set, and returns the response and
// its body.
func (v *visitor) post(form url.Values, h http.Header) (*http.Response, string) {
	v.t.Helper()
	req, err := http.NewRequest(http.MethodPost, v.base+"/event", strings.NewReader(form.Encode()))
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range h {
		req.Header[k] = vs
	}
	res, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return res, string(b)
}

// form is an event form carrying the visitor's tokens.
func (v *visitor) form(ev, value string) url.Values {
	return url.Values{"event": {ev}, "value": {value}, "t": {v.tok}, "csrf": {v.csrf}}
}

// event sends an event on the visitor's page, as its script does, and
// returns the reply, keeping the fresh token.
func (v *visitor) event(ev, value string) eventReply {
	v.t.Helper()
	res, body := v.post(v.form(ev, value), http.Header{"Origin": {v.base}, "Sec-Fetch-Site": {"same-origin"}})
	if res.StatusCode != http.StatusOK {
		v.t.Fatalf("event %s: %s %s", ev, res.Status, body)
	}
	var r eventReply
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		v.t.Fatalf("event %s: %v", ev, err)
	}
	v.tok = r.Token
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

func TestAPageWithoutATokenGetsANewOneMintedByTheServer(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	v := newVisitor(t, "http://"+d.Addr(), false)
	seen := map[string]bool{}
	for _, path := range []string{"/", "/?t=", "/?t=bad%2Ftoken", "/?id=chosen-by-the-client", "/?t=" + strings.Repeat("A", 300)} {
		page := v.open(path)
		if seen[v.id] || len(v.id) != 26 || v.id == "chosen-by-the-client" || !strings.Contains(page, `id="count">0<`) || !strings.Contains(page, "New page") {
			t.Errorf("GET %s opened page %q, want a new page with a new 26-character id", path, v.id)
		}
		seen[v.id] = true
	}
}

func TestThePageAndTheSessionCookieCarryTheirProtections(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	v := newVisitor(t, "http://"+d.Addr(), true)
	res, _ := v.get("/")
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || !validSession(cookie.Value) {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Lax and 26 random characters", cookie)
	}
	loc, err := res.Location()
	if err != nil || res.StatusCode != http.StatusSeeOther || loc.Query().Get("t") == "" || loc.Query().Has("id") {
		t.Fatalf("GET /: %s to %v, want a redirect to a token", res.Status, loc)
	}
	res, _ = v.get(loc.RequestURI())
	for h, want := range map[string]string{"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("the page's %s is %q, want %q", h, got, want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("the page's Content-Security-Policy %q lets other sites frame it", csp)
	}
}

func TestEventsChangeTheCounterAndTheText(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	v := newVisitor(t, "http://"+d.Addr(), false)
	v.open("/")
	v.event("inc", "")
	v.event("inc", "")
	r := v.event("dec", "")
	if got := number(t, countRE, r.Live); got != 1 {
		t.Errorf("count after +, +, - = %d, want 1", got)
	}
	r = v.event("input", "héllo <b>")
	if !strings.Contains(r.Live, `id="echo">héllo &lt;b&gt;<`) {
		t.Errorf("the text is not echoed, escaped: %s", r.Live)
	}
	r = v.event("input", strings.Repeat("x", maxText+50))
	if !strings.Contains(r.Live, strings.Repeat("x", maxText)+"<") {
		t.Errorf("a long text is not cut to %d characters", maxText)
	}
	other := newVisitor(t, "http://"+d.Addr(), false)
	other.open("/")
	if other.event("inc", ""); number(t, countRE, v.event("inc", "").Live) != 2 {
		t.Error("an event on another page changed this one")
	}
}

func TestPhotosReachTheBrowserButNeverTheStore(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	v := newVisitor(t, "http://"+d.Addr(), false)
	v.open("/")
	before := number(t, storedRE, v.event("inc", "").Live)
	r := v.event("photos", "")
	if n := strings.Count(r.Append, "<img "); n != photosPer {
		t.Errorf("the photos event appended %d images, want %d", n, photosPer)
	}
	photoBytes, stored := number(t, photoRE, r.Live), number(t, storedRE, r.Live)
	if photoBytes < 20_000 || stored != before {
		t.Errorf("photos carried %d bytes and the store holds %d (was %d); want many bytes carried and none stored", photoBytes, stored, before)
	}
	rec, err := d.app.st.Load(context.Background(), v.id)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Fields["photos"]; len(got) != 1 || got[0] != 0xc0 {
		t.Errorf("stored photos field = %x, want msgpack nil", got)
	}
	r = v.event("inc", "")
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
			v := newVisitor(t, "http://"+d.Addr(), false)
			v.open("/")
			v.event("inc", "")
			v.event("inc", "")
			v.event("input", "still here")
			v.event("photos", "")
			if err := d.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			d = startDemo(t, d.Addr(), st.url) // the same address: the cookie is the browser's for it
			page := v.open("/?t=" + url.QueryEscape(v.tok))
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
	v := newVisitor(t, "http://"+d.Addr(), false)
	v.open("/")
	oversized := v.form("input", strings.Repeat("x", 8<<10))
	cases := []struct {
		name string
		form url.Values
		want int
	}{
		{"an unknown event", v.form("explode", ""), http.StatusBadRequest},
		{"an oversized form", oversized, http.StatusBadRequest},
		{"an event without a token", url.Values{"event": {"inc"}, "csrf": {v.csrf}}, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if res, body := v.post(c.form, nil); res.StatusCode != c.want {
				t.Errorf("POST /event: %s %s, want %d", res.Status, body, c.want)
			}
		})
	}
	if res, _ := v.get("/nope"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %s, want 404", res.Status)
	}
}

func TestTheAssetsAreServedByTheBinary(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	v := newVisitor(t, "http://"+d.Addr(), false)
	for _, p := range []string{"/static/app.js", "/static/style.css"} {
		if res, body := v.get(p); res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %s, %d bytes", p, res.Status, len(body))
		}
	}
}

func TestAClickOnAStaleSocketIsAppliedToTheStoredCount(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	v := newVisitor(t, "http://"+d.Addr(), false)
	v.open("/")
	v.event("inc", "")
	// Another server writes the record: this server's socket is stale.
	if _, err := d.app.st.Apply(context.Background(), v.id, store.Change{Set: map[string][]byte{"count": {0x07}}}); err != nil {
		t.Fatal(err)
	}
	if got := number(t, countRE, v.event("inc", "").Live); got != 8 {
		t.Errorf("count after +1 on a stale socket = %d, want 8 (the other server's 7, plus one)", got)
	}
}

// A deploy that changed Page's type (count was a string in the older
// build) opens the page, starts count over and says so; the text is kept.
func TestAPageWhoseTypeChangedOpensAndSaysWhatItCouldNotKeep(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	v := newVisitor(t, "http://"+d.Addr(), false)
	v.open("/")
	v.event("inc", "")
	v.event("input", "kept")
	older, err := codec.Marshal("three")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.app.st.Apply(context.Background(), v.id, store.Change{Set: map[string][]byte{"count": older}}); err != nil {
		t.Fatal(err)
	}
	res, body := v.get("/?t=" + url.QueryEscape(v.tok))
	if res.StatusCode != http.StatusOK || number(t, countRE, body) != 0 || !strings.Contains(body, `id="echo">kept<`) {
		t.Fatalf("after the type change: %s, body %q", res.Status, body)
	}
	if !strings.Contains(body, `id="reset"`) || !strings.Contains(body, "<code>count</code>") {
		t.Fatalf("the page does not say what it could not keep: %q", body)
	}
}

func TestEvictedPagesComeBackFromTheStore(t *testing.T) {
	d := startDemo(t, "127.0.0.1:0", "memory://")
	d.app.mu.Lock()
	d.app.maxOpen = 2
	d.app.mu.Unlock()
	v := newVisitor(t, "http://"+d.Addr(), false)
	var toks []string
	for i := range 4 {
		v.open("/")
		for range i + 1 {
			v.event("inc", "")
		}
		toks = append(toks, v.tok)
	}
	d.app.mu.Lock()
	open := len(d.app.sockets)
	d.app.mu.Unlock()
	if open > 2 {
		t.Errorf("%d sockets open, want at most 2", open)
	}
	for i, tok := range toks {
		if page := v.open("/?t=" + url.QueryEscape(tok)); number(t, countRE, page) != i+1 {
			t.Errorf("page %d shows count %d after eviction, want %d", i, number(t, countRE, page), i+1)
		}
	}
}

func TestFlagsAndKeysAreChecked(t *testing.T) {
	for _, args := range [][]string{{"-store", "nope://"}, {"extra"}, {"-bogus"}} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
	for _, keys := range []string{"not hex", strings.Repeat("ab", token.MinKeySize-1), strings.Repeat("ab", token.MinKeySize) + ",zz"} {
		t.Setenv("LIVECTX_DEMO_KEYS", keys)
		if err := run([]string{"-addr", "127.0.0.1:0"}, io.Discard); err == nil {
			t.Errorf("LIVECTX_DEMO_KEYS=%q: run succeeded", keys)
		}
	}
}
