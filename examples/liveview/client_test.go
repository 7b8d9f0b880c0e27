package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// This file is a Go client of the protocol, for the tests: it loads a page
// as a browser would (keeping the session cookie), then joins its view over
// the websocket, merges the diffs it receives into the rendered tree the way
// the JavaScript client does, and renders the tree to HTML.

// page is what a client reads from a served page.
type page struct {
	base    string // http://host:port
	jar     http.CookieJar
	csrf    string
	elemID  string // the view's element id
	session string // data-phx-session
}

var (
	csrfRe    = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)
	elementRe = regexp.MustCompile(`<div id="([^"]*)" data-phx-main data-phx-session="([^"]*)"`)
)

// loadPage GETs base/ with a fresh cookie jar, or the given one.
func loadPage(t testing.TB, base string, jar http.CookieJar) page {
	t.Helper()
	if jar == nil {
		jar, _ = cookiejar.New(nil)
	}
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := hc.Get(base + "/")
	if err != nil {
		t.Fatalf("GET %s/: %v", base, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/: %d %v", base, resp.StatusCode, err)
	}
	m1, m2 := csrfRe.FindSubmatch(body), elementRe.FindSubmatch(body)
	if m1 == nil || m2 == nil {
		t.Fatalf("GET %s/: no CSRF token or view element in\n%s", base, body)
	}
	return page{
		base: base, jar: jar,
		csrf:    html.UnescapeString(string(m1[1])),
		elemID:  html.UnescapeString(string(m2[1])),
		session: html.UnescapeString(string(m2[2])),
	}
}

func (p page) topic() string { return "lv:" + p.elemID }

// client is one websocket connection and the view it joined.
type client struct {
	t        testing.TB
	ws       *websocket.Conn
	ref      int
	topic    string
	joinRef  string
	rendered map[string]any // the merged tree, as the JavaScript client keeps it
}

// dialOpts are what a client may change about its connection, to test the
// server's checks.
type dialOpts struct {
	origin   string // default: the page's own
	noOrigin bool   // send no Origin header
	csrf     *string
	vsn      string // default 2.0.0
}

// dial opens the page's websocket; it fails the test if the server refuses.
func dial(t testing.TB, p page) *client {
	t.Helper()
	c, resp, err := tryDial(p, dialOpts{})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (HTTP %d)", err, status)
	}
	c.t = t
	t.Cleanup(func() { c.ws.CloseNow() })
	return c
}

// tryDial opens the page's websocket with o.
func tryDial(p page, o dialOpts) (*client, *http.Response, error) {
	u, _ := url.Parse(p.base)
	origin := p.base
	if o.origin != "" {
		origin = o.origin
	}
	csrf := p.csrf
	if o.csrf != nil {
		csrf = *o.csrf
	}
	vsn := "2.0.0"
	if o.vsn != "" {
		vsn = o.vsn
	}
	q := url.Values{"_csrf_token": {csrf}, "vsn": {vsn}}
	ws := "ws://" + u.Host + "/live/websocket?" + q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	header := http.Header{"Origin": {origin}}
	if o.noOrigin {
		header = nil
	}
	conn, resp, err := websocket.Dial(ctx, ws, &websocket.DialOptions{
		HTTPClient: &http.Client{Jar: p.jar},
		HTTPHeader: header,
	})
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(1 << 20)
	return &client{ws: conn}, resp, nil
}

// frame is a received message.
type frame struct {
	JoinRef, Ref *string
	Topic, Event string
	Payload      json.RawMessage
}

// send writes one message and returns its ref.
func (c *client) send(topic, event string, payload any) string {
	c.t.Helper()
	c.ref++
	ref := strconv.Itoa(c.ref)
	var joinRef any
	if topic != "phoenix" && c.joinRef != "" {
		joinRef = c.joinRef
	}
	if event == "phx_join" {
		joinRef = ref
	}
	b, err := json.Marshal([]any{joinRef, ref, topic, event, payload})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
	return ref
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next message.
func (c *client) read() (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil || len(parts) != 5 {
		return frame{}, fmt.Errorf("not a vsn 2.0.0 message: %s", b)
	}
	var f frame
	for i, dst := range []any{&f.JoinRef, &f.Ref, &f.Topic, &f.Event} {
		if err := json.Unmarshal(parts[i], dst); err != nil {
			return frame{}, fmt.Errorf("message %s: %v", b, err)
		}
	}
	f.Payload = parts[4]
	return f, nil
}

// replyTo waits for the phx_reply to ref, applying any diff pushed before
// it, and returns its status and response.
func (c *client) replyTo(ref string) (string, map[string]any) {
	c.t.Helper()
	for {
		f, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for the reply to %s: %v", ref, err)
		}
		switch {
		case f.Event == "diff":
			var d map[string]any
			json.Unmarshal(f.Payload, &d)
			merge(c.rendered, d)
		case f.Event == "phx_reply" && f.Ref != nil && *f.Ref == ref:
			var r struct {
				Status   string         `json:"status"`
				Response map[string]any `json:"response"`
			}
			if err := json.Unmarshal(f.Payload, &r); err != nil {
				c.t.Fatalf("reply %s: %v", f.Payload, err)
			}
			return r.Status, r.Response
		default:
			c.t.Fatalf("unexpected message %+v %s", f, f.Payload)
		}
	}
}

// call sends a message and returns its reply.
func (c *client) call(topic, event string, payload any) (string, map[string]any) {
	c.t.Helper()
	return c.replyTo(c.send(topic, event, payload))
}

// joinPayload is what the JavaScript client sends with phx_join.
func joinPayloadOf(p page, mounts int) map[string]any {
	return map[string]any{
		"url":     p.base + "/",
		"params":  map[string]any{"_csrf_token": p.csrf, "_mounts": mounts, "_mount_attempts": 0},
		"session": p.session,
		"static":  nil,
		"sticky":  false,
	}
}

// join joins the page's view and keeps its rendered tree.
func (c *client) join(p page, mounts int) {
	c.t.Helper()
	status, resp := c.tryJoin(p.topic(), joinPayloadOf(p, mounts))
	if status != "ok" {
		c.t.Fatalf("join: %s %v", status, resp)
	}
}

// tryJoin sends phx_join and returns the reply; on ok it keeps the tree.
func (c *client) tryJoin(topic string, payload map[string]any) (string, map[string]any) {
	c.t.Helper()
	ref := c.send(topic, "phx_join", payload)
	status, resp := c.replyTo(ref)
	if status == "ok" {
		c.topic, c.joinRef = topic, ref
		r, ok := resp["rendered"].(map[string]any)
		if !ok || r["s"] == nil {
			c.t.Fatalf("join reply without a rendered tree: %v", resp)
		}
		c.rendered = r
	}
	return status, resp
}

// event pushes an event to the joined view and merges the reply's diff. It
// returns the diff (nil if none).
func (c *client) event(typ, name string, value any) map[string]any {
	c.t.Helper()
	status, resp := c.call(c.topic, "event", map[string]any{"type": typ, "event": name, "value": value})
	if status != "ok" {
		c.t.Fatalf("event %s: %s %v", name, status, resp)
	}
	d, _ := resp["diff"].(map[string]any)
	if d != nil {
		merge(c.rendered, d)
	}
	return d
}

func (c *client) click(name string) map[string]any {
	return c.event("click", name, map[string]any{})
}

// html renders the tree.
func (c *client) html() string {
	var b strings.Builder
	render(&b, c.rendered)
	return b.String()
}

// text returns the text of the element with id in the rendered HTML (the
// page's ids are on elements holding text only).
func (c *client) text(id string) string {
	c.t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(c.html())
	if m == nil {
		c.t.Fatalf("no element %q in\n%s", id, c.html())
	}
	return html.UnescapeString(m[1])
}

// merge applies a diff to a tree as the JavaScript client's Rendered does
// (mutableMerge, mergeKeyed), for the parts this server sends.
func merge(target, diff map[string]any) {
	if k, ok := diff["k"].(map[string]any); ok {
		tk := target["k"].(map[string]any)
		for i, e := range k {
			if i == "kc" {
				continue
			}
			te, ok := tk[i].(map[string]any)
			if !ok {
				te = map[string]any{}
				tk[i] = te
			}
			merge(te, e.(map[string]any))
		}
		n, old := int(k["kc"].(float64)), int(tk["kc"].(float64))
		for i := n; i < old; i++ {
			delete(tk, strconv.Itoa(i))
		}
		tk["kc"] = k["kc"]
		return
	}
	for key, v := range diff {
		vm, isObj := v.(map[string]any)
		tm, tIsObj := target[key].(map[string]any)
		if isObj && vm["s"] == nil && tIsObj {
			merge(tm, vm)
		} else {
			target[key] = v
		}
	}
}

// render writes a tree as HTML, as the JavaScript client's toOutputBuffer.
func render(b *strings.Builder, tree map[string]any) {
	statics := tree["s"].([]any)
	if k, ok := tree["k"].(map[string]any); ok {
		for i := 0; i < int(k["kc"].(float64)); i++ {
			dynamics(b, statics, k[strconv.Itoa(i)].(map[string]any))
		}
		return
	}
	dynamics(b, statics, tree)
}

func dynamics(b *strings.Builder, statics []any, d map[string]any) {
	for i := 0; i < len(statics)-1; i++ {
		b.WriteString(statics[i].(string))
		switch v := d[strconv.Itoa(i)].(type) {
		case string:
			b.WriteString(v)
		case map[string]any:
			render(b, v)
		}
	}
	b.WriteString(statics[len(statics)-1].(string))
}
