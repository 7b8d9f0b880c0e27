// Package memory is the default livectx ContextStore: records live in this
// process's memory and die with it.
//
// Layout: one map from id to record; each record keeps its fields sorted by
// name, with its own copy of their bytes (nothing aliases a caller's slices,
// in or out). A record's values share one allocation, made when it is
// created or replaced; a value rewritten with a new length gets its own, so
// a record may hold up to its size again in values it no longer uses until
// it is replaced. A value rewritten with the same length is overwritten in
// place, unless LoadShared has lent the record's values: from then on every
// rewrite gets a fresh slice, and the lent bytes never change.
//
// Expiry: with store.WithTTL, a record whose time to live has passed (by the
// configured clock) behaves as missing at once, and a sweeper goroutine,
// started by New and stopped and waited for by Close, removes expired records
// every sweep interval.
//
// Capacity: WithMaxBytes caps the bytes held by all records. A write that
// would pass it fails with store.ErrTooLarge; live contexts are never evicted
// to make room.
package memory

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/livectx/livectx/store"
)

// DefaultSweepInterval is how often expired records are removed.
const DefaultSweepInterval = time.Minute

// Option configures New: an option of package store (store.WithTTL, the
// size caps, store.WithClock) or of this package.
type Option func(*store.Config)

// settings are what this package's own options set.
type settings struct {
	maxBytes      int
	sweepInterval time.Duration
}

// WithMaxBytes caps the total Size of all records at n bytes. Zero (the
// default) sets no cap.
func WithMaxBytes(n int) Option {
	return store.BackendOption("memory.WithMaxBytes", func(s *settings) { s.maxBytes = n })
}

// WithSweepInterval sets how often the sweeper removes expired records
// (default DefaultSweepInterval; zero or less means the default). Expired
// records are invisible at once whatever the interval; it only bounds how
// long their memory is held.
func WithSweepInterval(d time.Duration) Option {
	return store.BackendOption("memory.WithSweepInterval", func(s *settings) { s.sweepInterval = d })
}

// Store is an in-memory store.ContextStore, store.Lister, store.TTLReader
// and store.SharedLoader. It is safe for concurrent use.
type Store struct {
	cfg      *store.Config
	maxBytes int

	mu     sync.Mutex
	recs   map[string]*record
	bytes  int // sum of the records' sizes
	closed bool

	stop chan struct{}
	done chan struct{}
}

type record struct {
	fields  []field // sorted by name
	version uint64
	size    int
	expires time.Time // zero: never
	lent    bool      // LoadShared lent the values: set never overwrites one
}

// field is one field of a record. A slice of them, searched by name, holds
// a record's fields in much less memory than a map would.
type field struct {
	name string
	val  []byte
}

// newRecord returns a record holding a copy of set's fields, their values
// in one allocation.
func newRecord(set map[string][]byte, version uint64) *record {
	n := 0
	for _, v := range set {
		n += len(v)
	}
	buf := make([]byte, 0, n)
	fields := make([]field, 0, len(set))
	for name, v := range set {
		fields = append(fields, field{name, copyInto(&buf, v)})
	}
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
	return &record{fields: fields, version: version}
}

// copyInto appends v to *buf and returns the copy, capped at its length so
// that an append to it cannot overwrite what follows. Given a *buf with room
// for them, a series of copies takes no allocation.
func copyInto(buf *[]byte, v []byte) []byte {
	start := len(*buf)
	*buf = append(*buf, v...)
	return (*buf)[start:len(*buf):len(*buf)]
}

// find returns the position of the field named name, or where it would go,
// and whether it is there.
func (r *record) find(name string) (int, bool) {
	return slices.BinarySearchFunc(r.fields, name, func(f field, name string) int {
		return strings.Compare(f.name, name)
	})
}

// stored returns the length of the field named name, if the record has it.
func (r *record) stored(name string) (int, bool) {
	i, ok := r.find(name)
	if !ok {
		return 0, false
	}
	return len(r.fields[i].val), true
}

// noFields is stored for a record that does not exist.
func noFields(string) (int, bool) { return 0, false }

// set stores a copy of v as the field named name.
func (r *record) set(name string, v []byte) {
	i, ok := r.find(name)
	switch {
	case !ok:
		r.fields = slices.Insert(r.fields, i, field{name, slices.Clone(v)})
	case len(v) == len(r.fields[i].val) && !r.lent:
		// Overwritten in place: the store's bytes are seen by nobody else.
		copy(r.fields[i].val, v)
	default:
		r.fields[i].val = slices.Clone(v)
	}
}

// delete removes the field named name, if the record has it.
func (r *record) delete(name string) {
	if i, ok := r.find(name); ok {
		r.fields = slices.Delete(r.fields, i, i+1)
	}
}

// New returns an empty store and starts its sweeper; Close stops it. New
// cannot fail: an option of another backend that reaches it through a
// []store.Option does nothing.
func New(opts ...Option) *Store {
	set := settings{sweepInterval: DefaultSweepInterval}
	s := &Store{
		cfg:  store.NewConfig(&set, opts...),
		recs: map[string]*record{},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	s.maxBytes = set.maxBytes
	if set.sweepInterval <= 0 {
		set.sweepInterval = DefaultSweepInterval
	}
	go s.sweeper(set.sweepInterval)
	return s
}

func (s *Store) sweeper(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Sweep removes every expired record now and returns how many it removed.
// The sweeper calls it; tests and tools may too.
func (s *Store) Sweep() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	n := 0
	for id, r := range s.recs {
		if r.expired(now) {
			s.remove(id, r)
			n++
		}
	}
	// Go maps never shrink: after a large wave of expiries, move the
	// survivors to a map of their size so the memory goes back.
	if n > 1024 && n > 2*len(s.recs) {
		recs := make(map[string]*record, len(s.recs))
		maps.Copy(recs, s.recs) // not maps.Clone, which keeps the old capacity
		s.recs = recs
	}
	return n
}

func (r *record) expired(now time.Time) bool {
	return !r.expires.IsZero() && !now.Before(r.expires)
}

func (s *Store) remove(id string, r *record) {
	delete(s.recs, id)
	s.bytes -= r.size
}

// live returns the record under id unless it has expired at now, removing
// it if it has. s.mu must be held.
func (s *Store) live(id string, now time.Time) *record {
	r := s.recs[id]
	if r != nil && r.expired(now) {
		s.remove(id, r)
		return nil
	}
	return r
}

// begin checks the id, then locks s as lock does.
func (s *Store) begin(ctx context.Context, op, id string) error {
	if err := store.ValidateID(id); err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	return s.lock(ctx, op, id)
}

// lock checks ctx and that s is open; on success s.mu is held.
func (s *Store) lock(ctx context.Context, op, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s %q: %w", op, id, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memory: %s %q: %w", op, id, store.ErrClosed)
	}
	return nil
}

// Load returns a copy of the record under id, or store.ErrNotFound.
func (s *Store) Load(ctx context.Context, id string) (store.Record, error) {
	return s.load(ctx, id, false)
}

// LoadShared returns the record under id with its values lent rather than
// copied (see store.SharedLoader), or store.ErrNotFound. The lent bytes are
// no longer counted by WithMaxBytes once the record is rewritten or
// removed, though the caller keeps them alive.
func (s *Store) LoadShared(ctx context.Context, id string) (store.Record, error) {
	return s.load(ctx, id, true)
}

func (s *Store) load(ctx context.Context, id string, lend bool) (store.Record, error) {
	var room [16]field // the usual record's fields, on the stack
	fs, version, err := s.snapshot(ctx, id, lend, room[:0])
	if err != nil {
		return store.Record{}, err
	}
	// The map is made after the lock is released: a node's reconnecting
	// clients load at once.
	fields := make(map[string][]byte, len(fs))
	for _, f := range fs {
		fields[f.name] = f.val
	}
	return store.Record{Fields: fields, Version: version}, nil
}

// snapshot appends to fs the fields of the record under id, their values
// lent or copied (in one allocation), each capped at its length so that an
// append cannot reach what follows, and returns them and the record's
// version.
func (s *Store) snapshot(ctx context.Context, id string, lend bool, fs []field) ([]field, uint64, error) {
	if err := s.begin(ctx, "load", id); err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	r := s.live(id, s.cfg.Now())
	if r == nil {
		return nil, 0, fmt.Errorf("memory: load %q: %w", id, store.ErrNotFound)
	}
	if lend {
		r.lent = true
		for _, f := range r.fields {
			fs = append(fs, field{f.name, f.val[:len(f.val):len(f.val)]})
		}
		return fs, r.version, nil
	}
	n := 0
	for _, f := range r.fields {
		n += len(f.val)
	}
	buf := make([]byte, 0, n)
	for _, f := range r.fields {
		fs = append(fs, field{f.name, copyInto(&buf, f.val)})
	}
	return fs, r.version, nil
}

// Apply writes c atomically; see store.ContextStore.
func (s *Store) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	if err := s.cfg.CheckChange(id, c); err != nil {
		return 0, fmt.Errorf("memory: apply %q: %w", id, err)
	}
	if err := s.lock(ctx, "apply", id); err != nil { // CheckChange checked the id
		return 0, err
	}
	defer s.mu.Unlock()
	now := s.cfg.Now()
	old := s.live(id, now)
	var version uint64
	if old != nil {
		version = old.version
	}
	if c.CheckVersion && version != c.IfVersion {
		return 0, fmt.Errorf("memory: apply %q: %w", id, store.VersionConflict(version, c.IfVersion))
	}

	// Work out the new record's size before changing anything.
	oldSize, stored := 0, noFields
	if old != nil {
		oldSize, stored = old.size, old.stored
	}
	size := store.SizeAfter(oldSize, c, stored)
	if err := s.cfg.CheckRecordSize(size); err != nil {
		return 0, fmt.Errorf("memory: apply %q: %w", id, err)
	}
	if s.maxBytes > 0 && s.bytes-oldSize+size > s.maxBytes {
		return 0, fmt.Errorf("memory: apply %q: store would hold %d bytes, cap is %d: %w", id, s.bytes-oldSize+size, s.maxBytes, store.ErrTooLarge)
	}

	r := old
	if r == nil || c.Replace {
		r = newRecord(c.Set, version)
		s.recs[id] = r
	} else {
		for _, k := range c.Delete {
			r.delete(k)
		}
		for k, v := range c.Set {
			r.set(k, v)
		}
	}
	s.bytes += size - oldSize
	r.size = size
	r.version = version + 1
	r.expires = s.cfg.ExpiresAt(now)
	return r.version, nil
}

// Delete removes the record under id; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.begin(ctx, "delete", id); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if r := s.recs[id]; r != nil {
		s.remove(id, r)
	}
	return nil
}

// Touch refreshes the record's time to live, or returns store.ErrNotFound.
func (s *Store) Touch(ctx context.Context, id string) error {
	if err := s.begin(ctx, "touch", id); err != nil {
		return err
	}
	defer s.mu.Unlock()
	now := s.cfg.Now()
	r := s.live(id, now)
	if r == nil {
		return fmt.Errorf("memory: touch %q: %w", id, store.ErrNotFound)
	}
	r.expires = s.cfg.ExpiresAt(now)
	return nil
}

// TTL returns the time the record under id has left to live, 0 when it
// never expires, or store.ErrNotFound.
func (s *Store) TTL(ctx context.Context, id string) (time.Duration, error) {
	if err := s.begin(ctx, "ttl", id); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	now := s.cfg.Now()
	r := s.live(id, now)
	if r == nil {
		return 0, fmt.Errorf("memory: ttl %q: %w", id, store.ErrNotFound)
	}
	if r.expires.IsZero() {
		return 0, nil
	}
	return r.expires.Sub(now), nil
}

// List pages through live ids in byte order; the cursor is the last id of
// the previous page. The default limit is 100.
func (s *Store) List(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("memory: list: %w", err)
	}
	if limit <= 0 {
		limit = 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, "", fmt.Errorf("memory: list: %w", store.ErrClosed)
	}
	now := s.cfg.Now()
	var ids []string
	for id, r := range s.recs {
		if id > cursor && !r.expired(now) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, cmp.Compare)
	if len(ids) <= limit {
		return ids, "", nil
	}
	return ids[:limit], ids[limit-1], nil
}

// Len returns the number of records held, expired ones not yet swept
// included, and their total Size in bytes.
func (s *Store) Len() (records, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs), s.bytes
}

// Close drops every record, stops the sweeper and waits for it. It is
// idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.recs, s.bytes = nil, 0
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	return nil
}
