package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/livectx/livectx/store"
)

// The on-disk layout (see the package comment): the store's top-level
// bucket holds these two.
var (
	recordsBucket = []byte("records")
	expiryBucket  = []byte("expiry")
)

// createBuckets creates the store's buckets where they are missing.
func createBuckets(tx *bbolt.Tx, name []byte) error {
	b, err := tx.CreateBucketIfNotExists(name)
	if err != nil {
		return err
	}
	if _, err := b.CreateBucketIfNotExists(recordsBucket); err != nil {
		return err
	}
	_, err = b.CreateBucketIfNotExists(expiryBucket)
	return err
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
