package livectx_test

import (
	"path/filepath"
	"testing"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/socket/sockettest"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

// backend names a kind of store and opens new, empty ones for the
// conformance suite.
type backend struct {
	name  string
	suite func(t *testing.T) storetest.Suite
}

// backends are every store livectx ships: memory, bbolt in a temp dir,
// Redis on miniredis, and Redis on the real server and cluster that
// LIVECTX_REDIS_ADDR and LIVECTX_REDIS_CLUSTER name (skipped, saying so,
// when unset).
func backends() []backend {
	bs := []backend{
		{"memory", func(*testing.T) storetest.Suite {
			return storetest.Suite{Open: func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
				s := memory.New(opts...)
				t.Cleanup(func() { s.Close() })
				return s
			}}
		}},
		{"bbolt", func(*testing.T) storetest.Suite {
			return storetest.Suite{Open: func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
				s, err := boltstore.Open(filepath.Join(t.TempDir(), "contexts.db"), opts...)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}}
		}},
	}
	for _, tgt := range redistest.Targets {
		bs = append(bs, backend{"redis on " + tgt.Name, func(t *testing.T) storetest.Suite {
			if tgt.Name == "miniredis" {
				// A miniredis per store, whose clock follows the suite's.
				return storetest.Suite{Open: func(t *testing.T, clock *storetest.Clock, opts ...store.Option) store.ContextStore {
					tg := tgt.Open(t)
					clock.OnAdvance(tg.Advance)
					return openRedis(t, tg, opts...)
				}}
			}
			tg := tgt.Open(t) // one client for the suite; a prefix per store
			return storetest.Suite{TTL: tg.TTL, Open: func(t *testing.T, clock *storetest.Clock, opts ...store.Option) store.ContextStore {
				clock.OnAdvance(tg.Advance)
				return openRedis(t, tg, opts...)
			}}
		}})
	}
	return bs
}

func openRedis(t *testing.T, tg redistest.Target, opts ...store.Option) store.ContextStore {
	opts = append([]store.Option{redisstore.WithPrefix(redistest.Prefix(t, tg.Client))}, opts...)
	s, err := redisstore.New(tg.Client, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the store contract's suite against every backend.
func TestConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { b.suite(t).Run(t) })
	}
}

// TestSocket runs the socket's behaviours over every backend.
func TestSocket(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.suite(t).Open
			sockettest.Run(t, func(t *testing.T) store.ContextStore { return open(t, storetest.NewClock()) })
		})
	}
}
