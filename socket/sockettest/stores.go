package sockettest

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/livectx/livectx/store"
)

// Counter is a store.ContextStore that forwards every call to another store
// and records the changes Apply is given, so tests and benchmarks can check
// how many writes a socket makes and how many bytes they carry, and counts
// every call, so tests can check that a refused request reached no store.
// It is safe for concurrent use and does not close the store it wraps.
type Counter struct {
	next store.ContextStore

	mu      sync.Mutex
	changes []store.Change // copies of every Apply's change
	applies int
	loads   int
	others  int // Delete and Touch
	bytes   int
	keep    bool
}

// Count returns a Counter over s that keeps a copy of every change (see
// Changes).
func Count(s store.ContextStore) *Counter { return &Counter{next: s, keep: true} }

// CountOnly returns a Counter over s that only counts Applies and bytes,
// without keeping the changes (for benchmarks).
func CountOnly(s store.ContextStore) *Counter { return &Counter{next: s} }

// Applies returns how many times Apply was called.
func (c *Counter) Applies() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applies
}

// Loads returns how many times Load was called.
func (c *Counter) Loads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads
}

// Calls returns how many calls reached the store: Load, Apply, Delete and
// Touch (Close does not reach it).
func (c *Counter) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads + c.applies + c.others
}

// BytesWritten returns the total size of the fields Apply was asked to set
// (names and values), as store.Record.Size counts them.
func (c *Counter) BytesWritten() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Changes returns copies of the changes Apply was given, oldest first.
func (c *Counter) Changes() []store.Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]store.Change(nil), c.changes...)
}

// Reset forgets the counts and the changes.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.changes, c.applies, c.loads, c.others, c.bytes = nil, 0, 0, 0, 0
}

// Load counts the call, then forwards it to the wrapped store.
func (c *Counter) Load(ctx context.Context, id string) (store.Record, error) {
	c.count(&c.loads)
	return c.next.Load(ctx, id)
}

// Apply counts ch, then forwards it to the wrapped store.
func (c *Counter) Apply(ctx context.Context, id string, ch store.Change) (uint64, error) {
	c.mu.Lock()
	c.applies++
	c.bytes += store.Record{Fields: ch.Set}.Size()
	if c.keep {
		cp := ch
		cp.Set = make(map[string][]byte, len(ch.Set))
		for k, v := range ch.Set {
			cp.Set[k] = append([]byte(nil), v...)
		}
		cp.Delete = append([]string(nil), ch.Delete...)
		c.changes = append(c.changes, cp)
	}
	c.mu.Unlock()
	return c.next.Apply(ctx, id, ch)
}

// Delete counts the call, then forwards it to the wrapped store.
func (c *Counter) Delete(ctx context.Context, id string) error {
	c.count(&c.others)
	return c.next.Delete(ctx, id)
}

// Touch counts the call, then forwards it to the wrapped store.
func (c *Counter) Touch(ctx context.Context, id string) error {
	c.count(&c.others)
	return c.next.Touch(ctx, id)
}

func (c *Counter) count(n *int) {
	c.mu.Lock()
	*n++
	c.mu.Unlock()
}

// Close does nothing: the wrapped store belongs to the caller.
func (c *Counter) Close() error { return nil }

// failing is a store whose Apply fails with err while fail is set, without
// writing; every other call is forwarded.
type failing struct {
	next store.ContextStore

	mu   sync.Mutex
	fail error
}

func (f *failing) failWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *failing) Load(ctx context.Context, id string) (store.Record, error) {
	return f.next.Load(ctx, id)
}

func (f *failing) Apply(ctx context.Context, id string, ch store.Change) (uint64, error) {
	f.mu.Lock()
	err := f.fail
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return f.next.Apply(ctx, id, ch)
}

func (f *failing) Delete(ctx context.Context, id string) error { return f.next.Delete(ctx, id) }
func (f *failing) Touch(ctx context.Context, id string) error  { return f.next.Touch(ctx, id) }
func (f *failing) Close() error                                { return nil }

// fieldNames returns the sorted names a change sets.
func fieldNames(ch store.Change) []string {
	return sortedKeys(ch.Set)
}

func sortedKeys(m map[string][]byte) []string { return slices.Sorted(maps.Keys(m)) }
