package livectx_test

// Differential testing: the same sequence of store operations runs against
// every backend (and through the wrappers), and every step must give the
// same result in all of them: the same error sentinel, the same version, the
// same fields. The reference is the memory store.

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/observe"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/sealed"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

// diffOp is one step of a differential run.
type diffOp struct {
	kind    string // "apply", "load", "delete", "touch", "ttl", "advance"
	id      string
	change  store.Change
	advance int // clock units, for "advance"
}

func (o diffOp) String() string {
	switch o.kind {
	case "advance":
		return fmt.Sprintf("advance %d units", o.advance)
	case "apply":
		c := o.change
		var b strings.Builder
		fmt.Fprintf(&b, "apply %q set{", short(o.id))
		for _, k := range slices.Sorted(maps.Keys(c.Set)) {
			fmt.Fprintf(&b, " %q:%d bytes", short(k), len(c.Set[k]))
		}
		fmt.Fprintf(&b, " } delete%q replace=%v", c.Delete, c.Replace)
		if c.CheckVersion {
			fmt.Fprintf(&b, " ifVersion=%d", c.IfVersion)
		}
		return b.String()
	default:
		return fmt.Sprintf("%s %q", o.kind, short(o.id))
	}
}

func short(s string) string {
	if len(s) > 12 {
		return fmt.Sprintf("%s…(%d bytes)", s[:8], len(s))
	}
	return s
}

// diffResult is what one step gave: comparable across backends.
type diffResult struct {
	err     string // the sentinel's name, "" for nil
	version uint64
	fields  map[string][]byte
	ttl     time.Duration // what store.TTLReader reported
}

// equal compares two results; times to live may differ by slack.
func (r diffResult) equal(o diffResult, slack time.Duration) bool {
	d := r.ttl - o.ttl
	return r.err == o.err && r.version == o.version && maps.EqualFunc(r.fields, o.fields, bytes.Equal) && d <= slack && -d <= slack
}

func (r diffResult) String() string {
	keys := slices.Sorted(maps.Keys(r.fields))
	var b strings.Builder
	fmt.Fprintf(&b, "err=%q version=%d ttl=%v fields{", r.err, r.version, r.ttl)
	for _, k := range keys {
		fmt.Fprintf(&b, " %q:%x", short(k), r.fields[k])
	}
	b.WriteString(" }")
	return b.String()
}

// sentinel names err by the store sentinel it matches; any other error is
// returned as "other: ...", which never matches the reference.
func sentinel(err error) string {
	for _, s := range []struct {
		name string
		err  error
	}{
		{"not found", store.ErrNotFound}, {"conflict", store.ErrConflict}, {"too large", store.ErrTooLarge},
		{"invalid id", store.ErrInvalidID}, {"invalid field", store.ErrInvalidField},
		{"corrupt", store.ErrCorrupt}, {"closed", store.ErrClosed},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

func runOp(s store.ContextStore, o diffOp) diffResult {
	ctx := context.Background()
	switch o.kind {
	case "apply":
		v, err := s.Apply(ctx, o.id, o.change)
		r := diffResult{err: sentinel(err), version: v}
		if (r.err == "invalid field" || r.err == "too large") && twoFaults(o.change) {
			r.err = "invalid field or too large"
		}
		return r
	case "load":
		r, err := s.Load(ctx, o.id)
		return diffResult{err: sentinel(err), version: r.Version, fields: r.Fields}
	case "delete":
		return diffResult{err: sentinel(s.Delete(ctx, o.id))}
	case "touch":
		return diffResult{err: sentinel(s.Touch(ctx, o.id))}
	case "ttl":
		tr, ok := store.As[store.TTLReader](s)
		if !ok {
			// Every store compared reports its TTL: a wrapper that does
			// not forward it differs.
			return diffResult{err: fmt.Sprintf("other: %T is no store.TTLReader", s)}
		}
		d, err := tr.TTL(ctx, o.id)
		return diffResult{err: sentinel(err), ttl: d}
	}
	panic("unknown op " + o.kind)
}

// twoFaults reports whether c sets both an invalid field name and an
// oversize value: store.Config.CheckChange meets them in map order, so either
// error may come first, in any backend.
func twoFaults(c store.Change) bool {
	badName, oversize := false, false
	for k, v := range c.Set {
		badName = badName || k == "" || len(k) > store.MaxFieldNameLen
		oversize = oversize || len(v) > diffFieldCap
	}
	return badName && oversize
}

// Pools the generator draws from: hostile ids, and now and then an invalid
// id or field name.
var (
	diffIDs          = []string{"a", "b", "{a}", "a:b", "*", "\x00", "日本", strings.Repeat("z", store.MaxIDLen)}
	diffInvalidIDs   = []string{"", strings.Repeat("z", store.MaxIDLen+1)}
	diffFields       = []string{"a", "b", "c", "d", "{x}", "*"}
	diffInvalidNames = []string{"", strings.Repeat("f", store.MaxFieldNameLen+1)}
	// Value lengths around the field cap.
	diffLens = []int{0, 1, 3, 8, 30, 63, 64, 64, 65}
)

const (
	diffFieldCap  = 64
	diffRecordCap = 160
)

// diffGen turns a source of numbers into operations.
type diffGen struct {
	next     func() int        // a number >= 0
	versions map[string]uint64 // the last version the reference reported, by id
	// rareAdvances makes clock advances six times rarer.
	rareAdvances bool
}

func (g *diffGen) pick(n int) int { return g.next() % n }

// oneIn is true once in n picks.
func (g *diffGen) oneIn(n int) bool { return g.pick(n) == 0 }

func (g *diffGen) field() string {
	if g.oneIn(40) {
		return diffInvalidNames[g.pick(len(diffInvalidNames))]
	}
	return diffFields[g.pick(len(diffFields))]
}

func (g *diffGen) op() diffOp {
	id := diffIDs[g.pick(len(diffIDs))]
	if g.oneIn(25) {
		id = diffInvalidIDs[g.pick(len(diffInvalidIDs))]
	}
	switch n := g.pick(20); {
	case n < 9:
		return diffOp{kind: "apply", id: id, change: g.change(id)}
	case n < 13:
		return diffOp{kind: "load", id: id}
	case n < 14:
		return diffOp{kind: "ttl", id: id}
	case n < 16:
		return diffOp{kind: "delete", id: id}
	case n < 18:
		return diffOp{kind: "touch", id: id}
	default:
		if g.rareAdvances && g.pick(6) != 0 {
			return diffOp{kind: "load", id: id}
		}
		return diffOp{kind: "advance", advance: []int{1, 1, 1, 2, 3}[g.pick(5)]}
	}
}

func (g *diffGen) change(id string) store.Change {
	var c store.Change
	if n := g.pick(4); n > 0 {
		c.Set = map[string][]byte{}
		for range n {
			v := make([]byte, diffLens[g.pick(len(diffLens))])
			fill := byte(g.next())
			for i := range v {
				v[i] = fill + byte(i)
			}
			if len(v) == 0 && g.pick(2) == 0 {
				v = nil
			}
			c.Set[g.field()] = v
		}
	}
	for range g.pick(3) {
		c.Delete = append(c.Delete, g.field())
	}
	c.Replace = g.oneIn(6)
	if g.oneIn(3) {
		c.CheckVersion = true
		last := g.versions[id]
		c.IfVersion = []uint64{0, last, last, last + 1, max(last, 1) - 1}[g.pick(5)]
	}
	return c
}

// diffBackend is one store under comparison.
type diffBackend struct {
	name  string
	store store.ContextStore
}

// diffRun runs ops against the backends, comparing each step's result with
// the first backend's; it returns a description of the first divergence, or
// "" and a count of the outcomes seen (op kind and error). unit is the clock
// unit: an advance calls clock.Advance with a multiple of it. Times to live
// may differ by ttlSlack (a real server's clock runs on between steps).
func diffRun(clock *storetest.Clock, unit, ttlSlack time.Duration, backends []diffBackend, gen *diffGen, steps int) (divergence string, outcomes map[string]int) {
	var log []string
	outcomes = map[string]int{}
	fail := func(format string, args ...any) string {
		tail := log[max(0, len(log)-15):]
		return fmt.Sprintf("%s\nafter %d steps, the last ones:\n  %s", fmt.Sprintf(format, args...), len(log), strings.Join(tail, "\n  "))
	}
	for range steps {
		o := gen.op()
		log = append(log, o.String())
		if o.kind == "advance" {
			clock.Advance(time.Duration(o.advance) * unit)
			outcomes["advance"]++
			continue
		}
		want := runOp(backends[0].store, o)
		outcomes[o.kind+": "+cmp.Or(want.err, "ok")]++
		if strings.HasPrefix(want.err, "other") {
			return fail("%s: %s failed: %s", o, backends[0].name, want.err), outcomes
		}
		if want.err == "" && want.version != 0 {
			gen.versions[o.id] = want.version
		}
		for _, b := range backends[1:] {
			if got := runOp(b.store, o); !got.equal(want, ttlSlack) {
				return fail("%s:\n  %s: %s\n  %s: %s", o, backends[0].name, want, b.name, got), outcomes
			}
		}
	}
	// At the end, every backend lists the same live ids.
	ref, err := diffList(backends[0].store)
	if err != nil {
		return fail("listing %s: %v", backends[0].name, err), outcomes
	}
	for _, b := range backends[1:] {
		if got, err := diffList(b.store); err != nil || !slices.Equal(got, ref) {
			return fail("listing: %s lists %q, %s lists %q (%v)", backends[0].name, ref, b.name, got, err), outcomes
		}
	}
	return "", outcomes
}

func diffList(s store.ContextStore) ([]string, error) {
	l, ok := store.As[store.Lister](s)
	if !ok {
		return nil, fmt.Errorf("%T does not list", s)
	}
	var all []string
	for cursor := ""; ; {
		ids, next, err := l.List(context.Background(), cursor, 3)
		if err != nil {
			return nil, err
		}
		all = append(all, ids...)
		if next == "" {
			break
		}
		cursor = next
	}
	slices.Sort(all)
	return all, nil
}

// Clock units: TTL is 2.5 units and advances are whole units, so a record's
// age is never within half a unit of its TTL (no backend is asked to agree
// on the exact instant of expiry).
const (
	diffUnit     = 20 * time.Second
	diffRealUnit = 600 * time.Millisecond // a real server's clock cannot be faked
)

func diffTTL(unit time.Duration) time.Duration { return unit * 5 / 2 }

// diffSet names which stores are compared.
type diffSet int

const (
	// diffPlain: every backend bare and through observe, with field and
	// record caps.
	diffPlain diffSet = iota
	// diffSealed: sealed over every backend. Caps count sealed bytes, so
	// the record cap is left at its default and the field cap shifted by
	// sealed.Overhead.
	diffSealed
)

// diffBackends opens the stores of set, all with the same options, the
// memory store first; the miniredis store follows clock.
func diffBackends(t *testing.T, clock *storetest.Clock, set diffSet) []diffBackend {
	t.Helper()
	opts := []store.Option{store.WithTTL(diffTTL(diffUnit)), store.WithClock(clock.Now), store.WithMaxFieldSize(diffFieldCap)}
	if set == diffPlain {
		opts = append(opts, store.WithMaxRecordSize(diffRecordCap))
	}
	inner := opts
	if set == diffSealed {
		inner = append(slices.Clip(opts), store.WithMaxFieldSize(diffFieldCap+sealed.Overhead))
	}

	mem := memory.New(store.OptionsFor[memory.Option](opts)...)
	t.Cleanup(func() { mem.Close() })
	// Without fsync: durability has no bearing on the results compared,
	// and the fuzzer runs many sequences.
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "diff.db"), 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bolt, err := boltstore.New(db, store.OptionsFor[boltstore.Option](inner)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	mr, rc := redistest.Miniredis(t)
	clock.OnAdvance(mr.FastForward)
	mini, err := redisstore.New(rc, store.OptionsFor[redisstore.Option](inner)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mini.Close() })

	if set == diffPlain {
		mem2 := memory.New(store.OptionsFor[memory.Option](opts)...)
		t.Cleanup(func() { mem2.Close() })
		return []diffBackend{
			{"memory", mem},
			{"bbolt", bolt},
			{"miniredis", mini},
			{"observe(memory)", observe.New(mem2, observe.Func(func(context.Context, observe.Event) {}))},
		}
	}
	key := make([]byte, sealed.KeySize)
	crand.Read(key)
	wrap := func(inner store.ContextStore) store.ContextStore {
		s, err := sealed.New(inner, [][]byte{key})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mem2 := memory.New(store.OptionsFor[memory.Option](inner)...)
	t.Cleanup(func() { mem2.Close() })
	return []diffBackend{
		{"memory", mem},
		{"sealed(memory)", wrap(mem2)},
		{"sealed(bbolt)", wrap(bolt)},
		{"sealed(miniredis)", wrap(mini)},
	}
}

func randGen(seed uint64) *diffGen {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &diffGen{next: func() int { return r.IntN(1 << 30) }, versions: map[string]uint64{}}
}

// TestDifferential runs random sequences against every backend. A failing
// sequence logs its seed; LIVECTX_DIFF_SEED=<seed> replays it.
func TestDifferential(t *testing.T) {
	sequences, steps := 6, 300
	if testing.Short() {
		sequences = 2
	}
	for _, set := range []struct {
		name string
		set  diffSet
	}{{"bare backends agree", diffPlain}, {"sealed backends agree", diffSealed}} {
		t.Run(set.name, func(t *testing.T) {
			for seq := range sequences {
				seed := uint64(time.Now().UnixNano()) + uint64(seq)
				if env := os.Getenv("LIVECTX_DIFF_SEED"); env != "" { // replay a logged seed
					fmt.Sscan(env, &seed)
				}
				t.Run(fmt.Sprintf("sequence %d", seq), func(t *testing.T) {
					t.Logf("seed %d", seed)
					clock := storetest.NewClock()
					diverged, outcomes := diffRun(clock, diffUnit, 0, diffBackends(t, clock, set.set), randGen(seed), steps)
					if diverged != "" {
						t.Fatal(diverged)
					}
					t.Logf("outcomes: %v", outcomes)
				})
			}
		})
	}
}

// TestDifferentialRealRedis compares a real Redis (LIVECTX_REDIS_ADDR) with
// the memory store, with a real clock: each clock unit is a real sleep.
func TestDifferentialRealRedis(t *testing.T) {
	addr := os.Getenv("LIVECTX_REDIS_ADDR")
	if addr == "" {
		t.Skip("LIVECTX_REDIS_ADDR is not set: no real Redis to compare")
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	prefix := redistest.Prefix(t, c)
	clock := storetest.NewClock()
	clock.OnAdvance(time.Sleep)
	opts := []store.Option{store.WithTTL(diffTTL(diffRealUnit)), store.WithClock(clock.Now),
		store.WithMaxFieldSize(diffFieldCap), store.WithMaxRecordSize(diffRecordCap)}
	mem := memory.New(store.OptionsFor[memory.Option](opts)...)
	t.Cleanup(func() { mem.Close() })
	rs, err := redisstore.New(c, append(store.OptionsFor[redisstore.Option](opts), redisstore.WithPrefix(prefix))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	gen := randGen(seed)
	gen.rareAdvances = true // each is a real sleep
	diverged, outcomes := diffRun(clock, diffRealUnit, diffRealUnit/4, []diffBackend{{"memory", mem}, {"redis " + addr, rs}}, gen, 200)
	if diverged != "" {
		t.Fatal(diverged)
	}
	t.Logf("outcomes: %v", outcomes)
}

// FuzzDifferential reads a sequence of operations from the fuzzer's bytes
// and requires every backend to agree on every step.
func FuzzDifferential(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 3, 0, 0, 4, 0, 8, 1})
	f.Add([]byte("apply load delete touch advance and again and again"))
	f.Add(bytes.Repeat([]byte{3, 1, 2, 0, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 20))
	f.Add([]byte{1, 2, 2, 1, 6, 7, 0, 1, 2, 9, 9, 9, 9, 9, 9, 9, 1, 5, 5, 5, 0, 1, 1, 3, 3, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1024 {
			return
		}
		i := 0
		gen := &diffGen{versions: map[string]uint64{}, next: func() int {
			if i >= len(data) {
				return 0
			}
			i++
			return int(data[i-1])
		}}
		for _, set := range []diffSet{diffPlain, diffSealed} {
			i = 0
			clear(gen.versions)
			clock := storetest.NewClock()
			if diverged, _ := diffRun(clock, diffUnit, 0, diffBackends(t, clock, set), gen, 1+len(data)/4); diverged != "" {
				t.Fatal(diverged)
			}
		}
	})
}

// Stores broken in one way each, to prove the comparison catches them.
type (
	touchIgnored    struct{ store.ContextStore }
	versionSkips    struct{ store.ContextStore }
	deleteLosesOne  struct{ store.ContextStore }
	replaceIsMerged struct{ store.ContextStore }
	ttlNotForwarded struct{ store.ContextStore }
)

func (touchIgnored) Touch(context.Context, string) error { return nil }

func (s versionSkips) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	v, err := s.ContextStore.Apply(ctx, id, c)
	if v > 3 {
		v++
	}
	return v, err
}

func (s deleteLosesOne) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	if len(c.Delete) > 1 {
		c.Delete = c.Delete[1:]
	}
	return s.ContextStore.Apply(ctx, id, c)
}

func (s replaceIsMerged) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	c.Replace = false
	return s.ContextStore.Apply(ctx, id, c)
}

func (s touchIgnored) List(ctx context.Context, c string, n int) ([]string, string, error) {
	return s.ContextStore.(store.Lister).List(ctx, c, n)
}

// TTL is forwarded, so that the comparison must catch the ignored touch
// itself.
func (s touchIgnored) TTL(ctx context.Context, id string) (time.Duration, error) {
	return s.ContextStore.(store.TTLReader).TTL(ctx, id)
}

// A wrapper that forgot to forward TTL: it forwards List only.
func (s ttlNotForwarded) List(ctx context.Context, c string, n int) ([]string, string, error) {
	return s.ContextStore.(store.Lister).List(ctx, c, n)
}

func TestDifferentialCatchesBrokenStores(t *testing.T) {
	broken := map[string]func(store.ContextStore) store.ContextStore{
		"touch that does not refresh":      func(s store.ContextStore) store.ContextStore { return touchIgnored{s} },
		"versions that skip":               func(s store.ContextStore) store.ContextStore { return versionSkips{s} },
		"a delete list that loses a field": func(s store.ContextStore) store.ContextStore { return deleteLosesOne{s} },
		"a replace that merges":            func(s store.ContextStore) store.ContextStore { return replaceIsMerged{s} },
		"a wrapper that hides TTL":         func(s store.ContextStore) store.ContextStore { return ttlNotForwarded{s} },
	}
	for name, wrap := range broken {
		t.Run(name+" is caught", func(t *testing.T) {
			clock := storetest.NewClock()
			opts := []store.Option{store.WithTTL(diffTTL(diffUnit)), store.WithClock(clock.Now), store.WithMaxFieldSize(diffFieldCap), store.WithMaxRecordSize(diffRecordCap)}
			good, bad := memory.New(store.OptionsFor[memory.Option](opts)...), memory.New(store.OptionsFor[memory.Option](opts)...)
			t.Cleanup(func() { good.Close(); bad.Close() })
			diverged, _ := diffRun(clock, diffUnit, 0, []diffBackend{{"memory", good}, {"broken", wrap(bad)}}, randGen(1), 2000)
			if diverged == "" {
				t.Fatal("2000 steps found no divergence")
			}
		})
	}
}
