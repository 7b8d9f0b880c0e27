// Package storetest is the conformance suite every store.ContextStore
// backend runs, in a few lines, from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, clock *storetest.Clock, opts ...store.Option) store.ContextStore {
//			s := memory.New(opts...)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// It depends on the standard library and the store package only.
package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/livectx/livectx/store"
)

// Opener returns a new, empty store configured with opts, for one subtest.
// The suite passes store.WithClock(clock.Now) among opts; a backend whose
// expiry runs on a server follows the clock with clock.OnAdvance instead.
type Opener func(t *testing.T, clock *Clock, opts ...store.Option) store.ContextStore

// Suite is the conformance suite with its settings.
type Suite struct {
	Open Opener
	// TTL is the time to live used by the expiry cases (default one minute).
	// A backend whose clock cannot be faked uses a short real one.
	TTL time.Duration
}

// Run runs the suite with its defaults.
func Run(t *testing.T, open Opener) { Suite{Open: open}.Run(t) }

// Clock is a fake clock that only moves when Advance is called.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	hooks []func(time.Duration)
}

// NewClock returns a clock set to a fixed instant.
func NewClock() *Clock { return &Clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d, then calls the OnAdvance hooks.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	hooks := append([]func(time.Duration){}, c.hooks...)
	c.mu.Unlock()
	for _, h := range hooks {
		h(d)
	}
}

// OnAdvance registers f to run after every Advance, with its duration: a
// Redis harness fast-forwards miniredis, or sleeps on a real server.
func (c *Clock) OnAdvance(f func(time.Duration)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hooks = append(c.hooks, f)
}
