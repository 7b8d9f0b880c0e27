package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livectx/livectx/store"
)

// Run runs every conformance case, each in its own subtest with a new store.
func (s Suite) Run(t *testing.T) {
	t.Helper()
	if s.TTL <= 0 {
		s.TTL = time.Minute
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, &env{suite: s})
		})
	}
}

// env opens the store of one case.
type env struct {
	suite Suite
	clock *Clock
}

// open returns a new store with the suite's clock and opts.
func (e *env) open(t *testing.T, opts ...store.Option) store.ContextStore {
	t.Helper()
	e.clock = NewClock()
	opts = append([]store.Option{store.WithClock(e.clock.Now)}, opts...)
	s := e.suite.Open(t, e.clock, opts...)
	if s == nil {
		t.Fatal("storetest: Open returned a nil store")
	}
	return s
}

// advance moves the store's time on by fraction of the TTL.
func (e *env) advance(fraction float64) {
	e.clock.Advance(time.Duration(fraction * float64(e.suite.TTL)))
}

var cases = []struct {
	name string
	run  func(t *testing.T, e *env)
}{
	{"a missing id is not found", missingID},
	{"a record round-trips", roundTrip},
	{"set merges, delete removes and replace replaces", setDeleteReplace},
	{"an empty change creates a record or bumps its version", emptyChange},
	{"apply is all or nothing", allOrNothing},
	{"versions strictly increase and a new record starts at 1", versionsIncrease},
	{"a stale expected version conflicts and writes nothing", staleVersion},
	{"an expired record behaves as missing", expiredIsMissing},
	{"apply and touch refresh the time to live and load does not", ttlRefresh},
	{"delete is idempotent", deleteIdempotent},
	{"bytes are not aliased in or out", noAliasing},
	{"lent bytes never change", lentBytes},
	{"loading named fields returns what load returns", namedFields},
	{"a cancelled context returns its error and writes nothing", cancelledContext},
	{"concurrent versioned writers to one id lose no acknowledged write", concurrentOneID},
	{"many ids written in parallel stay independent", concurrentManyIDs},
	{"hostile ids are stored one to one and isolated", hostileIDs},
	{"empty and over-long ids are refused", invalidIDs},
	{"invalid field names are refused", invalidFields},
	{"size caps refuse and write nothing", sizeCaps},
	{"close is idempotent and later calls get the closed error", closeIdempotent},
	{"listing returns every live id exactly once", listing},
	{"the time to live left is reported", ttlLeft},
	{"a wrapper offers exactly the optional interfaces of the store it wraps", wrapperCapabilities},
}

func ctx() context.Context { return context.Background() }

func apply(t *testing.T, s store.ContextStore, id string, c store.Change) uint64 {
	t.Helper()
	v, err := s.Apply(ctx(), id, c)
	if err != nil {
		t.Fatalf("Apply(%q): %v", id, err)
	}
	return v
}

// set returns a change setting the name, value pairs kv; an odd kv is a
// mistake in the suite, which it panics on rather than drop a name.
func set(kv ...string) store.Change {
	if len(kv)%2 != 0 {
		panic(fmt.Sprintf("storetest: set(%q): want name, value pairs", kv))
	}
	c := store.Change{Set: map[string][]byte{}}
	for i := 0; i < len(kv); i += 2 {
		c.Set[kv[i]] = []byte(kv[i+1])
	}
	return c
}

func load(t *testing.T, s store.ContextStore, id string) store.Record {
	t.Helper()
	r, err := s.Load(ctx(), id)
	if err != nil {
		t.Fatalf("Load(%q): %v", id, err)
	}
	return r
}

// wantFields fails unless the record under id holds exactly kv.
func wantFields(t *testing.T, s store.ContextStore, id string, kv ...string) store.Record {
	t.Helper()
	r := load(t, s, id)
	want := set(kv...).Set
	if !maps.EqualFunc(r.Fields, want, bytes.Equal) {
		t.Fatalf("Load(%q) fields = %s, want %s", id, show(r.Fields), show(want))
	}
	return r
}

func wantMissing(t *testing.T, s store.ContextStore, id string) {
	t.Helper()
	if r, err := s.Load(ctx(), id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load(%q) = %s, %v; want ErrNotFound", id, show(r.Fields), err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func show(m map[string][]byte) string {
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%q:%q", k, m[k])
	}
	b.WriteString("}")
	return b.String()
}

func missingID(t *testing.T, e *env) {
	s := e.open(t)
	wantMissing(t, s, "nobody")
	wantErr(t, "Touch of a missing id", s.Touch(ctx(), "nobody"), store.ErrNotFound)
	if err := s.Delete(ctx(), "nobody"); err != nil {
		t.Fatalf("Delete of a missing id: %v", err)
	}
	wantMissing(t, s, "nobody")
}

func roundTrip(t *testing.T, e *env) {
	s := e.open(t)
	in := map[string][]byte{
		"text":   []byte("hello"),
		"binary": {0, 1, 2, 0xff, 0, 0xc1},
		"empty":  {},
		"nil":    nil,
		"big":    bytes.Repeat([]byte("x"), 100_000),
	}
	v := apply(t, s, "r", store.Change{Set: in})
	if v == 0 {
		t.Fatal("Apply returned version 0")
	}
	r := load(t, s, "r")
	if r.Version != v {
		t.Errorf("Load version = %d, Apply returned %d", r.Version, v)
	}
	if len(r.Fields) != len(in) {
		t.Fatalf("Load returned %d fields, want %d: %s", len(r.Fields), len(in), show(r.Fields))
	}
	for k, want := range in {
		got, ok := r.Fields[k]
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("field %q = %q (present %v), want %q", k, got, ok, want)
		}
	}
	if got := r.Size(); got != (store.Record{Fields: in}).Size() {
		t.Errorf("Size() = %d, want the same as written", got)
	}
}

func setDeleteReplace(t *testing.T, e *env) {
	tests := []struct {
		name   string
		change store.Change
		want   []string
	}{
		{"set adds and overwrites, keeping the rest", set("b", "B2", "d", "D"), []string{"a", "A", "b", "B2", "c", "C", "d", "D"}},
		{"delete removes and ignores missing fields", store.Change{Delete: []string{"a", "zzz"}}, []string{"b", "B", "c", "C"}},
		{"set and delete together", store.Change{Set: map[string][]byte{"d": []byte("D")}, Delete: []string{"c"}}, []string{"a", "A", "b", "B", "d", "D"}},
		{"replace keeps only what it sets", store.Change{Set: map[string][]byte{"x": []byte("X")}, Replace: true}, []string{"x", "X"}},
		{"replace with nothing empties the record", store.Change{Replace: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.open(t)
			v1 := apply(t, s, "r", set("a", "A", "b", "B", "c", "C"))
			v2 := apply(t, s, "r", tt.change)
			if v2 <= v1 {
				t.Errorf("version went from %d to %d", v1, v2)
			}
			wantFields(t, s, "r", tt.want...)
		})
	}
}

func emptyChange(t *testing.T, e *env) {
	s := e.open(t)
	v1 := apply(t, s, "r", store.Change{})
	r := wantFields(t, s, "r")
	if r.Version != v1 {
		t.Fatalf("version %d, Apply returned %d", r.Version, v1)
	}
	apply(t, s, "r", set("a", "A"))
	v3 := apply(t, s, "r", store.Change{})
	if r := wantFields(t, s, "r", "a", "A"); r.Version != v3 || v3 <= v1 {
		t.Fatalf("after an empty change: version %d (Apply returned %d, first %d)", r.Version, v3, v1)
	}
}

func allOrNothing(t *testing.T, e *env) {
	tests := []struct {
		name   string
		change store.Change
		want   error
	}{
		{"one field over the cap", store.Change{Set: map[string][]byte{"a": []byte("new"), "huge": make([]byte, 1025)}, Delete: []string{"b"}}, store.ErrTooLarge},
		{"the record over the cap", store.Change{Set: map[string][]byte{"a": []byte("new"), "f1": make([]byte, 1000), "f2": make([]byte, 1000), "f3": make([]byte, 1000)}, Delete: []string{"b"}}, store.ErrTooLarge},
		{"one invalid field name", store.Change{Set: map[string][]byte{"a": []byte("new"), "": []byte("x")}, Delete: []string{"b"}}, store.ErrInvalidField},
		{"a stale version", store.Change{Set: map[string][]byte{"a": []byte("new")}, Delete: []string{"b"}, CheckVersion: true, IfVersion: 999}, store.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.open(t, store.WithMaxFieldSize(1024), store.WithMaxRecordSize(2048))
			v := apply(t, s, "r", set("a", "A", "b", "B"))
			_, err := s.Apply(ctx(), "r", tt.change)
			wantErr(t, "Apply", err, tt.want)
			if r := wantFields(t, s, "r", "a", "A", "b", "B"); r.Version != v {
				t.Fatalf("version changed from %d to %d by a failed Apply", v, r.Version)
			}
		})
	}
}

func versionsIncrease(t *testing.T, e *env) {
	s := e.open(t)
	changes := []store.Change{set("a", "1"), set("a", "1"), {}, {Delete: []string{"a"}}, {Replace: true}, set("b", "2")}
	var last uint64
	for i, c := range changes {
		v := apply(t, s, "r", c)
		if v <= last {
			t.Fatalf("Apply #%d returned version %d after %d", i, v, last)
		}
		if got := load(t, s, "r").Version; got != v {
			t.Fatalf("Apply #%d returned version %d, Load says %d", i, v, got)
		}
		last = v
	}
	if err := s.Delete(ctx(), "r"); err != nil {
		t.Fatal(err)
	}
	if v := apply(t, s, "r", set("a", "1")); v != 1 {
		t.Fatalf("a record created after Delete has version %d, want 1", v)
	}
	if v := apply(t, s, "other", set("a", "1")); v != 1 {
		t.Fatalf("a new record has version %d, want 1", v)
	}
}

func staleVersion(t *testing.T, e *env) {
	s := e.open(t)
	_, err := s.Apply(ctx(), "r", store.Change{Set: set("a", "A").Set, CheckVersion: true, IfVersion: 3})
	wantErr(t, "Apply expecting version 3 of a missing record", err, store.ErrConflict)
	wantMissing(t, s, "r")

	v1 := apply(t, s, "r", store.Change{Set: set("a", "A").Set, CheckVersion: true, IfVersion: 0})
	_, err = s.Apply(ctx(), "r", store.Change{Set: set("a", "other").Set, CheckVersion: true, IfVersion: 0})
	wantErr(t, "Apply expecting no record when one exists", err, store.ErrConflict)
	v2 := apply(t, s, "r", store.Change{Set: set("b", "B").Set, CheckVersion: true, IfVersion: v1})
	_, err = s.Apply(ctx(), "r", store.Change{Set: set("a", "stale").Set, Delete: []string{"b"}, CheckVersion: true, IfVersion: v1})
	wantErr(t, "Apply with the previous version", err, store.ErrConflict)
	// Every backend words a conflict alike (store.VersionConflict).
	if want := store.VersionConflict(v2, v1).Error(); !strings.HasSuffix(err.Error(), want) {
		t.Errorf("a conflict reads %q; want it to end with store.VersionConflict's %q", err, want)
	}
	if r := wantFields(t, s, "r", "a", "A", "b", "B"); r.Version != v2 {
		t.Fatalf("version %d after a conflict, want %d", r.Version, v2)
	}
}

func expiredIsMissing(t *testing.T, e *env) {
	s := e.open(t, store.WithTTL(e.suite.TTL))
	v := apply(t, s, "r", set("a", "A", "b", "B"))
	apply(t, s, "keep", set("a", "A"))
	e.advance(0.5)
	apply(t, s, "keep", store.Change{})
	e.advance(0.7)
	wantMissing(t, s, "r")
	wantErr(t, "Touch of an expired record", s.Touch(ctx(), "r"), store.ErrNotFound)
	if l, ok := store.As[store.Lister](s); ok {
		if ids := listAll(t, l, 2); !slices.Equal(ids, []string{"keep"}) {
			t.Fatalf("listing after expiry = %q, want only \"keep\"", ids)
		}
	}
	_, err := s.Apply(ctx(), "r", store.Change{Set: set("a", "stale").Set, CheckVersion: true, IfVersion: v})
	wantErr(t, "Apply expecting the expired record's version", err, store.ErrConflict)
	if nv := apply(t, s, "r", store.Change{Set: set("c", "C").Set, CheckVersion: true, IfVersion: 0}); nv != 1 {
		t.Fatalf("a record written after expiry has version %d, want 1", nv)
	}
	wantFields(t, s, "r", "c", "C")
	wantFields(t, s, "keep", "a", "A")
}

func ttlRefresh(t *testing.T, e *env) {
	tests := []struct {
		name    string
		refresh func(s store.ContextStore) error
		lives   bool
	}{
		{"apply refreshes", func(s store.ContextStore) error { _, err := s.Apply(ctx(), "r", set("b", "B")); return err }, true},
		{"touch refreshes", func(s store.ContextStore) error { return s.Touch(ctx(), "r") }, true},
		{"load does not refresh", func(s store.ContextStore) error { _, err := s.Load(ctx(), "r"); return err }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.open(t, store.WithTTL(e.suite.TTL))
			apply(t, s, "r", set("a", "A"))
			e.advance(0.6)
			if err := tt.refresh(s); err != nil {
				t.Fatal(err)
			}
			e.advance(0.6)
			if !tt.lives {
				wantMissing(t, s, "r")
				return
			}
			r := load(t, s, "r")
			if _, ok := r.Fields["a"]; !ok {
				t.Fatalf("fields lost after a refresh: %s", show(r.Fields))
			}
			e.advance(1.1)
			wantMissing(t, s, "r")
		})
	}
}

func deleteIdempotent(t *testing.T, e *env) {
	s := e.open(t)
	apply(t, s, "r", set("a", "A"))
	apply(t, s, "other", set("a", "A"))
	for i := range 3 {
		if err := s.Delete(ctx(), "r"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		wantMissing(t, s, "r")
	}
	wantFields(t, s, "other", "a", "A")
}

func noAliasing(t *testing.T, e *env) {
	s := e.open(t)
	in := []byte("original")
	fields := map[string][]byte{"a": in}
	apply(t, s, "r", store.Change{Set: fields})
	copy(in, "MUTATED!")
	fields["b"] = []byte("added later")
	wantFields(t, s, "r", "a", "original")

	out := load(t, s, "r")
	copy(out.Fields["a"], "MUTATED!")
	out.Fields["c"] = []byte("added to the result")
	wantFields(t, s, "r", "a", "original")
}

// lentBytes checks a store.SharedLoader: LoadShared reads what Load reads,
// and the bytes it lent keep their content through every later change of
// the record (a rewrite of the same length, of another length, a replace, a
// delete), while an append to one cannot reach the store's bytes.
func lentBytes(t *testing.T, e *env) {
	s := e.open(t)
	l, ok := store.As[store.SharedLoader](s)
	if !ok {
		t.Skipf("%T does not lend bytes (store.As[store.SharedLoader])", s)
	}
	_, err := l.LoadShared(ctx(), "r")
	wantErr(t, "LoadShared of a missing id", err, store.ErrNotFound)
	apply(t, s, "r", set("a", "AAAA", "b", "BBBB", "c", "CCCC"))
	lent, err := l.LoadShared(ctx(), "r")
	if err != nil {
		t.Fatal(err)
	}
	if want := load(t, s, "r"); lent.Version != want.Version || !maps.EqualFunc(lent.Fields, want.Fields, bytes.Equal) {
		t.Fatalf("LoadShared = %s v%d, Load = %s v%d", show(lent.Fields), lent.Version, show(want.Fields), want.Version)
	}
	_ = append(lent.Fields["a"], "-appended"...)
	apply(t, s, "r", set("a", "WXYZ", "b", "longer than before"))
	apply(t, s, "r", store.Change{Delete: []string{"c"}})
	again, err := l.LoadShared(ctx(), "r")
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, "r", set("a", "1234"))
	apply(t, s, "r", store.Change{Set: map[string][]byte{"d": []byte("D")}, Replace: true})
	if err := s.Delete(ctx(), "r"); err != nil {
		t.Fatal(err)
	}
	apply(t, s, "r", set("a", "5678", "b", "BBBB"))
	if want := set("a", "AAAA", "b", "BBBB", "c", "CCCC").Set; !maps.EqualFunc(lent.Fields, want, bytes.Equal) {
		t.Fatalf("bytes lent before four changes now read %s, want %s", show(lent.Fields), show(want))
	}
	if want := set("a", "WXYZ", "b", "longer than before").Set; !maps.EqualFunc(again.Fields, want, bytes.Equal) {
		t.Fatalf("bytes lent before three changes now read %s, want %s", show(again.Fields), show(want))
	}
}

// namedFields checks a store.FieldLoader: whatever the names, LoadFields
// returns the value of each name by position and the other fields apart,
// together what Load returns (empty values and the version included), and
// a missing record is not found.
func namedFields(t *testing.T, e *env) {
	s := e.open(t)
	l, ok := store.As[store.FieldLoader](s)
	if !ok {
		t.Skipf("%T loads no named fields (store.As[store.FieldLoader])", s)
	}
	_, _, err := l.LoadFields(ctx(), "r", []string{"a"})
	wantErr(t, "LoadFields of a missing id", err, store.ErrNotFound)
	names := [][]string{
		nil,
		{"a", "b"},
		{"b", "a", "c"},
		{"a"},
		{"a", "b", "absent"},
		{"a", "a", "b"},
		{"", "a", "b"},
		{"a", "b", "empty"},
		{"a", "b", "c", "d", "empty", "absent"},
	}
	for _, c := range []store.Change{
		set("a", "AAAA", "b", "BBBB"),
		set("c", "not named by most"),
		set("empty", ""),
		{Delete: []string{"c"}},
		{Set: map[string][]byte{"d": []byte("D")}, Replace: true},
	} {
		apply(t, s, "r", c)
		want := load(t, s, "r")
		for _, ns := range names {
			values, rest, err := l.LoadFields(ctx(), "r", ns)
			if err != nil {
				t.Fatalf("LoadFields(%q) after %+v: %v", ns, c, err)
			}
			if len(values) != len(ns) {
				t.Fatalf("LoadFields(%q) returned %d values", ns, len(values))
			}
			got := maps.Clone(rest.Fields)
			if got == nil {
				got = map[string][]byte{}
			}
			for i, v := range values {
				stored, held := want.Fields[ns[i]]
				if held != (v != nil) || !bytes.Equal(v, stored) {
					t.Fatalf("LoadFields(%q): value %d (%q) = %q, want %q (held: %v)", ns, i, ns[i], v, stored, held)
				}
				if _, twice := rest.Fields[ns[i]]; twice {
					t.Fatalf("LoadFields(%q): rest holds the named field %q", ns, ns[i])
				}
				if v != nil {
					got[ns[i]] = v
				}
			}
			if rest.Version != want.Version || !maps.EqualFunc(got, want.Fields, bytes.Equal) {
				t.Fatalf("LoadFields(%q) = %s v%d, Load = %s v%d", ns, show(got), rest.Version, show(want.Fields), want.Version)
			}
		}
	}
	if err := s.Delete(ctx(), "r"); err != nil {
		t.Fatal(err)
	}
	_, _, err = l.LoadFields(ctx(), "r", []string{"d"})
	wantErr(t, "LoadFields of a deleted id", err, store.ErrNotFound)
}

func cancelledContext(t *testing.T, e *env) {
	s := e.open(t)
	apply(t, s, "r", set("a", "A"))
	c, cancel := context.WithCancel(ctx())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Apply", func() error { _, err := s.Apply(c, "r", set("a", "changed")); return err }},
		{"Apply of a new id", func() error { _, err := s.Apply(c, "new", set("a", "A")); return err }},
		{"Delete", func() error { return s.Delete(c, "r") }},
		{"Touch", func() error { return s.Touch(c, "r") }},
		{"Load", func() error { _, err := s.Load(c, "r"); return err }},
	}
	for _, call := range calls {
		wantErr(t, call.name+" with a cancelled context", call.call(), context.Canceled)
	}
	if l, ok := store.As[store.Lister](s); ok {
		_, _, err := l.List(c, "", 10)
		wantErr(t, "List with a cancelled context", err, context.Canceled)
	}
	if r := wantFields(t, s, "r", "a", "A"); r.Version != 1 {
		t.Fatalf("version %d after cancelled calls, want 1", r.Version)
	}
	wantMissing(t, s, "new")
}

func concurrentOneID(t *testing.T, e *env) {
	s := e.open(t)
	const writers, each = 32, 8
	apply(t, s, "r", set("n", "0"))
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		wg.Go(func() {
			for done := 0; done < each; {
				r, err := s.Load(ctx(), "r")
				if err != nil {
					errs <- err
					return
				}
				var n int
				fmt.Sscan(string(r.Fields["n"]), &n)
				c := set("n", fmt.Sprint(n+1), fmt.Sprintf("g%d", g), fmt.Sprint(done+1))
				c.CheckVersion, c.IfVersion = true, r.Version
				switch _, err := s.Apply(ctx(), "r", c); {
				case err == nil:
					done++
				case !errors.Is(err, store.ErrConflict):
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := []string{"n", fmt.Sprint(writers * each)}
	for g := range writers {
		want = append(want, fmt.Sprintf("g%d", g), fmt.Sprint(each))
	}
	wantFields(t, s, "r", want...)
}

func concurrentManyIDs(t *testing.T, e *env) {
	s := e.open(t)
	const ids, writes = 32, 25
	var wg sync.WaitGroup
	errs := make(chan error, ids)
	for g := range ids {
		wg.Go(func() {
			id := fmt.Sprintf("id-%d", g)
			var last uint64
			for i := range writes {
				v, err := s.Apply(ctx(), id, set("owner", id, "i", fmt.Sprint(i)))
				if err == nil && v <= last {
					err = fmt.Errorf("%s: version %d after %d", id, v, last)
				}
				if err != nil {
					errs <- err
					return
				}
				last = v
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for g := range ids {
		id := fmt.Sprintf("id-%d", g)
		wantFields(t, s, id, "owner", id, "i", fmt.Sprint(writes-1))
	}
}

// HostileIDs are ids that break naive key schemes: glob and hash-tag
// characters, separators, control bytes, unicode, the shortest and the
// longest.
func HostileIDs() []string {
	return []string{
		":", "a:b", "a", "a:", "*", "?", "[", "[a-z]", "_", "\\", "{", "}", "{a}", "{a}b", "b{a}",
		"\x00", "a\x00", "\n", "a\nb", " ", "日本語", "\xff\xfe", "%", "%2A",
		strings.Repeat("z", store.MaxIDLen),
	}
}

func hostileIDs(t *testing.T, e *env) {
	s := e.open(t)
	ids := HostileIDs()
	for _, id := range ids {
		apply(t, s, id, store.Change{Set: map[string][]byte{"id": []byte(id)}})
	}
	for _, id := range ids {
		r := wantFields(t, s, id, "id", id)
		if r.Version != 1 {
			t.Errorf("id %q has version %d after one write: another id's write reached it", id, r.Version)
		}
	}
	if l, ok := store.As[store.Lister](s); ok {
		got := listAll(t, l, 5)
		if want := slices.Sorted(slices.Values(ids)); !slices.Equal(got, want) {
			t.Fatalf("listing = %q, want %q", got, want)
		}
	}
	for _, gone := range []string{"*", "{a}", "a", "\x00"} {
		if err := s.Delete(ctx(), gone); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, s, gone)
	}
	for _, id := range ids {
		switch id {
		case "*", "{a}", "a", "\x00":
		default:
			wantFields(t, s, id, "id", id)
		}
	}
}

func invalidIDs(t *testing.T, e *env) {
	s := e.open(t)
	for _, id := range []string{"", strings.Repeat("z", store.MaxIDLen+1)} {
		_, err := s.Apply(ctx(), id, set("a", "A"))
		wantErr(t, fmt.Sprintf("Apply(%d-byte id)", len(id)), err, store.ErrInvalidID)
		_, err = s.Load(ctx(), id)
		wantErr(t, fmt.Sprintf("Load(%d-byte id)", len(id)), err, store.ErrInvalidID)
		wantErr(t, fmt.Sprintf("Touch(%d-byte id)", len(id)), s.Touch(ctx(), id), store.ErrInvalidID)
		wantErr(t, fmt.Sprintf("Delete(%d-byte id)", len(id)), s.Delete(ctx(), id), store.ErrInvalidID)
	}
	if l, ok := store.As[store.Lister](s); ok {
		if ids := listAll(t, l, 10); len(ids) != 0 {
			t.Fatalf("refused ids were stored: %q", ids)
		}
	}
}

func invalidFields(t *testing.T, e *env) {
	s := e.open(t)
	long := strings.Repeat("f", store.MaxFieldNameLen+1)
	changes := map[string]store.Change{
		"an empty name":           set("", "x"),
		"an over-long name":       set(long, "x"),
		"deleting an empty name":  {Delete: []string{""}},
		"setting and deleting":    {Set: set("a", "x").Set, Delete: []string{"a"}},
		"an over-long delete":     {Delete: []string{long}},
		"an empty name in create": {Set: map[string][]byte{"": nil}, CheckVersion: true},
	}
	for name, c := range changes {
		_, err := s.Apply(ctx(), "r", c)
		wantErr(t, "Apply with "+name, err, store.ErrInvalidField)
	}
	wantMissing(t, s, "r")
	maxName := strings.Repeat("f", store.MaxFieldNameLen)
	apply(t, s, "r", set(maxName, "x"))
	wantFields(t, s, "r", maxName, "x")
}

func sizeCaps(t *testing.T, e *env) {
	s := e.open(t, store.WithMaxFieldSize(64), store.WithMaxRecordSize(190))
	_, err := s.Apply(ctx(), "r", store.Change{Set: map[string][]byte{"a": make([]byte, 65)}})
	wantErr(t, "a 65-byte field with a 64-byte cap", err, store.ErrTooLarge)
	wantMissing(t, s, "r")

	full := string(make([]byte, 64))
	apply(t, s, "r", set("a", full, "b", full)) // 130 bytes counting names
	_, err = s.Apply(ctx(), "r", set("c", full))
	wantErr(t, "growing the record past its cap", err, store.ErrTooLarge)
	wantFields(t, s, "r", "a", full, "b", full)

	apply(t, s, "r", set("b", "small", "c", full))                                           // 1+64+1+5+1+64 = 136
	apply(t, s, "r", store.Change{Set: set("d", full).Set, Delete: []string{"a", "b", "c"}}) // shrinks then grows
	wantFields(t, s, "r", "d", full)
	_, err = s.Apply(ctx(), "r", store.Change{Set: map[string][]byte{"x": make([]byte, 64), "y": make([]byte, 64), "z": make([]byte, 64), "w": nil}, Replace: true})
	wantErr(t, "a replace past the record cap", err, store.ErrTooLarge)
	wantFields(t, s, "r", "d", full)

	// A field deleted twice in one Change leaves the record once: counted
	// twice, the record would seem to hold 65 bytes less and take c.
	apply(t, s, "r", set("a", full))                                                    // d and a: 130 bytes
	apply(t, s, "r", store.Change{Set: set("b", full).Set, Delete: []string{"a", "a"}}) // d and b: 130
	_, err = s.Apply(ctx(), "r", set("c", full))
	wantErr(t, "growing the record past its cap after a repeated delete", err, store.ErrTooLarge)
	wantFields(t, s, "r", "b", full, "d", full)
}

func closeIdempotent(t *testing.T, e *env) {
	s := e.open(t)
	apply(t, s, "r", set("a", "A"))
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	_, err := s.Load(ctx(), "r")
	wantErr(t, "Load after Close", err, store.ErrClosed)
	_, err = s.Apply(ctx(), "r", set("a", "B"))
	wantErr(t, "Apply after Close", err, store.ErrClosed)
	wantErr(t, "Touch after Close", s.Touch(ctx(), "r"), store.ErrClosed)
	wantErr(t, "Delete after Close", s.Delete(ctx(), "r"), store.ErrClosed)
	if l, ok := store.As[store.Lister](s); ok {
		_, _, err := l.List(ctx(), "", 10)
		wantErr(t, "List after Close", err, store.ErrClosed)
	}
}

func listing(t *testing.T, e *env) {
	s := e.open(t, store.WithTTL(e.suite.TTL))
	l, ok := store.As[store.Lister](s)
	if !ok {
		t.Skipf("%T cannot list (store.As[store.Lister])", s)
	}
	if ids := listAll(t, l, 10); len(ids) != 0 {
		t.Fatalf("an empty store lists %q", ids)
	}
	var want []string
	for i := range 250 {
		id := fmt.Sprintf("id/%03d", i)
		apply(t, s, id, set("a", "A"))
		if i%10 == 0 {
			if err := s.Delete(ctx(), id); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want = append(want, id)
	}
	if got := listAll(t, l, 7); !slices.Equal(got, want) {
		t.Fatalf("listing in pages of 7 returned %d ids, want %d: %q", len(got), len(want), got)
	}
	if got := listAll(t, l, 0); !slices.Equal(got, want) {
		t.Fatalf("listing with the default page size returned %d ids, want %d", len(got), len(want))
	}
}

// listAll pages through l with the given page size and returns the ids
// sorted, failing on any id listed twice.
func listAll(t *testing.T, l store.Lister, limit int) []string {
	t.Helper()
	seen := map[string]bool{}
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100_000 {
			t.Fatal("listing does not end")
		}
		ids, next, err := l.List(ctx(), cursor, limit)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("List returned %q twice", id)
			}
			seen[id] = true
			all = append(all, id)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	slices.Sort(all)
	return all
}

func ttlLeft(t *testing.T, e *env) {
	s := e.open(t, store.WithTTL(e.suite.TTL))
	r, ok := store.As[store.TTLReader](s)
	if !ok {
		t.Skipf("%T cannot tell times to live (store.As[store.TTLReader])", s)
	}
	_, err := r.TTL(ctx(), "r")
	wantErr(t, "TTL of a missing id", err, store.ErrNotFound)
	apply(t, s, "r", set("a", "A"))
	if d, err := r.TTL(ctx(), "r"); err != nil || d <= 0 || d > e.suite.TTL {
		t.Fatalf("TTL just after a write = %v, %v; want (0, %v]", d, err, e.suite.TTL)
	}
	e.advance(0.5)
	if d, err := r.TTL(ctx(), "r"); err != nil || d <= 0 || d > e.suite.TTL/2 {
		t.Fatalf("TTL half a TTL after a write = %v, %v; want (0, %v]", d, err, e.suite.TTL/2)
	}
	if err := s.Touch(ctx(), "r"); err != nil {
		t.Fatal(err)
	}
	if d, err := r.TTL(ctx(), "r"); err != nil || d <= e.suite.TTL/2 {
		t.Fatalf("TTL after Touch = %v, %v; want over %v", d, err, e.suite.TTL/2)
	}
	e.advance(1.1)
	_, err = r.TTL(ctx(), "r")
	wantErr(t, "TTL of an expired record", err, store.ErrNotFound)

	forever := e.open(t)
	apply(t, forever, "r", set("a", "A"))
	r, _ = store.As[store.TTLReader](forever)
	if d, err := r.TTL(ctx(), "r"); err != nil || d != 0 {
		t.Fatalf("TTL of a record in a store without a TTL = %v, %v; want 0", d, err)
	}
}

// wrapperCapabilities checks a wrapper store (one with an Unwrap method)
// against the store it wraps: it forwards each optional interface that store
// offers, and its optional methods that store lacks return
// store.ErrUnsupported.
func wrapperCapabilities(t *testing.T, e *env) {
	s := e.open(t)
	w, ok := s.(interface{ Unwrap() store.ContextStore })
	if !ok {
		t.Skipf("%T wraps no store", s)
	}
	inner := w.Unwrap()
	offersAsInner(t, s, inner, "store.Lister", func(l store.Lister) error {
		_, _, err := l.List(ctx(), "", 10)
		return err
	})
	offersAsInner(t, s, inner, "store.TTLReader", func(r store.TTLReader) error {
		_, err := r.TTL(ctx(), "r")
		return err
	})
	offersAsInner(t, s, inner, "store.FieldLoader", func(l store.FieldLoader) error {
		_, _, err := l.LoadFields(ctx(), "r", []string{"a"})
		return err
	})
}

// offersAsInner checks the optional interface C, named name, of the wrapper
// s over inner; call calls one of its methods.
func offersAsInner[C any](t *testing.T, s, inner store.ContextStore, name string, call func(C) error) {
	t.Helper()
	if _, ok := store.As[C](inner); ok {
		if _, ok := store.As[C](s); !ok {
			t.Errorf("%T wraps a %s (%T) and is none: it does not forward it", s, name, inner)
		}
		return
	}
	if c, ok := s.(C); ok {
		if err := call(c); !errors.Is(err, store.ErrUnsupported) {
			t.Errorf("%T over a store that is no %s: its method returned %v, want store.ErrUnsupported", s, name, err)
		}
	}
}
