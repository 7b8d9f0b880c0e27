package socket

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/store"
)

// Socket holds the context (the LiveView state, not a context.Context) of
// one LiveView instance: a value of the author's struct type T, kept in a
// ContextStore one field per top-level field. Make it with Manager.Open.
//
// All methods are safe for concurrent use; Event serialises whole events.
type Socket[T any] struct {
	store store.ContextStore
	opts  *options // the Manager's
	tab   *table
	id    string

	evMu sync.Mutex // held for a whole Event

	mu       sync.Mutex    // guards everything below
	state    T             // the context
	rv       reflect.Value // state, settable
	initial  *T            // deep copy of Open's initial, for Reload; nil: the zero T
	version  uint64        // of the record as last read or written; 0: none
	closed   bool
	rendered bool // a render cycle has completed since Open or Reload

	fs       []fieldState // per field of T
	assigned []int        // fields assigned since the last render
	tempIdx  []int        // fields that have a reset value
	retire   []string     // retired fields the record holds, deleted by the next write
	reset    []string     // fields whose stored value no longer fit, at Open or Reload
	nonce    string       // names the socket's leases; made by its first claim
	lease    claim        // the lease the record held at the last restore
}

// fieldState is what a socket knows of one field of its context.
type fieldState struct {
	stored digest // of the bytes the store holds (none: no bytes, or unreadable)
	seen   digest // of a stored field's encoding when the last render ran
	temp   *temp  // its reset value, if TempAssign set one
	marked bool   // assigned since the last render (in Socket.assigned)
}

// temp is the reset value of a temporary field.
type temp struct {
	value any
	enc   []byte           // value encoded (stored fields)
	sum   digest           // of enc
	set   func(ctx, v any) // the Field's setter, or nil (reflect)
}

// ID returns the LiveView instance id the socket was opened with.
func (s *Socket[T]) ID() string { return s.id }

// Version returns the version of the record as the socket last read or wrote it.
func (s *Socket[T]) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Restored reports whether the store holds the socket's record: Open or
// Reload found it, or a render has written it since. At mount it says the
// context was resumed (mount logic can skip loading data again); on a page
// load that reuses an open socket it says the page shows a context that
// existed before the load. A socket opened for a new id reports false until
// its first write.
func (s *Socket[T]) Restored() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version != 0
}

// ResetFields returns the names of the stored fields whose stored values no
// longer fit the context type (a deploy changed it) and no migration
// converted, so Open or the last Reload gave them their initial values; nil
// when every field was read. An application can tell its user what could
// not be kept. The names are sorted; the slice is the caller's.
func (s *Socket[T]) ResetFields() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reset)
}

// Context returns a deep copy of the context: reading or modifying it
// cannot change the socket or the store. Its cost grows with the size of the
// context (every slice, map and pointer of the stored fields is copied); to
// read one field cheaply use Field.Get, and in a render use the value Render
// passes. Unstored fields (unexported or `msgpack:"-"`) are copied as they
// are.
func (s *Socket[T]) Context() T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneContext(s.tab, &s.state)
}

// Assign sets the fields of the assignments in the context (a shallow merge,
// as LiveViewJS's socket.assign); the other fields keep their values. The
// next Render writes them. Zero values are assigned like any other. If any
// assignment is refused (an unknown field, a value of the wrong type, a
// Field of another context type) Assign returns an error naming the field
// and changes nothing.
func (s *Socket[T]) Assign(as ...Assignment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf [4]resolved // room for the usual few assignments, on the stack
	rs, err := s.check(buf[:0], as)
	if err != nil {
		return err
	}
	for _, r := range rs {
		s.assign(r)
	}
	return nil
}

// TempAssign assigns like Assign and makes each field temporary, with the
// value assigned now as its reset value (as LiveViewJS's
// socket.tempAssign): the next render sees the value, then after every
// render cycle the field returns to a copy of the reset value, for the
// socket's life. The store only ever receives the reset value. A later
// TempAssign of the field replaces its reset value.
func (s *Socket[T]) TempAssign(as ...Assignment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs, err := s.check(nil, as)
	if err != nil {
		return err
	}
	ts := make([]*temp, len(rs))
	for i, r := range rs {
		t := &temp{value: deepCopy(r.value), set: r.set}
		if r.field.stored {
			if t.enc, err = codec.Marshal(t.value); err != nil {
				return fmt.Errorf("socket: temp assign %q: encode field %q: %w", s.id, r.name, err)
			}
			t.sum = s.tab.digest(t.enc)
		}
		ts[i] = t
	}
	for i, r := range rs {
		if s.fs[r.index].temp == nil {
			s.tempIdx = append(s.tempIdx, r.index)
		}
		s.fs[r.index].temp = ts[i]
		s.assign(r)
	}
	return nil
}

// check resolves every assignment before any is applied, appending them to
// rs.
func (s *Socket[T]) check(rs []resolved, as []Assignment) ([]resolved, error) {
	if s.closed {
		return nil, fmt.Errorf("%w: assign %q", ErrClosed, s.id)
	}
	for _, a := range as {
		r, err := s.tab.resolve(a)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func (s *Socket[T]) assign(r resolved) {
	setField(s.rv, &s.state, r.field, r.set, r.value)
	s.mark(r.index)
}

func (s *Socket[T]) mark(i int) {
	if !s.fs[i].marked {
		s.fs[i].marked = true
		s.assigned = append(s.assigned, i)
	}
}

// Close ends the socket: it deletes its record or, if the Manager was made
// with KeepOnClose, refreshes its time to live so that it expires one TTL
// after the close unless a reconnect opens it. Assignments not yet written by a Render are
// dropped. Later calls to Close return nil; the socket's other methods
// return ErrClosed.
func (s *Socket[T]) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.opts.keep {
		// The grace period for a reconnect starts now.
		if err := s.store.Touch(ctx, s.id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("socket: close %q: %w", s.id, err)
		}
	} else if err := s.store.Delete(ctx, s.id); err != nil {
		return fmt.Errorf("socket: close %q: %w", s.id, err)
	}
	s.closed = true
	return nil
}
