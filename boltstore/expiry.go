package boltstore

import (
	"bytes"
	"context"
	"time"

	"go.etcd.io/bbolt"
)

// sweepBatch bounds the records one sweep transaction deletes.
const sweepBatch = 1000

func (s *Store) sweepLoop(interval time.Duration) {
	defer s.done.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			// An error (a full disk, say) leaves the records expired but
			// invisible; the next tick tries again.
			_, _ = s.sweep(context.Background(), true)
		}
	}
}

// sweep is Sweep. When gentle, it pauses after each transaction as long as
// that took, so that the background sweeper takes at most half of the
// writer's time and of a core from the calls it runs beside.
func (s *Store) sweep(ctx context.Context, gentle bool) (int, error) {
	if s.readOnly {
		return 0, ErrReadOnly
	}
	total := 0
	for {
		start := time.Now()
		n, more, err := s.sweepOnce(ctx)
		total += n
		if err != nil || !more {
			return total, err
		}
		if gentle {
			s.pause(ctx, time.Since(start))
		}
	}
}

// sweepOnce runs one sweep transaction.
func (s *Store) sweepOnce(ctx context.Context) (deleted int, more bool, err error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, false, err
	}
	defer leave()
	now := s.cfg.Now().UnixNano()
	err = guard(func() error {
		return s.db.Update(func(tx *bbolt.Tx) (err error) {
			deleted, more, err = s.sweepTx(tx, now)
			return err
		})
	})
	return deleted, more, err
}

// pause waits for d, or less if the store closes or ctx is done.
func (s *Store) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.stop:
	case <-ctx.Done():
	case <-t.C:
	}
}

// sweepTx deletes up to sweepBatch records that expired by now, walking the
// expiry index from its oldest entry, and reports whether more are due.
func (s *Store) sweepTx(tx *bbolt.Tx, now int64) (deleted int, more bool, err error) {
	recs, idx := s.buckets(tx)
	var due [][]byte
	c := idx.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) >= 8 && decodeExpiry(k) > now {
			break
		}
		if len(due) == sweepBatch {
			more = true
			break
		}
		due = append(due, bytes.Clone(k))
	}
	for _, k := range due {
		if len(k) > 8 {
			id := string(k[8:])
			// A corrupt record is left for Load to report.
			if m, found, err := readMeta(recs, id); err == nil && found && m.expires == decodeExpiry(k) {
				if err := dropRecord(recs, idx, id, m); err != nil { // k included
					return deleted, more, err
				}
				deleted++
				continue
			}
		}
		// A stale entry, or not one of ours.
		if err := idx.Delete(k); err != nil {
			return deleted, more, err
		}
	}
	return deleted, more, nil
}
