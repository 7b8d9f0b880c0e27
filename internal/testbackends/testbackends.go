// Package testbackends opens every store livectx ships, new and empty, for
// tests that must run over all of them: memory, bbolt in a temp dir, Redis
// on miniredis, and Redis on the real server and cluster that
// LIVECTX_REDIS_ADDR and LIVECTX_REDIS_CLUSTER name (those skip, saying
// so, when their variable is unset, and fail when it is set but the server
// cannot be reached). Redis stores get a prefix of their own, deleted when
// the test ends.
package testbackends

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

// Backend is one kind of store.
type Backend struct {
	Name string
	// Open returns a new, empty store configured with opts, closed when t
	// ends. Its expiry follows clock: through store.WithClock, by
	// fast-forwarding miniredis, or by sleeping on a real server.
	Open storetest.Opener
	// TTL suits expiry tests: zero (the suite's default) where the clock is
	// fake, two seconds on a real server.
	TTL time.Duration
}

// Suite is the conformance suite over b.
func (b Backend) Suite() storetest.Suite { return storetest.Suite{Open: b.Open, TTL: b.TTL} }

// All is every backend, in the order tests report them.
var All = append([]Backend{
	{Name: "memory", Open: func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
		s := memory.New(store.OptionsFor[memory.Option](opts)...)
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{Name: "bbolt", Open: func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "contexts.db"), store.OptionsFor[boltstore.Option](opts)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
}, redisBackends()...)

// Bare is the memory store with its optional interfaces (store.Lister,
// store.TTLReader) hidden, not one of All: wrapper stores run the suite over
// it to prove that they offer only what the store they wrap offers.
var Bare = Backend{Name: "a store with no optional interface", Open: func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
	s := memory.New(store.OptionsFor[memory.Option](opts)...)
	t.Cleanup(func() { s.Close() })
	return struct{ store.ContextStore }{s}
}}

// redisBackends opens a client per store (a miniredis per store, so its
// clock can follow the test's).
func redisBackends() []Backend {
	var bs []Backend
	for _, tgt := range redistest.Targets {
		bs = append(bs, Backend{Name: "redis on " + tgt.Name, TTL: tgt.TTL, Open: func(t *testing.T, clock *storetest.Clock, opts ...store.Option) store.ContextStore {
			tg := tgt.Open(t)
			if clock != nil {
				clock.OnAdvance(tg.Advance)
			}
			s, err := redisstore.New(tg.Client, append(store.OptionsFor[redisstore.Option](opts), redisstore.WithPrefix(redistest.Prefix(t, tg.Client)))...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}})
	}
	return bs
}
