package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/store"
)

// wrapper has every optional method, as sealed and observe do, and says
// what it wraps. As only looks at method sets: the methods are not called.
type wrapper struct{ store.ContextStore }

func (w wrapper) Unwrap() store.ContextStore { return w.ContextStore }

func (w wrapper) List(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	return nil, "", fmt.Errorf("wrapper: list: %w", store.ErrUnsupported)
}

func (w wrapper) TTL(ctx context.Context, id string) (time.Duration, error) {
	return 0, fmt.Errorf("wrapper: ttl: %w", store.ErrUnsupported)
}

// bare wraps a store, says so, and has no optional method.
type bare struct{ store.ContextStore }

func (b bare) Unwrap() store.ContextStore { return b.ContextStore }

// lister offers List alone, and says nothing of what it wraps.
type lister struct{ *memory.Store }

func (l lister) TTL() {} // not store.TTLReader's TTL: hides memory's

func TestAsFindsWhatTheStoreUnderneathCanServe(t *testing.T) {
	m := memory.New()
	t.Cleanup(func() { m.Close() })
	hidden := struct{ store.ContextStore }{m} // hides memory's List and TTL
	tests := []struct {
		name            string
		s               store.ContextStore
		lister, ttlRead bool
	}{
		{"a backend with both", m, true, true},
		{"a store with neither", hidden, false, false},
		{"a store with List alone", lister{m}, true, false},
		{"a wrapper over a backend with both", wrapper{m}, true, true},
		{"a wrapper over a store with neither", wrapper{hidden}, false, false},
		{"a wrapper over a store with List alone", wrapper{lister{m}}, true, false},
		{"a wrapper over a wrapper over a store with neither", wrapper{wrapper{hidden}}, false, false},
		{"a wrapper over a wrapper over a backend with both", wrapper{wrapper{m}}, true, true},
		{"a wrapper without them over a backend with both", bare{wrapper{m}}, false, false},
		{"no store", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if l, ok := store.As[store.Lister](tt.s); ok != tt.lister || (l == nil) == ok {
				t.Errorf("As[Lister] = %T, %v; want ok %v", l, ok, tt.lister)
			}
			if r, ok := store.As[store.TTLReader](tt.s); ok != tt.ttlRead || (r == nil) == ok {
				t.Errorf("As[TTLReader] = %T, %v; want ok %v", r, ok, tt.ttlRead)
			}
		})
	}
}
