package socket

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/livectx/livectx/store"
)

// Event runs one event: handle (which calls Assign, TempAssign...) then
// Render with render, holding a lock that serialises the Events of the
// socket, so events from several goroutines never interleave. If handle
// fails, Event returns its error without rendering; what handle assigned
// is rendered by the next cycle.
//
// If the write meets store.ErrConflict (another socket, on another node,
// wrote the record since this one read it), Event reloads the stored
// context and runs handle again on it, up to EventRetries times (default
// DefaultEventRetries), so the event lands once, on the newest context,
// and is never dropped; render runs once, after the write succeeded. So
// handle may run more than once: it must have no effect outside the socket
// before it returns (send mail, charge a card after Event returns, or use
// Assign and Render directly, which never retry).
func (s *Socket[T]) Event(ctx context.Context, handle func() error, render func(c T, changed Changed) error) error {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	for attempt := 0; ; attempt++ {
		if err := handle(); err != nil {
			return err
		}
		err := s.Render(ctx, render)
		if err == nil {
			s.releaseLease(ctx)
		}
		if attempt == s.opts.retries || !errors.Is(err, store.ErrConflict) {
			return err
		}
		if attempt+1 == leaseAfter { // see lease.go
			if err := s.claimLease(ctx); err != nil {
				return err
			}
		}
		if err := s.waitReload(ctx); err != nil {
			return err
		}
	}
}

// Reload replaces the context by the stored one, as Open would restore it,
// dropping the changes not yet written; unstored fields keep their values
// and temporary fields stay temporary. Event calls it after a conflict. The
// next render reports every field as changed. A record that no longer
// exists returns an error matching store.ErrNotFound; on any error the
// socket is left as it was.
func (s *Socket[T]) Reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%w: reload %q", ErrClosed, s.id)
	}
	rec, err := s.tab.load(ctx, s.store, s.id)
	if err == nil {
		err = s.reload(rec)
	}
	if err != nil {
		return fmt.Errorf("socket: reload %q: %w", s.id, err)
	}
	return nil
}

// Sync makes sure the socket holds the stored context: if the record's
// version is not the one the socket last read or wrote (another node wrote
// it), Sync reloads as Reload does, dropping the changes not yet written,
// and reports true. Call it before a render that writes nothing (a page
// load that reuses an open socket) so that the page does not show a stale
// context. It costs one Load of the record: a round trip to a remote store.
// A record deleted since the socket read it returns an error matching
// store.ErrNotFound.
func (s *Socket[T]) Sync(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, fmt.Errorf("%w: sync %q", ErrClosed, s.id)
	}
	rec, err := s.tab.load(ctx, s.store, s.id)
	switch {
	case errors.Is(err, store.ErrNotFound) && s.version == 0:
		return false, nil // not created yet, by anyone
	case err == nil && rec.version == s.version:
		return false, nil
	case err == nil:
		err = s.reload(rec)
	}
	if err != nil {
		return false, fmt.Errorf("socket: sync %q: %w", s.id, err)
	}
	return true, nil
}

// reload makes rec the socket's context, or leaves the socket as it was and
// returns why not.
func (s *Socket[T]) reload(rec loaded) error {
	prevState, prevFS, prevAssigned := s.state, slices.Clone(s.fs), slices.Clone(s.assigned)
	prevVersion, prevRetire, prevReset, prevLease := s.version, s.retire, s.reset, s.lease
	s.clearMarks()
	for i := range s.tab.fields {
		if s.tab.fields[i].stored { // unstored fields keep their values
			s.setInitial(i)
			s.fs[i].stored = digest{}
		}
	}
	if err := s.restore(rec); err != nil {
		s.state, s.fs, s.assigned = prevState, prevFS, prevAssigned
		s.version, s.retire, s.reset, s.lease = prevVersion, prevRetire, prevReset, prevLease
		return err
	}
	s.rendered = false
	return nil
}

// loaded is a record as the table's load reads it: its version, the values
// of the table's stored names by position (when the store reads fields by
// name) and its other fields by name.
type loaded struct {
	version uint64
	named   [][]byte // named[i]: the value of table.stored[i], nil when missing
	rest    map[string][]byte
}

// load reads the record under id. A store that reads faster when told the
// fields (store.FieldLoader) is told the context type's. A store that lends
// its bytes (store.SharedLoader) lends them: restore decodes strings that
// share the bytes they are read from, so a context restored from a store in
// memory holds no second copy of them.
func (t *table) load(ctx context.Context, st store.ContextStore, id string) (loaded, error) {
	var rec store.Record
	var err error
	if l, ok := store.As[store.FieldLoader](st); ok {
		var named [][]byte
		named, rec, err = l.LoadFields(ctx, id, t.stored)
		return loaded{rec.Version, named, rec.Fields}, err
	}
	if l, ok := store.As[store.SharedLoader](st); ok {
		rec, err = l.LoadShared(ctx, id)
	} else {
		rec, err = st.Load(ctx, id)
	}
	return loaded{version: rec.Version, rest: rec.Fields}, err
}

// restore decodes rec's fields into the context, whose stored fields hold
// their initial values, and runs the migrations the record needs. A field
// whose bytes no longer fit its type takes its initial value (named by
// ResetFields), unless the Manager is Strict. On error the context may be
// partly written.
func (s *Socket[T]) restore(rec loaded) error {
	s.reset, s.retire, s.lease = nil, nil, claim{}
	var convert []storedField // fields a migration converts
	for i, b := range rec.named {
		if b != nil {
			if err := s.restoreField(s.tab.storedIndex[i], s.tab.stored[i], b, &convert); err != nil {
				return err
			}
		}
	}
	for name, b := range rec.rest {
		if err := s.restoreField(s.tab.index(name), name, b, &convert); err != nil {
			return err
		}
	}
	slices.Sort(s.reset)
	s.version = rec.version
	for _, f := range convert {
		if err := s.migrate(f.name, f.b); err != nil {
			return err
		}
	}
	s.seenStored()
	return nil
}

// storedField is a field's name and stored bytes.
type storedField struct {
	name string
	b    []byte
}

// restoreField decodes the stored field name, the context's field i (-1:
// none, or the lease), from b, or notes what becomes of it: a lease read, a
// retired field to delete, a migration to run (in convert), a reset.
func (s *Socket[T]) restoreField(i int, name string, b []byte, convert *[]storedField) error {
	if name == leaseField {
		s.readLease(b)
		return nil
	}
	if i < 0 {
		if s.opts.migrations[name] != nil {
			*convert = append(*convert, storedField{name, b})
		}
		if slices.Contains(s.opts.retired, name) {
			s.retire = append(s.retire, name)
		}
		return nil
	}
	fv := s.rv.Field(i)
	fv.SetZero() // the value is the stored one, whatever the field held
	err := s.tab.fields[i].dec.DecodeShared(s.id, name, b, fv)
	if err == nil {
		s.fs[i].stored = s.tab.digest(b)
		return nil
	}
	if !errors.Is(err, store.ErrSchema) || s.opts.strict && s.opts.migrations[name] == nil {
		return err
	}
	s.setInitial(i)
	if s.opts.migrations[name] != nil {
		*convert = append(*convert, storedField{name, b})
		return nil
	}
	s.reset = append(s.reset, name)
	if l := s.opts.logger; l != nil {
		l.Warn("socket: a stored field no longer fits the context type; it takes its initial value", "id", s.id, "field", name, "err", err)
	}
	return nil
}

// migrate runs the migration of the stored field name and assigns what it
// returns, except to fields the record holds in a form the type reads.
func (s *Socket[T]) migrate(name string, b []byte) error {
	as, err := s.opts.migrations[name](Stored{id: s.id, name: name, b: b})
	if err != nil {
		return fmt.Errorf("migrate field %q: %w", name, err)
	}
	rs, err := s.check(nil, as)
	if err != nil {
		return fmt.Errorf("migrate field %q: %w", name, err)
	}
	applied := 0
	for _, r := range rs {
		if !r.field.stored || s.fs[r.index].stored.none() {
			s.assign(r)
			applied++
		}
	}
	if l := s.opts.logger; l != nil && applied > 0 {
		l.Info("socket: migrated a stored field", "id", s.id, "field", name)
	}
	return nil
}

// seenStored makes what the store holds what the last render saw, so that
// the first render after a restore reports only real changes as written.
func (s *Socket[T]) seenStored() {
	for i := range s.fs {
		s.fs[i].seen = s.fs[i].stored
	}
}

// setInitial gives stored field i a copy of its initial value.
func (s *Socket[T]) setInitial(i int) {
	if s.initial == nil {
		s.rv.Field(i).SetZero()
		return
	}
	v := reflect.ValueOf(s.initial).Elem().Field(i)
	if s.tab.fields[i].refs {
		var cl cloner
		v = cl.clone(v)
	}
	s.rv.Field(i).Set(v)
}
