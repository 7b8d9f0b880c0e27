package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults of the shared options.
const (
	DefaultMaxFieldSize  = 8 << 20  // 8 MiB
	DefaultMaxRecordSize = 32 << 20 // 32 MiB
)

// Option configures a store. The options of this package (WithTTL, the size
// caps, WithClock) mean the same in every backend. A backend with options of
// its own declares
//
//	type Option func(*store.Config)
//
// and takes ...Option. Option is an alias of that unnamed function type, so
// every Option of this package is an Option of every backend, while one
// backend's options are not another's: memory.New(boltstore.WithBucket("x"))
// does not compile. (A backend's option put in a []Option is an Option again;
// constructors that return an error report it, wrapping ErrUnusedOption,
// when it reaches the wrong one.) OptionsFor passes a []Option to a backend.
type Option = func(*Config)

// ErrUnusedOption: a constructor was given an option that does nothing for
// it, such as another backend's own option.
var ErrUnusedOption = errors.New("store: option not used")

// Config is the settings a backend reads after applying its Options. Build
// it with NewConfig.
type Config struct {
	// TTL is the sliding time to live of a record: Apply and Touch refresh
	// it, Load does not. Zero (the default) means records never expire.
	TTL time.Duration
	// MaxFieldSize caps one field's value, in bytes (default
	// DefaultMaxFieldSize).
	MaxFieldSize int
	// MaxRecordSize caps a record's Size (default DefaultMaxRecordSize).
	MaxRecordSize int
	// Now is the clock that expiry follows (default time.Now). Backends
	// whose expiry is kept by a server (Redis) follow the server's clock.
	Now func() time.Time

	backend any      // the settings of the backend's own options
	unused  []string // the options that found no settings of their type
}

// NewConfig applies opts over the defaults. backend points to the settings
// that the backend's own options set (see BackendOption), nil for a
// backend without options of its own.
func NewConfig[O ~func(*Config)](backend any, opts ...O) *Config {
	c := &Config{MaxFieldSize: DefaultMaxFieldSize, MaxRecordSize: DefaultMaxRecordSize, Now: time.Now, backend: backend}
	for _, o := range opts {
		o(c)
	}
	return c
}

// OptionsFor returns opts as options of a backend whose Option type is O,
// for a caller holding a []Option:
//
//	boltstore.Open(path, store.OptionsFor[boltstore.Option](opts)...)
func OptionsFor[O ~func(*Config)](opts []Option) []O {
	out := make([]O, len(opts))
	for i, o := range opts {
		out[i] = o
	}
	return out
}

// BackendOption is how a backend makes its own options: the option runs set
// on the settings, an S, that the backend gave NewConfig. When it reaches
// another backend's constructor (through a []Option) it records name
// instead, for Unused to report.
func BackendOption[S any](name string, set func(*S)) Option {
	return func(c *Config) {
		if s, ok := c.backend.(*S); ok {
			set(s)
			return
		}
		c.unused = append(c.unused, name)
	}
}

// Unused returns an error wrapping ErrUnusedOption that names the options
// the backend did not use, nil when it used them all. Constructors that
// return an error return it.
func (c *Config) Unused() error {
	if len(c.unused) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnusedOption, strings.Join(c.unused, ", "))
}

// WithTTL sets the sliding time to live of records. Zero (the default) keeps
// records until they are deleted.
func WithTTL(d time.Duration) Option { return func(c *Config) { c.TTL = d } }

// WithMaxFieldSize caps each field's value at n bytes (default
// DefaultMaxFieldSize). Larger writes fail with ErrTooLarge.
func WithMaxFieldSize(n int) Option { return func(c *Config) { c.MaxFieldSize = n } }

// WithMaxRecordSize caps each record's Size at n bytes (default
// DefaultMaxRecordSize). Writes that would exceed it fail with ErrTooLarge.
func WithMaxRecordSize(n int) Option { return func(c *Config) { c.MaxRecordSize = n } }

// WithClock sets the clock that expiry follows (default time.Now), so tests
// can move time without sleeping.
func WithClock(now func() time.Time) Option { return func(c *Config) { c.Now = now } }

// ExpiresAt is when a record written or touched now expires; the zero time
// when TTL is zero.
func (c *Config) ExpiresAt(now time.Time) time.Time {
	if c.TTL <= 0 {
		return time.Time{}
	}
	return now.Add(c.TTL)
}

// CheckChange validates what Apply can check before touching a record: the
// id, the field names, each value against MaxFieldSize, and for a Replace the
// record's size. Backends call it first and add the size check of the merged
// record themselves (CheckRecordSize).
func (c *Config) CheckChange(id string, ch Change) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	// Names first, then sizes, so that one Change gets the same error
	// whatever the order of its map.
	for k := range ch.Set {
		if err := validateField(k); err != nil {
			return err
		}
	}
	for _, k := range ch.Delete {
		if err := validateField(k); err != nil {
			return err
		}
		if _, ok := ch.Set[k]; ok {
			return fmt.Errorf("%w: %q is both set and deleted", ErrInvalidField, k)
		}
	}
	size := 0
	for k, v := range ch.Set {
		if len(v) > c.MaxFieldSize {
			return fmt.Errorf("%w: field %q holds %d bytes, cap is %d", ErrTooLarge, k, len(v), c.MaxFieldSize)
		}
		size += len(k) + len(v)
	}
	if ch.Replace || size > c.MaxRecordSize {
		return c.CheckRecordSize(size)
	}
	return nil
}

// CheckRecordSize returns an ErrTooLarge error when size exceeds MaxRecordSize.
func (c *Config) CheckRecordSize(size int) error {
	if size > c.MaxRecordSize {
		return fmt.Errorf("%w: record would hold %d bytes, cap is %d", ErrTooLarge, size, c.MaxRecordSize)
	}
	return nil
}

func validateField(name string) error {
	if name == "" || len(name) > MaxFieldNameLen {
		return fmt.Errorf("%w: name length %d, want 1 to %d bytes", ErrInvalidField, len(name), MaxFieldNameLen)
	}
	return nil
}
