// Package sealed encrypts the context (the LiveView state) at rest: it wraps
// any store.ContextStore and seals every field value with AES-256-GCM before
// the inner store sees it.
//
// Each sealed value is bound to its namespace, record id and field name
// (they are the AEAD's additional data), so bytes copied to another record,
// another field or another application's namespace fail to open. Ids, field
// names and versions are stored in clear; only values are sealed. Sealing
// gives confidentiality and integrity, not freshness: whoever can write to
// the inner store can still delete a record or field, or put back an older
// value of the same field of the same record.
//
// Layout of a sealed value (Overhead bytes more than the plaintext):
//
//	format (1 byte, 1) | key id (4 bytes) | nonce (12 bytes) | ciphertext | tag (16 bytes)
//
// The key id is derived from the key (the first 4 bytes of an HMAC-SHA256 of
// a fixed label), so keys need no names. Nonces are random: seal at most
// about 2^32 values with one key, then rotate.
//
// Key rotation: New takes a list of keys; the first seals, every one opens.
// Put a new key first, keep the old ones listed until every record has been
// rewritten or has expired, then drop them.
//
// Size caps are the inner store's and count what it stores: each field's
// value is Overhead bytes longer than its plaintext, so a field cap of N
// admits plaintexts of N-Overhead bytes and a record of k fields counts
// k*Overhead bytes more than its plaintext.
//
// Bytes that fail to open (tampered, truncated, moved, or sealed by a key not
// listed) make Load return a *store.CorruptError naming the id and field;
// they are never decoded further.
package sealed

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/livectx/livectx/store"
)

// KeySize is the length of every key: AES-256.
const KeySize = 32

// Overhead is how many bytes sealing adds to each field value (33: a 5-byte
// header, a 12-byte nonce and a 16-byte tag).
const Overhead = headerSize + nonceSize + tagSize

const (
	format     = 1
	idSize     = 4
	headerSize = 1 + idSize
	nonceSize  = 12
	tagSize    = 16
)

// Option configures New.
type Option func(*config)

type config struct {
	namespace string
}

// WithNamespace binds every sealed value to ns as well as to its id and field
// (default ""). Give each application that shares keys and a server its own
// namespace (its key prefix or bucket name, say) so that values copied from
// one to the other fail to open.
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

type key struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// Store seals values on their way to the inner store and opens them on the
// way back. It is safe for concurrent use when the inner store is.
//
// Store has the optional methods of store.Lister and store.TTLReader
// whatever it wraps, forwarding them (ids and times to live are stored in
// clear); over a store that lacks one, the method returns an error matching
// store.ErrUnsupported. store.As sees through it to what the inner store
// offers.
type Store struct {
	inner     store.ContextStore
	namespace string
	keys      []key // keys[0] seals
}

var (
	_ store.Lister      = (*Store)(nil)
	_ store.TTLReader   = (*Store)(nil)
	_ store.FieldLoader = (*Store)(nil)
)

// New returns a store that seals every field value written through it with
// keys[0] and opens values sealed with any of keys. Each key is KeySize
// random bytes; New copies them. New takes inner over: closing the result
// closes inner.
func New(inner store.ContextStore, keys [][]byte, opts ...Option) (*Store, error) {
	if inner == nil {
		return nil, errors.New("sealed: nil inner store")
	}
	if len(keys) == 0 {
		return nil, errors.New("sealed: no key")
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	s := &Store{inner: inner, namespace: cfg.namespace}
	seen := map[[idSize]byte]int{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("sealed: key %d holds %d bytes, want %d", i, len(k), KeySize)
		}
		block, err := aes.NewCipher(k) // copies the key schedule; k is not kept
		if err != nil {
			return nil, fmt.Errorf("sealed: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sealed: key %d: %w", i, err)
		}
		id := keyID(k)
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("sealed: keys %d and %d are the same key or share a key id", j, i)
		}
		seen[id] = i
		s.keys = append(s.keys, key{id: id, aead: aead})
	}
	return s, nil
}

func keyID(k []byte) [idSize]byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("livectx sealed key id"))
	var id [idSize]byte
	copy(id[:], m.Sum(nil))
	return id
}

// additionalData binds a value to its header, namespace, id and field; each
// part is length-prefixed so no two triples encode alike.
func (s *Store) additionalData(header []byte, id, field string) []byte {
	ad := make([]byte, 0, len(header)+3*binary.MaxVarintLen64+len(s.namespace)+len(id)+len(field))
	ad = append(ad, header...)
	for _, part := range []string{s.namespace, id, field} {
		ad = binary.AppendUvarint(ad, uint64(len(part)))
		ad = append(ad, part...)
	}
	return ad
}

func (s *Store) seal(id, field string, plain []byte) ([]byte, error) {
	k := s.keys[0]
	out := make([]byte, headerSize+nonceSize, Overhead+len(plain))
	out[0] = format
	copy(out[1:headerSize], k.id[:])
	if _, err := rand.Read(out[headerSize:]); err != nil {
		return nil, fmt.Errorf("sealed: apply %q: nonce: %w", id, err)
	}
	nonce := out[headerSize:]
	return k.aead.Seal(out, nonce, plain, s.additionalData(out[:headerSize], id, field)), nil
}

func (s *Store) open(id, field string, sealed []byte) ([]byte, error) {
	corrupt := func(why string) error {
		return &store.CorruptError{ID: id, Field: field, Err: errors.New("sealed: " + why)}
	}
	if len(sealed) < Overhead {
		return nil, corrupt(fmt.Sprintf("%d bytes, shorter than a sealed value", len(sealed)))
	}
	if sealed[0] != format {
		return nil, corrupt(fmt.Sprintf("unknown format %d", sealed[0]))
	}
	for _, k := range s.keys {
		if [idSize]byte(sealed[1:headerSize]) != k.id {
			continue
		}
		nonce := sealed[headerSize : headerSize+nonceSize]
		plain, err := k.aead.Open(make([]byte, 0, len(sealed)-Overhead), nonce, sealed[headerSize+nonceSize:], s.additionalData(sealed[:headerSize], id, field))
		if err != nil {
			return nil, corrupt("authentication failed (tampered, or moved from another record or field)")
		}
		return plain, nil
	}
	return nil, corrupt(fmt.Sprintf("sealed with key id %x, which is not among the keys", sealed[1:headerSize]))
}

// Load opens every field of the record under id. A field that fails to open
// makes Load return a *store.CorruptError (errors.Is store.ErrCorrupt) naming
// it, and no fields. Errors of the inner store are returned as they are.
func (s *Store) Load(ctx context.Context, id string) (store.Record, error) {
	r, err := s.inner.Load(ctx, id)
	if err != nil {
		return store.Record{}, err
	}
	return s.openAll(id, r)
}

// LoadFields opens what the inner store's LoadFields read, as Load does;
// see store.FieldLoader. When the inner store has none, it returns an
// error matching store.ErrUnsupported.
func (s *Store) LoadFields(ctx context.Context, id string, names []string) ([][]byte, store.Record, error) {
	l, ok := s.inner.(store.FieldLoader)
	if !ok {
		return nil, store.Record{}, fmt.Errorf("sealed: load %q: %w", id, store.ErrUnsupported)
	}
	values, rest, err := l.LoadFields(ctx, id, names)
	if err != nil {
		return nil, store.Record{}, err
	}
	plain := make([][]byte, len(values))
	for i, v := range values {
		if v != nil {
			if plain[i], err = s.open(id, names[i], v); err != nil {
				return nil, store.Record{}, err
			}
		}
	}
	rest, err = s.openAll(id, rest)
	return plain, rest, err
}

// openAll opens every field of r, read from the inner store.
func (s *Store) openAll(id string, r store.Record) (store.Record, error) {
	fields := make(map[string][]byte, len(r.Fields))
	for name, v := range r.Fields {
		plain, err := s.open(id, name, v)
		if err != nil {
			return store.Record{}, err
		}
		fields[name] = plain
	}
	return store.Record{Fields: fields, Version: r.Version}, nil
}

// Apply seals every value c sets, then applies c to the inner store.
func (s *Store) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("sealed: apply %q: %w", id, err)
	}
	if len(c.Set) > 0 {
		set := make(map[string][]byte, len(c.Set))
		for name, v := range c.Set {
			b, err := s.seal(id, name, v)
			if err != nil {
				return 0, err
			}
			set[name] = b
		}
		c.Set = set
	}
	return s.inner.Apply(ctx, id, c)
}

// Delete forwards to the inner store.
func (s *Store) Delete(ctx context.Context, id string) error { return s.inner.Delete(ctx, id) }

// Touch forwards to the inner store.
func (s *Store) Touch(ctx context.Context, id string) error { return s.inner.Touch(ctx, id) }

// Close closes the inner store.
func (s *Store) Close() error { return s.inner.Close() }

// List forwards to the inner store; see store.Lister. When the inner store
// cannot list, it returns an error matching store.ErrUnsupported.
func (s *Store) List(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	l, ok := s.inner.(store.Lister)
	if !ok {
		return nil, "", fmt.Errorf("sealed: list: %w", store.ErrUnsupported)
	}
	return l.List(ctx, cursor, limit)
}

// TTL forwards to the inner store; see store.TTLReader. When the inner store
// cannot tell, it returns an error matching store.ErrUnsupported.
func (s *Store) TTL(ctx context.Context, id string) (time.Duration, error) {
	r, ok := s.inner.(store.TTLReader)
	if !ok {
		return 0, fmt.Errorf("sealed: ttl %q: %w", id, store.ErrUnsupported)
	}
	return r.TTL(ctx, id)
}

// Unwrap returns the inner store, for store.As. What is written through it
// is not sealed.
func (s *Store) Unwrap() store.ContextStore { return s.inner }
