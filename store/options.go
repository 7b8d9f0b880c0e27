package store

import (
	"fmt"
	"time"
)

// Defaults of the shared options.
const (
	DefaultMaxFieldSize  = 8 << 20  // 8 MiB
	DefaultMaxRecordSize = 32 << 20 // 32 MiB
)

// Option configures a store. The options of this package mean the same in
// every backend. A backend's own options (redisstore.WithPrefix,
// boltstore.WithBucket) are Options too, made with WithBackendValue; other
// backends ignore them.
type Option func(*Config)

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

	backend map[any]any
}

// NewConfig applies opts over the defaults.
func NewConfig(opts ...Option) *Config {
	c := &Config{MaxFieldSize: DefaultMaxFieldSize, MaxRecordSize: DefaultMaxRecordSize, Now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c
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

// WithBackendValue is how a backend makes its own options: it stores value
// under key, a value of a type private to that backend.
func WithBackendValue(key, value any) Option {
	return func(c *Config) {
		if c.backend == nil {
			c.backend = map[any]any{}
		}
		c.backend[key] = value
	}
}

// BackendValue returns the value a backend option stored under key, or def.
func BackendValue[V any](c *Config, key any, def V) V {
	if v, ok := c.backend[key].(V); ok {
		return v
	}
	return def
}

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
