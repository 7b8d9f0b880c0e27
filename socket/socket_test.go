package socket_test

import (
	"testing"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/socket/sockettest"
	"github.com/livectx/livectx/store"
)

func TestSocketOverMemory(t *testing.T) {
	sockettest.Run(t, func(t *testing.T) store.ContextStore {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestDefaultStoreIsMemory(t *testing.T) {
	m := socket.NewManager[struct{ N int }]()
	t.Cleanup(func() { m.Close() })
	if _, ok := m.Store().(*memory.Store); !ok {
		t.Fatalf("default store is a %T, want *memory.Store", m.Store())
	}
}

func TestContextTypesThatAreRefused(t *testing.T) {
	type embedded struct{ A int }
	cases := []struct {
		name string
		open func() error
	}{
		{"a type that is not a struct", func() error {
			_, err := socket.NewManager[map[string]int]().Open(t.Context(), "x", nil)
			return err
		}},
		{"two fields sharing a name", func() error {
			type dup struct {
				A int `msgpack:"x"`
				B int `msgpack:"x"`
			}
			_, err := socket.NewManager[dup]().Open(t.Context(), "x", dup{})
			return err
		}},
		{"an embedded struct without a name", func() error {
			type emb struct{ Embedded }
			_, err := socket.NewManager[emb]().Open(t.Context(), "x", emb{})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.open(); err == nil {
				t.Fatal("Open succeeded")
			}
		})
	}
	_ = embedded{}
}

// Embedded is exported so that embedding it makes an exported field.
type Embedded struct{ A int }
