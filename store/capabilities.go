package store

import (
	"context"
	"time"
)

// Capabilities are the optional interfaces (Lister, TTLReader) a wrapper
// store offers, as functions; a nil function means the wrapper lacks it.
type Capabilities struct {
	List func(ctx context.Context, cursor string, limit int) ([]string, string, error)
	TTL  func(ctx context.Context, id string) (time.Duration, error)
}

// WithCapabilities returns s extended with the capabilities that are not
// nil, so that a type assertion on the result finds exactly those. Wrapper
// stores (sealed, observe) use it to offer what the store they wrap offers.
func WithCapabilities(s ContextStore, c Capabilities) ContextStore {
	switch {
	case c.List != nil && c.TTL != nil:
		return struct {
			ContextStore
			listFunc
			ttlFunc
		}{s, c.List, c.TTL}
	case c.List != nil:
		return struct {
			ContextStore
			listFunc
		}{s, c.List}
	case c.TTL != nil:
		return struct {
			ContextStore
			ttlFunc
		}{s, c.TTL}
	}
	return s
}

type (
	listFunc func(ctx context.Context, cursor string, limit int) ([]string, string, error)
	ttlFunc  func(ctx context.Context, id string) (time.Duration, error)
)

func (f listFunc) List(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	return f(ctx, cursor, limit)
}

func (f ttlFunc) TTL(ctx context.Context, id string) (time.Duration, error) { return f(ctx, id) }
