// Package token mints LiveView instance ids and signs them into short,
// expiring tokens bound to an owner, so that an instance id alone is never
// enough to resume a context (the LiveView state) from the store.
//
// A context that can be resumed on any node is worth stealing, and its id
// works like a password when it is used bare. The server therefore mints the
// id (Mint: 128 random bits) and hands the client a token that binds the id
// to an owner value the application names: its session id or user id. When
// the client comes back, Verify (or socket.Manager.OpenToken, which cannot
// be forgotten) checks the token against the owner of the request before
// the store is read.
//
// What a token proves: that this server (a holder of the signing keys)
// issued it, for this id, to this owner, for this purpose, no longer ago than
// the maximum age. What it does not prove: that the record still exists, that
// the owner is who they claim (that is the application's session), or that
// the token was not copied by someone who also holds the owner's session. A
// token is not revocable before it expires: to cut off an owner, change the
// owner value (end the session).
//
// # Format
//
// A token is the unpadded URL-safe base64 (RFC 4648 §5) of
//
//	version (1 byte, 1) | issued at (8 bytes, big-endian Unix seconds) | id | MAC (32 bytes)
//
// where MAC is HMAC-SHA-256 under a signing key of a fixed label, the
// purpose, the version, the issue time, the id (length first) and the
// owner. The owner is bound by the MAC but not carried: a token does not
// reveal the session it belongs to. The id is carried in the clear (it is
// signed, not encrypted), and nothing else is: a token never holds the
// context. With ids up to MaxIDLen bytes a token is at most 140 characters;
// a minted id makes it 90.
//
// Verify checks the length and the alphabet, decodes, and checks the MAC in
// constant time against every listed key before it reads any field of the
// token; only then does it look at the version and the age. Every failure,
// whichever check failed, is the same ErrInvalid.
//
// # Keys and rotation
//
// NewSigner takes a list of keys of at least 32 bytes each (random bytes,
// not passwords). The first signs; every one verifies. To roll keys across
// nodes: add the new key second on every node (all nodes now accept it),
// then move it first on every node (tokens are signed with it), then, once
// the maximum age has passed, remove the old key. A key removed from the
// list retires every token it signed.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"time"
)

// ErrInvalid is the one error Verify returns for a bad token, whatever check
// failed (malformed, forged, tampered, signed by an unlisted key, for
// another owner or purpose, expired), so a client learns nothing from it.
var ErrInvalid = errors.New("token: invalid")

const (
	// MinKeySize is the shortest key NewSigner accepts.
	MinKeySize = 32
	// MaxIDLen is the longest id Sign accepts, in bytes.
	MaxIDLen = 64
	// DefaultMaxAge is how long a token verifies when WithMaxAge is not
	// given.
	DefaultMaxAge = 24 * time.Hour
	// DefaultPurpose is the purpose of a Signer made without WithPurpose.
	DefaultPurpose = "livectx instance"
	// MaxSkew is how far in the future a token's issue time may lie and the
	// token still verify: the clocks of two nodes sharing keys may differ
	// by that much.
	MaxSkew = time.Minute
)

const (
	version    = 1
	headerSize = 1 + 8 // version, issued at
	macSize    = sha256.Size
	label      = "livectx/token\x00"
)

var (
	encoding = base64.RawURLEncoding.Strict()
	// minLen and maxLen bound an encoded token (an id of 1 to MaxIDLen bytes).
	minLen = encoding.EncodedLen(headerSize + 1 + macSize)
	maxLen = encoding.EncodedLen(headerSize + MaxIDLen + macSize)
)

// Option configures NewSigner.
type Option func(*config)

type config struct {
	maxAge  time.Duration
	now     func() time.Time
	purpose string
}

// WithMaxAge makes Verify refuse tokens issued more than d ago (default
// DefaultMaxAge, 24 hours). A re-issued token (Sign) starts a new age. d
// must be positive.
func WithMaxAge(d time.Duration) Option { return func(c *config) { c.maxAge = d } }

// WithClock makes the Signer read the time from now (default time.Now; nil
// keeps the default), for tests.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithPurpose binds tokens to p (default DefaultPurpose): a token signed for
// one purpose never verifies for another, even under the same keys (as
// Phoenix.Token's salt). Use it to sign other things, such as CSRF tokens,
// with the keys that sign instance tokens.
func WithPurpose(p string) Option { return func(c *config) { c.purpose = p } }

// Signer mints ids and signs and verifies tokens. It is safe for concurrent
// use.
type Signer struct {
	keys [][]byte
	cfg  config
}

// NewSigner returns a Signer whose first key signs and whose every key
// verifies. It copies keys. It fails if there is no key, a key is shorter
// than MinKeySize bytes, or the maximum age is not positive.
func NewSigner(keys [][]byte, opts ...Option) (*Signer, error) {
	cfg := config{maxAge: DefaultMaxAge, now: time.Now, purpose: DefaultPurpose}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.maxAge <= 0 {
		return nil, fmt.Errorf("token: max age %v, want more than 0", cfg.maxAge)
	}
	if len(keys) == 0 {
		return nil, errors.New("token: no keys")
	}
	s := &Signer{cfg: cfg, keys: make([][]byte, len(keys))}
	for i, k := range keys {
		if len(k) < MinKeySize {
			return nil, fmt.Errorf("token: key %d has %d bytes, want at least %d", i, len(k), MinKeySize)
		}
		s.keys[i] = append([]byte(nil), k...)
	}
	return s, nil
}

// Mint returns a new instance id (128 bits from crypto/rand, 26 URL-safe
// characters) and a token binding it to owner. Owner must not be empty.
func (s *Signer) Mint(owner string) (id, tok string, err error) {
	id = rand.Text()
	tok, err = s.Sign(id, owner)
	if err != nil {
		return "", "", err
	}
	return id, tok, nil
}

// Sign returns a new token binding id, which the application already holds
// (from Mint or from a verified token), to owner, issued now: re-issuing on
// each page load keeps an open page from expiring. The id must have 1 to
// MaxIDLen bytes and owner must not be empty. Never sign an id a client
// chose: that is the id fixation the token exists to prevent.
func (s *Signer) Sign(id, owner string) (string, error) {
	if id == "" || len(id) > MaxIDLen {
		return "", fmt.Errorf("token: sign: id of %d bytes, want 1 to %d", len(id), MaxIDLen)
	}
	if owner == "" {
		return "", errors.New("token: sign: empty owner")
	}
	b := make([]byte, headerSize, headerSize+len(id)+macSize)
	b[0] = version
	binary.BigEndian.PutUint64(b[1:], uint64(s.cfg.now().Unix()))
	b = append(b, id...)
	b = s.mac(hmac.New(sha256.New, s.keys[0]), b, owner).Sum(b)
	return encoding.EncodeToString(b), nil
}

// Verify returns the id tok carries if one of the Signer's keys signed it,
// for owner and the Signer's purpose, no longer than the maximum age ago
// (and no more than MaxSkew in the future). Otherwise it returns ErrInvalid,
// whatever was wrong; no part of tok is read before its MAC has been
// checked.
func (s *Signer) Verify(tok, owner string) (id string, err error) {
	if len(tok) < minLen || len(tok) > maxLen || owner == "" || !urlSafe(tok) {
		return "", ErrInvalid
	}
	b, err := encoding.DecodeString(tok)
	if err != nil {
		return "", ErrInvalid
	}
	body, sum := b[:len(b)-macSize], b[len(b)-macSize:]
	var want [macSize]byte
	ok := false
	for _, k := range s.keys {
		// Every key is tried, so the time taken does not say which one
		// matched.
		got := s.mac(hmac.New(sha256.New, k), body, owner).Sum(want[:0])
		ok = hmac.Equal(got, sum) || ok
	}
	if !ok {
		return "", ErrInvalid
	}
	// The MAC holds: body is as this Signer (or a node sharing its keys)
	// wrote it.
	if body[0] != version {
		return "", ErrInvalid
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(body[1:headerSize])), 0)
	if age := s.cfg.now().Sub(issued); age > s.cfg.maxAge || age < -MaxSkew {
		return "", ErrInvalid
	}
	return string(body[headerSize:]), nil
}

// mac writes what the MAC covers to h: the label, the purpose, the header,
// the id and the owner, each variable part after its length so that no two
// different inputs run together. body is the token's header and id.
func (s *Signer) mac(h hash.Hash, body []byte, owner string) hash.Hash {
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte(label))
	h.Write(binary.AppendUvarint(n[:0], uint64(len(s.cfg.purpose))))
	h.Write([]byte(s.cfg.purpose))
	h.Write(body[:headerSize])
	h.Write(binary.AppendUvarint(n[:0], uint64(len(body)-headerSize)))
	h.Write(body[headerSize:])
	h.Write(binary.AppendUvarint(n[:0], uint64(len(owner))))
	h.Write([]byte(owner))
	return h
}

// urlSafe reports whether tok holds only the URL-safe base64 alphabet. The
// decoder alone would skip line breaks, letting two strings decode to one
// token.
func urlSafe(tok string) bool {
	for _, c := range []byte(tok) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
