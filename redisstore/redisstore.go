// Package redisstore is a store.ContextStore on Redis (standalone, Sentinel
// or Cluster), through a go-redis v9 redis.UniversalClient, so that every
// server node shares the contexts of all LiveView instances.
//
// # Key layout
//
// Each record is one hash under the key prefix+escape(id). The prefix
// (default "livectx:", see WithPrefix) ends with ':' and escape never
// produces ':', so no two prefixes can share a key. escape keeps the bytes
// A-Z a-z 0-9 '.' '_' '-' and writes every other byte as %XX (upper-case
// hex), so a key holds no glob character, no brace (no id can form a Cluster
// hash tag: records spread over all slots) and maps back to exactly one id.
//
// The hash holds one field per record field, under the field's own name, and
// the field "" (no field name is empty) holding "<version> <size>": the
// version and the record's size as size caps count it.
//
// # Reads
//
// Load reads the whole hash (HGETALL). LoadFields (store.FieldLoader,
// which sockets use) reads the version field and the fields it is told
// (HMGET), and the size in the version field tells whether the hash holds
// anything else; only then does it read the whole hash too.
//
// # Writes
//
// Apply is one Lua script (EVALSHA, falling back to EVAL when the server has
// lost its script cache) that declares its key, so it runs on Cluster: it
// checks the version, the record size cap (from the running size, so the
// work is in proportion to the fields changed), writes, bumps the version
// and sets the time to live, all or nothing, in one round trip.
//
// No Apply is applied twice. go-redis retries a command whose connection
// fails, even after the server ran it; Apply's commands tell go-redis not
// to, so a write whose reply is lost returns the network's error (it may or
// may not have been applied: Load tells) and is never sent again.
//
// Writes that arrive while two calls are in flight wait and go together in
// the next call's pipeline (split among a Cluster's nodes by go-redis), so
// that under load the server reads, parses and answers many writes per round
// trip: each stays its own script, atomic on its own. Loads do the same
// among themselves (a node's clients reconnecting at once after a failover
// share round trips). The client's hooks see such a pipeline under the
// context of the call that started it.
//
// # Durability
//
// A write is acknowledged once the server has run it; what survives a crash
// is the server's persistence (an append-only file with appendfsync always
// keeps every acknowledged write). Through Sentinel, go-redis's failover
// client follows a promoted replica by itself; Redis replicates
// asynchronously, so a write the old master acknowledged but had not copied
// is lost in a failover.
//
// # Script cache
//
// Every script call costs the server more as its Lua heap grows, and the
// heap grows with every distinct script cached. On a server where other
// applications cache thousands of scripts (EVAL of generated code), Apply
// costs more than on a server of its own: watch number_of_cached_scripts in
// INFO memory.
//
// # Expiry
//
// Records expire on the server: Apply and Touch set PEXPIRE to the TTL (or
// PERSIST the record when the TTL is zero), so expiry follows the server's
// clock, not store.WithClock. An expired record is a missing one.
//
// # Ownership
//
// The caller owns the client: Close does not close it. Deadlines of ctx are
// honoured whether or not the client has ContextTimeoutEnabled (without it,
// the call is left to finish in the background and Close waits for it).
package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/livectx/livectx/store"
)

// DefaultPrefix is the key prefix when WithPrefix is not given.
const DefaultPrefix = "livectx:"

// MaxPrefixLen is the longest key prefix, in bytes.
const MaxPrefixLen = 256

// Option configures New: an option of package store (store.WithTTL, the
// size caps) or of this package.
type Option func(*store.Config)

// settings are what this package's own options set.
type settings struct{ prefix string }

// WithPrefix sets the key prefix that keeps this store's records apart from
// other keys on the server (default DefaultPrefix). It must hold 1 to
// MaxPrefixLen bytes, end with ':' (escaped ids hold none, so no two
// prefixes can share a key) and hold no '{' or '}' (a hash tag would put
// every record in one Cluster slot); New rejects it otherwise.
func WithPrefix(p string) Option {
	return store.BackendOption("redisstore.WithPrefix", func(s *settings) { s.prefix = p })
}

//go:embed apply.lua
var applySource string

// applySHA is the digest by which EVALSHA names apply.lua.
var applySHA = redis.NewScript(applySource).Hash()

// Store is a store.ContextStore, store.Lister and store.FieldLoader on
// Redis. It is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	cfg    *store.Config
	prefix string
	ttl    time.Duration // whole milliseconds, 0 for none
	ttlArg string        // ttl in milliseconds, for the script
	maxRec string
	// background: without ContextTimeoutEnabled on the client, calls whose
	// ctx can end run in a goroutine so that they return when ctx ends.
	background bool

	mu     sync.RWMutex // guards closed and calls.Add
	closed bool
	calls  sync.WaitGroup

	writes, loads queue // calls waiting for a round trip (see queue.go)

	lastNames atomic.Pointer[boxedNames] // of the last LoadFields (see hmget)
}

var (
	_ store.ContextStore = (*Store)(nil)
	_ store.Lister       = (*Store)(nil)
	_ store.FieldLoader  = (*Store)(nil)
)

// New returns a store on client, configured with the options of package
// store (TTL, size caps) and WithPrefix; an option of another backend is an
// error. It does no I/O. The caller keeps ownership of client.
func New(client redis.UniversalClient, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client")
	}
	set := settings{prefix: DefaultPrefix}
	cfg := store.NewConfig(&set, opts...)
	if err := cfg.Unused(); err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	prefix := set.prefix
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("redisstore: negative TTL %v", cfg.TTL)
	}
	ttl := cfg.TTL.Truncate(time.Millisecond) // PEXPIRE's resolution
	if cfg.TTL > 0 {
		ttl = max(ttl, time.Millisecond)
	}
	return &Store{
		client:     client,
		cfg:        cfg,
		prefix:     prefix,
		ttl:        ttl,
		ttlArg:     strconv.FormatInt(ttl.Milliseconds(), 10),
		maxRec:     strconv.Itoa(cfg.MaxRecordSize),
		background: !contextTimeouts(client),
	}, nil
}

func validatePrefix(p string) error {
	switch {
	case p == "" || len(p) > MaxPrefixLen:
		return fmt.Errorf("redisstore: prefix %q: want 1 to %d bytes", p, MaxPrefixLen)
	case !strings.HasSuffix(p, ":"):
		return fmt.Errorf("redisstore: prefix %q must end with ':'", p)
	case strings.ContainsAny(p, "{}"):
		return fmt.Errorf("redisstore: prefix %q must not hold '{' or '}'", p)
	}
	return nil
}

// contextTimeouts reports whether client applies ctx deadlines to its
// sockets itself.
func contextTimeouts(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// Load returns the record under id, or an error matching store.ErrNotFound
// when it is missing or expired. The returned bytes belong to the caller.
// Loads that arrive together share round trips, as writes do.
func (s *Store) Load(ctx context.Context, id string) (store.Record, error) {
	rec, err := s.load(ctx, id)
	if err != nil {
		return store.Record{}, fmt.Errorf("redisstore: load %q: %w", id, err)
	}
	return rec, nil
}

// LoadFields is Load for a reader that knows the fields (store.FieldLoader).
// It reads the version field and the named fields with HMGET, whose reply
// holds a value per name where HGETALL's holds a name and a value per
// field: less work for the server and the client. The record's size,
// stored beside its version, tells whether it holds anything else (a field
// not named, an empty value); then LoadFields reads the whole hash as Load
// does, a second round trip.
//
// A key holding a hash that is not a record (it has no version) reads as
// missing unless it holds a named field; Load reports it corrupt. Apply
// refuses to write over it either way.
func (s *Store) LoadFields(ctx context.Context, id string, names []string) ([][]byte, store.Record, error) {
	var (
		values [][]byte
		rest   store.Record
		err    error
	)
	args, distinct := s.hmget(s.key(id), names)
	whole := !distinct // the size cannot tell then
	if distinct {
		c := &call{args: args, done: make(chan struct{})}
		if err = s.read(ctx, id, c); err == nil {
			values, rest.Version, whole, err = named(names, c.values)
		}
	}
	if whole && err == nil {
		var rec store.Record
		if rec, err = s.load(ctx, id); err == nil {
			values, rest = split(names, rec)
		}
	}
	if err != nil {
		return nil, store.Record{}, fmt.Errorf("redisstore: load %q: %w", id, err)
	}
	return values, rest, nil
}

// hmget returns the command HMGET key "" names... (the version field, then
// names), and whether names are distinct and hold no "", so that the
// record's size can tell whether it holds other fields. Converting a
// string to an interface allocates, so the names of the last call (a
// socket's, every time) are kept converted.
func (s *Store) hmget(key string, names []string) (args []any, distinct bool) {
	args = make([]any, 3, 3+len(names))
	args[0], args[1], args[2] = "hmget", key, ""
	last := s.lastNames.Load()
	if last == nil || !slices.Equal(last.names, names) {
		last = &boxedNames{names: slices.Clone(names), args: make([]any, len(names)), distinct: true}
		seen := make(map[string]bool, len(names))
		for i, name := range last.names {
			last.args[i] = name
			last.distinct = last.distinct && name != "" && !seen[name]
			seen[name] = true
		}
		s.lastNames.Store(last)
	}
	return append(args, last.args...), last.distinct
}

// boxedNames are field names, the same names as interfaces, and whether
// they are distinct and hold no "".
type boxedNames struct {
	names    []string
	args     []any
	distinct bool
}

// load is Load without its error's prefix.
func (s *Store) load(ctx context.Context, id string) (store.Record, error) {
	c := &call{args: []any{"hgetall", s.key(id)}, done: make(chan struct{})}
	if err := s.read(ctx, id, c); err != nil {
		return store.Record{}, err
	}
	return record(id, c.hash)
}

// read runs c, a read of the record id, through the loads' queue.
func (s *Store) read(ctx context.Context, id string, c *call) error {
	err := store.ValidateID(id)
	if err == nil {
		err = s.submit(ctx, &s.loads, c)
	}
	if err == nil {
		err = c.err
	}
	if err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE") {
		// Something else wrote a non-hash under our key.
		err = &store.CorruptError{ID: id, Err: err}
	}
	return err
}

// record turns a record hash into a Record.
func record(id string, h map[string]string) (store.Record, error) {
	if len(h) == 0 {
		return store.Record{}, store.ErrNotFound
	}
	m, ok := h[""]
	if !ok {
		return store.Record{}, &store.CorruptError{ID: id, Err: errors.New("no version field")}
	}
	version, _, ok := meta(m)
	if !ok {
		return store.Record{}, &store.CorruptError{ID: id, Err: fmt.Errorf("version field %q", m)}
	}
	// go-redis reads every value into a string of its own that nothing else
	// references once h is dropped, so the record takes those bytes over
	// instead of copying them again: the caller owns them from here.
	fields := make(map[string][]byte, len(h)-1)
	for k, v := range h {
		if k != "" {
			fields[k] = unsafe.Slice(unsafe.StringData(v), len(v))
		}
	}
	return store.Record{Fields: fields, Version: version}, nil
}

// named reads an HMGET reply (the version field, then the value of each
// name, "" for one the hash lacks) into the values of names and the
// version, or reports whole when only the whole hash can tell the record:
// it holds more than the named fields (its stored size is larger than
// theirs: a field not named, an empty value), or the version field is
// missing (a hash that holds a named field but no version) or unreadable.
// names must be distinct and hold no "" (the version field's name).
func named(names, reply []string) (values [][]byte, version uint64, whole bool, err error) {
	if len(reply) != 1+len(names) {
		return nil, 0, false, fmt.Errorf("HMGET of %d fields returned %d values", 1+len(names), len(reply))
	}
	if reply[0] == "" {
		for _, v := range reply[1:] {
			if v != "" {
				return nil, 0, true, nil
			}
		}
		return nil, 0, false, store.ErrNotFound
	}
	version, size, ok := meta(reply[0])
	if !ok {
		return nil, 0, true, nil
	}
	values = make([][]byte, len(names))
	for i, v := range reply[1:] {
		if v == "" {
			continue
		}
		values[i] = unsafe.Slice(unsafe.StringData(v), len(v)) // as in record
		size -= len(names[i]) + len(v)
	}
	if size != 0 {
		return nil, 0, true, nil
	}
	return values, version, false, nil
}

// split divides rec into the values of names and the other fields.
func split(names []string, rec store.Record) (values [][]byte, rest store.Record) {
	values = make([][]byte, len(names))
	for i, name := range names {
		if v, ok := rec.Fields[name]; ok {
			values[i] = v
			if v == nil {
				values[i] = []byte{} // stored, and empty
			}
		}
	}
	for _, name := range names {
		delete(rec.Fields, name)
	}
	return values, rec
}

// meta reads the version field, "<version> <size>".
func meta(m string) (version uint64, size int, ok bool) {
	v, sz, _ := strings.Cut(m, " ")
	version, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	size, err = strconv.Atoi(sz)
	return version, size, err == nil && size >= 0
}

// Delete removes the record under id. Deleting a missing record is not an
// error.
func (s *Store) Delete(ctx context.Context, id string) error {
	err := s.do(ctx, id, func(ctx context.Context) error {
		return s.client.Unlink(ctx, s.key(id)).Err()
	})
	if err != nil {
		return fmt.Errorf("redisstore: delete %q: %w", id, err)
	}
	return nil
}

// Touch refreshes the time to live of the record under id without writing
// it; a missing or expired record returns an error matching
// store.ErrNotFound.
func (s *Store) Touch(ctx context.Context, id string) error {
	err := s.do(ctx, id, func(ctx context.Context) error {
		var found bool
		var err error
		if s.ttl == 0 {
			var n int64
			n, err = s.client.Exists(ctx, s.key(id)).Result()
			found = n == 1
		} else {
			found, err = s.client.PExpire(ctx, s.key(id), s.ttl).Result()
		}
		if err == nil && !found {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("redisstore: touch %q: %w", id, err)
	}
	return nil
}

// TTL returns the time the record under id has left to live (the key's
// PTTL), 0 when it never expires, or store.ErrNotFound.
func (s *Store) TTL(ctx context.Context, id string) (time.Duration, error) {
	var d time.Duration
	err := s.do(ctx, id, func(ctx context.Context) error {
		var err error
		d, err = s.client.PTTL(ctx, s.key(id)).Result()
		if err == nil && d == -2 {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("redisstore: ttl %q: %w", id, err)
	}
	return max(d, 0), nil
}

// Close marks the store closed and waits for calls in flight, including
// calls that returned early on their ctx and still run in the background.
// It is idempotent; every other method then returns an error matching
// store.ErrClosed. It does not close the client.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.calls.Wait()
	return nil
}

// do runs fn for the record id: it checks that the store is open, id and
// ctx, turns redis.Nil into store.ErrNotFound, and returns when ctx ends
// even if the client does not watch ctx's deadline.
func (s *Store) do(ctx context.Context, id string, fn func(context.Context) error) error {
	if err := store.ValidateID(id); err != nil {
		return err
	}
	return s.run(ctx, fn)
}

// enter counts a call in flight, or returns store.ErrClosed; the caller
// calls s.calls.Done when the call ends.
func (s *Store) enter() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	s.calls.Add(1)
	return nil
}

func (s *Store) run(ctx context.Context, fn func(context.Context) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		s.calls.Done()
		return err
	}
	if !s.background || ctx.Done() == nil {
		defer s.calls.Done()
		return notFound(fn(ctx))
	}
	done := make(chan error, 1)
	go func() {
		defer s.calls.Done()
		done <- notFound(fn(ctx))
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		select {
		case err := <-done: // it finished too: its result is the truth
			return err
		default:
			return ctx.Err()
		}
	}
}

func notFound(err error) error {
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%w (%w)", store.ErrNotFound, err)
	}
	return err
}

// Prefix returns the store's key prefix.
func (s *Store) Prefix() string { return s.prefix }

// key returns the key of the record id.
func (s *Store) key(id string) string { return s.prefix + escape(id) }

// idOf returns the id whose key is key, and false when key is not the key
// of a record under this store's prefix.
func (s *Store) idOf(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, s.prefix)
	if !ok {
		return "", false
	}
	id, ok := unescape(rest)
	if !ok || store.ValidateID(id) != nil {
		return "", false
	}
	return id, true
}

const upperHex = "0123456789ABCDEF"

func plain(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-'
}

// escape writes id with only plain bytes and %XX escapes: no glob
// character, brace or ':' (see the package comment).
func escape(id string) string {
	n := 0
	for i := 0; i < len(id); i++ {
		if !plain(id[i]) {
			n++
		}
	}
	if n == 0 {
		return id
	}
	var b strings.Builder
	b.Grow(len(id) + 2*n)
	for i := 0; i < len(id); i++ {
		if c := id[i]; plain(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		}
	}
	return b.String()
}

// unescape inverts escape; it accepts only what escape writes, so that one
// key maps to one id and back.
func unescape(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case plain(c):
			b.WriteByte(c)
		case c == '%' && i+2 < len(s):
			hi, lo := strings.IndexByte(upperHex, s[i+1]), strings.IndexByte(upperHex, s[i+2])
			if hi < 0 || lo < 0 || plain(byte(hi<<4|lo)) {
				return "", false
			}
			b.WriteByte(byte(hi<<4 | lo))
			i += 2
		default:
			return "", false
		}
	}
	return b.String(), true
}
