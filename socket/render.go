package socket

import (
	"context"
	"fmt"
	"slices"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/store"
)

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

// Render runs one render cycle: it writes what changed, then renders, then
// resets the temporary fields.
//
// First one store write, checking the record's version, holds the fields
// assigned since the previous render whose encoded value differs from the
// stored one (a temporary field's reset value, never its current one). Only
// assigned fields are encoded and compared, so a cycle costs in proportion
// to what was assigned, not to the size of the context. A cycle that
// changes nothing writes nothing. A socket whose record does not exist yet
// writes nothing until a field other than a temporary one is assigned; that
// write creates the record with every stored field.
//
// If the write fails, Render returns its error before rendering and the
// context keeps its assignments: the next Render writes them. If another
// socket wrote the record since this one read it, the error matches
// store.ErrConflict; Event handles that by running the event again on the
// stored context, or call Reload.
//
// Then render receives a shallow copy of the context (it must not modify
// the context's slices, maps or pointees in place) and the fields that
// changed since the previous render. If render returns an error, Render
// returns it and resets nothing; the next Render reports the same changes.
// Otherwise the temporary fields return to their reset values.
//
// render runs with the socket locked: it must not call the socket's methods.
// A nil render ends the cycle without rendering (to save assignments).
func (s *Socket[T]) Render(ctx context.Context, render func(c T, changed Changed) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%w: render %q", ErrClosed, s.id)
	}
	cur := s.tab.cycle()
	defer s.tab.release(cur)
	changed, err := s.encodeCycle(cur)
	if err != nil {
		return fmt.Errorf("socket: render %q: %w", s.id, err)
	}
	if err := s.write(ctx, cur); err != nil {
		return fmt.Errorf("socket: write %q: %w", s.id, err)
	}
	if render != nil {
		if err := render(s.state, Changed{names: changed}); err != nil {
			return err
		}
	}
	s.endCycle(cur)
	return nil
}

// encodeCycle puts into cur the encodings of the stored fields this cycle
// assigned and of the temporary fields the previous cycle reset, and
// returns the names of the fields the render sees changed.
func (s *Socket[T]) encodeCycle(cur *cycle) ([]string, error) {
	var changed []string
	for _, i := range s.assigned {
		f := &s.tab.fields[i]
		if !f.stored {
			changed = append(changed, f.name)
			continue
		}
		b, err := s.encode(i)
		if err != nil {
			return nil, fmt.Errorf("encode field %q: %w", f.name, err)
		}
		d := s.tab.digest(b)
		cur.put(i, b, d)
		if d != s.fs[i].seen {
			changed = append(changed, f.name)
		}
	}
	for _, i := range s.tempIdx {
		f, st := &s.tab.fields[i], &s.fs[i]
		if st.marked || !s.rendered {
			continue
		}
		// Not assigned since it was reset after the previous render: its
		// value is the reset value.
		if !f.stored {
			changed = append(changed, f.name)
		} else if st.temp.sum != st.seen {
			changed = append(changed, f.name)
			cur.put(i, st.temp.enc, st.temp.sum)
		}
	}
	if !s.rendered {
		return s.tab.names, nil
	}
	slices.Sort(changed)
	return changed, nil
}

// write makes the cycle's one store write: the assigned stored fields whose
// final value differs from the stored one, the retired fields the record
// holds, and, when the record does not exist yet, every stored field.
func (s *Socket[T]) write(ctx context.Context, cur *cycle) error {
	if cur.set == nil {
		cur.set = make(map[string][]byte, len(s.assigned))
	}
	lasting := false // a field other than a temporary one is written
	for _, i := range s.assigned {
		f, st := &s.tab.fields[i], &s.fs[i]
		if !f.stored {
			continue
		}
		b, d := cur.enc[i], cur.sums[i]
		if st.temp != nil {
			b, d = st.temp.enc, st.temp.sum // what the store receives is the reset value
		}
		if d == st.stored {
			continue
		}
		cur.set[f.name] = b
		cur.written = append(cur.written, i)
		lasting = lasting || st.temp == nil
	}
	if s.version == 0 {
		if !lasting {
			return nil // a page view that assigned nothing lasting
		}
		if err := s.encodeRest(cur); err != nil {
			return err
		}
	}
	if len(cur.set) == 0 {
		return nil
	}
	// Apply keeps neither the map nor the bytes, so the map is reused.
	v, err := s.store.Apply(ctx, s.id, store.Change{Set: cur.set, Delete: s.retire, CheckVersion: true, IfVersion: s.version})
	if err != nil {
		return err
	}
	s.version, s.retire, s.lease = v, nil, claim{} // a lease of this socket's went with retire
	for _, i := range cur.written {
		d := cur.sums[i]
		if t := s.fs[i].temp; t != nil {
			d = t.sum
		}
		s.fs[i].stored = d
	}
	return nil
}

// encodeRest adds to cur.set the stored fields it lacks, for the write that
// creates the record.
func (s *Socket[T]) encodeRest(cur *cycle) error {
	for i := range s.tab.fields {
		f, st := &s.tab.fields[i], &s.fs[i]
		if _, ok := cur.set[f.name]; ok || !f.stored {
			continue
		}
		b := cur.enc[i]
		switch {
		case st.temp != nil:
			b = st.temp.enc
		case b == nil:
			var err error
			if b, err = s.encode(i); err != nil {
				return fmt.Errorf("encode field %q: %w", f.name, err)
			}
			cur.sums[i] = s.tab.digest(b) // not in cur.encoded: the render did not see it
		}
		cur.set[f.name] = b
		cur.written = append(cur.written, i)
	}
	return nil
}

// endCycle records what the render saw, resets the temporary fields and
// forgets the cycle's assignments.
func (s *Socket[T]) endCycle(cur *cycle) {
	for _, i := range cur.encoded {
		s.fs[i].seen = cur.sums[i]
	}
	s.rendered = true
	for _, i := range s.tempIdx {
		t := s.fs[i].temp
		setField(s.rv, &s.state, &s.tab.fields[i], t.set, deepCopy(t.value))
	}
	s.clearMarks()
}

// encode returns the encoding of field i of the context. It hands Marshal
// the field's address, which, unlike its value, fits in an interface
// without a copy.
func (s *Socket[T]) encode(i int) ([]byte, error) {
	return codec.Marshal(s.rv.Field(i).Addr().Interface())
}

// clearMarks forgets the assigned fields.
func (s *Socket[T]) clearMarks() {
	for _, i := range s.assigned {
		s.fs[i].marked = false
	}
	s.assigned = s.assigned[:0]
}

// cycle is the working memory of one render cycle, reused through a pool
// per Manager, so that a cycle allocates little beyond the encodings it
// makes and an idle socket holds none. The encodings are never reused:
// the store may keep them.
type cycle struct {
	enc     [][]byte          // per field: its encoding this cycle, or nil
	sums    []digest          // per field: the digest of what enc or set holds
	encoded []int             // the fields enc holds
	set     map[string][]byte // the fields to write, by name
	written []int             // the fields set holds
}

// cycle returns working memory for a render cycle; release gives it back.
func (tab *table) cycle() *cycle {
	if c, ok := tab.cycles.Get().(*cycle); ok {
		return c
	}
	return &cycle{enc: make([][]byte, len(tab.fields)), sums: make([]digest, len(tab.fields))}
}

// release empties c, dropping its references to the encodings, and keeps it
// for another cycle.
func (tab *table) release(c *cycle) {
	for _, i := range c.encoded {
		c.enc[i] = nil
	}
	clear(c.sums)
	c.encoded, c.written = c.encoded[:0], c.written[:0]
	clear(c.set)
	tab.cycles.Put(c)
}

// put records b, whose digest is d, as field i's encoding this cycle.
func (c *cycle) put(i int, b []byte, d digest) {
	if c.enc[i] == nil { // an encoding is never nil
		c.encoded = append(c.encoded, i)
	}
	c.enc[i], c.sums[i] = b, d
}
