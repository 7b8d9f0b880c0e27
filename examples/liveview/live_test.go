package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/store"
)

// testKeys are the keys of the in-process test servers.
var testKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}

// startServer serves the example on st in this process and returns its base
// URL. The client's JavaScript files are not needed by the Go client.
func startServer(t testing.TB, st store.ContextStore, node string) string {
	t.Helper()
	srv, err := newServer(config{store: st, node: node, keys: testKeys, modules: "node_modules",
		log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

// newMemory returns a memory store closed with the test.
func newMemory(t testing.TB) store.ContextStore {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	return st
}

// storedCount returns the count the store holds for the page's view, or -1
// when it holds no record.
func storedCount(t testing.TB, st store.ContextStore, p page) int {
	t.Helper()
	var n int
	if found, _ := stored(t, st, p, "count", &n); !found {
		return -1
	}
	return n
}

func TestAGoClientJoinsClicksAndLeaves(t *testing.T) {
	st := newMemory(t)
	base := startServer(t, st, "A")
	p := loadPage(t, base, nil)
	c := dial(t, p)

	c.join(p, 0)
	if got := c.text("count"); got != "0" {
		t.Fatalf("count after join = %q, want 0", got)
	}
	if got := c.text("node"); got != "A" {
		t.Errorf("node = %q, want A", got)
	}
	if got := c.text("resumed"); got != "New page" {
		t.Errorf("resumed badge = %q, want New page", got)
	}
	if n := storedCount(t, st, p); n != -1 {
		t.Errorf("after a join without events the store holds a record (count %d), want none", n)
	}

	for i := 1; i <= 3; i++ {
		d := c.click("inc")
		if _, ok := d["s"]; ok || len(d) != 1 {
			t.Fatalf("click %d: diff %v, want one dynamic and no statics", i, d)
		}
		if got, want := c.text("count"), []string{"", "1", "2", "3"}[i]; got != want {
			t.Fatalf("count after click %d = %q, want %q", i, got, want)
		}
	}
	c.click("dec")
	if got := c.text("count"); got != "2" {
		t.Fatalf("count after dec = %q, want 2", got)
	}
	if n := storedCount(t, st, p); n != 2 {
		t.Errorf("the store holds count %d, want 2", n)
	}

	if status, _ := c.call("phoenix", "heartbeat", map[string]any{}); status != "ok" {
		t.Errorf("heartbeat: %s", status)
	}
	if status, _ := c.call(c.topic, "phx_leave", map[string]any{}); status != "ok" {
		t.Errorf("leave: %s", status)
	}
	if status, resp := c.call(c.topic, "event", map[string]any{"type": "click", "event": "inc", "value": map[string]any{}}); status != "error" {
		t.Errorf("event after leave: %s %v, want an error", status, resp)
	}

	// A new connection (a reconnect) resumes the context from the store.
	c2 := dial(t, p)
	c2.join(p, 1)
	if got := c2.text("count"); got != "2" {
		t.Errorf("count after rejoin = %q, want 2", got)
	}
	if got := c2.text("resumed"); got != "Resumed from the store" {
		t.Errorf("resumed badge after rejoin = %q", got)
	}
	if got := c2.click("inc"); got == nil || c2.text("count") != "3" {
		t.Errorf("click after rejoin: diff %v, count %q, want 3", got, c2.text("count"))
	}
}

// storedField decodes the field name of the page's record into v, and
// reports whether the record has it; the store must hold the record.
func storedField(t testing.TB, st store.ContextStore, p page, name string, v any) bool {
	t.Helper()
	found, has := stored(t, st, p, name, v)
	if !found {
		t.Fatalf("the store holds no record for %q", p.elemID)
	}
	return has
}

// stored decodes the field name of the page's record into v, and reports
// whether the store holds the record and whether the record has the field.
func stored(t testing.TB, st store.ContextStore, p page, name string, v any) (found, has bool) {
	t.Helper()
	id := strings.TrimPrefix(p.elemID, elementPrefix)
	rec, err := st.Load(context.Background(), id)
	if errors.Is(err, store.ErrNotFound) {
		return false, false
	}
	if err != nil {
		t.Fatalf("load %q: %v", id, err)
	}
	b, has := rec.Fields[name]
	if has {
		if err := codec.Unmarshal(id, name, b, v); err != nil {
			t.Fatal(err)
		}
	}
	return true, has
}

func TestTheFormIsKeptAndTheListIsTemporary(t *testing.T) {
	st := newMemory(t)
	base := startServer(t, st, "A")
	p := loadPage(t, base, nil)
	c := dial(t, p)
	c.join(p, 0)

	form := func(name, value string) map[string]any {
		t.Helper()
		status, resp := c.call(c.topic, "event", map[string]any{
			"type": "form", "event": name, "value": value, "meta": map[string]any{"_target": "text"},
		})
		if status != "ok" {
			t.Fatalf("form %s: %s %v", name, status, resp)
		}
		d, _ := resp["diff"].(map[string]any)
		merge(c.rendered, d)
		return d
	}
	form("draft", "text=hello+%3Cb%3E")
	if got := c.text("echo"); got != "hello <b>" {
		t.Errorf("echo = %q, want the draft, escaped in the HTML", got)
	}
	if !strings.Contains(c.html(), `value="hello &lt;b&gt;"`) {
		t.Errorf("the input's value is not the escaped draft:\n%s", c.html())
	}
	var draft string
	if !storedField(t, st, p, "draft", &draft) || draft != "hello <b>" {
		t.Errorf("stored draft = %q, want %q", draft, "hello <b>")
	}
	form("save", "text=saved+text")
	if c.text("saved") != "saved text" || c.text("echo") != "" {
		t.Errorf("after save: saved %q, draft %q", c.text("saved"), c.text("echo"))
	}
	status, _ := c.call(c.topic, "event", map[string]any{"type": "form", "event": "draft", "value": "text=" + strings.Repeat("x", maxText+1)})
	if status != "error" {
		t.Errorf("a draft over %d characters: %s, want an error", maxText, status)
	}

	// Lines: each render sends only the new line; the client keeps the
	// earlier ones in the DOM (phx-update="append").
	for i := 1; i <= 2; i++ {
		d := c.click("add")
		if !strings.Contains(c.html(), `<li id="line-`+strconv.Itoa(i)+`">`) || strings.Count(c.html(), "<li") != 1 {
			t.Fatalf("after add %d the tree renders\n%s\nwant line-%d alone (diff %v)", i, c.html(), i, d)
		}
	}
	d := c.click("inc")
	if strings.Contains(c.html(), "<li") {
		t.Errorf("the render after the adds still sends lines: diff %v", d)
	}
	var lines []Line
	storedField(t, st, p, "lines", &lines)
	if len(lines) != 0 {
		t.Errorf("the store holds lines %v, want none", lines)
	}

	// A rejoin (a new connection) resumes the count and the saved text; the
	// list starts empty.
	c2 := dial(t, p)
	c2.join(p, 1)
	if c2.text("count") != "1" || c2.text("saved") != "saved text" || strings.Contains(c2.html(), "<li") {
		t.Errorf("after the rejoin:\n%s", c2.html())
	}
}

// TestTwoNodesOnOnePageApplyEveryClick opens one page on two servers (two
// nodes on one store, as a stale node and the one a reconnect reached) and
// clicks on both in turn: every click lands once, on the newest count
// (Socket.Event re-runs a click that meets a newer record), and each reply
// shows the count the store holds.
func TestTwoNodesOnOnePageApplyEveryClick(t *testing.T) {
	st := newMemory(t)
	a, b := startServer(t, st, "A"), startServer(t, st, "B")
	p := loadPage(t, a, nil)
	onA := dial(t, p)
	onA.join(p, 0)
	pb := p
	pb.base = b
	onB := dial(t, pb)
	onB.join(pb, 1)
	for i := 1; i <= 20; i++ {
		c := onA
		if i%2 == 0 {
			c = onB
		}
		c.click("inc")
		if got := c.text("count"); got != strconv.Itoa(i) {
			t.Fatalf("click %d on node %s shows count %s", i, c.text("node"), got)
		}
		if n := storedCount(t, st, p); n != i {
			t.Fatalf("after click %d the store holds %d", i, n)
		}
	}
}

// failingStore fails every write while fail is set.
type failingStore struct {
	store.ContextStore
	fail atomic.Bool
}

var errStoreDown = errors.New("test: store down")

func (s *failingStore) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	if s.fail.Load() {
		return 0, errStoreDown
	}
	return s.ContextStore.Apply(ctx, id, c)
}

// TestAnEventTheStoreRefusesEndsTheView: the client is told (an error
// reply, then phx_error) and, rejoining, sees what the store holds, never
// the refused click.
func TestAnEventTheStoreRefusesEndsTheView(t *testing.T) {
	st := &failingStore{ContextStore: newMemory(t)}
	base := startServer(t, st, "A")
	p := loadPage(t, base, nil)
	c := dial(t, p)
	c.join(p, 0)
	c.click("inc")

	st.fail.Store(true)
	ref := c.send(c.topic, "event", map[string]any{"type": "click", "event": "inc", "value": map[string]any{}})
	if status, resp := c.replyTo(ref); status != "error" {
		t.Fatalf("a click the store refused: %s %v, want an error", status, resp)
	}
	f, err := c.read()
	if err != nil || f.Event != "phx_error" || f.Topic != c.topic {
		t.Fatalf("after the refused click: %+v %v, want phx_error on %s", f, err, c.topic)
	}
	if status, _ := c.call(c.topic, "event", map[string]any{"type": "click", "event": "inc", "value": map[string]any{}}); status != "error" {
		t.Errorf("an event on the ended view: %s, want an error", status)
	}

	st.fail.Store(false)
	c.join(p, 1) // the client rejoins on the same connection
	if got := c.text("count"); got != "1" {
		t.Errorf("after the rejoin the page shows count %s, want the stored 1", got)
	}
}
