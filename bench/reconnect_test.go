package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The mass-reconnect scenario: a node dies and its clients reconnect to the
// others at once, each restoring its context.
const (
	reconnectInstances = 10_000
	reconnectBytes     = 2 << 10
	reconnectClients   = 32 // goroutines mounting at the same time
)

// BenchmarkReconnect mounts reconnectInstances contexts of reconnectBytes,
// each stored under an id of its own, from reconnectClients goroutines at
// once; one op mounts them all. Names: Reconnect/<backend>/<contender>. It
// reports mounts/s, the op's mounts divided by its wall time. Seeding the
// contexts is not timed.
func BenchmarkReconnect(b *testing.B) {
	c := newCtx(reconnectBytes)
	ids := make([]string, reconnectInstances)
	for i := range ids {
		ids[i] = fmt.Sprint("instance-", i)
	}
	for _, ct := range contenders() {
		b.Run(ct.backend+"/"+ct.name, func(b *testing.B) {
			r := ct.new(b)
			ctx := context.Background()
			if err := seedAll(ctx, r, ids, c); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if err := mountAll(ctx, r, ids); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(ids))/elapsed.Seconds(), "mounts/s")
		})
	}
}

// seedAll stores c under every id, from reconnectClients goroutines.
func seedAll(ctx context.Context, r runner, ids []string, c Ctx) error {
	return fanOut(ids, func(id string) error { return r.seed(ctx, id, c) })
}

// mountAll mounts every id once, from reconnectClients goroutines.
func mountAll(ctx context.Context, r runner, ids []string) error {
	return fanOut(ids, func(id string) error {
		_, err := r.mount(ctx, id)
		return err
	})
}

// fanOut calls f on every id from reconnectClients goroutines, each taking
// the next id not yet taken, and returns the first error.
func fanOut(ids []string, f func(id string) error) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range reconnectClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) {
					return
				}
				if err := f(ids[i]); err != nil {
					errOnce.Do(func() { first = fmt.Errorf("%s: %w", ids[i], err) })
					next.Store(int64(len(ids))) // stop the others early
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// TestReconnectMountsEveryContext checks, on a few hundred instances, that
// fanOut's mounts restore every seeded context on every contender, so the
// benchmark measures mounts that really happen.
func TestReconnectMountsEveryContext(t *testing.T) {
	c := newCtx(reconnectBytes)
	ids := make([]string, 300)
	for i := range ids {
		ids[i] = fmt.Sprint("instance-", i)
	}
	for _, ct := range contenders() {
		t.Run(ct.backend+" "+ct.name+" restores every reconnecting instance", func(t *testing.T) {
			ctx := context.Background()
			r := ct.new(t)
			if err := seedAll(ctx, r, ids, c); err != nil {
				t.Fatal(err)
			}
			var mounted atomic.Int64
			err := fanOut(ids, func(id string) error {
				s, err := r.mount(ctx, id)
				if err != nil {
					return err
				}
				if got := s.context(); got.Count != c.Count || len(got.Links) != len(c.Links) {
					return fmt.Errorf("restored count %d and %d links, want %d and %d", got.Count, len(got.Links), c.Count, len(c.Links))
				}
				mounted.Add(1)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n := mounted.Load(); n != int64(len(ids)) {
				t.Errorf("mounted %d instances, want %d", n, len(ids))
			}
		})
	}
}
