package socket

import (
	"bytes"
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
	keep  bool
	tab   *table
	id    string

	evMu sync.Mutex // held for a whole Event

	mu       sync.Mutex // guards everything below
	ctx      T
	rv       reflect.Value // ctx, settable
	initial  T             // deep copy of Open's initial, for Reload
	version  uint64
	restored bool
	closed   bool
	rendered bool // a render cycle has completed since Open or Reload

	stored   [][]byte // per field: the bytes the store holds (nil: none)
	seen     [][]byte // per stored field: its encoding when the last render ran
	marks    []uint8  // per field: markAssigned, markPending
	assigned []int    // fields assigned since the last render
	pending  []int    // fields whose write failed, retried by the next render
	temps    []*temp  // per field: its reset value, if TempAssign set one
	tempIdx  []int    // fields that have a reset value
}

// cycle is the working memory of one render cycle, reused through a pool
// per Manager, so that a cycle allocates little beyond the encodings it
// makes and an idle socket holds none. The encodings themselves are never
// reused: stored and seen keep them.
type cycle struct {
	enc     [][]byte          // per field: its encoding this cycle, or nil
	encoded []int             // the fields enc holds
	set     map[string][]byte // the fields to write, by name
	written []int             // the fields set holds
}

// cycle returns working memory for a render cycle; release gives it back.
func (tab *table) cycle() *cycle {
	if c, ok := tab.cycles.Get().(*cycle); ok {
		return c
	}
	return &cycle{enc: make([][]byte, len(tab.fields))}
}

// release empties c, dropping its references to the encodings, and keeps it
// for another cycle.
func (tab *table) release(c *cycle) {
	for _, i := range c.encoded {
		c.enc[i] = nil
	}
	c.encoded, c.written = c.encoded[:0], c.written[:0]
	clear(c.set)
	tab.cycles.Put(c)
}

// put records b as field i's encoding this cycle.
func (c *cycle) put(i int, b []byte) {
	if c.enc[i] == nil { // an encoding is never nil
		c.encoded = append(c.encoded, i)
	}
	c.enc[i] = b
}

const (
	markAssigned uint8 = 1 << iota
	markPending
)

// temp is the reset value of a temporary field.
type temp struct {
	value any
	enc   []byte           // value encoded (stored fields)
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

// Restored reports whether Open found the context in the store (rather than
// starting from the initial value), so mount logic can skip loading data.
func (s *Socket[T]) Restored() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restored
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
	return cloneContext(s.tab, &s.ctx)
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
		}
		ts[i] = t
	}
	for i, r := range rs {
		if s.temps[r.index] == nil {
			s.tempIdx = append(s.tempIdx, r.index)
		}
		s.temps[r.index] = ts[i]
		s.assign(r)
	}
	return nil
}

// check resolves every assignment before any is applied, appending them to
// rs.
func (s *Socket[T]) check(rs []resolved, as []Assignment) ([]resolved, error) {
	if s.closed {
		return nil, fmt.Errorf("socket: assign %q: %w", s.id, ErrClosed)
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
	setField(s.rv, &s.ctx, r.field, r.set, r.value)
	s.mark(r.index)
}

func (s *Socket[T]) mark(i int) {
	if s.marks[i]&markAssigned == 0 {
		s.marks[i] |= markAssigned
		s.assigned = append(s.assigned, i)
	}
}

// Changed is the set of fields a render cycle changed, by name (the msgpack
// name of a stored field, the Go name of another), so a template can skip
// the parts that did not change.
//
// A stored field is changed when it was assigned since the previous render
// and its encoded value differs from what that render saw; a temporary field
// also when its reset value differs from the value that render saw. An
// unstored field is changed whenever it was assigned (or, if temporary,
// reset). The first render after Open or Reload reports every field.
type Changed struct {
	names []string // sorted
}

// Has reports whether the field named name changed.
func (c Changed) Has(name string) bool {
	_, ok := slices.BinarySearch(c.names, name)
	return ok
}

// Names returns the names of the changed fields, sorted.
func (c Changed) Names() []string { return slices.Clone(c.names) }

// Render runs one render cycle. render receives a shallow copy of the
// context (it must not modify the context's slices, maps or pointees in
// place) and the fields that changed since the previous render. If render
// returns an error, Render returns it and nothing is reset or written.
//
// After render returns nil, the temporary fields return to their reset
// values, then one store write (checking the record's version) holds the
// fields whose encoded value differs from the stored one. Only fields
// assigned since the previous render (and those whose last write failed)
// are encoded and compared, so a cycle costs in proportion to what was
// assigned, not to the size of the context. A cycle that changes nothing
// writes nothing.
//
// If the write fails, the context stays as the cycle left it and the
// fields remain pending: the next Render writes them. If another socket
// wrote the record since this one read it, the error matches
// store.ErrConflict; call Reload to take the stored context.
//
// render runs with the socket locked: it must not call the socket's methods.
// A nil render ends the cycle without rendering (to save assignments).
func (s *Socket[T]) Render(ctx context.Context, render func(c T, changed Changed) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("socket: render %q: %w", s.id, ErrClosed)
	}
	// Encode what this cycle assigned, and find what the render sees changed.
	cur := s.tab.cycle()
	defer s.tab.release(cur)
	var changed []string
	for _, i := range s.assigned {
		f := &s.tab.fields[i]
		if !f.stored {
			changed = append(changed, f.name)
			continue
		}
		b, err := s.encode(i)
		if err != nil {
			return fmt.Errorf("socket: render %q: encode field %q: %w", s.id, f.name, err)
		}
		cur.put(i, b)
		if !bytes.Equal(b, s.seen[i]) {
			changed = append(changed, f.name)
		}
	}
	for _, i := range s.tempIdx {
		f := &s.tab.fields[i]
		if s.marks[i]&markAssigned != 0 || !s.rendered {
			continue
		}
		// Not assigned since it was reset after the previous render: its
		// value is the reset value.
		if !f.stored {
			changed = append(changed, f.name)
		} else if !bytes.Equal(s.temps[i].enc, s.seen[i]) {
			changed = append(changed, f.name)
			cur.put(i, s.temps[i].enc)
		}
	}
	// Fields whose last write failed are written with their current value.
	for _, i := range s.pending {
		if f := &s.tab.fields[i]; s.marks[i]&markAssigned == 0 && s.temps[i] == nil {
			b, err := s.encode(i)
			if err != nil {
				return fmt.Errorf("socket: render %q: encode field %q: %w", s.id, f.name, err)
			}
			cur.put(i, b)
		}
	}
	if !s.rendered {
		changed = s.tab.names
	} else {
		slices.Sort(changed)
	}

	if render != nil {
		if err := render(s.ctx, Changed{names: changed}); err != nil {
			return err
		}
	}

	for _, i := range cur.encoded {
		s.seen[i] = cur.enc[i]
	}
	s.rendered = true
	for _, i := range s.tempIdx {
		t := s.temps[i]
		setField(s.rv, &s.ctx, &s.tab.fields[i], t.set, deepCopy(t.value))
	}

	// Write the fields whose final value differs from the stored one.
	if cur.set == nil {
		cur.set = make(map[string][]byte, len(s.assigned)+len(s.pending))
	}
	for _, list := range [...][]int{s.assigned, s.pending} {
		for _, i := range list {
			f := &s.tab.fields[i]
			if !f.stored {
				continue
			}
			b := cur.enc[i]
			if s.temps[i] != nil {
				b = s.temps[i].enc // what the store receives is the reset value
			}
			if _, dup := cur.set[f.name]; dup || (s.stored[i] != nil && bytes.Equal(b, s.stored[i])) {
				continue
			}
			cur.set[f.name] = b
			cur.written = append(cur.written, i)
		}
	}
	s.clearMarks()
	if len(cur.set) == 0 {
		return nil
	}
	// Apply keeps neither the map nor the bytes, so the map is reused.
	v, err := s.store.Apply(ctx, s.id, store.Change{Set: cur.set, CheckVersion: true, IfVersion: s.version})
	if err != nil {
		for _, i := range cur.written {
			s.marks[i] |= markPending
		}
		s.pending = append(s.pending, cur.written...) // clearMarks emptied it
		return fmt.Errorf("socket: write %q: %w", s.id, err)
	}
	s.version = v
	for _, i := range cur.written {
		s.stored[i] = cur.set[s.tab.fields[i].name]
	}
	return nil
}

// encode returns the encoding of field i of the context. It hands Marshal
// the field's address, which, unlike its value, fits in an interface
// without a copy.
func (s *Socket[T]) encode(i int) ([]byte, error) {
	return codec.Marshal(s.rv.Field(i).Addr().Interface())
}

// clearMarks forgets the assigned and pending fields.
func (s *Socket[T]) clearMarks() {
	for _, i := range s.assigned {
		s.marks[i] = 0
	}
	for _, i := range s.pending {
		s.marks[i] = 0
	}
	s.assigned, s.pending = s.assigned[:0], s.pending[:0]
}

// Event runs one event: handle (which calls Assign, TempAssign...) then
// Render with render, holding a lock that serialises the Events of the
// socket, so events from several goroutines never interleave. If handle
// fails, Event returns its error without rendering; what handle assigned
// is rendered by the next cycle.
func (s *Socket[T]) Event(ctx context.Context, handle func() error, render func(c T, changed Changed) error) error {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	if err := handle(); err != nil {
		return err
	}
	return s.Render(ctx, render)
}

// Reload replaces the context by the stored one, as Open would restore it,
// dropping the changes not yet written; unstored fields keep their values
// and temporary fields stay temporary. Use it after a Render failed with
// store.ErrConflict. The next render reports every field as changed. A
// record that no longer exists returns an error matching store.ErrNotFound.
func (s *Socket[T]) Reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("socket: reload %q: %w", s.id, ErrClosed)
	}
	rec, err := s.store.Load(ctx, s.id)
	if err != nil {
		return fmt.Errorf("socket: reload %q: %w", s.id, err)
	}
	old := s.ctx
	fresh := cloneContext(s.tab, &s.initial)
	fv := reflect.ValueOf(&fresh).Elem()
	for _, f := range s.tab.fields {
		if f.stored { // unstored fields keep their values
			s.rv.Field(f.index).Set(fv.Field(f.index))
		}
	}
	prev := slices.Clone(s.stored)
	clear(s.stored)
	if err := s.restore(rec); err != nil {
		s.ctx, s.stored = old, prev
		return fmt.Errorf("socket: reload %q: %w", s.id, err)
	}
	s.clearMarks()
	copy(s.seen, s.stored)
	s.rendered = false
	return nil
}

// restore decodes rec's fields that T knows into s.ctx. On error s.ctx may
// be partly written (its old values are replaced, never modified in place).
func (s *Socket[T]) restore(rec store.Record) error {
	for name, b := range rec.Fields {
		i, ok := s.tab.byName[name]
		if !ok {
			continue
		}
		// Decode into the field itself, emptied first so that the value
		// is the stored one whatever the field held.
		fv := s.rv.Field(i)
		fv.SetZero()
		if err := codec.Unmarshal(s.id, name, b, fv.Addr().Interface()); err != nil {
			return err
		}
		s.stored[i] = b
	}
	s.version = rec.Version
	return nil
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
	if s.keep {
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
