package boltstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

// usage is how much of the file the store's data takes.
type usage struct {
	keys      int // keys in the store's two nested buckets
	inuse     int // bytes the bucket's pages hold
	livePages int // pages of the file neither free nor pending
}

func measure(t testing.TB, s *Store) usage {
	t.Helper()
	var u usage
	err := s.db.View(func(tx *bbolt.Tx) error {
		st := tx.Bucket(s.bucket).Stats()
		u.keys, u.inuse = st.KeyN-2, st.BranchInuse+st.LeafInuse // less the two nested buckets
		dbs := s.db.Stats()
		u.livePages = int(tx.Size())/s.db.Info().PageSize - dbs.FreePageN - dbs.PendingPageN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// bulkApply writes n records named prefix-i at the clock's time, ten
// thousand per transaction: the Apply path without an fsync per record.
func bulkApply(t testing.TB, s *Store, prefix string, n int, c store.Change) {
	t.Helper()
	for start := 0; start < n; start += 10_000 {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			now := s.cfg.Now().UnixNano()
			for i := start; i < min(n, start+10_000); i++ {
				if _, err := s.applyTx(tx, fmt.Sprintf("%s-%d", prefix, i), c, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func commits(t testing.TB, db *bbolt.DB) int {
	t.Helper()
	var id int
	if err := db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSweepRemovesAHundredThousandExpiredRecords(t *testing.T) {
	const n = 100_000
	clock := storetest.NewClock()
	s := open(t, store.WithTTL(time.Minute), store.WithClock(clock.Now))
	ctx := context.Background()
	if _, err := s.Apply(ctx, "survivor", store.Change{Set: map[string][]byte{"a": []byte("A")}}); err != nil {
		t.Fatal(err)
	}
	empty := measure(t, s)

	bulkApply(t, s, "short", n, store.Change{Set: map[string][]byte{"f": make([]byte, 100)}})
	full := measure(t, s)
	if full.keys != empty.keys+3*n { // metadata, field and expiry entry
		t.Fatalf("%d keys after writing %d records, want %d", full.keys, n, empty.keys+3*n)
	}

	clock.Advance(30 * time.Second)
	if err := s.Touch(ctx, "survivor"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(45 * time.Second)
	if _, err := s.Load(ctx, "short-0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired record before the sweep: %v, want ErrNotFound", err)
	}

	before := commits(t, s.db)
	swept, err := s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	txs := commits(t, s.db) - before
	if swept != n {
		t.Fatalf("Sweep deleted %d records, want %d", swept, n)
	}
	if txs < n/sweepBatch {
		t.Fatalf("Sweep used %d transactions for %d records, want at least %d (at most %d records each)", txs, n, n/sweepBatch, sweepBatch)
	}
	after := measure(t, s)
	t.Logf("empty %+v, full %+v, after the sweep %+v, in %d transactions", empty, full, after, txs)
	if after.keys != empty.keys {
		t.Fatalf("%d keys after the sweep, want %d as before the writes", after.keys, empty.keys)
	}
	if after.inuse > empty.inuse+4096 {
		t.Fatalf("the bucket holds %d bytes after the sweep, %d before the writes", after.inuse, empty.inuse)
	}
	// The file keeps its size; what it holds shrinks back (a few pages for
	// the freelist, which now lists the freed pages).
	if after.livePages > empty.livePages+full.livePages/20 {
		t.Fatalf("%d live pages after the sweep, %d before the writes and %d full", after.livePages, empty.livePages, full.livePages)
	}
	if r, err := s.Load(ctx, "survivor"); err != nil || string(r.Fields["a"]) != "A" {
		t.Fatalf("the touched record after the sweep: %q, %v", r.Fields, err)
	}
}

func TestSweepVisitsOnlyWhatHasExpired(t *testing.T) {
	clock := storetest.NewClock()
	s := open(t, store.WithTTL(time.Minute), store.WithClock(clock.Now))
	ctx := context.Background()
	bulkApply(t, s, "old", 10, store.Change{})
	clock.Advance(30 * time.Second)
	bulkApply(t, s, "young", 50_000, store.Change{})
	clock.Advance(45 * time.Second)

	before := s.db.Stats()
	swept, err := s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := s.db.Stats()
	diff := after.Sub(&before)
	if swept != 10 {
		t.Fatalf("Sweep deleted %d records, want the 10 expired", swept)
	}
	// Visiting 50,000 live records would dereference thousands of nodes.
	if nodes := diff.TxStats.GetNodeDeref() + diff.TxStats.GetNodeCount(); nodes > 100 {
		t.Fatalf("sweeping 10 records touched %d nodes", nodes)
	}
	if ids, _, err := s.List(ctx, "", 1); err != nil || len(ids) != 1 {
		t.Fatalf("List after the sweep: %q, %v", ids, err)
	}
}

func TestTheSweeperRunsOnItsOwn(t *testing.T) {
	clock := storetest.NewClock()
	s := open(t, store.WithTTL(time.Minute), store.WithClock(clock.Now), WithSweepInterval(time.Millisecond))
	if _, err := s.Apply(context.Background(), "r", store.Change{}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for measure(t, s).keys != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not remove an expired record within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestApplyAndTouchMoveTheExpiryEntry(t *testing.T) {
	clock := storetest.NewClock()
	s := open(t, store.WithTTL(time.Minute), store.WithClock(clock.Now))
	ctx := context.Background()
	calls := []func() error{
		func() error { _, err := s.Apply(ctx, "r", store.Change{}); return err },
		func() error { _, err := s.Apply(ctx, "r", store.Change{Set: map[string][]byte{"a": nil}}); return err },
		func() error { return s.Touch(ctx, "r") },
	}
	for i, call := range calls {
		clock.Advance(time.Second)
		if err := call(); err != nil {
			t.Fatal(err)
		}
		var entries int
		err := s.db.View(func(tx *bbolt.Tx) error {
			_, idx := s.buckets(tx)
			entries = idx.Stats().KeyN
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if entries != 1 {
			t.Fatalf("after call %d: %d expiry entries for one record", i, entries)
		}
	}
	if err := s.Delete(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if u := measure(t, s); u.keys != 0 {
		t.Fatalf("%d keys left after Delete", u.keys)
	}
}

func TestTouchWithoutATTLWritesOnlyToClearAnOldExpiry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctx.db")
	clock := storetest.NewClock()
	ctx := context.Background()
	s, err := Open(path, store.WithTTL(time.Minute), store.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "old", store.Change{}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openAt(t, path, store.WithClock(clock.Now))
	if _, err := s.Apply(ctx, "new", store.Change{}); err != nil {
		t.Fatal(err)
	}
	before := commits(t, s.db)
	if err := s.Touch(ctx, "new"); err != nil {
		t.Fatal(err)
	}
	if n := commits(t, s.db) - before; n != 0 {
		t.Fatalf("Touch without a TTL committed %d transactions", n)
	}
	if err := s.Touch(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := s.Load(ctx, "old"); err != nil {
		t.Fatalf("a record touched without a TTL still expired: %v", err)
	}
	if err := s.Touch(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Touch of a missing record: %v", err)
	}
}
