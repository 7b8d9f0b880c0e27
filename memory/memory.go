// Package memory is the default livectx ContextStore: records live in this
// process's memory and die with it.
//
// Layout: one map from id to record; each record keeps its own copy of every
// field's bytes (nothing aliases a caller's slices, in or out).
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
	"slices"
	"sync"
	"time"

	"github.com/livectx/livectx/store"
)

// DefaultSweepInterval is how often expired records are removed.
const DefaultSweepInterval = time.Minute

type (
	maxBytesKey      struct{}
	sweepIntervalKey struct{}
)

// WithMaxBytes caps the total Size of all records at n bytes. Zero (the
// default) sets no cap.
func WithMaxBytes(n int) store.Option { return store.WithBackendValue(maxBytesKey{}, n) }

// WithSweepInterval sets how often the sweeper removes expired records
// (default DefaultSweepInterval). Expired records are invisible at once
// whatever the interval; it only bounds how long their memory is held.
func WithSweepInterval(d time.Duration) store.Option {
	return store.WithBackendValue(sweepIntervalKey{}, d)
}

// Store is an in-memory store.ContextStore and store.Lister. It is safe for
// concurrent use.
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
	fields  map[string][]byte
	version uint64
	size    int
	expires time.Time // zero: never
}

// New returns an empty store and starts its sweeper; Close stops it.
func New(opts ...store.Option) *Store {
	cfg := store.NewConfig(opts...)
	s := &Store{
		cfg:      cfg,
		maxBytes: store.BackendValue(cfg, maxBytesKey{}, 0),
		recs:     map[string]*record{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	interval := store.BackendValue(cfg, sweepIntervalKey{}, DefaultSweepInterval)
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	go s.sweeper(interval)
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
	return n
}

func (r *record) expired(now time.Time) bool {
	return !r.expires.IsZero() && !now.Before(r.expires)
}

func (s *Store) remove(id string, r *record) {
	delete(s.recs, id)
	s.bytes -= r.size
}

// live returns the unexpired record under id, removing it if it has expired.
// s.mu must be held.
func (s *Store) live(id string) *record {
	r := s.recs[id]
	if r != nil && r.expired(s.cfg.Now()) {
		s.remove(id, r)
		return nil
	}
	return r
}

// begin checks ctx, the store's state and the id; on success s.mu is held.
func (s *Store) begin(ctx context.Context, op, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s %q: %w", op, id, err)
	}
	if err := store.ValidateID(id); err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
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
	if err := s.begin(ctx, "load", id); err != nil {
		return store.Record{}, err
	}
	defer s.mu.Unlock()
	r := s.live(id)
	if r == nil {
		return store.Record{}, fmt.Errorf("memory: load %q: %w", id, store.ErrNotFound)
	}
	fields := make(map[string][]byte, len(r.fields))
	for k, v := range r.fields {
		fields[k] = slices.Clone(v)
	}
	return store.Record{Fields: fields, Version: r.version}, nil
}

// Apply writes c atomically; see store.ContextStore.
func (s *Store) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	if err := s.cfg.CheckChange(id, c); err != nil {
		return 0, fmt.Errorf("memory: apply %q: %w", id, err)
	}
	if err := s.begin(ctx, "apply", id); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	old := s.live(id)
	var version uint64
	if old != nil {
		version = old.version
	}
	if c.CheckVersion && version != c.IfVersion {
		return 0, fmt.Errorf("memory: apply %q: stored version %d, expected %d: %w", id, version, c.IfVersion, store.ErrConflict)
	}

	// Work out the new record's size before changing anything.
	size := 0
	if old != nil && !c.Replace {
		size = old.size
		for _, k := range c.Delete {
			if v, ok := old.fields[k]; ok {
				size -= len(k) + len(v)
			}
		}
		for k := range c.Set {
			if v, ok := old.fields[k]; ok {
				size -= len(k) + len(v)
			}
		}
	}
	for k, v := range c.Set {
		size += len(k) + len(v)
	}
	if err := s.cfg.CheckRecordSize(size); err != nil {
		return 0, fmt.Errorf("memory: apply %q: %w", id, err)
	}
	oldSize := 0
	if old != nil {
		oldSize = old.size
	}
	if s.maxBytes > 0 && s.bytes-oldSize+size > s.maxBytes {
		return 0, fmt.Errorf("memory: apply %q: store would hold %d bytes, cap is %d: %w", id, s.bytes-oldSize+size, s.maxBytes, store.ErrTooLarge)
	}

	r := old
	if r == nil || c.Replace {
		r = &record{fields: make(map[string][]byte, len(c.Set)), version: version}
		s.recs[id] = r
	}
	for _, k := range c.Delete {
		delete(r.fields, k)
	}
	for k, v := range c.Set {
		r.fields[k] = slices.Clone(v)
		if r.fields[k] == nil {
			r.fields[k] = []byte{}
		}
	}
	s.bytes += size - oldSize
	r.size = size
	r.version = version + 1
	r.expires = s.cfg.ExpiresAt(s.cfg.Now())
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
	r := s.live(id)
	if r == nil {
		return fmt.Errorf("memory: touch %q: %w", id, store.ErrNotFound)
	}
	r.expires = s.cfg.ExpiresAt(s.cfg.Now())
	return nil
}

// TTL returns the time the record under id has left to live, 0 when it
// never expires, or store.ErrNotFound.
func (s *Store) TTL(ctx context.Context, id string) (time.Duration, error) {
	if err := s.begin(ctx, "ttl", id); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	r := s.live(id)
	if r == nil {
		return 0, fmt.Errorf("memory: ttl %q: %w", id, store.ErrNotFound)
	}
	if r.expires.IsZero() {
		return 0, nil
	}
	return r.expires.Sub(s.cfg.Now()), nil
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
