package storetest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

// The suite must catch each of these broken stores. Each wraps the memory
// store and breaks one promise.
var broken = map[string]struct {
	open func(t *testing.T, clock *storetest.Clock, opts ...store.Option) store.ContextStore
	// caught names a case that must fail.
	caught string
}{
	"aliasing": {
		func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
			return &aliasing{ContextStore: openMemory(t, opts...), last: map[string]store.Record{}}
		},
		"bytes are not aliased in or out",
	},
	"ignoring the TTL": {
		func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
			cfg := store.NewConfig(nil, opts...)
			return openMemory(t, store.WithClock(cfg.Now), store.WithMaxFieldSize(cfg.MaxFieldSize), store.WithMaxRecordSize(cfg.MaxRecordSize))
		},
		"an expired record behaves as missing",
	},
	"a non-atomic apply": {
		func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
			return fieldByField{openMemory(t, opts...)}
		},
		"apply is all or nothing",
	},
	"no version check": {
		func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
			return unchecked{openMemory(t, opts...)}
		},
		"a stale expected version conflicts and writes nothing",
	},
	"a record leaking across ids": {
		func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
			return globEscaping{openMemory(t, opts...)}
		},
		"hostile ids are stored one to one and isolated",
	},
	"a field loader that loads only the named fields": {
		func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
			return filtering{openMemory(t, opts...)}
		},
		"loading named fields returns what load returns",
	},
	"a wrapper that does not forward List and TTL": {
		func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
			return forgetful{openMemory(t, opts...)}
		},
		wrapperCase,
	},
	"a wrapper that lists what it cannot": {
		func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
			return pretending{struct{ store.ContextStore }{openMemory(t, opts...)}}
		},
		wrapperCase,
	},
}

const wrapperCase = "a wrapper offers exactly the optional interfaces of the store it wraps"

func openMemory(t *testing.T, opts ...store.Option) store.ContextStore {
	s := memory.New(store.OptionsFor[memory.Option](opts)...)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSuiteCatchesBrokenStores runs the suite on each broken store in a child
// process (a failing suite must fail a real *testing.T) and checks that the
// expected case failed.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenChild$", "-test.v")
			cmd.Env = append(os.Environ(), "LIVECTX_BROKEN_STORE="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with %s:\n%s", name, out)
			}
			want := "--- FAIL: TestBrokenChild/" + strings.ReplaceAll(b.caught, " ", "_")
			if !strings.Contains(string(out), want) {
				t.Fatalf("the suite did not fail %q on a store with %s:\n%s", b.caught, name, out)
			}
		})
	}
}

// TestCorrectChildPasses is the control: the same child run passes on the
// memory store, so the failures above come from the breakage.
func TestCorrectChildPasses(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenChild$", "-test.v")
	cmd.Env = append(os.Environ(), "LIVECTX_BROKEN_STORE=none")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestBrokenChild") {
		t.Fatalf("the suite failed the memory store (%v):\n%s", err, out)
	}
}

func TestBrokenChild(t *testing.T) {
	name := os.Getenv("LIVECTX_BROKEN_STORE")
	if name == "" {
		t.Skip("runs only as the child of TestSuiteCatchesBrokenStores")
	}
	if name == "none" {
		storetest.Run(t, func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
			return openMemory(t, opts...)
		})
		return
	}
	storetest.Run(t, broken[name].open)
}

// aliasing hands out the same byte slices on every Load of a version.
type aliasing struct {
	store.ContextStore
	mu   sync.Mutex
	last map[string]store.Record
}

func (a *aliasing) Load(ctx context.Context, id string) (store.Record, error) {
	r, err := a.ContextStore.Load(ctx, id)
	if err != nil {
		return r, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, ok := a.last[id]; ok && prev.Version == r.Version {
		return prev, nil
	}
	a.last[id] = r
	return r, nil
}

// fieldByField applies each field as its own write.
type fieldByField struct{ store.ContextStore }

func (f fieldByField) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	if len(c.Set) == 0 {
		return f.ContextStore.Apply(ctx, id, c)
	}
	var v uint64
	for k, val := range c.Set {
		one := c
		one.Set = map[string][]byte{k: val}
		var err error
		if v, err = f.ContextStore.Apply(ctx, id, one); err != nil {
			return 0, err
		}
		c.Delete, c.Replace, c.CheckVersion = nil, false, false
	}
	return v, nil
}

// unchecked drops the expected version.
type unchecked struct{ store.ContextStore }

func (u unchecked) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	c.CheckVersion = false
	return u.ContextStore.Apply(ctx, id, c)
}

// globEscaping "escapes" glob characters by replacing them, so ids collide.
type globEscaping struct{ store.ContextStore }

var globs = strings.NewReplacer("*", "_", "?", "_", "[", "_")

func (g globEscaping) Load(ctx context.Context, id string) (store.Record, error) {
	return g.ContextStore.Load(ctx, globs.Replace(id))
}

func (g globEscaping) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	return g.ContextStore.Apply(ctx, globs.Replace(id), c)
}

func (g globEscaping) Delete(ctx context.Context, id string) error {
	return g.ContextStore.Delete(ctx, globs.Replace(id))
}

func (g globEscaping) Touch(ctx context.Context, id string) error {
	return g.ContextStore.Touch(ctx, globs.Replace(id))
}

// forgetful wraps a store that lists and tells times to live, and does
// neither.
type forgetful struct{ store.ContextStore }

func (f forgetful) Unwrap() store.ContextStore { return f.ContextStore }

// pretending wraps a store that cannot list, and lists nothing instead of
// saying so.
type pretending struct{ store.ContextStore }

func (p pretending) Unwrap() store.ContextStore { return p.ContextStore }

func (p pretending) List(context.Context, string, int) ([]string, string, error) {
	return nil, "", nil
}

// filtering takes LoadFields' names for a filter: it drops the fields not
// named.
type filtering struct{ store.ContextStore }

func (f filtering) LoadFields(ctx context.Context, id string, names []string) ([][]byte, store.Record, error) {
	r, err := f.Load(ctx, id)
	values := make([][]byte, len(names))
	for i, name := range names {
		values[i] = r.Fields[name]
	}
	return values, store.Record{Version: r.Version}, err
}
