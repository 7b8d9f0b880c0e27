package livectx_test

import (
	"testing"

	"github.com/livectx/livectx/internal/testbackends"
	"github.com/livectx/livectx/socket/sockettest"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

// TestConformance runs the store contract's suite against every backend:
// memory, bbolt, Redis on miniredis, and Redis on the real server and
// cluster when LIVECTX_REDIS_ADDR and LIVECTX_REDIS_CLUSTER are set.
func TestConformance(t *testing.T) {
	for _, b := range testbackends.All {
		t.Run(b.Name, func(t *testing.T) { b.Suite().Run(t) })
	}
}

// TestSocket runs the socket's behaviours over every backend.
func TestSocket(t *testing.T) {
	for _, b := range testbackends.All {
		t.Run(b.Name, func(t *testing.T) {
			sockettest.Run(t, func(t *testing.T) store.ContextStore { return b.Open(t, storetest.NewClock()) })
		})
	}
}
