package socket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/store"
)

// ErrClosed is returned, naming the call and id, by the methods of a Socket
// after its Close: the socket ended. It is not store.ErrClosed, which a
// socket whose store was closed returns (wrapped in the store's own words).
var ErrClosed = errors.New("socket: closed")

// Option configures a Manager.
type Option func(*options)

type options struct {
	store      store.ContextStore
	keep       bool
	strict     bool
	retries    int
	logger     *slog.Logger
	migrations map[string]func(Stored) ([]Assignment, error)
	retired    []string
	err        error // an option that cannot be used
}

// DefaultEventRetries is how many times Event runs an event again after a
// conflict, unless EventRetries says otherwise.
const DefaultEventRetries = 10

// WithStore makes the Manager keep contexts in s. The Manager does not close
// s. Without this option it creates a memory store (memory.New()) of its own
// and closes it in Close.
func WithStore(s store.ContextStore) Option { return func(o *options) { o.store = s } }

// KeepOnClose makes Socket.Close keep the socket's record, so a reconnect
// can resume it with Open; the record then expires by the store's time to
// live (store.WithTTL), or never if the store has none. By default Close
// deletes the record.
func KeepOnClose() Option { return func(o *options) { o.keep = true } }

// EventRetries sets how many times Socket.Event runs an event again, on the
// stored context, after its write met store.ErrConflict (default
// DefaultEventRetries). Zero makes Event return the first conflict.
func EventRetries(n int) Option { return func(o *options) { o.retries = max(n, 0) } }

// Strict makes Open and Reload fail when a stored field is well-formed but
// does not fit its Go type (the context type changed) and no migration
// converts it (Migrate), with a *store.SchemaError naming id, field, the stored
// msgpack type and the Go type (errors.Is(err, store.ErrSchema)). By default
// such a field takes its initial value and Socket.ResetFields names it.
func Strict() Option { return func(o *options) { o.strict = true } }

// WithLogger makes the Manager's sockets log, at level Warn, each field
// reset because its stored value no longer fits the context type, and at
// level Info each migration they run. By default nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Migrate registers convert as the migration of the stored field named
// from: convert receives the stored value and returns the assignments that
// replace it (a type change assigns the field of the same name, a rename
// another field, a split several).
//
// Open and Reload call convert when the record holds from and the context
// type either has no stored field of that name or cannot decode its bytes.
// The assignments are made to the context, which the next render writes,
// except those to fields the record holds in a form the type reads: a
// record that a node of the new build already migrated keeps its values.
// An error from convert fails the Open. The stored field from stays in the
// record until it is retired (Retire). Two migrations of one field are an
// error that Open returns.
func Migrate(from string, convert func(Stored) ([]Assignment, error)) Option {
	return func(o *options) {
		if _, dup := o.migrations[from]; dup || convert == nil {
			o.err = fmt.Errorf("socket: migration of %q: nil or registered twice", from)
		}
		if o.migrations == nil {
			o.migrations = map[string]func(Stored) ([]Assignment, error){}
		}
		o.migrations[from] = convert
	}
}

// Stored is the value of a stored field, as a migration receives it.
type Stored struct {
	id, name string
	b        []byte
}

// Name returns the stored field's name.
func (s Stored) Name() string { return s.name }

// Decode decodes the stored value into v, a non-nil pointer, with the same
// bounds as every read of stored bytes (codec.Unmarshal): an error matches
// store.ErrCorrupt or store.ErrSchema.
func (s Stored) Decode(v any) error { return codec.Unmarshal(s.id, s.name, s.b, v) }

// Retire names stored fields that the context type no longer has and that
// no node of an older build still reads: each socket deletes them from its
// record with its next write. Until a field is retired it is kept, because
// during a rolling deploy the previous build may still read it. Naming a
// field the type has is an error that Open returns.
func Retire(names ...string) Option {
	return func(o *options) { o.retired = append(o.retired, names...) }
}

// Manager opens the sockets of one context type T over one store. It is
// safe for concurrent use.
type Manager[T any] struct {
	store store.ContextStore
	owned bool
	opts  options
	tab   *table
	err   error // T or an option cannot be used
}

// NewManager returns a Manager for the context type T, a struct whose
// top-level fields are stored one per record field (see the package doc).
// If T cannot be used (it is not a struct, or two fields share a name), or
// a migration or Retire does not fit T, the Manager's Open returns the
// reason.
func NewManager[T any](opts ...Option) *Manager[T] {
	o := options{retries: DefaultEventRetries}
	for _, opt := range opts {
		opt(&o)
	}
	m := &Manager[T]{store: o.store, opts: o}
	if m.store == nil {
		m.store, m.owned = memory.New(), true
	}
	m.tab, m.err = newTable(reflect.TypeFor[T]())
	if m.err == nil {
		m.err = o.err
	}
	for _, name := range o.retired {
		if _, ok := m.tab.byName[name]; ok && m.err == nil {
			m.err = fmt.Errorf("socket: cannot retire %q: context type %v has that field", name, m.tab.typ)
		}
	}
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
// An id is a bearer credential: whoever presents it resumes the context.
// Open trusts id, so an id that a client supplied (a URL, a form, a
// websocket message) is the unsafe path: open such sockets with OpenToken,
// which verifies a signed token binding the id to its owner before it
// reads anything.
//
// If the store holds a record for id, the socket's context is initial with
// each stored field T knows replaced by its stored value (fields T does not
// know are kept in the record and ignored, unless a migration converts
// them; fields the record lacks keep initial's value), and Restored reports
// true, so mount logic can skip loading data again. A field whose bytes are
// malformed makes Open fail with an error naming id and field that matches
// store.ErrCorrupt. A field whose well-formed bytes do not fit its Go type
// (the type changed) is converted by its migration (Migrate), or else takes its
// initial value and is named by ResetFields (or, with Strict, fails Open
// with store.ErrSchema).
//
// The socket keeps a deep copy of initial for Reload and schema resets, so
// pass the defaults (small) and assign what mount loads.
//
// Otherwise the context is a deep copy of initial and nothing is written:
// a page view that assigns nothing leaves the store as it was. The first
// render that has something to write creates the record with every stored
// field.
func (m *Manager[T]) Open(ctx context.Context, id string, initial T) (*Socket[T], error) {
	if m.err != nil {
		return nil, m.err
	}
	s := &Socket[T]{
		store: m.store,
		opts:  &m.opts,
		tab:   m.tab,
		id:    id,
		fs:    make([]fieldState, len(m.tab.fields)),
	}
	s.rv = reflect.ValueOf(&s.state).Elem()
	if !reflect.ValueOf(&initial).Elem().IsZero() { // a zero initial needs no copy
		s.state = cloneContext(m.tab, &initial)
		c := cloneContext(m.tab, &initial)
		s.initial = &c
	}
	rec, err := m.tab.load(ctx, m.store, id)
	if errors.Is(err, store.ErrNotFound) {
		return s, nil
	}
	if err == nil {
		err = s.restore(rec)
	}
	if err != nil {
		return nil, fmt.Errorf("socket: open %q: %w", id, err)
	}
	return s, nil
}

// cloneContext returns a copy of *c whose stored fields are deep copies;
// unstored fields (handles such as channels or clients) are copied as they
// are.
func cloneContext[T any](tab *table, c *T) T {
	out := *c
	src := reflect.ValueOf(c).Elem()
	var dst reflect.Value // made only if a field needs a deep copy
	var cl cloner
	for _, f := range tab.fields {
		if !f.refs || src.Field(f.index).IsZero() { // nil: nothing to share
			continue
		}
		if !dst.IsValid() {
			dst = reflect.ValueOf(&out).Elem()
		}
		dst.Field(f.index).Set(cl.clone(src.Field(f.index)))
	}
	return out
}
