package boltstore

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/livectx/livectx/store"
)

// Errors of the stores that must find what they open (WithNoCreate,
// WithReadOnly).
var (
	// ErrReadOnly is returned by the writes of a store whose file is open
	// for reading only.
	ErrReadOnly = errors.New("boltstore: the store is read-only")
	// ErrNoBucket is returned by Open and New when the store's bucket is
	// missing and they may not create it. The error wrapping it names the
	// buckets the file holds.
	ErrNoBucket = errors.New("boltstore: no such bucket")
)

// WithNoCreate makes Open and New find the store rather than make it, for
// tools that work on the store an application wrote: Open fails if the file
// is missing (an error matching fs.ErrNotExist) instead of creating it, and
// Open and New fail with ErrNoBucket if the file holds no store under the
// bucket (see WithBucket) instead of creating one. Default: both are created.
func WithNoCreate() Option {
	return store.BackendOption("boltstore.WithNoCreate", func(s *settings) { s.noCreate = true })
}

// WithReadOnly makes a store that never writes, so that a tool can inspect
// a store without changing a byte of its file: it implies WithNoCreate,
// runs no sweeper, and Apply, Delete, Touch and Sweep return ErrReadOnly
// once their arguments pass their checks. Open opens the file read-only,
// under a shared lock (other readers may hold the file too; a process that
// has it open for writing makes Open wait, see WithOpenTimeout). A store
// that New makes on a *bbolt.DB opened read-only is read-only without the
// option.
func WithReadOnly() Option {
	return store.BackendOption("boltstore.WithReadOnly", func(s *settings) { s.readOnly = true })
}

// isReadOnly reports whether the store on db must not write.
func isReadOnly(db *bbolt.DB, set settings) bool {
	return db.IsReadOnly() || set.readOnly
}

// boltOptions are the options Open gives bbolt.
func boltOptions(set settings) *bbolt.Options {
	o := &bbolt.Options{Timeout: set.openTimeout, ReadOnly: set.readOnly}
	if set.noCreate {
		o.OpenFile = func(path string, flag int, mode os.FileMode) (*os.File, error) {
			return os.OpenFile(path, flag&^os.O_CREATE, mode)
		}
	}
	return o
}

// openBucket creates the store's buckets, or unless create (WithNoCreate, a
// read-only file) checks that they are there.
func (s *Store) openBucket(create bool) error {
	if create {
		err := guard(func() error {
			return s.db.Update(func(tx *bbolt.Tx) error { return createBuckets(tx, s.bucket) })
		})
		if err != nil {
			return fmt.Errorf("boltstore: create bucket %q: %w", s.bucket, err)
		}
		return nil
	}
	return guard(func() error {
		return s.db.View(func(tx *bbolt.Tx) error {
			b := tx.Bucket(s.bucket)
			if b != nil && b.Bucket(recordsBucket) != nil && b.Bucket(expiryBucket) != nil {
				return nil
			}
			var held []string
			err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				held = append(held, strconv.Quote(string(name)))
				return nil
			})
			if err != nil {
				return err
			}
			switch {
			case b != nil:
				return fmt.Errorf("boltstore: bucket %q holds no livectx store: %w", s.bucket, ErrNoBucket)
			case len(held) == 0:
				return fmt.Errorf("boltstore: bucket %q: %w; the file holds no bucket", s.bucket, ErrNoBucket)
			}
			return fmt.Errorf("boltstore: bucket %q: %w; the file holds %s (choose one WithBucket)",
				s.bucket, ErrNoBucket, strings.Join(held, ", "))
		})
	})
}
