package bench

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/socket"
)

// idleInstances and idleBytes are the idle-memory scenario: this many
// instances of a context of this many bytes.
const (
	idleInstances = 10_000
	idleBytes     = 2 << 10
)

// idleHolder fills a store with idleInstances copies of c and returns what
// keeps them alive and the payload of one instance: the bytes its store
// entry must hold at the least.
type idleHolder func(tb testing.TB, c Ctx) (keep any, payload int)

func idleHolders() []struct {
	name string
	fill idleHolder
} {
	return []struct {
		name string
		fill idleHolder
	}{
		// The memory store alone: the instances' sockets are closed (with
		// KeepOnClose), as when their LiveViews are disconnected.
		{"livectx-store", func(tb testing.TB, c Ctx) (any, int) {
			st := memory.New()
			tb.Cleanup(func() { st.Close() })
			m := socket.NewManager[Ctx](socket.WithStore(st), socket.KeepOnClose())
			ctx := context.Background()
			for i := range idleInstances {
				s, err := create(ctx, m, fmt.Sprint("instance-", i), c)
				if err != nil {
					tb.Fatal(err)
				}
				s.Close(ctx)
			}
			rec, err := st.Load(ctx, "instance-0")
			if err != nil {
				tb.Fatal(err)
			}
			return st, rec.Size()
		}},
		// The memory store and every instance's open socket (its decoded
		// context and the encodings it compares against).
		{"livectx-store+sockets", func(tb testing.TB, c Ctx) (any, int) {
			st := memory.New()
			tb.Cleanup(func() { st.Close() })
			m := socket.NewManager[Ctx](socket.WithStore(st))
			ctx := context.Background()
			socks := make([]*socket.Socket[Ctx], idleInstances)
			for i := range socks {
				s, err := create(ctx, m, fmt.Sprint("instance-", i), c)
				if err != nil {
					tb.Fatal(err)
				}
				socks[i] = s
			}
			rec, err := st.Load(ctx, "instance-0")
			if err != nil {
				tb.Fatal(err)
			}
			return []any{st, socks}, rec.Size()
		}},
		// The same after a reconnect: every socket restored its context
		// from the store, whose strings share the bytes the memory store
		// lends (store.SharedLoader) rather than the initial value the
		// sockets above were opened with.
		{"livectx-store+restored-sockets", func(tb testing.TB, c Ctx) (any, int) {
			st := memory.New()
			tb.Cleanup(func() { st.Close() })
			m := socket.NewManager[Ctx](socket.WithStore(st), socket.KeepOnClose())
			ctx := context.Background()
			socks := make([]*socket.Socket[Ctx], idleInstances)
			for i := range socks {
				id := fmt.Sprint("instance-", i)
				s, err := create(ctx, m, id, c)
				if err != nil {
					tb.Fatal(err)
				}
				s.Close(ctx)
				if socks[i], err = m.Open(ctx, id, Ctx{}); err != nil {
					tb.Fatal(err)
				}
				if !socks[i].Restored() {
					tb.Fatalf("%s was not restored", id)
				}
			}
			rec, err := st.Load(ctx, "instance-0")
			if err != nil {
				tb.Fatal(err)
			}
			return []any{st, socks}, rec.Size()
		}},
		{"scs-memstore", func(tb testing.TB, c Ctx) (any, int) {
			st := scsMemory{newMemstore(tb)}
			return st, fillBlobs(tb, st, c)
		}},
		{"map", func(tb testing.TB, c Ctx) (any, int) {
			st := &plainMap{m: map[string][]byte{}}
			return st, fillBlobs(tb, st, c)
		}},
		// What a LiveView server on a blob store holds for its open
		// instances: each one's encoded value in a map, and its decoded
		// context.
		{"map+contexts", func(tb testing.TB, c Ctx) (any, int) {
			st := &plainMap{m: map[string][]byte{}}
			n := fillBlobs(tb, st, c)
			ctxs := make([]Ctx, idleInstances)
			for i := range ctxs {
				b, err := st.get(context.Background(), fmt.Sprint("instance-", i))
				if err != nil {
					tb.Fatal(err)
				}
				if err := msgpack.Unmarshal(b, &ctxs[i]); err != nil {
					tb.Fatal(err)
				}
			}
			return []any{st, ctxs}, n
		}},
	}
}

func fillBlobs(tb testing.TB, st blobs, c Ctx) int {
	n := 0
	for i := range idleInstances {
		b, err := msgpack.Marshal(&c)
		if err != nil {
			tb.Fatal(err)
		}
		if err := st.put(context.Background(), fmt.Sprint("instance-", i), b); err != nil {
			tb.Fatal(err)
		}
		n = len(b)
	}
	return n
}

// BenchmarkIdleMemory measures the heap that 10,000 idle instances of a
// 2 KiB context hold, per instance (run it with -benchtime=1x). It reports
// heap-B/instance (live heap after GC, beyond what was live before),
// payload-B/instance (the bytes the store must hold: field names and values
// for livectx, the encoded value for the peers) and overhead-B/instance
// (their difference). The bar for the memory store alone is an overhead of
// at most 512 bytes beyond 0.2 times the payload.
func BenchmarkIdleMemory(b *testing.B) {
	c := newCtx(idleBytes)
	for _, h := range idleHolders() {
		b.Run(h.name, func(b *testing.B) {
			var perInstance, payload float64
			for range b.N {
				before := liveHeap()
				keep, p := h.fill(b, c)
				after := liveHeap()
				runtime.KeepAlive(keep)
				perInstance = float64(int64(after)-int64(before)) / idleInstances
				payload = float64(p)
			}
			b.ReportMetric(perInstance, "heap-B/instance")
			b.ReportMetric(payload, "payload-B/instance")
			b.ReportMetric(perInstance-payload, "overhead-B/instance")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
