package store_test

import (
	"testing"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/store"
)

func TestWithCapabilitiesOffersExactlyWhatItIsGiven(t *testing.T) {
	m := memory.New()
	t.Cleanup(func() { m.Close() })
	base := struct{ store.ContextStore }{m} // hides memory's own List and TTL
	tests := []struct {
		name            string
		caps            store.Capabilities
		lister, ttlRead bool
	}{
		{"neither", store.Capabilities{}, false, false},
		{"a lister", store.Capabilities{List: m.List}, true, false},
		{"a time-to-live reader", store.Capabilities{TTL: m.TTL}, false, true},
		{"both", store.Capabilities{List: m.List, TTL: m.TTL}, true, true},
	}
	for _, tt := range tests {
		t.Run("with "+tt.name, func(t *testing.T) {
			s := store.WithCapabilities(base, tt.caps)
			if _, ok := s.(store.Lister); ok != tt.lister {
				t.Errorf("implements store.Lister: %v, want %v", ok, tt.lister)
			}
			if _, ok := s.(store.TTLReader); ok != tt.ttlRead {
				t.Errorf("implements store.TTLReader: %v, want %v", ok, tt.ttlRead)
			}
		})
	}
}
