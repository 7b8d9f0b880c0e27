package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"

	"github.com/livectx/livectx/store"
)

// Defaults of this package's options.
const (
	DefaultBucket        = "livectx"
	DefaultOpenTimeout   = 5 * time.Second
	DefaultSweepInterval = time.Minute
)

// defaultListLimit is List's page size when its limit is zero or less.
const defaultListLimit = 1000

// Option configures Open and New: an option of package store
// (store.WithTTL, the size caps, store.WithClock) or of this package.
type Option func(*store.Config)

// settings are what this package's own options set.
type settings struct {
	bucket        string
	openTimeout   time.Duration
	sweepInterval time.Duration
	noCreate      bool // readonly.go
	readOnly      bool
}

// WithBucket names the top-level bucket that holds the store (default
// DefaultBucket). Two stores with different buckets can share one file.
func WithBucket(name string) Option {
	return store.BackendOption("boltstore.WithBucket", func(s *settings) { s.bucket = name })
}

// WithOpenTimeout bounds how long Open waits for the file lock another
// process holds (default DefaultOpenTimeout; zero or less means the default).
// New, given a file the caller opened, refuses it.
func WithOpenTimeout(d time.Duration) Option {
	return store.BackendOption("boltstore.WithOpenTimeout", func(s *settings) { s.openTimeout = d })
}

// WithSweepInterval sets how often the sweeper deletes expired records
// (default DefaultSweepInterval; zero or less means the default). Expired
// records read as missing whether or not they were swept.
func WithSweepInterval(d time.Duration) Option {
	return store.BackendOption("boltstore.WithSweepInterval", func(s *settings) { s.sweepInterval = d })
}

// configure applies opts over the defaults. An option of another backend
// is an error.
func configure(opts []Option) (*store.Config, settings, error) {
	set := settings{bucket: DefaultBucket}
	cfg := store.NewConfig(&set, opts...)
	if set.sweepInterval <= 0 {
		set.sweepInterval = DefaultSweepInterval
	}
	if set.bucket == "" {
		return nil, set, errors.New("empty bucket name")
	}
	return cfg, set, cfg.Unused()
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
	_ store.TTLReader    = (*Store)(nil)
)

// Open opens (creating it if needed, see WithNoCreate) the bbolt file at
// path and returns a store that owns it: Close closes the file. If another
// process holds the file, Open fails once the open timeout has passed; a
// corrupt or truncated file is an error, and so is an option of another
// backend.
func Open(path string, opts ...Option) (*Store, error) {
	cfg, set, err := configure(opts)
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %q: %w", path, err)
	}
	if set.openTimeout <= 0 {
		set.openTimeout = DefaultOpenTimeout
	}
	db, err := openDB(path, boltOptions(set))
	if err != nil {
		return nil, err
	}
	s, err := newStore(db, cfg, set, true)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// New returns a store on db, which the caller owns: Close leaves it open, and
// the caller closes it after closing the store. New creates the store's
// bucket if needed (see WithNoCreate); on a db opened read-only the store is
// read-only (see WithReadOnly). An option of another backend, or
// WithOpenTimeout, which has nothing to do here, is an error.
func New(db *bbolt.DB, opts ...Option) (*Store, error) {
	cfg, set, err := configure(opts)
	if err == nil && set.openTimeout != 0 {
		err = fmt.Errorf("%w: boltstore.WithOpenTimeout (the caller opened the file)", store.ErrUnusedOption)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: new: %w", err)
	}
	return newStore(db, cfg, set, false)
}

func newStore(db *bbolt.DB, cfg *store.Config, set settings, owns bool) (*Store, error) {
	s := &Store{
		db:     db,
		ownsDB: owns,
		cfg:    cfg,
		bucket: []byte(set.bucket),
		stop:   make(chan struct{}),

		committing: make(chan struct{}, 1),
		readOnly:   isReadOnly(db, set),
	}
	if err := s.openBucket(!s.readOnly && !set.noCreate); err != nil {
		return nil, err
	}
	if s.readOnly {
		return s, nil // no sweeper: it writes
	}
	s.done.Add(1)
	go s.sweepLoop(set.sweepInterval)
	return s, nil
}

// Close stops the sweeper, waits for it and for calls in flight, and closes
// the file if Open opened it. It is idempotent.
func (s *Store) Close() error {
	if err := s.close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

func (s *Store) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.done.Wait()
	if !s.ownsDB {
		return nil
	}
	return s.db.Close()
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
		pfx := recordPrefix(id)
		c := s.records(tx).Cursor()
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
		// v dies with tx: the fields are copied, names and values into one
		// allocation, sized by a first pass over the record's keys.
		n, size := 0, 0
		for k, v = c.Next(); bytes.HasPrefix(k, pfx); k, v = c.Next() {
			n, size = n+1, size+len(k)-len(pfx)+len(v)
		}
		buf := make([]byte, 0, size)
		rec.Fields = make(map[string][]byte, n)
		c.Seek(pfx)
		for k, v = c.Next(); bytes.HasPrefix(k, pfx); k, v = c.Next() {
			// The value is capped at its length, so that an append to it
			// cannot reach the next name, which nothing writes again.
			start := len(buf)
			buf = append(buf, k[len(pfx):]...)
			mid := len(buf)
			buf = append(buf, v...)
			rec.Fields[unsafe.String(unsafe.SliceData(buf[start:mid]), mid-start)] = buf[mid:len(buf):len(buf)]
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
	version, err := s.apply(ctx, id, c)
	if err != nil {
		return 0, fmt.Errorf("boltstore: apply %q: %w", id, err)
	}
	return version, nil
}

func (s *Store) apply(ctx context.Context, id string, c store.Change) (version uint64, err error) {
	if err := s.cfg.CheckChange(id, c); err != nil {
		return 0, err
	}
	err = s.write(ctx, func(tx *bbolt.Tx, now int64) error {
		v, err := s.applyTx(tx, id, c, now)
		version = v // each run overwrites it (see commit)
		return err
	})
	return version, err
}

// Delete removes the record under id; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.delete(ctx, id); err != nil {
		return fmt.Errorf("boltstore: delete %q: %w", id, err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, id string) error {
	if err := store.ValidateID(id); err != nil {
		return err
	}
	return s.write(ctx, func(tx *bbolt.Tx, _ int64) error { return s.deleteTx(tx, id) })
}

// Touch refreshes the expiry of the record under id, writing only its
// metadata; a missing or expired record returns store.ErrNotFound.
func (s *Store) Touch(ctx context.Context, id string) error {
	if err := s.touch(ctx, id); err != nil {
		return fmt.Errorf("boltstore: touch %q: %w", id, err)
	}
	return nil
}

func (s *Store) touch(ctx context.Context, id string) error {
	if err := store.ValidateID(id); err != nil {
		return err
	}
	if s.cfg.TTL <= 0 && !s.readOnly {
		// Nothing to refresh, unless the record holds an expiry from an
		// earlier TTL: a read transaction decides, without an fsync.
		m, _, err := s.liveMeta(ctx, id)
		if err != nil || m.expires == 0 {
			return err
		}
	}
	return s.write(ctx, func(tx *bbolt.Tx, now int64) error { return s.touchTx(tx, id, now) })
}

// TTL returns the time the record under id has left to live, 0 when it
// never expires, or store.ErrNotFound.
func (s *Store) TTL(ctx context.Context, id string) (time.Duration, error) {
	left, err := s.ttl(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("boltstore: ttl %q: %w", id, err)
	}
	return left, nil
}

func (s *Store) ttl(ctx context.Context, id string) (time.Duration, error) {
	if err := store.ValidateID(id); err != nil {
		return 0, err
	}
	m, now, err := s.liveMeta(ctx, id)
	if err != nil || m.expires == 0 {
		return 0, err
	}
	return time.Duration(m.expires - now), nil
}

// liveMeta reads the metadata of the live record under id, in a read
// transaction, and the time it read it at: store.ErrNotFound when the
// record is missing or expired.
func (s *Store) liveMeta(ctx context.Context, id string) (m meta, now int64, err error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return m, 0, err
	}
	defer leave()
	now = s.cfg.Now().UnixNano()
	err = s.view(func(tx *bbolt.Tx) error {
		var found bool
		var rerr error
		m, found, rerr = readMeta(s.records(tx), id)
		if rerr == nil && (!found || m.expiredAt(now)) {
			return store.ErrNotFound
		}
		return rerr
	})
	return m, now, err
}

// List pages through the ids of live records in key order (shorter ids
// first). The cursor is opaque; limit <= 0 means 1000.
func (s *Store) List(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	ids, next, err := s.list(ctx, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("boltstore: list: %w", err)
	}
	return ids, next, nil
}

func (s *Store) list(ctx context.Context, cursor string, limit int) (ids []string, next string, err error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return nil, "", err
	}
	defer leave()
	if limit <= 0 {
		limit = defaultListLimit
	}
	now := s.cfg.Now().UnixNano()
	err = s.view(func(tx *bbolt.Tx) error {
		c := s.records(tx).Cursor()
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
	return ids, next, err
}

// Sweep deletes the records that have expired by the store's clock now, in
// transactions of at most a thousand records, and returns how many it
// deleted. The sweeper calls it; tests and tools may too. Between
// transactions it stops when ctx is done or the store is closed, with their
// error.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	n, err := s.sweep(ctx, false)
	if err != nil {
		return n, fmt.Errorf("boltstore: sweep: %w", err)
	}
	return n, nil
}
