// Package store defines the ContextStore contract: where livectx keeps the
// context (the LiveView state) of every LiveView instance.
//
// A store maps an instance id to a Record: named fields of encoded bytes, one
// per top-level context key, plus a version that grows with every write.
// Keeping fields apart is what lets an assign of one small field write only
// that field, whatever else the context holds.
//
// Backends live in their own packages (memory, redisstore, boltstore) and all
// pass the conformance suite in store/storetest. Stores keep bytes as they
// are given; package codec encodes and decodes them.
//
// # Using a store
//
// Application code needs ContextStore, Record and Change, the sentinel
// errors (and *CorruptError, which names the unreadable field), the options
// every backend shares (WithTTL, WithMaxFieldSize, WithMaxRecordSize,
// WithClock), and As to find an optional capability (Lister, TTLReader;
// SharedLoader and FieldLoader serve readers that decode records, as socket
// does).
//
// # Writing a backend
//
// The rest of the package (Config, NewConfig, BackendOption, OptionsFor,
// ErrUnusedOption, SizeAfter, ValidateID, VersionConflict) is for backend
// authors. A backend is a package with a Store type and a constructor that
// takes its client or file first and Options after. Its Store:
//
//   - declares type Option func(*store.Config) and takes ...Option, so
//     that the shared options are its options and another backend's are a
//     compile error; makes its own options with BackendOption; reads its
//     settings from NewConfig(&settings, opts...); and, if its constructor
//     returns an error, returns Config.Unused's;
//   - validates first: Apply calls Config.CheckChange before any I/O and
//     Config.CheckRecordSize on the merged record; Load, Touch, Delete and
//     TTL call ValidateID. A refused call writes nothing;
//   - answers a stale Change.IfVersion with VersionConflict(stored,
//     expected), writing nothing;
//   - turns its native miss (a nil bbolt value, redis.Nil) and an expired
//     record into ErrNotFound (from Load, Touch and TTL); Delete of a
//     missing record returns nil;
//   - copies bytes at the boundary: what Load returns belongs to the
//     caller (never a view into a transaction or the store's own memory),
//     and Apply keeps neither the Change's map nor its bytes (SharedLoader
//     is the one way to lend a reader the store's bytes);
//   - honours ctx: a call whose ctx is done returns ctx's error having
//     written nothing; a backend without cancellation checks ctx.Err()
//     first;
//   - stores ids one to one: no separator, glob or hash-tag character in an
//     id reaches another record;
//   - wraps every error with its package prefix, the operation, the id and
//     %w ("memory: load %q: %w"), so that errors.Is finds the sentinels;
//     stored bytes it cannot read are a *CorruptError;
//   - is safe for concurrent use; starts its goroutines in the constructor
//     and stops and waits for them in Close, which is idempotent, makes
//     every later call return ErrClosed, and closes only what the backend
//     opened itself;
//   - implements an optional interface (Lister, TTLReader, SharedLoader,
//     FieldLoader) only when it can serve it, never with a method that
//     panics;
//   - runs storetest.Run from its tests, with expiry following the suite's
//     clock (WithClock, or storetest.Clock.OnAdvance for a server's clock).
//
// A wrapper store (sealed, observe) forwards every ContextStore method
// explicitly and closes the store it wraps. It has every optional method,
// forwarding each to the store it wraps or returning ErrUnsupported when
// that store lacks it, and a method Unwrap() ContextStore, so that As finds
// exactly what the store underneath offers. It runs storetest over every
// backend and over a store with no optional interface.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Backends wrap them (check with errors.Is) and wrap their
// own errors with %w so the original stays reachable.
var (
	// ErrNotFound: no record is stored under the id, or it has expired.
	ErrNotFound = errors.New("store: record not found")
	// ErrConflict: Apply expected a version the store no longer holds;
	// nothing was written.
	ErrConflict = errors.New("store: version conflict")
	// ErrClosed: the store was closed. (A closed socket.Socket returns
	// socket.ErrClosed instead: the socket ended, its store may be open.)
	ErrClosed = errors.New("store: closed")
	// ErrTooLarge: a field, a record or the whole store would exceed its cap;
	// nothing was written.
	ErrTooLarge = errors.New("store: too large")
	// ErrInvalidID: an id is empty or longer than MaxIDLen.
	ErrInvalidID = errors.New("store: invalid id")
	// ErrInvalidField: a field name is empty or longer than MaxFieldNameLen,
	// or a Change both sets and deletes one field.
	ErrInvalidField = errors.New("store: invalid field")
	// ErrCorrupt: stored bytes could not be read back. Returned inside a
	// *CorruptError that names the id and field.
	ErrCorrupt = errors.New("store: corrupt stored data")
	// ErrUnsupported: the store cannot do this optional operation: a wrapper
	// store's List or TTL over a store that lacks it (see As). It also
	// matches errors.ErrUnsupported.
	ErrUnsupported = fmt.Errorf("store: %w", errors.ErrUnsupported)
)

// Limits on names, the same in every backend.
const (
	// MaxIDLen is the longest id, in bytes. Ids may hold any bytes.
	MaxIDLen = 512
	// MaxFieldNameLen is the longest field name, in bytes.
	MaxFieldNameLen = 256
)

// ContextStore keeps the context (the LiveView state, not a context.Context)
// of each LiveView instance, as a Record of named fields plus a version.
//
// Implementations are safe for concurrent use. Every method that may do I/O
// takes a context.Context first and returns its error, having written nothing,
// when it is already done.
type ContextStore interface {
	// Load returns the record stored under id. A missing or expired record
	// returns ErrNotFound. Load does not refresh the time to live. The
	// returned bytes belong to the caller.
	Load(ctx context.Context, id string) (Record, error)

	// Apply writes c to the record under id atomically: all of it or, on any
	// error, nothing. A missing (or expired) record is created with version
	// 1; every successful Apply returns a version greater than any the record
	// had, and refreshes its time to live. Apply keeps neither c's map nor
	// its bytes: the caller may reuse both once it returns.
	Apply(ctx context.Context, id string, c Change) (version uint64, err error)

	// Delete removes the record under id. Deleting a missing record is not an
	// error.
	Delete(ctx context.Context, id string) error

	// Touch refreshes the time to live of the record under id without
	// writing it; a missing record returns ErrNotFound.
	Touch(ctx context.Context, id string) error

	// Close releases the store and waits for its background work. It is
	// idempotent; every other call after it returns ErrClosed. It does not
	// close clients or files the store was given; a wrapper store (sealed,
	// observe) closes the store it wraps.
	Close() error
}

// Lister is implemented by stores that can page through the ids they hold,
// for tools such as the livectx inspector. Find it with As.
type Lister interface {
	// List returns a page of ids of live records starting at cursor (""
	// for the first page), and the cursor of the next page, "" after the
	// last. limit is the page size a backend aims at (<= 0: its default);
	// a page may be shorter or, where the server decides (Redis SCAN),
	// somewhat longer. Ids come in no particular
	// order; a record written or removed during a listing may be listed or
	// not, every other live id is listed once.
	List(ctx context.Context, cursor string, limit int) (ids []string, next string, err error)
}

// TTLReader is implemented by stores that can tell how long a record has
// left to live, for tools such as the livectx inspector. Find it with As.
type TTLReader interface {
	// TTL returns the time the record under id has left to live, 0 when it
	// never expires, or ErrNotFound when it is missing or expired. It does
	// not refresh the time to live.
	TTL(ctx context.Context, id string) (time.Duration, error)
}

// SharedLoader is implemented by stores that can lend a record's bytes
// instead of copying them, for readers that decode a record and keep the
// result (socket does, so that the strings of a restored context point
// into the store's copy rather than into a second one). Find it with As.
type SharedLoader interface {
	// LoadShared is Load, except that the values of the returned Fields
	// are the store's own bytes, lent: the caller must never modify them.
	// The store never modifies them either (a later Apply stores fresh
	// slices), so they keep their content for as long as the caller holds
	// them, after the record changes or is deleted. The map is the
	// caller's.
	LoadShared(ctx context.Context, id string) (Record, error)
}

// FieldLoader is implemented by stores that read a record faster when told
// which fields it holds, for readers that know what they wrote (socket
// does: its context type's fields). redisstore reads them by name: a reply
// of one value per field instead of a name and a value, and no map to
// build. Find it with As.
type FieldLoader interface {
	// LoadFields is Load for a reader that expects the record to hold the
	// fields names: it returns the value of names[i] in values[i] (nil
	// when the record lacks it; a stored empty value is empty, not nil),
	// and the record's version and its other fields, if any, in rest.
	// values and rest.Fields together hold what Load returns; rest.Fields
	// holds no named field. The bytes belong to the caller. A record that
	// holds fields not named may cost a second read.
	LoadFields(ctx context.Context, id string, names []string) (values [][]byte, rest Record, err error)
}

// Record is what a store holds for one instance.
type Record struct {
	// Fields maps each field name to its encoded value.
	Fields map[string][]byte
	// Version grows with every successful Apply.
	Version uint64
}

// Size is the record's size as size caps count it: the lengths of every
// field's name and value.
func (r Record) Size() int {
	n := 0
	for k, v := range r.Fields {
		n += len(k) + len(v)
	}
	return n
}

// Change is one atomic write to a record.
type Change struct {
	// Set writes these fields (a nil value stores an empty value).
	Set map[string][]byte
	// Delete removes these fields; missing ones are ignored.
	Delete []string
	// Replace makes Set the whole record: every field not in Set is removed.
	Replace bool
	// CheckVersion makes Apply write only if the stored version equals
	// IfVersion (0 meaning that no record is stored); otherwise it returns
	// ErrConflict and writes nothing.
	CheckVersion bool
	IfVersion    uint64
}

// ValidateID returns an ErrInvalidID error unless id has 1 to MaxIDLen bytes.
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: length %d, want 1 to %d bytes", ErrInvalidID, len(id), MaxIDLen)
	}
	return nil
}

// VersionConflict returns the error of an Apply whose expected version
// (Change.IfVersion, 0 for no record) is not the stored one (0 when no
// record is stored): ErrConflict, then both versions, e.g. "store: version
// conflict: record at version 3, expected 2". Every backend builds its
// conflict error with it, under its own prefix and the id, so that a
// conflict reads the same whatever the store.
func VersionConflict(stored, expected uint64) error {
	switch {
	case stored == 0:
		return fmt.Errorf("%w: no record stored, expected version %d", ErrConflict, expected)
	case expected == 0:
		return fmt.Errorf("%w: record at version %d, expected none", ErrConflict, stored)
	}
	return fmt.Errorf("%w: record at version %d, expected %d", ErrConflict, stored, expected)
}

// CorruptError reports stored bytes that could not be decoded. It matches
// ErrCorrupt with errors.Is.
type CorruptError struct {
	ID    string
	Field string // "" when the record as a whole is unreadable
	Err   error
}

func (e *CorruptError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("store: corrupt record %q: %v", e.ID, e.Err)
	}
	return fmt.Sprintf("store: corrupt field %q of record %q: %v", e.Field, e.ID, e.Err)
}

func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
