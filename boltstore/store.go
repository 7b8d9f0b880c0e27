// Package boltstore is the bbolt backend of livectx: the contexts (LiveView
// states) of a single server kept in one file that survives restarts and
// crashes.
//
// # Layout
//
// Everything lives under one top-level bucket (WithBucket, default "livectx"),
// so applications can share a file by choosing different names. It holds two
// nested buckets:
//
//	records: u16be(len(id)) id              -> metadata (format 1, version, expiry, size)
//	         u16be(len(id)) id  field name  -> the field's bytes
//	expiry:  u64be(expiry) id               -> empty (expiry in unix ns, sign bit flipped)
//
// Metadata is 25 bytes: a format byte (1), then big-endian u64 version, i64
// expiry in unix nanoseconds (0: never) and u64 size (store.Record.Size).
// Unreadable metadata is reported as a *store.CorruptError.
//
// The length prefix maps every id, whatever bytes it holds, to keys no other
// id can reach, and puts a record's metadata just before its fields, so Load
// is one seek and a short scan. Each field is its own key: an Apply that sets
// one field writes that field and the metadata, whatever else the record
// holds. Versions are stored, so they survive reopening.
//
// # Expiry
//
// With a TTL, Apply and Touch store the record's expiry time in its metadata
// and move its entry in the expiry index. A record past its expiry reads as
// missing at once. A background sweeper (WithSweepInterval) deletes expired
// records in transactions of at most a thousand records, walking the index
// from its oldest entry and stopping at the first that has not expired, so a
// sweep costs only what has expired. Close stops the sweeper and waits for it.
//
// # Durability and ownership
//
// Writes are fsynced before Apply returns (bbolt's default). Concurrent writes
// share transactions through a group commit: while one transaction commits,
// the writes that arrive queue up and all go in the next, so many goroutines
// share few fsyncs and a lone writer never waits.
//
// Open owns the file it opens and Close closes it; New uses a *bbolt.DB the
// caller owns and Close leaves it open.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/livectx/livectx/store"
)

// Defaults of this package's options.
const (
	DefaultBucket        = "livectx"
	DefaultOpenTimeout   = 5 * time.Second
	DefaultSweepInterval = time.Minute
)

// Both ends of the sweeper's and List's bounds.
const (
	sweepBatch       = 1000 // records deleted per sweep transaction
	defaultListLimit = 1000
)

var (
	recordsBucket = []byte("records")
	expiryBucket  = []byte("expiry")
)

type (
	bucketKey        struct{}
	openTimeoutKey   struct{}
	sweepIntervalKey struct{}
)

// WithBucket names the top-level bucket that holds the store (default
// DefaultBucket). Two stores with different buckets can share one file.
func WithBucket(name string) store.Option { return store.WithBackendValue(bucketKey{}, name) }

// WithOpenTimeout bounds how long Open waits for the file lock another
// process holds (default DefaultOpenTimeout; zero or less means the default).
// New ignores it.
func WithOpenTimeout(d time.Duration) store.Option {
	return store.WithBackendValue(openTimeoutKey{}, d)
}

// WithSweepInterval sets how often the sweeper deletes expired records
// (default DefaultSweepInterval; zero or less means the default). Expired
// records read as missing whether or not they were swept.
func WithSweepInterval(d time.Duration) store.Option {
	return store.WithBackendValue(sweepIntervalKey{}, d)
}

// Store is a store.ContextStore and a store.Lister on a bbolt file. It is
// safe for concurrent use.
type Store struct {
	db     *bbolt.DB
	ownsDB bool
	cfg    *store.Config
	bucket []byte
	// The group commit (see commit).
	queueMu    sync.Mutex
	queue      []*pendingWrite
	committing chan struct{} // holds a token while a leader commits

	mu     sync.RWMutex // held for reading by every call, for writing by Close
	closed bool

	stop chan struct{}
	done sync.WaitGroup

	readOnly bool // the file is open for reading only (readonly.go)
}

var (
	_ store.ContextStore = (*Store)(nil)
	_ store.Lister       = (*Store)(nil)
)

// Open opens (creating it if needed, see WithNoCreate) the bbolt file at
// path and returns a store that owns it: Close closes the file. If another
// process holds the file, Open fails once the open timeout has passed; a
// corrupt or truncated file is an error.
func Open(path string, opts ...store.Option) (*Store, error) {
	cfg := store.NewConfig(opts...)
	timeout := store.BackendValue(cfg, openTimeoutKey{}, DefaultOpenTimeout)
	if timeout <= 0 {
		timeout = DefaultOpenTimeout
	}
	db, err := openDB(path, boltOptions(cfg, timeout))
	if err != nil {
		return nil, err
	}
	s, err := newStore(db, cfg, true)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openDB opens the file, turning a lock timeout into a clear error and a
// fault or panic on a damaged file into an error.
func openDB(path string, opts *bbolt.Options) (db *bbolt.DB, err error) {
	err = guard(func() error {
		var err error
		db, err = bbolt.Open(path, 0o600, opts)
		return err
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("boltstore: open %q: the file is locked by another process (waited %v): %w", path, opts.Timeout, err)
	case err != nil:
		if db != nil {
			db.Close()
		}
		return nil, fmt.Errorf("boltstore: open %q: %w", path, err)
	}
	// bbolt maps pages past the end of a truncated file without complaint;
	// reading them would fault.
	info, err := os.Stat(path)
	if err == nil {
		err = db.View(func(tx *bbolt.Tx) error {
			if tx.Size() > info.Size() {
				return fmt.Errorf("file is truncated: %d bytes, its pages need %d", info.Size(), tx.Size())
			}
			return nil
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %q: %w", path, err)
	}
	return db, nil
}

// New returns a store on db, which the caller owns: Close leaves it open, and
// the caller closes it after closing the store. New creates the store's
// bucket if needed (see WithNoCreate); on a db opened read-only the store is
// read-only (see WithReadOnly).
func New(db *bbolt.DB, opts ...store.Option) (*Store, error) {
	return newStore(db, store.NewConfig(opts...), false)
}

func newStore(db *bbolt.DB, cfg *store.Config, owns bool) (*Store, error) {
	s := &Store{
		db:     db,
		ownsDB: owns,
		cfg:    cfg,
		bucket: []byte(store.BackendValue(cfg, bucketKey{}, DefaultBucket)),
		stop:   make(chan struct{}),

		committing: make(chan struct{}, 1),
		readOnly:   isReadOnly(db, cfg),
	}
	if len(s.bucket) == 0 {
		return nil, errors.New("boltstore: empty bucket name")
	}
	if err := s.openBucket(); err != nil {
		return nil, err
	}
	if s.readOnly {
		return s, nil // no sweeper: it writes
	}
	interval := store.BackendValue(cfg, sweepIntervalKey{}, DefaultSweepInterval)
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	s.done.Add(1)
	go s.sweepLoop(interval)
	return s, nil
}

// Close stops the sweeper, waits for it and for calls in flight, and closes
// the file if Open opened it. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.done.Wait()
	if s.ownsDB {
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("boltstore: close: %w", err)
		}
	}
	return nil
}

// enter admits a call unless ctx is done or the store is closed; the caller
// runs the returned func when done.
func (s *Store) enter(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, store.ErrClosed
	}
	return s.mu.RUnlock, nil
}

// Load returns the record under id: a copy its caller owns. A missing or
// expired record returns store.ErrNotFound, unreadable metadata a
// *store.CorruptError.
func (s *Store) Load(ctx context.Context, id string) (store.Record, error) {
	rec, err := s.load(ctx, id)
	if err != nil {
		return store.Record{}, fmt.Errorf("boltstore: load %q: %w", id, err)
	}
	return rec, nil
}

func (s *Store) load(ctx context.Context, id string) (rec store.Record, err error) {
	if err := store.ValidateID(id); err != nil {
		return rec, err
	}
	leave, err := s.enter(ctx)
	if err != nil {
		return rec, err
	}
	defer leave()
	now := s.cfg.Now().UnixNano()
	err = s.view(func(tx *bbolt.Tx) error {
		recs := s.records(tx)
		pfx := recordPrefix(id)
		c := recs.Cursor()
		k, v := c.Seek(pfx)
		if !bytes.Equal(k, pfx) {
			return store.ErrNotFound
		}
		m, err := decodeMeta(id, v)
		if err != nil {
			return err
		}
		if m.expiredAt(now) {
			return store.ErrNotFound
		}
		rec.Version = m.version
		rec.Fields = make(map[string][]byte)
		for k, v = c.Next(); bytes.HasPrefix(k, pfx); k, v = c.Next() {
			rec.Fields[string(k[len(pfx):])] = bytes.Clone(v) // v dies with tx
		}
		return nil
	})
	return rec, err
}

// Apply writes c to the record under id in one transaction, fsynced before it
// returns. A missing or expired record starts again at version 1. Apply does
// not keep c's bytes after it returns. ctx is checked before the write is
// queued for a transaction; once queued, it is carried out.
func (s *Store) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	var version uint64
	err := s.cfg.CheckChange(id, c)
	if err == nil {
		err = s.write(ctx, func(tx *bbolt.Tx, now int64) error {
			var err error
			version, err = s.applyTx(tx, id, c, now)
			return err
		})
	}
	if err != nil {
		return 0, fmt.Errorf("boltstore: apply %q: %w", id, err)
	}
	return version, nil
}

// Delete removes the record under id; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	err := store.ValidateID(id)
	if err == nil {
		err = s.write(ctx, func(tx *bbolt.Tx, _ int64) error {
			recs, idx := s.buckets(tx)
			// Unreadable metadata is dropped too; its expiry entry, if
			// any, is left for the sweeper, which skips stale entries.
			m, found, err := readMeta(recs, id)
			if !found && err == nil {
				return nil
			}
			return dropRecord(recs, idx, id, m)
		})
	}
	if err != nil {
		return fmt.Errorf("boltstore: delete %q: %w", id, err)
	}
	return nil
}

// Touch refreshes the expiry of the record under id, writing only its
// metadata; a missing or expired record returns store.ErrNotFound.
func (s *Store) Touch(ctx context.Context, id string) error {
	err := store.ValidateID(id)
	if err == nil && s.cfg.TTL <= 0 && !s.readOnly {
		// Nothing to refresh, unless the record holds an expiry from an
		// earlier TTL: a read transaction decides, without an fsync.
		var done bool
		if done, err = s.touchWithoutTTL(ctx, id); done {
			return nil
		}
	}
	if err == nil {
		err = s.write(ctx, func(tx *bbolt.Tx, now int64) error {
			recs, idx := s.buckets(tx)
			m, found, err := readMeta(recs, id)
			if err != nil {
				return err
			}
			if !found || m.expiredAt(now) {
				return store.ErrNotFound
			}
			return s.putMeta(recs, idx, id, m, m.version, m.size, now)
		})
	}
	if err != nil {
		return fmt.Errorf("boltstore: touch %q: %w", id, err)
	}
	return nil
}

// touchWithoutTTL reports whether the live record under id has no expiry to
// clear, so that Touch has nothing to write.
func (s *Store) touchWithoutTTL(ctx context.Context, id string) (bool, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return false, err
	}
	defer leave()
	now := s.cfg.Now().UnixNano()
	var hasExpiry bool
	err = s.view(func(tx *bbolt.Tx) error {
		recs := s.records(tx)
		m, found, err := readMeta(recs, id)
		if err == nil && (!found || m.expiredAt(now)) {
			err = store.ErrNotFound
		}
		hasExpiry = m.expires != 0
		return err
	})
	return err == nil && !hasExpiry, err
}

// TTL returns the time the record under id has left to live, 0 when it
// never expires, or store.ErrNotFound.
func (s *Store) TTL(ctx context.Context, id string) (time.Duration, error) {
	var left time.Duration
	err := store.ValidateID(id)
	if err == nil {
		var leave func()
		if leave, err = s.enter(ctx); err == nil {
			defer leave()
			now := s.cfg.Now().UnixNano()
			err = s.view(func(tx *bbolt.Tx) error {
				m, found, err := readMeta(s.records(tx), id)
				switch {
				case err != nil:
					return err
				case !found || m.expiredAt(now):
					return store.ErrNotFound
				case m.expires != 0:
					left = time.Duration(m.expires - now)
				}
				return nil
			})
		}
	}
	if err != nil {
		return 0, fmt.Errorf("boltstore: ttl %q: %w", id, err)
	}
	return left, nil
}

// List pages through the ids of live records in key order (shorter ids
// first). The cursor is opaque; limit <= 0 means 1000.
func (s *Store) List(ctx context.Context, cursor string, limit int) (ids []string, next string, err error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("boltstore: list: %w", err)
	}
	defer leave()
	if limit <= 0 {
		limit = defaultListLimit
	}
	now := s.cfg.Now().UnixNano()
	err = s.view(func(tx *bbolt.Tx) error {
		recs := s.records(tx)
		c := recs.Cursor()
		k, v := c.First()
		if cursor != "" {
			k, v = c.Seek([]byte(cursor))
		}
		for k != nil {
			pfx, ok := prefixOf(k)
			if !ok { // not a key this package writes: step over it
				k, v = c.Next()
				continue
			}
			if len(k) == len(pfx) {
				id := string(pfx[2:])
				// A record with corrupt metadata is listed: Load reports it.
				if m, err := decodeMeta(id, v); err != nil || !m.expiredAt(now) {
					if len(ids) == limit {
						next = string(pfx)
						return nil
					}
					ids = append(ids, id)
				}
			}
			k, v = c.Seek(successor(pfx))
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("boltstore: list: %w", err)
	}
	return ids, next, nil
}

// view runs fn in a read transaction; a fault or panic on a damaged file
// becomes an error.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	return guard(func() error { return s.db.View(fn) })
}

// write runs fn in a write transaction with the time of the write, shared
// with the writes of other goroutines (see commit).
func (s *Store) write(ctx context.Context, fn func(tx *bbolt.Tx, now int64) error) error {
	if s.readOnly {
		return ErrReadOnly
	}
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	now := s.cfg.Now().UnixNano()
	return s.commit(func(tx *bbolt.Tx) error { return fn(tx, now) })
}

// maxGroup bounds the writes one transaction carries.
const maxGroup = 1000

// pendingWrite is a write waiting for a transaction.
type pendingWrite struct {
	fn   func(*bbolt.Tx) error
	err  error
	done chan struct{} // closed once err is final
}

// commit runs fn in a write transaction and returns once that is durable.
// It is a group commit: a write that finds no commit in progress takes every
// queued write (its own included) into one transaction, so while one fsync
// runs, the writes that arrive queue up and share the next. A lone writer
// commits at once (bbolt's DB.Batch would wait out its delay first).
//
// fn may run more than once (when another write in its transaction fails
// the transaction is retried without it), so it must recompute everything
// inside the transaction and keep its results in variables each run
// overwrites.
func (s *Store) commit(fn func(*bbolt.Tx) error) error {
	p := &pendingWrite{fn: fn, done: make(chan struct{})}
	s.queueMu.Lock()
	s.queue = append(s.queue, p)
	s.queueMu.Unlock()
	for {
		select {
		case <-p.done:
			return p.err
		case s.committing <- struct{}{}:
		}
		select {
		case <-p.done: // a leader took it while we waited
		default:
			s.queueMu.Lock()
			n := min(len(s.queue), maxGroup)
			group := s.queue[:n:n]
			s.queue = s.queue[n:]
			if len(s.queue) == 0 {
				s.queue = nil // let the done writes go
			}
			s.queueMu.Unlock()
			s.runGroup(group)
		}
		<-s.committing
	}
}

// runGroup commits group in one transaction and sets each write's error. A
// write that fails after it may have written rolls the transaction back; it
// gets its error and the others are retried without it. The store's own
// refusals (a conflict, a missing record...) come before any write, so
// they fail their write alone.
func (s *Store) runGroup(group []*pendingWrite) {
	for len(group) > 0 {
		failed := -1
		err := guard(func() error {
			return s.db.Update(func(tx *bbolt.Tx) error {
				for i, p := range group {
					p.err = guard(func() error { return p.fn(tx) })
					if p.err != nil && !isRefusal(p.err) {
						failed = i
						return p.err
					}
				}
				return nil
			})
		})
		if failed >= 0 {
			close(group[failed].done)
			group = append(group[:failed:failed], group[failed+1:]...)
			continue
		}
		for _, p := range group {
			if err != nil {
				p.err = err
			}
			close(p.done)
		}
		return
	}
}

// isRefusal reports the errors that write functions return before their
// first write.
func isRefusal(err error) bool {
	for _, target := range []error{store.ErrConflict, store.ErrTooLarge, store.ErrNotFound} {
		if errors.Is(err, target) {
			return true
		}
	}
	// Unreadable metadata, not a panic that guard caught mid-write.
	var corrupt *store.CorruptError
	return errors.As(err, &corrupt)
}

// guard runs fn, turning a panic or a memory fault (bbolt reading a damaged
// file through its memory map) into an error. Faults turn into panics only
// in the goroutine that asked, so every goroutine that reads the file runs
// under guard.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: bbolt failed reading the file: %v", store.ErrCorrupt, p)
		}
	}()
	return fn()
}

// buckets returns the store's two nested buckets.
func (s *Store) buckets(tx *bbolt.Tx) (records, expiry *bbolt.Bucket) {
	b := s.top(tx)
	return b.Bucket(recordsBucket), b.Bucket(expiryBucket)
}

// records returns the records bucket alone, for reads.
func (s *Store) records(tx *bbolt.Tx) *bbolt.Bucket { return s.top(tx).Bucket(recordsBucket) }

func (s *Store) top(tx *bbolt.Tx) *bbolt.Bucket {
	b := tx.Bucket(s.bucket)
	if b == nil {
		// Only when someone deleted the bucket under a live store; guard
		// turns this into an error.
		panic(fmt.Sprintf("bucket %q is missing", s.bucket))
	}
	return b
}

// applyTx is Apply inside a transaction. It reads before it writes and
// returns its errors before the first write, so a failed change leaves the
// transaction as it found it.
func (s *Store) applyTx(tx *bbolt.Tx, id string, c store.Change, now int64) (uint64, error) {
	recs, idx := s.buckets(tx)
	m, found, err := readMeta(recs, id)
	if err != nil {
		return 0, err
	}
	if found && m.expiredAt(now) {
		if err := dropRecord(recs, idx, id, m); err != nil {
			return 0, err
		}
		found, m = false, meta{}
	}
	if c.CheckVersion && c.IfVersion != m.version {
		return 0, fmt.Errorf("%w: stored version %d, expected %d", store.ErrConflict, m.version, c.IfVersion)
	}
	pfx := recordPrefix(id)
	size := int64(m.size)
	if c.Replace {
		size = 0
	} else {
		seen := make(map[string]bool, len(c.Delete))
		for _, name := range c.Delete {
			if seen[name] {
				continue
			}
			seen[name] = true
			if old := recs.Get(fieldKey(pfx, name)); old != nil {
				size -= int64(len(name) + len(old))
			}
		}
	}
	for name, v := range c.Set {
		if !c.Replace {
			if old := recs.Get(fieldKey(pfx, name)); old != nil {
				size -= int64(len(name) + len(old))
			}
		}
		size += int64(len(name) + len(v))
	}
	if size < 0 {
		return 0, &store.CorruptError{ID: id, Err: errors.New("boltstore: stored size is smaller than the fields")}
	}
	if err := s.cfg.CheckRecordSize(int(size)); err != nil {
		return 0, err
	}

	if c.Replace && found {
		if err := deleteFields(recs, pfx, c.Set); err != nil {
			return 0, err
		}
	}
	for _, name := range c.Delete {
		if err := recs.Delete(fieldKey(pfx, name)); err != nil {
			return 0, err
		}
	}
	for name, v := range c.Set {
		if v == nil {
			v = []byte{}
		}
		if err := recs.Put(fieldKey(pfx, name), v); err != nil {
			return 0, err
		}
	}
	version := m.version + 1
	if err := s.putMeta(recs, idx, id, m, version, uint64(size), now); err != nil {
		return 0, err
	}
	return version, nil
}

// putMeta stores the metadata of a written or touched record, moving its
// expiry index entry.
func (s *Store) putMeta(recs, idx *bbolt.Bucket, id string, old meta, version, size uint64, now int64) error {
	m := meta{version: version, size: size}
	if s.cfg.TTL > 0 {
		m.expires = now + int64(s.cfg.TTL)
	}
	if old.expires != m.expires {
		if old.expires != 0 {
			if err := idx.Delete(expiryKey(old.expires, id)); err != nil {
				return err
			}
		}
		if m.expires != 0 {
			if err := idx.Put(expiryKey(m.expires, id), []byte{}); err != nil {
				return err
			}
		}
	}
	return recs.Put(recordPrefix(id), m.encode())
}

// dropRecord deletes a record's metadata, fields and expiry entry.
func dropRecord(recs, idx *bbolt.Bucket, id string, m meta) error {
	if m.expires != 0 {
		if err := idx.Delete(expiryKey(m.expires, id)); err != nil {
			return err
		}
	}
	pfx := recordPrefix(id)
	if err := recs.Delete(pfx); err != nil {
		return err
	}
	return deleteFields(recs, pfx, nil)
}

// deleteFields deletes the fields under pfx except those in keep.
func deleteFields(recs *bbolt.Bucket, pfx []byte, keep map[string][]byte) error {
	var doomed [][]byte
	c := recs.Cursor()
	for k, _ := c.Seek(pfx); bytes.HasPrefix(k, pfx); k, _ = c.Next() {
		if len(k) == len(pfx) {
			continue // the metadata
		}
		if _, ok := keep[string(k[len(pfx):])]; !ok {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	for _, k := range doomed {
		if err := recs.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) sweepLoop(interval time.Duration) {
	defer s.done.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			// An error (a full disk, say) leaves the records expired but
			// invisible; the next tick tries again.
			_, _ = s.sweep(context.Background(), true)
		}
	}
}

// Sweep deletes the records that have expired by the store's clock now, in
// transactions of at most a thousand records, and returns how many it
// deleted. The sweeper calls it; tests and tools may too. Between
// transactions it stops when ctx is done or the store is closed, with their
// error.
func (s *Store) Sweep(ctx context.Context) (int, error) { return s.sweep(ctx, false) }

// sweep is Sweep. When gentle, it pauses after each transaction as long as
// that took, so that the background sweeper takes at most half of the
// writer's time and of a core from the calls it runs beside.
func (s *Store) sweep(ctx context.Context, gentle bool) (int, error) {
	if s.readOnly {
		return 0, fmt.Errorf("boltstore: sweep: %w", ErrReadOnly)
	}
	total := 0
	for {
		leave, err := s.enter(ctx)
		if err != nil {
			return total, fmt.Errorf("boltstore: sweep: %w", err)
		}
		start := time.Now()
		now := s.cfg.Now().UnixNano()
		var n int
		var more bool
		err = guard(func() error {
			return s.db.Update(func(tx *bbolt.Tx) (err error) {
				n, more, err = s.sweepTx(tx, now)
				return err
			})
		})
		leave()
		total += n
		if err != nil {
			return total, fmt.Errorf("boltstore: sweep: %w", err)
		}
		if !more {
			return total, nil
		}
		if gentle {
			pause := time.NewTimer(time.Since(start))
			select {
			case <-s.stop:
				pause.Stop()
			case <-ctx.Done():
				pause.Stop()
			case <-pause.C:
			}
		}
	}
}

// sweepTx deletes up to sweepBatch records that expired by now, walking the
// expiry index from its oldest entry, and reports whether more are due.
func (s *Store) sweepTx(tx *bbolt.Tx, now int64) (deleted int, more bool, err error) {
	recs, idx := s.buckets(tx)
	var due [][]byte
	c := idx.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) >= 8 && decodeExpiry(k) > now {
			break
		}
		if len(due) == sweepBatch {
			more = true
			break
		}
		due = append(due, bytes.Clone(k))
	}
	for _, k := range due {
		if len(k) > 8 {
			id := string(k[8:])
			// A corrupt record is left for Load to report.
			if m, found, err := readMeta(recs, id); err == nil && found && m.expires == decodeExpiry(k) {
				if err := dropRecord(recs, idx, id, m); err != nil { // k included
					return deleted, more, err
				}
				deleted++
				continue
			}
		}
		// A stale entry, or not one of ours.
		if err := idx.Delete(k); err != nil {
			return deleted, more, err
		}
	}
	return deleted, more, nil
}

// meta is a record's metadata, stored under its prefix.
type meta struct {
	version uint64
	expires int64 // unix nanoseconds; 0 means never
	size    uint64
}

const (
	metaFormat = 1
	metaLen    = 1 + 8 + 8 + 8
)

func (m meta) expiredAt(now int64) bool { return m.expires != 0 && now >= m.expires }

func (m meta) encode() []byte {
	b := make([]byte, metaLen)
	b[0] = metaFormat
	binary.BigEndian.PutUint64(b[1:], m.version)
	binary.BigEndian.PutUint64(b[9:], uint64(m.expires))
	binary.BigEndian.PutUint64(b[17:], m.size)
	return b
}

func decodeMeta(id string, b []byte) (meta, error) {
	if len(b) != metaLen || b[0] != metaFormat {
		return meta{}, &store.CorruptError{ID: id, Err: fmt.Errorf("boltstore: metadata of %d bytes in format %d, want %d bytes in format %d",
			len(b), firstByte(b), metaLen, metaFormat)}
	}
	return meta{
		version: binary.BigEndian.Uint64(b[1:]),
		expires: int64(binary.BigEndian.Uint64(b[9:])),
		size:    binary.BigEndian.Uint64(b[17:]),
	}, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// readMeta reads the metadata of id, found false when there is none.
func readMeta(recs *bbolt.Bucket, id string) (meta, bool, error) {
	v := recs.Get(recordPrefix(id))
	if v == nil {
		return meta{}, false, nil
	}
	m, err := decodeMeta(id, v)
	return m, err == nil, err
}

// recordPrefix is u16be(len(id)) followed by id: the key of the record's
// metadata and the prefix of its fields' keys.
func recordPrefix(id string) []byte {
	p := make([]byte, 2+len(id))
	binary.BigEndian.PutUint16(p, uint16(len(id)))
	copy(p[2:], id)
	return p
}

func fieldKey(pfx []byte, name string) []byte {
	k := make([]byte, len(pfx)+len(name))
	copy(k, pfx)
	copy(k[len(pfx):], name)
	return k
}

// prefixOf returns the record prefix that key k starts with.
func prefixOf(k []byte) ([]byte, bool) {
	if len(k) < 2 {
		return nil, false
	}
	n := 2 + int(binary.BigEndian.Uint16(k))
	if n == 2 || n > 2+store.MaxIDLen || len(k) < n {
		return nil, false
	}
	return k[:n], true
}

// successor returns the first key after every key that starts with pfx.
func successor(pfx []byte) []byte {
	s := bytes.Clone(pfx)
	for i := len(s) - 1; i >= 0; i-- {
		s[i]++
		if s[i] != 0 {
			break
		}
	}
	return s
}

// expiryKey orders entries by expiry, then id. Flipping the sign bit keeps
// times before 1970 in order.
func expiryKey(expires int64, id string) []byte {
	k := make([]byte, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(expires)^(1<<63))
	copy(k[8:], id)
	return k
}

func decodeExpiry(k []byte) int64 { return int64(binary.BigEndian.Uint64(k) ^ (1 << 63)) }
