// Package sockettest checks that socket.Socket keeps its promises over a
// given store.ContextStore: each behaviour of the socket is a subtest named
// by what it promises. Run it from a backend's tests (or the root store_test.go) in
// a few lines:
//
//	func TestSocket(t *testing.T) {
//		sockettest.Run(t, func(t *testing.T) store.ContextStore {
//			s := memory.New()
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Every subtest opens a new store with open and uses ids of its own, which it
// deletes when it ends, so a shared server can be used. Stores are not
// closed by the suite: open registers that with t.Cleanup.
//
// It also provides Counter, a store wrapper that counts writes and the bytes
// they carry. The package depends on the standard library, store and socket.
package sockettest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/store"
)

// Opener returns a new store for one subtest.
type Opener func(t *testing.T) store.ContextStore

// Run runs every behaviour as a subtest, each over a store from open.
func Run(t *testing.T, open Opener) {
	t.Helper()
	for _, b := range behaviours {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range b.cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, newEnv(t, open)) })
			}
		})
	}
}

type behaviour struct {
	name  string
	cases []testCase
}

type testCase struct {
	name string
	run  func(t *testing.T, e *env)
}

// behaviours lists the socket's promises.
var behaviours = []behaviour{
	{"the default store is memory and another is chosen by an option", storeChoice},
	{"reading the context cannot change it or the store", reading},
	{"assign merges only what it sets and refuses what T lacks", assigning},
	{"temp assign resets after every render and never reaches the store", tempAssigning},
	{"a render cycle makes one write of what differs from the store", renderCycle},
	{"a cycle costs in proportion to what it assigns", cycleCost},
	{"open restores a stored context, and a page view writes nothing", opening},
	{"a record of an older context type is read safely", olderRecords},
	{"a deploy that changes the context type opens every page", typeChanges},
	{"a stale socket gets a conflict and can reload", staleSockets},
	{"an event that meets a conflict is applied once, never dropped", conflictRetries},
	{"a failed write keeps the context and is retried", failedWrites},
	{"events from several goroutines are serialised", concurrency},
	{"close deletes the record or keeps it for a reconnect", closing},
	{"the render learns which fields changed", changedFields},
}

// page is the context type the suite uses.
type page struct {
	Title  string            `msgpack:"title"`
	Count  int               `msgpack:"count"`
	Tags   []string          `msgpack:"tags"`
	Meta   map[string]string `msgpack:"meta"`
	Owner  *person           `msgpack:"owner"`
	Photos []string          `msgpack:"photos"`
	Blob   []byte            `msgpack:"blob"`
	Events chan string       `msgpack:"-"` // a node-local handle, never stored
	note   string            //nolint:unused // unexported: never stored
}

type person struct {
	Name string `msgpack:"name"`
}

// Handles on page's fields.
var (
	title  = socket.FieldOf(func(p *page) *string { return &p.Title })
	count  = socket.FieldOf(func(p *page) *int { return &p.Count })
	tags   = socket.FieldOf(func(p *page) *[]string { return &p.Tags })
	meta   = socket.FieldOf(func(p *page) *map[string]string { return &p.Meta })
	owner  = socket.FieldOf(func(p *page) **person { return &p.Owner })
	photos = socket.FieldOf(func(p *page) *[]string { return &p.Photos })
	events = socket.FieldOf(func(p *page) *chan string { return &p.Events })
)

// env is one subtest's store, wrapped to count and to fail on demand.
type env struct {
	t       *testing.T
	ctx     context.Context
	raw     store.ContextStore // the store from open
	fail    *failing           // raw, failing on demand
	counter *Counter           // fail, counted: what sockets write through
	prefix  string
}

func newEnv(t *testing.T, open Opener) *env {
	raw := open(t)
	f := &failing{next: raw}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &env{t: t, ctx: t.Context(), raw: raw, fail: f, counter: Count(f), prefix: "sockettest-" + hex.EncodeToString(b) + "-"}
}

// id returns a new id for this subtest; its record is deleted when the
// subtest ends.
func (e *env) id(name string) string {
	id := e.prefix + name
	e.t.Cleanup(func() { _ = e.raw.Delete(context.Background(), id) })
	return id
}

// manager returns a Manager over the counted store, closed at cleanup.
func (e *env) manager(opts ...socket.Option) *socket.Manager[page] {
	m := socket.NewManager[page](append([]socket.Option{socket.WithStore(e.counter)}, opts...)...)
	e.t.Cleanup(func() { _ = m.Close() })
	return m
}

// open returns a socket of a new Manager on a new id whose record holds
// initial, as a socket that reconnects finds it: a page view alone writes
// nothing, so a first socket creates the record with its first write.
func (e *env) open(name string, initial page) *socket.Socket[page] {
	e.t.Helper()
	id := e.id(name)
	first, err := e.manager().Open(e.ctx, id, initial)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.assign(first, title.Set(initial.Title)) // any field creates the record
	if err := first.Render(e.ctx, nil); err != nil {
		e.t.Fatalf("creating the record: %v", err)
	}
	s, err := e.manager().Open(e.ctx, id, initial)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	return s
}

// load returns the record stored under id, read from the raw store.
func (e *env) load(id string) store.Record {
	e.t.Helper()
	rec, err := e.raw.Load(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Load(%q): %v", id, err)
	}
	return rec
}

// stored decodes field name of the record under id into v.
func (e *env) stored(id, name string, v any) {
	e.t.Helper()
	rec := e.load(id)
	b, ok := rec.Fields[name]
	if !ok {
		e.t.Fatalf("record %q has no field %q", id, name)
	}
	if err := codec.Unmarshal(id, name, b, v); err != nil {
		e.t.Fatalf("decode stored %q: %v", name, err)
	}
}

func (e *env) assign(s *socket.Socket[page], as ...socket.Assignment) {
	e.t.Helper()
	if err := s.Assign(as...); err != nil {
		e.t.Fatalf("Assign: %v", err)
	}
}

func (e *env) tempAssign(s *socket.Socket[page], as ...socket.Assignment) {
	e.t.Helper()
	if err := s.TempAssign(as...); err != nil {
		e.t.Fatalf("TempAssign: %v", err)
	}
}

// render runs a render cycle that records what it saw.
func (e *env) render(s *socket.Socket[page]) (seen page, changed socket.Changed) {
	e.t.Helper()
	err := s.Render(e.ctx, func(c page, ch socket.Changed) error {
		seen, changed = c, ch
		return nil
	})
	if err != nil {
		e.t.Fatalf("Render: %v", err)
	}
	return seen, changed
}

// writes runs f and returns the changes the sockets gave the store meanwhile.
func (e *env) writes(f func()) []store.Change {
	e.t.Helper()
	e.counter.Reset()
	f()
	return e.counter.Changes()
}

func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := codec.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%v): %v", v, err)
	}
	return b
}

func noRender(page, socket.Changed) error { return nil }
