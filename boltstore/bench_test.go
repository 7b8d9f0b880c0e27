package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

// The benchmarks run the store beside raw bbolt doing the same writes with
// the same durability (an fsync per commit), so that benchstat can compare
// them column by column:
//
//	go test -run '^$' -bench . -count 6 ./boltstore > bench.txt
//	benchstat -col /impl bench.txt

const (
	benchFields    = 20
	benchFieldSize = 1 << 10
)

func benchFieldName(i int) string { return fmt.Sprintf("field-%02d", i) }

// rawDB is bbolt used directly: one bucket, a key per field (the record's
// key prefix, then the field name), no metadata, no expiry.
type rawDB struct {
	db     *bbolt.DB
	bucket []byte
}

func openRaw(b *testing.B) *rawDB {
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	r := &rawDB{db: db, bucket: []byte("raw")}
	err = db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(r.bucket); return err })
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func (r *rawDB) put(tx *bbolt.Tx, id, field string, v []byte) error {
	return tx.Bucket(r.bucket).Put(fieldKey(recordPrefix(id), field), v)
}

func (r *rawDB) load(id string) (map[string][]byte, error) {
	fields := map[string][]byte{}
	err := r.db.View(func(tx *bbolt.Tx) error {
		pfx := recordPrefix(id)
		c := tx.Bucket(r.bucket).Cursor()
		for k, v := c.Seek(pfx); bytes.HasPrefix(k, pfx); k, v = c.Next() {
			fields[string(k[len(pfx):])] = bytes.Clone(v)
		}
		return nil
	})
	return fields, err
}

func openBench(b *testing.B, opts ...Option) *Store {
	s, err := Open(filepath.Join(b.TempDir(), "store.db"), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchRecord returns n fields of 1 KiB.
func benchRecord(n int) map[string][]byte {
	fields := map[string][]byte{}
	for i := range n {
		fields[benchFieldName(i)] = bytes.Repeat([]byte{byte(i)}, benchFieldSize)
	}
	return fields
}

// BenchmarkApply writes one 1 KiB field per operation, each goroutine to its
// own record, which holds 1 or 20 such fields (the write cycles through
// them), and reports commits (each two fdatasyncs: pages, then meta page)
// per operation.
func BenchmarkApply(b *testing.B) {
	for _, shape := range []struct{ goroutines, fields int }{{1, 1}, {1, 20}, {32, 1}, {32, 20}} {
		goroutines, fields := shape.goroutines, shape.fields
		impls := []struct {
			name  string
			setup func(b *testing.B) (db *bbolt.DB, write func(id, field string, v []byte) error)
		}{
			{"store", func(b *testing.B) (*bbolt.DB, func(string, string, []byte) error) {
				s := openBench(b)
				return s.db, func(id, field string, v []byte) error {
					_, err := s.Apply(context.Background(), id, store.Change{Set: map[string][]byte{field: v}})
					return err
				}
			}},
			{"raw-update", func(b *testing.B) (*bbolt.DB, func(string, string, []byte) error) {
				r := openRaw(b)
				return r.db, func(id, field string, v []byte) error {
					return r.db.Update(func(tx *bbolt.Tx) error { return r.put(tx, id, field, v) })
				}
			}},
			{"raw-batch", func(b *testing.B) (*bbolt.DB, func(string, string, []byte) error) {
				r := openRaw(b)
				return r.db, func(id, field string, v []byte) error {
					return r.db.Batch(func(tx *bbolt.Tx) error { return r.put(tx, id, field, v) })
				}
			}},
		}
		for _, impl := range impls {
			if goroutines == 1 && impl.name == "raw-batch" {
				continue // one goroutine alone in a batch waits out its delay
			}
			b.Run(fmt.Sprintf("goroutines=%d/fields=%d/impl=%s", goroutines, fields, impl.name), func(b *testing.B) {
				db, write := impl.setup(b)
				for g := range goroutines { // each record starts with its fields
					for field, v := range benchRecord(fields) {
						if err := write(fmt.Sprintf("rec-%d", g), field, v); err != nil {
							b.Fatal(err)
						}
					}
				}
				v := bytes.Repeat([]byte("v"), benchFieldSize)
				before := commits(b, db)
				b.ResetTimer()
				if goroutines == 1 {
					for i := range b.N {
						if err := write("rec-0", benchFieldName(i%fields), v); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					var next atomic.Int64
					b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						id := fmt.Sprintf("rec-%d", next.Add(1)-1)
						for i := 0; pb.Next(); i++ {
							if err := write(id, benchFieldName(i%fields), v); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.StopTimer()
				b.ReportMetric(float64(commits(b, db)-before)/float64(b.N), "commits/op")
			})
		}
	}
}

// BenchmarkLoad reads a 20-field record of 1 KiB fields, copying it out.
func BenchmarkLoad(b *testing.B) {
	b.Run("impl=store", func(b *testing.B) {
		s := openBench(b)
		if _, err := s.Apply(context.Background(), "rec", store.Change{Set: benchRecord(benchFields)}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			r, err := s.Load(context.Background(), "rec")
			if err != nil || len(r.Fields) != benchFields {
				b.Fatal(len(r.Fields), err)
			}
		}
	})
	b.Run("impl=raw", func(b *testing.B) {
		r := openRaw(b)
		err := r.db.Update(func(tx *bbolt.Tx) error {
			for k, v := range benchRecord(benchFields) {
				if err := r.put(tx, "rec", k, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			fields, err := r.load("rec")
			if err != nil || len(fields) != benchFields {
				b.Fatal(len(fields), err)
			}
		}
	})
}

// sweepBench is a store of 10,000 live records that never expire, and a
// second store on the same bucket that writes records with a TTL on a fake
// clock, so that a sweep has something to delete at any moment.
func sweepBench(b *testing.B) (live, expiring *Store, clock *storetest.Clock) {
	live = openBench(b)
	bulkApply(b, live, "live", 10_000, store.Change{Set: map[string][]byte{"a": make([]byte, 100), "b": make([]byte, 100)}})
	clock = storetest.NewClock()
	expiring, err := New(live.db, store.WithTTL(time.Minute), store.WithClock(clock.Now))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { expiring.Close() })
	return live, expiring, clock
}

// benchLoads loads live records b.N times and reports the mean latency of
// the loads that ran while counts says so (all of them when counts is nil).
func benchLoads(b *testing.B, s *Store, counts func() bool) {
	ctx := context.Background()
	var sum time.Duration
	var n int
	b.ResetTimer()
	for i := range b.N {
		during := counts == nil || counts()
		start := time.Now()
		if _, err := s.Load(ctx, fmt.Sprintf("live-%d", i%10_000)); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		if during && (counts == nil || counts()) {
			sum += d
			n++
		}
	}
	b.StopTimer()
	if n > 0 {
		b.ReportMetric(float64(sum.Nanoseconds())/float64(n), "ns/load")
	}
	b.ReportMetric(float64(n)/float64(b.N), "counted/op")
}

// BenchmarkLoadIdle and BenchmarkLoadDuringSweep are a pair: the latency of
// Load (metric ns/load) with nothing else running, and of the loads that
// ran while a goroutine was sweeping expired records (bar: at most 2x
// idle). Between sweeps that goroutine writes the next 5,000 records to
// expire; loads during those writes are not counted.
func BenchmarkLoadIdle(b *testing.B) {
	live, _, _ := sweepBench(b)
	benchLoads(b, live, nil)
}

func BenchmarkLoadDuringSweep(b *testing.B) {
	live, expiring, clock := sweepBench(b)
	var sweeping atomic.Bool
	var sweeps atomic.Int64
	churn := func() {
		bulkApply(b, expiring, "short", 5_000, store.Change{Set: map[string][]byte{"a": make([]byte, 100)}})
		clock.Advance(2 * time.Minute)
		sweeping.Store(true)
		n, err := expiring.sweep(context.Background(), true) // as the sweeper does
		sweeping.Store(false)
		if err != nil || n != 5_000 {
			b.Errorf("Sweep: %d, %v", n, err)
		}
		sweeps.Add(1)
	}
	churn() // the first round grows the file; later ones reuse its pages
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				churn()
			}
		}
	})
	benchLoads(b, live, sweeping.Load)
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(sweeps.Load()-1), "sweeps")
}
