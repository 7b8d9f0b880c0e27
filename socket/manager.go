package socket

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/store"
)

// ErrClosed is returned by the methods of a closed Socket.
var ErrClosed = errors.New("socket: closed")

// Option configures a Manager.
type Option func(*options)

type options struct {
	store store.ContextStore
	keep  bool
}

// WithStore makes the Manager keep contexts in s. The Manager does not close
// s. Without this option it creates a memory store (memory.New()) of its own
// and closes it in Close.
func WithStore(s store.ContextStore) Option { return func(o *options) { o.store = s } }

// KeepOnClose makes Socket.Close keep the socket's record, so a reconnect
// can resume it with Open; the record then expires by the store's time to
// live (store.WithTTL), or never if the store has none. By default Close
// deletes the record.
func KeepOnClose() Option { return func(o *options) { o.keep = true } }

// Manager opens the sockets of one context type T over one store. It is
// safe for concurrent use.
type Manager[T any] struct {
	store store.ContextStore
	owned bool
	keep  bool
	tab   *table
	err   error // T is not a usable context type
}

// NewManager returns a Manager for the context type T, a struct whose
// top-level fields are stored one per record field (see the package doc).
// If T cannot be used (it is not a struct, or two fields share a name), the
// Manager's Open returns the reason.
func NewManager[T any](opts ...Option) *Manager[T] {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	m := &Manager[T]{store: o.store, keep: o.keep}
	if m.store == nil {
		m.store, m.owned = memory.New(), true
	}
	m.tab, m.err = newTable(reflect.TypeFor[T]())
	return m
}

// Store returns the store the Manager keeps contexts in.
func (m *Manager[T]) Store() store.ContextStore { return m.store }

// Close closes the store if the Manager created it; a store given with
// WithStore is left open. Sockets of a closed Manager fail their next store
// call.
func (m *Manager[T]) Close() error {
	if !m.owned {
		return nil
	}
	if err := m.store.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("socket: close store: %w", err)
	}
	return nil
}

// Open returns the socket of the LiveView instance id.
//
// If the store holds a record for id, the socket's context is initial with
// each stored field T knows replaced by its stored value (fields T does not
// know are ignored, fields the record lacks keep initial's value) and
// Restored reports true, so mount logic can skip loading data again. A field
// whose bytes do not decode makes Open fail with an error naming id and
// field that matches store.ErrCorrupt.
//
// Otherwise the context is a deep copy of initial, saved as a new record.
// If another socket creates the record meanwhile, Open restores that one.
func (m *Manager[T]) Open(ctx context.Context, id string, initial T) (*Socket[T], error) {
	if m.err != nil {
		return nil, m.err
	}
	s := &Socket[T]{
		store:   m.store,
		keep:    m.keep,
		tab:     m.tab,
		id:      id,
		initial: cloneContext(m.tab, &initial),
		stored:  make([][]byte, len(m.tab.fields)),
		seen:    make([][]byte, len(m.tab.fields)),
		marks:   make([]uint8, len(m.tab.fields)),
		temps:   make([]*temp, len(m.tab.fields)),
	}
	s.rv = reflect.ValueOf(&s.ctx).Elem()
	for attempt := 0; ; attempt++ {
		rec, err := m.store.Load(ctx, id)
		if err == nil {
			s.ctx = cloneContext(m.tab, &s.initial)
			if err := s.restore(rec); err != nil {
				return nil, fmt.Errorf("socket: open %q: %w", id, err)
			}
			s.restored = true
			copy(s.seen, s.stored)
			return s, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("socket: open %q: %w", id, err)
		}
		s.ctx = cloneContext(m.tab, &s.initial)
		set := make(map[string][]byte, len(m.tab.byName))
		for i := range m.tab.fields {
			f := &m.tab.fields[i]
			if !f.stored {
				continue
			}
			b, err := s.encode(i)
			if err != nil {
				return nil, fmt.Errorf("socket: open %q: encode field %q: %w", id, f.name, err)
			}
			set[f.name], s.stored[i] = b, b
		}
		v, err := m.store.Apply(ctx, id, store.Change{Set: set, CheckVersion: true})
		if err == nil {
			s.version = v
			copy(s.seen, s.stored)
			return s, nil
		}
		// A record created meanwhile is loaded instead; one created and
		// deleted over and over is not chased for ever.
		if !errors.Is(err, store.ErrConflict) || attempt == 2 {
			return nil, fmt.Errorf("socket: open %q: %w", id, err)
		}
		clear(s.stored)
	}
}

// cloneContext returns a copy of *c whose stored fields are deep copies;
// unstored fields (handles such as channels or clients) are copied as they
// are.
func cloneContext[T any](tab *table, c *T) T {
	out := *c
	src := reflect.ValueOf(c).Elem()
	dst := reflect.ValueOf(&out).Elem()
	var cl cloner
	for _, f := range tab.fields {
		if f.stored && hasRefs(f.typ) {
			dst.Field(f.index).Set(cl.clone(src.Field(f.index)))
		}
	}
	return out
}
