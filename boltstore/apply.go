package boltstore

import (
	"bytes"
	"errors"

	"go.etcd.io/bbolt"

	"github.com/livectx/livectx/store"
)

// The write transactions of Apply, Delete and Touch. Each reads before it
// writes and returns its refusals (see isRefusal) before its first write, so
// a refused write leaves the transaction as it found it.

// applyTx is Apply inside a transaction.
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
		return 0, store.VersionConflict(m.version, c.IfVersion)
	}
	pfx := recordPrefix(id)
	size := store.SizeAfter(int(m.size), c, func(name string) (int, bool) {
		v := recs.Get(fieldKey(pfx, name))
		return len(v), v != nil
	})
	if size < 0 {
		return 0, &store.CorruptError{ID: id, Err: errors.New("boltstore: stored size is smaller than the fields")}
	}
	if err := s.cfg.CheckRecordSize(size); err != nil {
		return 0, err
	}
	if err := writeFields(recs, pfx, c, found); err != nil {
		return 0, err
	}
	version := m.version + 1
	if err := s.putMeta(recs, idx, id, m, version, uint64(size), now); err != nil {
		return 0, err
	}
	return version, nil
}

// writeFields writes c's fields under pfx; found says whether a record is
// stored there, whose fields a Replace removes.
func writeFields(recs *bbolt.Bucket, pfx []byte, c store.Change, found bool) error {
	if c.Replace && found {
		if err := deleteFields(recs, pfx, c.Set); err != nil {
			return err
		}
	}
	for _, name := range c.Delete {
		if err := recs.Delete(fieldKey(pfx, name)); err != nil {
			return err
		}
	}
	for name, v := range c.Set {
		if v == nil {
			v = []byte{}
		}
		if err := recs.Put(fieldKey(pfx, name), v); err != nil {
			return err
		}
	}
	return nil
}

// deleteTx is Delete inside a transaction.
func (s *Store) deleteTx(tx *bbolt.Tx, id string) error {
	recs, idx := s.buckets(tx)
	// Unreadable metadata is dropped too; its expiry entry, if any, is left
	// for the sweeper, which skips stale entries.
	m, found, err := readMeta(recs, id)
	if !found && err == nil {
		return nil
	}
	return dropRecord(recs, idx, id, m)
}

// touchTx is Touch inside a transaction.
func (s *Store) touchTx(tx *bbolt.Tx, id string, now int64) error {
	recs, idx := s.buckets(tx)
	m, found, err := readMeta(recs, id)
	if err != nil {
		return err
	}
	if !found || m.expiredAt(now) {
		return store.ErrNotFound
	}
	return s.putMeta(recs, idx, id, m, m.version, m.size, now)
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
