package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/livectx/livectx/store"
)

// maxGroup bounds the writes one transaction carries.
const maxGroup = 1000

// pendingWrite is a write waiting for a transaction.
type pendingWrite struct {
	fn   func(*bbolt.Tx) error
	err  error
	done chan struct{} // closed once err is final
}

// view runs fn in a read transaction; a fault or panic on a damaged file
// becomes an error.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	return guard(func() error { return s.db.View(fn) })
}

// write runs fn in a write transaction with the time of the write, shared
// with the writes of other goroutines (see commit).
func (s *Store) write(ctx context.Context, fn func(tx *bbolt.Tx, now int64) error) error {
	if s.readOnly {
		return ErrReadOnly
	}
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	now := s.cfg.Now().UnixNano()
	return s.commit(func(tx *bbolt.Tx) error { return fn(tx, now) })
}

// commit runs fn in a write transaction and returns once that is durable.
// It is a group commit: a write that finds no commit in progress takes every
// queued write (its own included) into one transaction, so while one fsync
// runs, the writes that arrive queue up and share the next. A lone writer
// commits at once (bbolt's DB.Batch would wait out its delay first).
//
// fn may run more than once (when another write in its transaction fails
// the transaction is retried without it), so it must recompute everything
// inside the transaction and keep its results in variables each run
// overwrites.
func (s *Store) commit(fn func(*bbolt.Tx) error) error {
	p := &pendingWrite{fn: fn, done: make(chan struct{})}
	s.queueMu.Lock()
	s.queue = append(s.queue, p)
	s.queueMu.Unlock()
	for {
		select {
		case <-p.done:
			return p.err
		case s.committing <- struct{}{}:
		}
		select {
		case <-p.done: // a leader took it while we waited
		default:
			s.runGroup(s.takeGroup())
		}
		<-s.committing
	}
}

// takeGroup takes up to maxGroup writes from the queue.
func (s *Store) takeGroup() []*pendingWrite {
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	n := min(len(s.queue), maxGroup)
	group := s.queue[:n:n]
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = nil // let the done writes go
	}
	return group
}

// runGroup commits group in one transaction and sets each write's error. A
// write that fails after it may have written rolls the transaction back; it
// gets its error and the others are retried without it. The store's own
// refusals (a conflict, a missing record...) come before any write, so
// they fail their write alone.
func (s *Store) runGroup(group []*pendingWrite) {
	for len(group) > 0 {
		failed := -1
		err := guard(func() error {
			return s.db.Update(func(tx *bbolt.Tx) error {
				for i, p := range group {
					p.err = guard(func() error { return p.fn(tx) })
					if p.err != nil && !isRefusal(p.err) {
						failed = i
						return p.err
					}
				}
				return nil
			})
		})
		if failed >= 0 {
			close(group[failed].done)
			group = append(group[:failed:failed], group[failed+1:]...)
			continue
		}
		for _, p := range group {
			if err != nil {
				p.err = err
			}
			close(p.done)
		}
		return
	}
}

// isRefusal reports the errors that write functions return before their
// first write.
func isRefusal(err error) bool {
	for _, target := range []error{store.ErrConflict, store.ErrTooLarge, store.ErrNotFound} {
		if errors.Is(err, target) {
			return true
		}
	}
	// Unreadable metadata, not a panic that guard caught mid-write.
	var corrupt *store.CorruptError
	return errors.As(err, &corrupt)
}

// openDB opens the file, turning a lock timeout into a clear error and a
// fault or panic on a damaged file into an error.
func openDB(path string, opts *bbolt.Options) (db *bbolt.DB, err error) {
	err = guard(func() error {
		var err error
		db, err = bbolt.Open(path, 0o600, opts)
		return err
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("boltstore: open %q: the file is locked by another process (waited %v): %w", path, opts.Timeout, err)
	case err != nil:
		if db != nil {
			db.Close()
		}
		return nil, fmt.Errorf("boltstore: open %q: %w", path, err)
	}
	if err := checkSize(db, path); err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %q: %w", path, err)
	}
	return db, nil
}

// checkSize fails when the file is shorter than its pages: bbolt maps pages
// past the end of a truncated file without complaint, and reading them would
// fault.
func checkSize(db *bbolt.DB, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return db.View(func(tx *bbolt.Tx) error {
		if tx.Size() > info.Size() {
			return fmt.Errorf("file is truncated: %d bytes, its pages need %d", info.Size(), tx.Size())
		}
		return nil
	})
}

// guard runs fn, turning a panic or a memory fault (bbolt reading a damaged
// file through its memory map) into an error. Faults turn into panics only
// in the goroutine that asked, so every goroutine that reads the file runs
// under guard.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: bbolt failed reading the file: %v", store.ErrCorrupt, p)
		}
	}()
	return fn()
}
