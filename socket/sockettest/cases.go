package sockettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/store"
)

var storeChoice = []testCase{
	{"with no option a Manager keeps contexts in a store of its own and closes it", func(t *testing.T, e *env) {
		m := socket.NewManager[page]()
		own := m.Store()
		if own == nil {
			t.Fatal("Store() = nil")
		}
		id := e.id("default")
		s, err := m.Open(e.ctx, id, page{Title: "hello"})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		e.assign(s, count.Set(3))
		e.render(s)
		if _, err := own.Load(e.ctx, id); err != nil {
			t.Fatalf("the Manager's own store: Load: %v", err)
		}
		if _, err := e.raw.Load(e.ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the given store: Load = %v, want ErrNotFound", err)
		}
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := own.Load(e.ctx, id); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("after Manager.Close, its store's Load = %v, want ErrClosed", err)
		}
	}},
	{"WithStore keeps contexts in the given store and leaves it open", func(t *testing.T, e *env) {
		m := socket.NewManager[page](socket.WithStore(e.raw))
		if m.Store() != e.raw {
			t.Fatalf("Store() = %v, want the given store", m.Store())
		}
		id := e.id("given")
		s, err := m.Open(e.ctx, id, page{Title: "hello"})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		e.assign(s, count.Set(3))
		e.render(s)
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		var n int
		e.stored(id, "count", &n) // fails if the store was closed
		if n != 3 {
			t.Fatalf("stored count = %d, want 3", n)
		}
	}},
	{"a context type that is not a struct is refused with a clear error", func(t *testing.T, e *env) {
		m := socket.NewManager[[]int](socket.WithStore(e.counter))
		_, err := m.Open(e.ctx, e.id("notstruct"), nil)
		if err == nil || !strings.Contains(err.Error(), "want a struct") {
			t.Fatalf("Open = %v, want an error saying a struct is wanted", err)
		}
	}},
}

var reading = []testCase{
	{"modifying what Context returns changes neither the socket nor the store", func(t *testing.T, e *env) {
		initial := page{Title: "t", Tags: []string{"a", "b"}, Meta: map[string]string{"k": "v"}, Owner: &person{Name: "ann"}, Blob: []byte{1, 2}}
		s := e.open("read", initial)
		id := s.ID()
		before := e.load(id)

		c := s.Context()
		c.Tags[0] = "changed"
		c.Tags = append(c.Tags, "more")
		c.Meta["k"] = "changed"
		c.Meta["new"] = "x"
		c.Owner.Name = "bob"
		c.Blob[0] = 9
		c.Title = "changed"

		want := page{Title: "t", Tags: []string{"a", "b"}, Meta: map[string]string{"k": "v"}, Owner: &person{Name: "ann"}, Blob: []byte{1, 2}}
		if got := s.Context(); !reflect.DeepEqual(got, want) {
			t.Fatalf("context after modifying a copy = %+v, want %+v", got, want)
		}
		if changes := e.writes(func() { e.render(s) }); len(changes) != 0 {
			t.Fatalf("render after reading wrote %v", changes)
		}
		if after := e.load(id); !reflect.DeepEqual(after.Fields, before.Fields) {
			t.Fatalf("stored fields changed by reading: %v, want %v", after.Fields, before.Fields)
		}
	}},
	{"the caller's initial value is copied, not kept", func(t *testing.T, e *env) {
		initial := page{Tags: []string{"a"}}
		s := e.open("initial", initial)
		initial.Tags[0] = "changed"
		if got := tags.Get(s); got[0] != "a" {
			t.Fatalf("tags = %v after modifying the initial value, want [a]", got)
		}
		// Reload takes a missing field from the initial value as Open saw it.
		if _, err := e.raw.Apply(e.ctx, s.ID(), store.Change{Delete: []string{"tags"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(e.ctx); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if got := tags.Get(s); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("tags = %v after Reload of a record without them, want [a]", got)
		}
	}},
}

var assigning = []testCase{
	{"assign sets the named fields and the rest keep their values", func(t *testing.T, e *env) {
		s := e.open("merge", page{Title: "t", Count: 1, Tags: []string{"x"}})
		e.assign(s, count.Set(2), socket.Set("tags", []string{"y"}))
		want := page{Title: "t", Count: 2, Tags: []string{"y"}}
		if got := s.Context(); !reflect.DeepEqual(got, want) {
			t.Fatalf("context = %+v, want %+v", got, want)
		}
		e.render(s)
		var st string
		e.stored(s.ID(), "title", &st)
		var n int
		e.stored(s.ID(), "count", &n)
		if st != "t" || n != 2 {
			t.Fatalf("stored title, count = %q, %d, want \"t\", 2", st, n)
		}
	}},
	{"a refused assignment names the field and changes nothing", func(t *testing.T, e *env) {
		type other struct{ X int }
		otherX := socket.FieldOf(func(o *other) *int { return &o.X })
		for _, tc := range []struct {
			name  string
			bad   socket.Assignment
			field string
		}{
			{"an unknown name", socket.Set("nope", 1), "nope"},
			{"a value of the wrong type", socket.Set("count", "seven"), "count"},
			{"an int64 for an int", socket.Set("count", int64(7)), "count"},
			{"nil for an int", socket.Set("count", nil), "count"},
			{"an unstored field by name", socket.Set("Events", make(chan string)), "Events"},
			{"a field of another context type", otherX.Set(1), "X"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := e.open("refuse-"+strings.ReplaceAll(tc.name, " ", "-"), page{Title: "t", Count: 1})
				for _, f := range []func(...socket.Assignment) error{s.Assign, s.TempAssign} {
					err := f(title.Set("new"), tc.bad)
					if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.field)) {
						t.Fatalf("error = %v, want one naming %q", err, tc.field)
					}
				}
				if got := s.Context(); got.Title != "t" || got.Count != 1 {
					t.Fatalf("context = %+v after a refused assign, want it unchanged", got)
				}
				if changes := e.writes(func() { e.render(s) }); len(changes) != 0 {
					t.Fatalf("render after a refused assign wrote %v", changes)
				}
			})
		}
	}},
	{"zero values can be assigned and are written", func(t *testing.T, e *env) {
		s := e.open("zero", page{Title: "t", Count: 1, Tags: []string{"x"}, Meta: map[string]string{"k": "v"}, Owner: &person{}})
		e.assign(s, title.Set(""), count.Set(0), tags.Set([]string{}), socket.Set("meta", nil), socket.Set("owner", nil))
		want := page{Tags: []string{}}
		if got := s.Context(); !reflect.DeepEqual(got, want) {
			t.Fatalf("context = %#v, want %#v", got, want)
		}
		e.render(s)
		rec := e.load(s.ID())
		for name, v := range map[string]any{"title": "", "count": 0, "tags": []string{}, "meta": map[string]string(nil), "owner": (*person)(nil)} {
			if b := mustEncode(t, v); !bytes.Equal(rec.Fields[name], b) {
				t.Errorf("stored %q = %x, want %x", name, rec.Fields[name], b)
			}
		}
	}},
	{"FieldOf refuses an accessor that does not point to a top-level field", func(t *testing.T, e *env) {
		type nested struct {
			In struct{ A, B int }
		}
		var outside int
		for name, get := range map[string]func(*nested) *int{
			"the first field of a nested struct": func(n *nested) *int { return &n.In.A },
			"a later field of a nested struct":   func(n *nested) *int { return &n.In.B },
			"a variable outside the context":     func(*nested) *int { return &outside },
			"nil":                                func(*nested) *int { return nil },
		} {
			t.Run(name, func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Fatal("FieldOf did not panic")
					}
				}()
				socket.FieldOf(get)
			})
		}
	}},
}

var tempAssigning = []testCase{
	{"the render sees the temporary value, then the field returns to its reset value after every cycle", func(t *testing.T, e *env) {
		s := e.open("temp", page{Photos: []string{"stale"}})
		id := s.ID()
		reset := mustEncode(t, []string{})
		var writes []store.Change
		e.counter.Reset()
		e.tempAssign(s, photos.Set([]string{}))
		for cycle, batch := range [][]string{{"a.jpg", "b.jpg"}, {"c.jpg"}, nil} {
			if batch != nil {
				e.assign(s, photos.Set(batch)) // a plain Assign: the reset value stays in force
			}
			seen, _ := e.render(s)
			if want := batch; want != nil && !slices.Equal(seen.Photos, want) {
				t.Fatalf("cycle %d: render saw %v, want %v", cycle, seen.Photos, want)
			}
			if got := photos.Get(s); got == nil || len(got) != 0 {
				t.Fatalf("cycle %d: after the render photos = %#v, want []string{}", cycle, got)
			}
			if got := e.load(id).Fields["photos"]; !bytes.Equal(got, reset) {
				t.Fatalf("cycle %d: stored photos = %x, want the reset value %x", cycle, got, reset)
			}
		}
		writes = e.counter.Changes()
		for _, ch := range writes {
			if b, ok := ch.Set["photos"]; ok && !bytes.Equal(b, reset) {
				t.Fatalf("a write carried photos = %x, not the reset value", b)
			}
		}
	}},
	{"the reset value is copied, so changing the field in place cannot change it", func(t *testing.T, e *env) {
		s := e.open("tempcopy", page{})
		e.tempAssign(s, meta.Set(map[string]string{}))
		e.render(s)
		m := meta.Get(s)
		m["leak"] = "x" // in place, on the context's own map
		e.render(s)
		if got := meta.Get(s); len(got) != 0 {
			t.Fatalf("after a cycle meta = %v, want the empty reset value", got)
		}
	}},
}

var renderCycle = []testCase{
	{"a cycle's assigns accumulate into one write", func(t *testing.T, e *env) {
		s := e.open("accumulate", page{Title: "t"})
		changes := e.writes(func() {
			e.assign(s, count.Set(1))
			e.assign(s, tags.Set([]string{"x"}))
			e.assign(s, count.Set(2))
			e.render(s)
		})
		if len(changes) != 1 {
			t.Fatalf("%d writes, want 1", len(changes))
		}
		if got := fieldNames(changes[0]); !slices.Equal(got, []string{"count", "tags"}) {
			t.Fatalf("write set %v, want [count tags]", got)
		}
		if ch := changes[0]; !ch.CheckVersion || ch.Replace || len(ch.Delete) != 0 {
			t.Fatalf("write = %+v, want a version-checked merge", ch)
		}
		var n int
		e.stored(s.ID(), "count", &n)
		if n != 2 {
			t.Fatalf("stored count = %d, want the last assigned, 2", n)
		}
	}},
	{"only fields whose value differs from the store are written", func(t *testing.T, e *env) {
		s := e.open("differs", page{Title: "t", Count: 1})
		changes := e.writes(func() {
			e.assign(s, title.Set("t"), count.Set(5))
			e.render(s)
		})
		if len(changes) != 1 || !slices.Equal(fieldNames(changes[0]), []string{"count"}) {
			t.Fatalf("writes %v, want one setting [count]", changes)
		}
	}},
	{"a cycle that changes nothing writes nothing", func(t *testing.T, e *env) {
		s := e.open("nothing", page{Title: "t", Count: 1, Tags: []string{"a"}})
		v := s.Version()
		changes := e.writes(func() {
			e.render(s)
			e.assign(s, title.Set("t"), count.Set(1), tags.Set([]string{"a"}))
			e.render(s)
		})
		if len(changes) != 0 {
			t.Fatalf("writes %v, want none", changes)
		}
		if s.Version() != v {
			t.Fatalf("version moved from %d to %d", v, s.Version())
		}
	}},
	{"a value changed in place and assigned again is written", func(t *testing.T, e *env) {
		s := e.open("inplace", page{Tags: []string{"a", "b"}, Meta: map[string]string{"k": "v"}})
		ts := tags.Get(s)
		ts[0] = "changed"
		m := meta.Get(s)
		m["k"] = "changed"
		changes := e.writes(func() {
			e.assign(s, tags.Set(ts), meta.Set(m))
			e.render(s)
		})
		if len(changes) != 1 || !slices.Equal(fieldNames(changes[0]), []string{"meta", "tags"}) {
			t.Fatalf("writes %v, want one setting [meta tags]", changes)
		}
		var got []string
		e.stored(s.ID(), "tags", &got)
		if !slices.Equal(got, []string{"changed", "b"}) {
			t.Fatalf("stored tags = %v", got)
		}
	}},
	{"a render that fails resets nothing, and the next one sees the same changes and writes nothing again", func(t *testing.T, e *env) {
		// The write comes before the render, so that a render (and the diff
		// a LiveView sends) always shows what the store holds.
		s := e.open("renderfails", page{})
		boom := errors.New("template broke")
		e.tempAssign(s, photos.Set([]string{}))
		e.render(s)
		e.assign(s, count.Set(1), photos.Set([]string{"p"}))
		changes := e.writes(func() {
			if err := s.Render(e.ctx, func(page, socket.Changed) error { return boom }); !errors.Is(err, boom) {
				t.Fatalf("Render = %v, want the render's error", err)
			}
		})
		if len(changes) != 1 || !slices.Equal(fieldNames(changes[0]), []string{"count"}) {
			t.Fatalf("the cycle wrote %v, want count once, before rendering", changes)
		}
		defer func() {
			if changes := e.writes(func() {}); len(changes) != 0 {
				t.Fatalf("the render after the failed one wrote again: %v", changes)
			}
		}()
		e.counter.Reset()
		if got := photos.Get(s); !slices.Equal(got, []string{"p"}) {
			t.Fatalf("photos = %v after a failed render, want [p] (not reset)", got)
		}
		seen, changed := e.render(s)
		if !slices.Equal(seen.Photos, []string{"p"}) || !changed.Has("count") {
			t.Fatalf("next render saw photos %v, changed %v; want [p] and count changed", seen.Photos, changed.Names())
		}
		var n int
		e.stored(s.ID(), "count", &n)
		if n != 1 {
			t.Fatalf("stored count = %d, want 1", n)
		}
	}},
}

var cycleCost = []testCase{
	{"assigning one int writes and allocates the same whatever else the context holds", func(t *testing.T, e *env) {
		// The socket's allocations are the cycle's minus the store's: how a
		// backend lays out a record is its own business (the store suite's).
		meter := &allocMeter{ContextStore: e.counter}
		measure := func(name string, initial page) (written int, allocated uint64) {
			s, err := socket.NewManager[page](socket.WithStore(meter)).Open(e.ctx, e.open(name, initial).ID(), initial)
			if err != nil {
				t.Fatal(err)
			}
			const cycles = 20
			e.counter.Reset()
			meter.storeAlloc = 0
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range cycles {
				if err := s.Assign(count.Set(i + 1)); err != nil {
					t.Fatal(err)
				}
				if err := s.Render(e.ctx, noRender); err != nil {
					t.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			for _, ch := range e.counter.Changes() {
				if !slices.Equal(fieldNames(ch), []string{"count"}) {
					t.Fatalf("%s: a cycle wrote %v, want only [count]", name, fieldNames(ch))
				}
			}
			if n := e.counter.Applies(); n != cycles {
				t.Fatalf("%s: %d writes for %d cycles", name, n, cycles)
			}
			return e.counter.BytesWritten() / cycles, (after.TotalAlloc - before.TotalAlloc - meter.storeAlloc) / cycles
		}
		emptyBytes, emptyAlloc := measure("empty", page{})
		bigBytes, bigAlloc := measure("big", page{Blob: make([]byte, 1<<20), Tags: slices.Repeat([]string{"tag"}, 1000)})
		if bigBytes != emptyBytes || bigBytes >= 1024 {
			t.Fatalf("bytes written per cycle: %d with 1 MiB elsewhere, %d without; want equal and under 1 KiB", bigBytes, emptyBytes)
		}
		// A cycle that copied or encoded the 1 MiB would allocate about that much.
		if bigAlloc > 2*emptyAlloc+64<<10 {
			t.Fatalf("bytes the socket allocated per cycle: %d with 1 MiB elsewhere, %d without", bigAlloc, emptyAlloc)
		}
	}},
}

// allocMeter counts the bytes allocated during the Applies it forwards (by
// one goroutine at a time).
type allocMeter struct {
	store.ContextStore
	storeAlloc uint64
}

func (m *allocMeter) Apply(ctx context.Context, id string, ch store.Change) (uint64, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	v, err := m.ContextStore.Apply(ctx, id, ch)
	runtime.ReadMemStats(&after)
	m.storeAlloc += after.TotalAlloc - before.TotalAlloc
	return v, err
}

var opening = []testCase{
	{"opening an id the store holds restores its context and says so", func(t *testing.T, e *env) {
		first, err := e.manager().Open(e.ctx, e.id("restore"), page{Title: "first"})
		if err != nil {
			t.Fatal(err)
		}
		if first.Restored() {
			t.Fatal("a socket on a new id says it was restored")
		}
		e.assign(first, count.Set(42), tags.Set([]string{"kept"}), owner.Set(&person{Name: "ann"}))
		e.render(first)
		if !first.Restored() {
			t.Fatal("Restored() = false once the socket's record was written")
		}
		s, err := e.manager().Open(e.ctx, first.ID(), page{Title: "initial", Count: -1})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !s.Restored() {
			t.Fatal("Restored() = false for a stored context")
		}
		want := page{Title: "first", Count: 42, Tags: []string{"kept"}, Owner: &person{Name: "ann"}}
		if got := s.Context(); !reflect.DeepEqual(got, want) {
			t.Fatalf("restored %+v, want %+v", got, want)
		}
		if s.Version() != first.Version() {
			t.Fatalf("version %d, want %d", s.Version(), first.Version())
		}
	}},
	{"opening an unknown id uses the initial context and writes nothing until something is assigned", func(t *testing.T, e *env) {
		// Open once saved every new id's record: a flood of page views
		// filled the store. A page view that assigns nothing lasting now
		// writes nothing; the first write creates the whole record.
		var s *socket.Socket[page]
		changes := e.writes(func() {
			var err error
			if s, err = e.manager().Open(e.ctx, e.id("new"), page{Title: "hello", Count: 7}); err != nil {
				t.Fatal(err)
			}
			e.tempAssign(s, photos.Set([]string{"temporary"}))
			e.render(s)
			e.render(s)
		})
		if len(changes) != 0 || s.Restored() || s.Version() != 0 {
			t.Fatalf("a page view wrote %v (restored %v, version %d), want nothing", changes, s.Restored(), s.Version())
		}
		if _, err := e.raw.Load(e.ctx, s.ID()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Load after a page view = %v, want ErrNotFound", err)
		}
		changes = e.writes(func() {
			e.assign(s, count.Set(8))
			e.render(s)
		})
		if len(changes) != 1 || !changes[0].CheckVersion || changes[0].IfVersion != 0 {
			t.Fatalf("writes %+v, want one creating the record", changes)
		}
		if got := fieldNames(changes[0]); !slices.Equal(got, []string{"blob", "count", "meta", "owner", "photos", "tags", "title"}) {
			t.Fatalf("the creating write set %v, want every stored field", got)
		}
		var st string
		e.stored(s.ID(), "title", &st)
		var ph []string
		e.stored(s.ID(), "photos", &ph)
		if st != "hello" || !slices.Equal(ph, []string{"temporary"}) {
			t.Fatalf("stored title %q, photos %v; want hello and the reset value", st, ph)
		}
		if rec := e.load(s.ID()); rec.Version != s.Version() || !s.Restored() {
			t.Fatalf("stored version %d, socket's %d, restored %v", rec.Version, s.Version(), s.Restored())
		}
	}},
	{"fields never stored start from the initial value", func(t *testing.T, e *env) {
		ch := make(chan string)
		first := e.open("unstored", page{Events: ch})
		if _, ok := e.load(first.ID()).Fields["Events"]; ok {
			t.Fatal("the msgpack:\"-\" field was stored")
		}
		ch2 := make(chan string)
		s, err := e.manager().Open(e.ctx, first.ID(), page{Events: ch2})
		if err != nil {
			t.Fatal(err)
		}
		if events.Get(s) != ch2 {
			t.Fatal("a restored socket does not hold the initial unstored field")
		}
	}},
}

var olderRecords = []testCase{
	{"unknown fields are ignored and missing fields keep their initial values", func(t *testing.T, e *env) {
		id := e.id("older")
		_, err := e.raw.Apply(e.ctx, id, store.Change{Set: map[string][]byte{
			"title":  mustEncode(t, "old"),
			"legacy": mustEncode(t, map[string]int{"gone": 1}),
		}})
		if err != nil {
			t.Fatal(err)
		}
		s, err := e.manager().Open(e.ctx, id, page{Title: "initial", Count: 7, Tags: []string{"t"}})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		want := page{Title: "old", Count: 7, Tags: []string{"t"}}
		if got := s.Context(); !s.Restored() || !reflect.DeepEqual(got, want) {
			t.Fatalf("restored=%v %+v, want %+v", s.Restored(), got, want)
		}
		e.assign(s, count.Set(8))
		e.render(s)
		if _, ok := e.load(id).Fields["legacy"]; !ok {
			t.Fatal("a write removed the unknown field")
		}
	}},
	{"a field whose bytes are malformed is an error naming id and field", func(t *testing.T, e *env) {
		deep := bytes.Repeat([]byte{0x81, 0xa1, 'k'}, 100_000) // maps nested 100k deep
		for _, tc := range []struct {
			name  string
			field string
			b     []byte
		}{
			{"a reserved byte", "count", []byte{0xc1}},
			{"a truncated string", "title", []byte{0xa5, 'a'}},
			{"a string declaring 4 GiB", "title", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}},
			{"an array declaring 4 G elements", "tags", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}},
			{"a map declaring 4 G entries", "meta", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}},
			{"maps nested 100k deep", "meta", deep},
			{"no bytes", "owner", []byte{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := e.id("corrupt-" + strings.ReplaceAll(tc.name, " ", "-"))
				_, err := e.raw.Apply(e.ctx, id, store.Change{Set: map[string][]byte{
					"title":  mustEncode(t, "ok"),
					tc.field: tc.b,
				}})
				if err != nil {
					t.Fatal(err)
				}
				s, err := e.manager().Open(e.ctx, id, page{})
				if err == nil {
					t.Fatalf("Open succeeded with %+v", s.Context())
				}
				var ce *store.CorruptError
				if !errors.Is(err, store.ErrCorrupt) || !errors.As(err, &ce) || ce.ID != id || ce.Field != tc.field {
					t.Fatalf("Open = %v, want a *store.CorruptError for id %q field %q", err, id, tc.field)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.field)) || !strings.Contains(err.Error(), id) {
					t.Fatalf("error %q does not name id and field", err)
				}
			})
		}
	}},
}

var staleSockets = []testCase{
	{"the stale socket's write fails with a conflict, overwrites nothing, and it can reload", func(t *testing.T, e *env) {
		stale := e.open("twice", page{Title: "t"})
		fresh, err := e.manager().Open(e.ctx, stale.ID(), page{})
		if err != nil {
			t.Fatal(err)
		}
		e.assign(fresh, count.Set(2))
		e.render(fresh)

		e.assign(stale, count.Set(1), title.Set("stale"))
		err = stale.Render(e.ctx, noRender)
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale Render = %v, want ErrConflict", err)
		}
		var n int
		e.stored(stale.ID(), "count", &n)
		var st string
		e.stored(stale.ID(), "title", &st)
		if n != 2 || st != "t" {
			t.Fatalf("stored count, title = %d, %q after the conflict, want 2, \"t\"", n, st)
		}

		if err := stale.Reload(e.ctx); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if got := stale.Context(); got.Count != 2 || got.Title != "t" {
			t.Fatalf("after Reload %+v, want count 2 and title t", got)
		}
		if stale.Version() != fresh.Version() {
			t.Fatalf("reloaded version %d, want %d", stale.Version(), fresh.Version())
		}
		if _, changed := e.render(stale); !changed.Has("count") {
			t.Fatalf("the render after Reload reports %v, want every field", changed.Names())
		}
		e.assign(stale, count.Set(3))
		e.render(stale)
		e.stored(stale.ID(), "count", &n)
		if n != 3 {
			t.Fatalf("stored count = %d after the reloaded socket wrote 3", n)
		}
	}},
}

var failedWrites = []testCase{
	{"the context keeps its assignments and the next cycle writes them once", func(t *testing.T, e *env) {
		s := e.open("fail", page{Title: "t"})
		e.tempAssign(s, photos.Set([]string{}))
		e.render(s)

		injected := errors.New("injected write failure")
		e.fail.failWith(injected)
		e.assign(s, count.Set(1), photos.Set([]string{"p"}))
		if err := s.Render(e.ctx, noRender); !errors.Is(err, injected) {
			t.Fatalf("Render = %v, want the store's error", err)
		}
		// The write comes first: nothing was rendered, nothing reset.
		want := page{Title: "t", Count: 1, Photos: []string{"p"}}
		if got := s.Context(); !reflect.DeepEqual(got, want) {
			t.Fatalf("context after a failed write %+v, want %+v", got, want)
		}
		e.assign(s, title.Set("u"))
		if err := s.Render(e.ctx, noRender); !errors.Is(err, injected) {
			t.Fatalf("second Render = %v, want the store's error", err)
		}
		e.fail.failWith(nil)

		changes := e.writes(func() { e.render(s) })
		if len(changes) != 1 || !slices.Equal(fieldNames(changes[0]), []string{"count", "title"}) {
			t.Fatalf("retry writes %v, want one setting [count title]", changes)
		}
		var n int
		e.stored(s.ID(), "count", &n)
		if n != 1 {
			t.Fatalf("stored count = %d, want 1", n)
		}
		if changes := e.writes(func() { e.render(s) }); len(changes) != 0 {
			t.Fatalf("the cycle after the retry wrote again: %v", changes)
		}
	}},
}

var concurrency = []testCase{
	{"32 goroutines of 50 increments each count exactly", func(t *testing.T, e *env) {
		s := e.open("concurrent", page{})
		const goroutines, events = 32, 50
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for range goroutines {
			wg.Go(func() {
				for range events {
					err := s.Event(e.ctx, func() error {
						return s.Assign(count.Set(count.Get(s) + 1))
					}, func(c page, _ socket.Changed) error {
						_ = s.ID() // methods that do not lock are usable in a render
						return nil
					})
					if err != nil {
						errs <- err
						return
					}
					_ = s.Context() // readers race with the events
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		var n int
		e.stored(s.ID(), "count", &n)
		if got := count.Get(s); got != goroutines*events || n != goroutines*events {
			t.Fatalf("count = %d in memory, %d stored, want %d", got, n, goroutines*events)
		}
	}},
}

var closing = []testCase{
	{"close deletes the record by default", func(t *testing.T, e *env) {
		s := e.open("close", page{Title: "t"})
		if err := s.Close(e.ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := e.raw.Load(e.ctx, s.ID()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Load after Close = %v, want ErrNotFound", err)
		}
		if err := s.Assign(count.Set(1)); !errors.Is(err, socket.ErrClosed) {
			t.Fatalf("Assign after Close = %v, want socket.ErrClosed", err)
		}
		if err := s.Render(e.ctx, noRender); !errors.Is(err, socket.ErrClosed) {
			t.Fatalf("Render after Close = %v, want socket.ErrClosed", err)
		}
		if err := s.Close(e.ctx); err != nil {
			t.Fatalf("second Close = %v, want nil", err)
		}
	}},
	{"with KeepOnClose the record stays and a reconnect resumes it", func(t *testing.T, e *env) {
		m := e.manager(socket.KeepOnClose())
		id := e.id("keep")
		s, err := m.Open(e.ctx, id, page{})
		if err != nil {
			t.Fatal(err)
		}
		e.assign(s, count.Set(5))
		e.render(s)
		if err := s.Close(e.ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		again, err := m.Open(e.ctx, id, page{})
		if err != nil {
			t.Fatal(err)
		}
		if !again.Restored() || count.Get(again) != 5 {
			t.Fatalf("reconnect: restored=%v count=%d, want true, 5", again.Restored(), count.Get(again))
		}
	}},
}

var changedFields = []testCase{
	{"the render is told which fields changed since the previous one", func(t *testing.T, e *env) {
		s := e.open("changed", page{Title: "t", Count: 1})
		e.tempAssign(s, photos.Set([]string{}))
		steps := []struct {
			name   string
			assign []socket.Assignment
			want   []string
		}{
			{"the first render reports every field", nil, []string{"Events", "blob", "count", "meta", "note", "owner", "photos", "tags", "title"}},
			{"nothing assigned, nothing changed", nil, nil},
			{"an assigned field with a new value", []socket.Assignment{count.Set(2)}, []string{"count"}},
			{"an assigned field with the same value is unchanged", []socket.Assignment{count.Set(2), title.Set("t")}, nil},
			{"a temporary value", []socket.Assignment{photos.Set([]string{"p"})}, []string{"photos"}},
			{"a temporary field back to its reset value", nil, []string{"photos"}},
			{"a temporary field still at its reset value", nil, nil},
			{"an unstored field is changed whenever it is assigned", []socket.Assignment{events.Set(nil)}, []string{"Events"}},
		}
		for _, st := range steps {
			if len(st.assign) > 0 {
				e.assign(s, st.assign...)
			}
			_, changed := e.render(s)
			if got := changed.Names(); !slices.Equal(got, st.want) {
				t.Fatalf("%s: Names() = %v, want %v", st.name, got, st.want)
			}
			for _, name := range st.want {
				if !changed.Has(name) {
					t.Fatalf("%s: Has(%q) = false", st.name, name)
				}
			}
			if changed.Has("no such field") {
				t.Fatalf("%s: Has reports an unknown field", st.name)
			}
		}
	}},
}

var typeChanges = []testCase{
	{"well-formed bytes of another type are a schema change: the page opens and names the field it reset", func(t *testing.T, e *env) {
		var logged strings.Builder
		id := e.seed("retyped", map[string]any{"title": "kept", "count": "seven", "tags": 5})
		m := e.manager(socket.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
		s, err := m.Open(e.ctx, id, page{Count: 3, Tags: []string{"initial"}})
		if err != nil {
			t.Fatalf("Open = %v, want the page to open", err)
		}
		want := page{Title: "kept", Count: 3, Tags: []string{"initial"}}
		if got := s.Context(); !reflect.DeepEqual(got, want) {
			t.Fatalf("context %+v, want %+v", got, want)
		}
		if got := s.ResetFields(); !slices.Equal(got, []string{"count", "tags"}) {
			t.Fatalf("ResetFields() = %v, want [count tags]", got)
		}
		if !strings.Contains(logged.String(), "field=count") || !strings.Contains(logged.String(), "field=tags") {
			t.Fatalf("the log does not name the reset fields: %s", logged.String())
		}
		// The old bytes stay until the field is written: a node of the old
		// build may still read them.
		var old string
		e.stored(id, "count", &old)
		e.assign(s, count.Set(4))
		e.render(s)
		var n int
		e.stored(id, "count", &n)
		if old != "seven" || n != 4 {
			t.Fatalf("stored count %q before the write, %d after, want seven and 4", old, n)
		}
	}},
	{"with Strict a schema change is an error naming id, field and both types, not corruption", func(t *testing.T, e *env) {
		id := e.seed("strict", map[string]any{"count": "seven"})
		_, err := e.manager(socket.Strict()).Open(e.ctx, id, page{})
		var se *store.SchemaError
		if !errors.Is(err, store.ErrSchema) || errors.Is(err, store.ErrCorrupt) || !errors.As(err, &se) {
			t.Fatalf("Open = %v, want a *store.SchemaError that is not ErrCorrupt", err)
		}
		if se.ID != id || se.Field != "count" || se.Stored != "str" || se.Go != "int" {
			t.Fatalf("SchemaError %+v, want id %q, field count, stored str, Go int", *se, id)
		}
	}},
	{"a migration converts a changed type, and the next render writes the new value", func(t *testing.T, e *env) {
		id := e.seed("migrate-type", map[string]any{"count": "12"})
		m := e.manager(socket.Migrate("count", func(old socket.Stored) ([]socket.Assignment, error) {
			var v string
			if err := old.Decode(&v); err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(v)
			return []socket.Assignment{count.Set(n)}, err
		}))
		s, err := m.Open(e.ctx, id, page{})
		if err != nil {
			t.Fatal(err)
		}
		if count.Get(s) != 12 || len(s.ResetFields()) != 0 {
			t.Fatalf("count %d, reset %v; want 12 and none", count.Get(s), s.ResetFields())
		}
		e.render(s)
		var n int
		e.stored(id, "count", &n)
		if n != 12 {
			t.Fatalf("stored count %d after the render, want 12", n)
		}
	}},
	{"a migration renames a field, and a record that holds the new name keeps it", func(t *testing.T, e *env) {
		rename := socket.Migrate("cnt", func(old socket.Stored) ([]socket.Assignment, error) {
			var n int
			if err := old.Decode(&n); err != nil {
				return nil, err
			}
			return []socket.Assignment{count.Set(n)}, nil
		})
		id := e.seed("migrate-rename", map[string]any{"cnt": 5})
		s, err := e.manager(rename).Open(e.ctx, id, page{})
		if err != nil {
			t.Fatal(err)
		}
		e.assign(s, count.Set(count.Get(s)+1))
		e.render(s)
		var n, old int
		e.stored(id, "count", &n)
		e.stored(id, "cnt", &old)
		if n != 6 || old != 5 {
			t.Fatalf("stored count %d, cnt %d; want 6 and the old field kept (5)", n, old)
		}
		again, err := e.manager(rename).Open(e.ctx, id, page{})
		if err != nil {
			t.Fatal(err)
		}
		if count.Get(again) != 6 {
			t.Fatalf("reopened count %d, want 6: the migration ran again over a migrated record", count.Get(again))
		}
	}},
	{"a migration splits one field into two", func(t *testing.T, e *env) {
		id := e.seed("migrate-split", map[string]any{"heading": "Ann|x,y"})
		split := socket.Migrate("heading", func(old socket.Stored) ([]socket.Assignment, error) {
			var h string
			if err := old.Decode(&h); err != nil {
				return nil, err
			}
			name, list, _ := strings.Cut(h, "|")
			return []socket.Assignment{title.Set(name), tags.Set(strings.Split(list, ","))}, nil
		})
		s, err := e.manager(split).Open(e.ctx, id, page{})
		if err != nil {
			t.Fatal(err)
		}
		e.render(s)
		var got string
		var list []string
		e.stored(id, "title", &got)
		e.stored(id, "tags", &list)
		if got != "Ann" || !slices.Equal(list, []string{"x", "y"}) {
			t.Fatalf("stored title %q, tags %v; want Ann and [x y]", got, list)
		}
	}},
	{"a migration's error fails the Open, and bad migration options are refused", func(t *testing.T, e *env) {
		id := e.seed("migrate-fails", map[string]any{"cnt": 5})
		boom := errors.New("cannot convert")
		fails := socket.Migrate("cnt", func(socket.Stored) ([]socket.Assignment, error) { return nil, boom })
		if _, err := e.manager(fails).Open(e.ctx, id, page{}); !errors.Is(err, boom) {
			t.Fatalf("Open = %v, want the migration's error", err)
		}
		for name, opt := range map[string]socket.Option{
			"retiring a field the type has": socket.Retire("count"),
			"a nil migration":               socket.Migrate("x", nil),
		} {
			if _, err := e.manager(opt).Open(e.ctx, id, page{}); err == nil {
				t.Fatalf("%s: Open succeeded", name)
			}
		}
	}},
	{"retired fields are deleted by the next write, and kept until they are retired", func(t *testing.T, e *env) {
		id := e.seed("retire", map[string]any{"title": "t", "legacy": 1, "older": "x"})
		s, err := e.manager(socket.Retire("legacy", "older", "never-stored")).Open(e.ctx, id, page{})
		if err != nil {
			t.Fatal(err)
		}
		e.render(s) // a render that writes nothing deletes nothing
		if rec := e.load(id); len(rec.Fields) != 3 {
			t.Fatalf("fields %v after a render that wrote nothing", fieldNames(store.Change{Set: rec.Fields}))
		}
		changes := e.writes(func() {
			e.assign(s, count.Set(1))
			e.render(s)
		})
		if len(changes) != 1 || !slices.Equal(sorted(changes[0].Delete), []string{"legacy", "older"}) {
			t.Fatalf("writes %+v, want one deleting legacy and older", changes)
		}
		if got := fieldNames(store.Change{Set: e.load(id).Fields}); !slices.Equal(got, []string{"count", "title"}) {
			t.Fatalf("record fields %v, want [count title]: no dead bytes", got)
		}
		if changes := e.writes(func() { e.assign(s, count.Set(2)); e.render(s) }); len(changes[0].Delete) != 0 {
			t.Fatalf("the next write deleted %v again", changes[0].Delete)
		}
	}},
}

var conflictRetries = []testCase{
	{"an event that meets a conflict runs again on the stored context and lands once", func(t *testing.T, e *env) {
		a := e.open("retry", page{})
		b, err := e.manager().Open(e.ctx, a.ID(), page{})
		if err != nil {
			t.Fatal(err)
		}
		const events = 40
		handled, rendered := 0, 0
		for i := range events {
			s := []*socket.Socket[page]{a, b}[i%2] // every event meets the other's write
			err := s.Event(e.ctx, func() error {
				handled++
				return s.Assign(count.Set(count.Get(s) + 1))
			}, func(page, socket.Changed) error {
				rendered++
				return nil
			})
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		}
		var n int
		e.stored(a.ID(), "count", &n)
		if n != events || rendered != events {
			t.Fatalf("stored count %d, %d renders; want %d of each", n, rendered, events)
		}
		if handled <= events {
			t.Fatalf("%d handler runs for %d alternating events: no conflict was retried", handled, events)
		}
	}},
	{"with EventRetries(0) the conflict is returned and nothing is written", func(t *testing.T, e *env) {
		a := e.open("noretry", page{})
		b, err := e.manager(socket.EventRetries(0)).Open(e.ctx, a.ID(), page{})
		if err != nil {
			t.Fatal(err)
		}
		e.assign(a, count.Set(1))
		e.render(a)
		err = b.Event(e.ctx, func() error { return b.Assign(count.Set(100)) }, noRender)
		var n int
		e.stored(a.ID(), "count", &n)
		if !errors.Is(err, store.ErrConflict) || n != 1 {
			t.Fatalf("Event = %v, stored count %d; want ErrConflict and 1", err, n)
		}
	}},
	{"Sync brings a stale socket to the stored version before a render that writes nothing", func(t *testing.T, e *env) {
		stale := e.open("sync", page{})
		fresh, err := e.manager().Open(e.ctx, stale.ID(), page{})
		if err != nil {
			t.Fatal(err)
		}
		if reloaded, err := stale.Sync(e.ctx); err != nil || reloaded {
			t.Fatalf("Sync of an up-to-date socket = %v, %v; want false, nil", reloaded, err)
		}
		e.assign(fresh, count.Set(5))
		e.render(fresh)
		reloaded, err := stale.Sync(e.ctx)
		if err != nil || !reloaded || count.Get(stale) != 5 || stale.Version() != fresh.Version() {
			t.Fatalf("Sync = %v, %v; count %d, version %d; want true, 5, %d", reloaded, err, count.Get(stale), stale.Version(), fresh.Version())
		}
		unborn, err := e.manager().Open(e.ctx, e.id("sync-new"), page{})
		if err != nil {
			t.Fatal(err)
		}
		if reloaded, err := unborn.Sync(e.ctx); err != nil || reloaded {
			t.Fatalf("Sync of a socket whose record does not exist yet = %v, %v", reloaded, err)
		}
	}},
}

// seed writes a record of the given field values, as an older build of the
// application wrote it, under a new id.
func (e *env) seed(name string, fields map[string]any) string {
	e.t.Helper()
	id := e.id(name)
	set := map[string][]byte{}
	for k, v := range fields {
		set[k] = mustEncode(e.t, v)
	}
	if _, err := e.raw.Apply(e.ctx, id, store.Change{Set: set}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }
