package livectx_test

import (
	"path/filepath"
	"testing"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/socket/sockettest"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

// backend opens a new, empty store of one kind for one test.
type backend struct {
	name string
	open func(t *testing.T, clock *storetest.Clock, opts ...store.Option) store.ContextStore
}

func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
			s := memory.New(opts...)
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"bbolt", func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
			s, err := boltstore.Open(filepath.Join(t.TempDir(), "contexts.db"), opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
	}
}

// TestConformance runs the store contract's suite against every backend.
func TestConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { storetest.Run(t, b.open) })
	}
}

// TestSocket runs the socket's behaviours over every backend.
func TestSocket(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			sockettest.Run(t, func(t *testing.T) store.ContextStore { return b.open(t, storetest.NewClock()) })
		})
	}
}
