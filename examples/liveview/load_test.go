package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livectx/livectx/store"
)

// BenchmarkLoad is the load test: 1,000 Go websocket clients on one node,
// each joining its own page and sending 100 click events one after the
// other, all clients at once. Every client must end with count 100 and the
// store must hold 100 for every page. It reports events/s and the p50 and
// p99 time from sending an event to holding its diff, on each store, beside
// the same server on a bare map (a store with no copies, caps or expiry: the
// cost the store adds). With -short: 100 clients, 20 clicks.
//
//	go test -run '^$' -bench Load -benchtime 1x                # memory, bolt, bare map
//	LIVECTX_REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench Load -benchtime 1x
func BenchmarkLoad(b *testing.B) {
	clients, clicks := 1000, 100
	if testing.Short() {
		clients, clicks = 100, 20
	}
	stores := map[string]func(b *testing.B) store.ContextStore{
		"bare-map": func(*testing.B) store.ContextStore { return newBareMap() },
		"memory":   func(b *testing.B) store.ContextStore { return newMemory(b) },
		"bolt": func(b *testing.B) store.ContextStore {
			return openStore(b, "bolt://"+filepath.Join(b.TempDir(), "load.db"))
		},
	}
	if a := os.Getenv("LIVECTX_REDIS_ADDR"); a != "" {
		stores["redis"] = func(b *testing.B) store.ContextStore {
			prefix := fmt.Sprintf("livectx-liveview-load-%d:", os.Getpid())
			return openStore(b, "redis://"+a+"/0?ttl=10m&prefix="+prefix)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(stores)) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				st := stores[name](b)
				base := startServer(b, st, "load")
				cs := make([]*client, clients)
				pages := make([]page, clients)
				var wg sync.WaitGroup
				for i := range cs {
					wg.Go(func() {
						pages[i] = loadPage(b, base, nil)
						cs[i] = dial(b, pages[i])
						cs[i].join(pages[i], 0)
					})
				}
				wg.Wait()
				lat := make([][]time.Duration, clients)
				b.StartTimer()
				start := time.Now()
				for i, c := range cs {
					wg.Go(func() {
						lat[i] = make([]time.Duration, 0, clicks)
						for range clicks {
							t0 := time.Now()
							c.click("inc")
							lat[i] = append(lat[i], time.Since(t0))
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()

				for i, c := range cs {
					if got := c.text("count"); got != fmt.Sprint(clicks) {
						b.Fatalf("client %d ends with count %s, want %d", i, got, clicks)
					}
					if n := storedCount(b, st, pages[i]); n != clicks {
						b.Fatalf("the store holds count %d for client %d, want %d", n, i, clicks)
					}
				}
				all := slices.Concat(lat...)
				slices.Sort(all)
				pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / float64(time.Millisecond) }
				b.ReportMetric(float64(len(all))/elapsed.Seconds(), "events/s")
				b.ReportMetric(pct(0.50), "p50-ms")
				b.ReportMetric(pct(0.99), "p99-ms")
				b.ReportMetric(0, "ns/op") // one op is the whole run; events/s says it
				b.Logf("load (%s): %d clients x %d clicks = %d events in %v: %.0f events/s, event-to-diff p50 %.2f ms, p99 %.2f ms; every client and record ends at %d",
					name, clients, clicks, len(all), elapsed.Round(time.Millisecond), float64(len(all))/elapsed.Seconds(), pct(0.5), pct(0.99), clicks)
				for _, c := range cs {
					c.ws.CloseNow()
				}
				b.StartTimer()
			}
		})
	}
}

// bareMap is a store that is only a map under a lock: it checks versions
// (sockets need that) and nothing else, copies nothing, caps nothing and
// never expires a record.
type bareMap struct {
	mu   sync.Mutex
	recs map[string]store.Record
}

func newBareMap() *bareMap { return &bareMap{recs: make(map[string]store.Record)} }

func (m *bareMap) Load(_ context.Context, id string) (store.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[id]
	if !ok {
		return store.Record{}, store.ErrNotFound
	}
	return store.Record{Fields: maps.Clone(r.Fields), Version: r.Version}, nil
}

func (m *bareMap) Apply(_ context.Context, id string, c store.Change) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[id]
	if c.CheckVersion && r.Version != c.IfVersion {
		return 0, store.ErrConflict
	}
	if !ok || c.Replace {
		r.Fields = make(map[string][]byte, len(c.Set))
	}
	for k, v := range c.Set {
		r.Fields[k] = v
	}
	for _, k := range c.Delete {
		delete(r.Fields, k)
	}
	r.Version++
	m.recs[id] = r
	return r.Version, nil
}

func (m *bareMap) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, id)
	return nil
}

func (m *bareMap) Touch(context.Context, string) error { return nil }
func (m *bareMap) Close() error                        { return nil }
