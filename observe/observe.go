// Package observe reports every operation on a store.ContextStore (the
// store of LiveView contexts) to an Observer: which operation, on which id,
// its outcome, how long it took and how many bytes it moved. Metrics and
// logs are built on it without the core module depending on any metrics
// library: see Logger for log/slog, and examples/prometheus for Prometheus.
package observe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/livectx/livectx/store"
)

// Op names a store operation.
type Op string

// The operations of store.ContextStore, store.Lister and store.TTLReader.
const (
	OpLoad   Op = "load"
	OpApply  Op = "apply"
	OpDelete Op = "delete"
	OpTouch  Op = "touch"
	OpList   Op = "list"
	OpTTL    Op = "ttl"
	OpClose  Op = "close"
)

// Event describes one finished operation.
type Event struct {
	Op Op
	// ID is the record id; "" for List and Close.
	ID string
	// Duration is the time the inner store took.
	Duration time.Duration
	// Err is the operation's error, nil on success. Outcome(Err) names it.
	Err error
	// BytesIn counts the bytes Apply was asked to write: the names and
	// values of the fields it sets, as store.Record.Size counts them. Zero
	// for every other operation.
	BytesIn int
	// BytesOut counts the bytes Load returned (the record's Size).
	BytesOut int
	// Fields counts the fields Apply set or deleted, the fields Load
	// returned, or the ids List returned.
	Fields int
	// Version is the version Apply returned or Load read; 0 otherwise.
	Version uint64
}

// Outcome names an error by the sentinel it matches, for use as a metric
// label or log attribute with few values: "ok" (nil), "not_found",
// "conflict", "too_large", "invalid" (id or field), "corrupt", "closed",
// "unsupported", "canceled", "deadline", or "error" for anything else.
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, store.ErrConflict):
		return "conflict"
	case errors.Is(err, store.ErrTooLarge):
		return "too_large"
	case errors.Is(err, store.ErrInvalidID), errors.Is(err, store.ErrInvalidField):
		return "invalid"
	case errors.Is(err, store.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, store.ErrClosed):
		return "closed"
	case errors.Is(err, store.ErrUnsupported):
		return "unsupported"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	default:
		return "error"
	}
}

// Observer receives an Event after every operation, on the goroutine that
// made the call, before the call returns. It must be safe for concurrent use
// and quick, and must not call the store it observes (each call would be
// reported again).
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// Func adapts a function to an Observer.
type Func func(ctx context.Context, e Event)

// Observe calls f.
func (f Func) Observe(ctx context.Context, e Event) { f(ctx, e) }

// Store forwards every call to the inner store and reports it to the
// observer. It is safe for concurrent use when the inner store and observer
// are.
//
// Store has the optional methods of store.Lister and store.TTLReader
// whatever it wraps; over a store that lacks one, the method returns (and
// reports) an error matching store.ErrUnsupported. store.As sees through it
// to what the inner store offers.
type Store struct {
	inner store.ContextStore
	obs   Observer
}

var (
	_ store.Lister      = (*Store)(nil)
	_ store.TTLReader   = (*Store)(nil)
	_ store.FieldLoader = (*Store)(nil)
)

// New returns a store that reports every operation on inner to obs; a nil
// obs reports nothing. New takes inner over: closing the result closes
// inner.
func New(inner store.ContextStore, obs Observer) *Store {
	if obs == nil {
		obs = Func(func(context.Context, Event) {})
	}
	return &Store{inner: inner, obs: obs}
}

// Load forwards to the inner store and reports the record's size.
func (s *Store) Load(ctx context.Context, id string) (store.Record, error) {
	start := time.Now()
	r, err := s.inner.Load(ctx, id)
	s.obs.Observe(ctx, Event{Op: OpLoad, ID: id, Duration: time.Since(start), Err: err,
		BytesOut: r.Size(), Fields: len(r.Fields), Version: r.Version})
	return r, err
}

// LoadFields forwards to the inner store and reports what it read as Load
// does; see store.FieldLoader. When the inner store has no LoadFields, it
// returns an error matching store.ErrUnsupported.
func (s *Store) LoadFields(ctx context.Context, id string, names []string) ([][]byte, store.Record, error) {
	start := time.Now()
	var (
		values [][]byte
		rest   store.Record
		err    error
	)
	if l, ok := s.inner.(store.FieldLoader); ok {
		values, rest, err = l.LoadFields(ctx, id, names)
	} else {
		err = fmt.Errorf("observe: load %q: %w", id, store.ErrUnsupported)
	}
	size, fields := rest.Size(), len(rest.Fields)
	for i, v := range values {
		if v != nil {
			size += len(names[i]) + len(v)
			fields++
		}
	}
	s.obs.Observe(ctx, Event{Op: OpLoad, ID: id, Duration: time.Since(start), Err: err,
		BytesOut: size, Fields: fields, Version: rest.Version})
	return values, rest, err
}

// Apply forwards to the inner store and reports the bytes it was asked to
// write.
func (s *Store) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	start := time.Now()
	v, err := s.inner.Apply(ctx, id, c)
	s.obs.Observe(ctx, Event{Op: OpApply, ID: id, Duration: time.Since(start), Err: err,
		BytesIn: store.Record{Fields: c.Set}.Size(), Fields: len(c.Set) + len(c.Delete), Version: v})
	return v, err
}

// Delete forwards to the inner store.
func (s *Store) Delete(ctx context.Context, id string) error {
	start := time.Now()
	err := s.inner.Delete(ctx, id)
	s.obs.Observe(ctx, Event{Op: OpDelete, ID: id, Duration: time.Since(start), Err: err})
	return err
}

// Touch forwards to the inner store.
func (s *Store) Touch(ctx context.Context, id string) error {
	start := time.Now()
	err := s.inner.Touch(ctx, id)
	s.obs.Observe(ctx, Event{Op: OpTouch, ID: id, Duration: time.Since(start), Err: err})
	return err
}

// Close closes the inner store; the observer sees it with a background
// context.
func (s *Store) Close() error {
	start := time.Now()
	err := s.inner.Close()
	s.obs.Observe(context.Background(), Event{Op: OpClose, Duration: time.Since(start), Err: err})
	return err
}

// List forwards to the inner store and reports the number of ids it
// returned; see store.Lister. When the inner store cannot list, it returns
// an error matching store.ErrUnsupported.
func (s *Store) List(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	start := time.Now()
	var (
		ids  []string
		next string
		err  error
	)
	if l, ok := s.inner.(store.Lister); ok {
		ids, next, err = l.List(ctx, cursor, limit)
	} else {
		err = fmt.Errorf("observe: list: %w", store.ErrUnsupported)
	}
	s.obs.Observe(ctx, Event{Op: OpList, Duration: time.Since(start), Err: err, Fields: len(ids)})
	return ids, next, err
}

// TTL forwards to the inner store; see store.TTLReader. When the inner store
// cannot tell, it returns an error matching store.ErrUnsupported.
func (s *Store) TTL(ctx context.Context, id string) (time.Duration, error) {
	start := time.Now()
	var (
		d   time.Duration
		err error
	)
	if r, ok := s.inner.(store.TTLReader); ok {
		d, err = r.TTL(ctx, id)
	} else {
		err = fmt.Errorf("observe: ttl %q: %w", id, store.ErrUnsupported)
	}
	s.obs.Observe(ctx, Event{Op: OpTTL, ID: id, Duration: time.Since(start), Err: err})
	return d, err
}

// Unwrap returns the inner store, for store.As. Calls made through it are
// not reported.
func (s *Store) Unwrap() store.ContextStore { return s.inner }
