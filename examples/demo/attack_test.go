package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/socket/sockettest"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/token"
)

// target is the demo's handler over a store seen through a Counter, so a
// test can prove that a refused request made no store call.
type target struct {
	t       *testing.T
	app     *app
	counter *sockettest.Counter
	url     string
}

func newTarget(t *testing.T, st store.ContextStore, keys [][]byte) *target {
	t.Helper()
	counter := sockettest.Count(st)
	a, err := newApp(counter, "memory://", keys, quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		srv.Close()
		a.Close(context.Background()) // closes the Counter, which leaves st open
	})
	return &target{t: t, app: a, counter: counter, url: srv.URL}
}

// forget closes the open sockets (their records stay), so that whatever
// opens a page from now on has to read the store.
func (tg *target) forget() {
	tg.app.mu.Lock()
	defer tg.app.mu.Unlock()
	for id, s := range tg.app.sockets {
		s.Close(context.Background())
		delete(tg.app.sockets, id)
	}
}

// noRedirects is another view of v's browser (the same cookies) that stops
// at redirects, to see how a request was answered.
func (v *visitor) noRedirects() *visitor {
	c := *v.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	w := *v
	w.client = &c
	return &w
}

// splice returns tok with its id replaced by id and its MAC kept.
func splice(t *testing.T, tok, id string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	b := append(append(bytes.Clone(raw[:9]), id...), raw[len(raw)-32:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signAs signs id for owner with keys, at the time now returns.
func signAs(t *testing.T, keys [][]byte, now func() time.Time, id, owner string) string {
	t.Helper()
	s, err := token.NewSigner(keys, token.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(id, owner)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// attack is one request an attacker makes.
type attack struct {
	name string
	by   *visitor // whose browser (cookies) sends it
	page string   // a GET of this path, or
	form url.Values
	hdr  http.Header
}

// refuse sends each attack and checks that it is refused, all alike (a GET
// is sent to a new page of the sender's own, an event gets the one 403),
// that its answer does not carry the victim's id or text, and that it made
// no store call.
func (tg *target) refuse(attacks []attack, victimID, secret string) {
	t := tg.t
	t.Helper()
	for _, a := range attacks {
		tg.counter.Reset()
		var res *http.Response
		var body string
		if a.page != "" {
			res, body = a.by.noRedirects().get(a.page)
			loc := res.Header.Get("Location")
			if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/?t=") {
				t.Errorf("%s: GET answered %s, Location %q; want 303 to a new page", a.name, res.Status, loc)
			}
		} else {
			res, body = a.by.post(a.form, a.hdr)
			if res.StatusCode != http.StatusForbidden || body != forbidden+"\n" {
				t.Errorf("%s: event answered %s %q; want 403 %q", a.name, res.Status, body, forbidden)
			}
		}
		if strings.Contains(body, victimID) || strings.Contains(body, secret) || strings.Contains(res.Header.Get("Location"), victimID) {
			t.Errorf("%s: the answer carries the victim's page", a.name)
		}
		if n := tg.counter.Calls(); n != 0 {
			t.Errorf("%s: %d store calls (%d loads), want none", a.name, n, tg.counter.Loads())
		}
	}
}

// TestAttacksOnTheDemo plays an attacker against the demo's handlers: every
// way to reach another browser's page, or to act on it, is refused before
// the store, and the victim's page is as the victim left it.
func TestAttacksOnTheDemo(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	retired := bytes.Repeat([]byte("retired-"), 4)
	tg := newTarget(t, st, testKeys)

	victim := newVisitor(t, tg.url, false)
	victim.open("/")
	const secret = "victim-secret-text"
	victim.event("input", secret)
	victimID, victimTok, victimSession := victim.id, victim.tok, victim.session()
	before, err := st.Load(t.Context(), victimID)
	if err != nil {
		t.Fatal(err)
	}

	attacker := newVisitor(t, tg.url, false)
	attacker.open("/") // a page and a session of the attacker's own
	attacker.event("inc", "")
	attackerSession := attacker.session()
	tg.forget()

	now := time.Now
	raw, err := base64.RawURLEncoding.DecodeString(victimTok)
	if err != nil {
		t.Fatal(err)
	}
	var attacks []attack
	page := func(name string, by *visitor, tok string) {
		attacks = append(attacks, attack{name: name, by: by, page: "/?t=" + url.QueryEscape(tok)})
	}
	event := func(name string, by *visitor, form url.Values, hdr http.Header) {
		attacks = append(attacks, attack{name: name, by: by, form: form, hdr: hdr})
	}
	withToken := func(v *visitor, tok string) url.Values {
		f := v.form("input", "pwned")
		f.Set("t", tok)
		return f
	}

	attacks = append(attacks, attack{name: "the victim's id in ?id=", by: attacker, page: "/?id=" + victimID})
	page("the victim's id as the token", attacker, victimID)
	page("the victim's token in the attacker's browser", attacker, victimTok)
	page("a token forged with the attacker's key", attacker, signAs(t, [][]byte{bytes.Repeat([]byte("mallory!"), 4)}, now, victimID, attackerSession))
	page("the victim's id spliced into the attacker's token", attacker, splice(t, attacker.tok, victimID))
	page("a client-chosen id", attacker, "fixated-by-attacker")
	attacks = append(attacks, attack{name: "a client-chosen id in ?id=", by: attacker, page: "/?id=fixated-by-attacker"})
	for i := range len(raw) * 8 {
		b := bytes.Clone(raw)
		b[i/8] ^= 1 << (i % 8)
		page("the victim's token with bit "+strconv.Itoa(i)+" flipped, in the victim's browser", victim, base64.RawURLEncoding.EncodeToString(b))
	}
	for n := range len(victimTok) {
		page("the victim's token cut to "+strconv.Itoa(n)+" characters", victim, victimTok[:n])
	}
	page("an expired token, in the victim's browser", victim,
		signAs(t, testKeys, func() time.Time { return time.Now().Add(-token.DefaultMaxAge - time.Minute) }, victimID, victimSession))
	page("a token of a retired key, in the victim's browser", victim, signAs(t, [][]byte{retired}, now, victimID, victimSession))

	event("the victim's token from the attacker's browser", attacker, withToken(attacker, victimTok), nil)
	event("the victim's id as the token", attacker, withToken(attacker, victimID), nil)
	event("a client-chosen id as the token", attacker, withToken(attacker, "fixated-by-attacker"), nil)
	event("the victim's id spliced into the attacker's token", attacker, withToken(attacker, splice(t, attacker.tok, victimID)), nil)
	event("a cross-origin POST (Origin)", victim, victim.form("input", "pwned"), http.Header{"Origin": {"https://evil.example"}})
	event("a cross-site POST (Sec-Fetch-Site)", victim, victim.form("input", "pwned"), http.Header{"Sec-Fetch-Site": {"cross-site"}})
	noCSRF := victim.form("input", "pwned")
	noCSRF.Del("csrf")
	event("an event without a CSRF token", victim, noCSRF, nil)
	wrong := victim.form("input", "pwned")
	wrong.Set("csrf", attacker.csrf)
	event("an event with the attacker's CSRF token", victim, wrong, nil)
	wrong = victim.form("input", "pwned")
	wrong.Set("csrf", victimTok)
	event("an event with the page token as its CSRF token", victim, wrong, nil)
	wrong = victim.form("input", "pwned")
	wrong.Set("t", victim.csrf)
	event("an event with the CSRF token as its page token", victim, wrong, nil)
	noCookie := newVisitor(t, tg.url, false)
	event("an event with the victim's tokens and no cookie", noCookie, victim.form("input", "pwned"), nil)
	expired := victim.form("input", "pwned")
	expired.Set("t", signAs(t, testKeys, func() time.Time { return time.Now().Add(-token.DefaultMaxAge - time.Minute) }, victimID, victimSession))
	event("an event with an expired token", victim, expired, nil)

	tg.refuse(attacks, victimID, secret)

	t.Run("an id in the query or the form names nothing: the token's page is the one changed", func(t *testing.T) {
		f := attacker.form("input", "pwned")
		f.Set("id", victimID)
		res, body := attacker.post(f, nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "pwned") {
			t.Fatalf("the attacker's own event: %s %s", res.Status, body)
		}
		req, _ := http.NewRequest(http.MethodPost, tg.url+"/event?id="+victimID, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if res, err := attacker.client.Do(req); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("the attacker's own event with ?id=: %v %v", res, err)
		}
	})
	after, err := st.Load(t.Context(), victimID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version || !bytes.Equal(after.Fields["text"], before.Fields["text"]) {
		t.Errorf("the victim's record went from version %d %q to %d %q", before.Version, before.Fields["text"], after.Version, after.Fields["text"])
	}
	if page := victim.open("/?t=" + url.QueryEscape(victimTok)); !strings.Contains(page, secret) || victim.id != victimID {
		t.Errorf("the victim's own page no longer opens with its text")
	}
}

// TestKeyRotationInTheDemo rolls the demo's key: while the old key is
// listed second its tokens still open their pages; once it is removed they
// are refused before the store.
func TestKeyRotationInTheDemo(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	oldKey, newKey := testKeys[0], bytes.Repeat([]byte("new-key!"), 4)
	before := newTarget(t, st, [][]byte{oldKey})
	v := newVisitor(t, before.url, false)
	v.open("/")
	v.event("input", "kept across the roll")
	oldTok := v.tok

	// The same browser and store, a server with the keys rolled: its
	// cookie is re-sent by pointing the visitor at the new server's
	// address (the jar is per host, and both servers listen on 127.0.0.1).
	rolling := newTarget(t, st, [][]byte{newKey, oldKey})
	v.base = rolling.url
	if page := v.open("/?t=" + url.QueryEscape(oldTok)); !strings.Contains(page, "kept across the roll") {
		t.Error("with the old key listed second, its token does not open the page")
	}
	if _, err := token.NewSigner([][]byte{newKey}); err != nil {
		t.Fatal(err)
	}
	rolled := newTarget(t, st, [][]byte{newKey})
	v.base = rolled.url
	rolled.refuse([]attack{{name: "a token of the removed key", by: v, page: "/?t=" + url.QueryEscape(oldTok)}}, v.id, "kept across the roll")
	if page := v.open("/?t=" + url.QueryEscape(v.tok)); !strings.Contains(page, "kept across the roll") {
		t.Error("a token re-issued under the new key does not open the page")
	}
}

// TestAReplayAfterThePageWasDeleted: deleting a record does not revoke its
// token. Another browser's replay is refused before the store; the owner's
// own replay opens an empty page (nothing of the deleted one comes back)
// after one store read.
func TestAReplayAfterThePageWasDeleted(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	tg := newTarget(t, st, testKeys)
	victim := newVisitor(t, tg.url, false)
	victim.open("/")
	victim.event("input", "deleted text")
	id, tok := victim.id, victim.tok
	tg.forget()
	if err := st.Delete(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	attacker := newVisitor(t, tg.url, false)
	attacker.open("/")
	tg.refuse([]attack{
		{name: "the deleted page's token in another browser", by: attacker, page: "/?t=" + url.QueryEscape(tok)},
		{name: "the deleted page's token in another browser's event", by: attacker, form: func() url.Values {
			f := attacker.form("input", "x")
			f.Set("t", tok)
			return f
		}()},
	}, id, "deleted text")
	tg.counter.Reset()
	page := victim.open("/?t=" + url.QueryEscape(tok))
	if strings.Contains(page, "deleted text") || !strings.Contains(page, "New page") || tg.counter.Loads() == 0 {
		t.Errorf("the owner's replay after the delete: %d loads; want an empty new page", tg.counter.Loads())
	}
}
