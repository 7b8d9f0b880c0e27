package livectx_test

// Load without loss: many sockets driven by random events from several
// goroutines, checked against a plain in-memory model after every cycle;
// two nodes racing on the same ids; and growth (abandoned instances expire
// and their space is given back). The full sizes run with LIVECTX_LONG=1.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/internal/testbackends"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

// long reports whether the full-size variants run (LIVECTX_LONG=1).
func long() bool { return os.Getenv("LIVECTX_LONG") == "1" }

// loadCtx is the context the load tests drive.
type loadCtx struct {
	Count int            `msgpack:"count"`
	Items []string       `msgpack:"items"`
	Tags  map[string]int `msgpack:"tags"`
	Flash string         `msgpack:"flash"`
}

var (
	lCount = socket.FieldOf(func(c *loadCtx) *int { return &c.Count })
	lItems = socket.FieldOf(func(c *loadCtx) *[]string { return &c.Items })
	lTags  = socket.FieldOf(func(c *loadCtx) *map[string]int { return &c.Tags })
	lFlash = socket.FieldOf(func(c *loadCtx) *string { return &c.Flash })
)

// encodeLoad returns the stored fields of c, as a socket writes them.
func encodeLoad(t testing.TB, c loadCtx) map[string][]byte {
	out := map[string][]byte{}
	for name, v := range map[string]any{"count": c.Count, "items": c.Items, "tags": c.Tags, "flash": c.Flash} {
		b, err := codec.Marshal(v)
		if err != nil {
			t.Errorf("encode %s: %v", name, err)
		}
		out[name] = b
	}
	return out
}

func sameFields(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// loadModel is what one socket and its record must hold.
type loadModel struct {
	ctx        loadCtx // the context after the last cycle
	version    uint64  // the record's version
	flashTemp  bool    // flash is temporary in the current socket
	flashReset string
}

// randomAssign returns a random assignment, and the field it sets, and
// applies it to m's context.
func randomAssign(r *rand.Rand, c *loadCtx) (socket.Assignment, string) {
	switch r.IntN(4) {
	case 0:
		c.Count = r.IntN(4)
		return lCount.Set(c.Count), lCount.Name()
	case 1:
		c.Items = [][]string{nil, {}, {"a"}, {"a", "b"}, {"b", "a", "c"}}[r.IntN(5)]
		return lItems.Set(slices.Clone(c.Items)), lItems.Name()
	case 2:
		c.Tags = []map[string]int{nil, {}, {"x": 1}, {"x": 1, "y": 2}, {"y": 2, "x": 1, "z": 0}}[r.IntN(5)]
		m := map[string]int(nil)
		if c.Tags != nil {
			m = make(map[string]int)
			for k, v := range c.Tags {
				m[k] = v
			}
		}
		return lTags.Set(m), lTags.Name()
	default:
		c.Flash = []string{"", "saved!", "error"}[r.IntN(3)]
		return lFlash.Set(c.Flash), lFlash.Name()
	}
}

// TestLoadMatchesModel drives sockets with random events (assigns, temp
// assigns, renders, reloads, closes and reopens) from 8 goroutines, and
// after every cycle requires the socket's context and the stored record to
// equal a plain model.
func TestLoadMatchesModel(t *testing.T) {
	sockets, events := 48, 30
	if long() {
		sockets, events = 1000, 100
	}
	const workers = 8
	for _, b := range testbackends.All {
		t.Run(fmt.Sprintf("%d sockets, %d events each, on %s", sockets, events, b.Name), func(t *testing.T) {
			s := b.Open(t, nil)
			managers := []*socket.Manager[loadCtx]{
				socket.NewManager[loadCtx](socket.WithStore(s)),
				socket.NewManager[loadCtx](socket.WithStore(s), socket.KeepOnClose()),
			}
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			var cycles atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(seed, uint64(w)))
					var mine []int
					for i := w; i < sockets; i += workers {
						mine = append(mine, i)
					}
					if err := loadWorker(t, r, s, managers, mine, events, &cycles); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			t.Logf("%d cycles checked against the model", cycles.Load())
		})
	}
}

// loadWorker runs events on its sockets in random interleaving and returns
// the first divergence from the model.
func loadWorker(t *testing.T, r *rand.Rand, s store.ContextStore, managers []*socket.Manager[loadCtx], ids []int, events int, cycles *atomic.Int64) error {
	ctx := context.Background()
	initial := loadCtx{Count: 1, Items: []string{"init"}, Flash: ""}
	type live struct {
		id    string
		m     *socket.Manager[loadCtx]
		keep  bool
		sock  *socket.Socket[loadCtx]
		model loadModel
		left  int
	}
	open := func(l *live) error {
		sock, err := l.m.Open(ctx, l.id, initial)
		if err != nil {
			return fmt.Errorf("open %s: %w", l.id, err)
		}
		l.sock = sock
		l.model.flashTemp = false
		if !sock.Restored() {
			l.model.ctx = initial
		}
		l.model.version = sock.Version() // 0: no record yet
		return nil
	}
	// check compares the socket and the stored record with the model.
	check := func(l *live, what string) error {
		cycles.Add(1)
		want := encodeLoad(t, l.model.ctx)
		if got := encodeLoad(t, l.sock.Context()); !sameFields(got, want) {
			return fmt.Errorf("%s after %s: socket context %s, model %s", l.id, what, showFields(got), showFields(want))
		}
		rec, err := s.Load(ctx, l.id)
		if l.model.version == 0 { // a page view that wrote nothing
			if !errors.Is(err, store.ErrNotFound) || l.sock.Version() != 0 {
				return fmt.Errorf("%s after %s: load %v, socket version %d; want no record", l.id, what, err, l.sock.Version())
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s after %s: load: %w", l.id, what, err)
		}
		if !sameFields(rec.Fields, want) {
			return fmt.Errorf("%s after %s: stored %s, model %s", l.id, what, showFields(rec.Fields), showFields(want))
		}
		if rec.Version != l.model.version || l.sock.Version() != l.model.version {
			return fmt.Errorf("%s after %s: stored version %d, socket's %d, model %d", l.id, what, rec.Version, l.sock.Version(), l.model.version)
		}
		return nil
	}

	var all []*live
	for _, i := range ids {
		l := &live{id: fmt.Sprintf("load-%d", i), m: managers[i%2], keep: i%2 == 1, left: events}
		if err := open(l); err != nil {
			return err
		}
		if err := check(l, "open"); err != nil {
			return err
		}
		all = append(all, l)
	}
	for len(all) > 0 {
		k := r.IntN(len(all))
		l := all[k]
		if l.left--; l.left == 0 {
			all = slices.Delete(all, k, k+1)
		}
		var what string
		switch n := r.IntN(20); {
		case n < 12: // an event: assigns, maybe a temp assign, then a render
			what = "an event"
			next := l.model.ctx
			var as, temps []socket.Assignment
			var names []string
			for range 1 + r.IntN(3) {
				a, name := randomAssign(r, &next)
				as, names = append(as, a), append(names, name)
			}
			if r.IntN(6) == 0 {
				v := []string{"", "flash!"}[r.IntN(2)]
				temps = append(temps, lFlash.Set(v))
				next.Flash = v
				l.model.flashTemp, l.model.flashReset = true, v
				what = "an event with a temp assign"
			}
			// A record is created by the first write of a field that is
			// not temporary.
			lasting := slices.ContainsFunc(names, func(n string) bool { return n != "flash" || !l.model.flashTemp })
			seen := next
			after := next
			if l.model.flashTemp {
				after.Flash = l.model.flashReset
			}
			var renderErr error
			err := l.sock.Event(ctx, func() error {
				if err := l.sock.Assign(as...); err != nil {
					return err
				}
				if len(temps) > 0 {
					return l.sock.TempAssign(temps...)
				}
				return nil
			}, func(c loadCtx, _ socket.Changed) error {
				if got, want := encodeLoad(t, c), encodeLoad(t, seen); !sameFields(got, want) {
					renderErr = fmt.Errorf("%s: the render saw %s, model %s", l.id, showFields(got), showFields(want))
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("%s: %s: %w", l.id, what, err)
			}
			if renderErr != nil {
				return renderErr
			}
			if l.model.version == 0 && lasting || l.model.version != 0 && !sameFields(encodeLoad(t, after), encodeLoad(t, l.model.ctx)) {
				l.model.version++ // a change writes once; no change writes nothing
			}
			l.model.ctx = after
		case n < 15 && l.model.version != 0: // assigns dropped by a reload
			what = "a reload"
			scratch := l.model.ctx
			a, _ := randomAssign(r, &scratch)
			if err := l.sock.Assign(a); err != nil {
				return fmt.Errorf("%s: assign: %w", l.id, err)
			}
			if err := l.sock.Reload(ctx); err != nil {
				return fmt.Errorf("%s: reload: %w", l.id, err)
			}
		default: // a render with nothing assigned
			what = "an empty render"
			if err := l.sock.Render(ctx, nil); err != nil {
				return fmt.Errorf("%s: render: %w", l.id, err)
			}
		case n >= 17: // close, then reopen as a reconnect would
			what = "a close and reopen"
			existed := l.model.version != 0
			if err := l.sock.Close(ctx); err != nil {
				return fmt.Errorf("%s: close: %w", l.id, err)
			}
			if !l.keep {
				if _, err := s.Load(ctx, l.id); !errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("%s: after a close without keep, load: %v; want not found", l.id, err)
				}
			}
			if err := open(l); err != nil {
				return err
			}
			if l.sock.Restored() != (l.keep && existed) {
				return fmt.Errorf("%s: reopened with Restored %v, want %v", l.id, l.sock.Restored(), l.keep && existed)
			}
		}
		if err := check(l, what); err != nil {
			return err
		}
	}
	return nil
}

func showFields(m map[string][]byte) string {
	return fmt.Sprintf("%x", []any{m["count"], m["items"], m["tags"], m["flash"]})
}

// twoCtx is the context two nodes race on: an append-only log, and a
// counter per node.
type twoCtx struct {
	Log []string `msgpack:"log"`
	A   int      `msgpack:"a"`
	B   int      `msgpack:"b"`
}

var (
	twoLog = socket.FieldOf(func(c *twoCtx) *[]string { return &c.Log })
	twoA   = socket.FieldOf(func(c *twoCtx) *int { return &c.A })
	twoB   = socket.FieldOf(func(c *twoCtx) *int { return &c.B })
)

// raceTarget is a server two nodes race on.
type raceTarget struct {
	name string
	// newClient makes one node's client; clients made with a name are the
	// ones killConnections kills.
	newClient func(name string) *redis.Client
	// chaos: kill the nodes' connections while they race.
	chaos bool
}

// twoNodeTargets returns miniredis and, when LIVECTX_REDIS_ADDR is set, a
// real server, twice: once as it is, once killing the nodes' connections
// while they race (only theirs: they carry a client name of their own).
func twoNodeTargets(t *testing.T) []raceTarget {
	mr := miniredis.RunT(t)
	targets := []raceTarget{{"miniredis", func(string) *redis.Client { return redis.NewClient(&redis.Options{Addr: mr.Addr()}) }, false}}
	if addr := os.Getenv(redistest.EnvAddr); addr != "" {
		newClient := func(name string) *redis.Client {
			return redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4, ClientName: name})
		}
		targets = append(targets,
			raceTarget{"a real redis", newClient, false},
			raceTarget{"a real redis, killing connections", newClient, true})
	}
	return targets
}

// TestTwoNodesRace runs two nodes (each its own client, store and sockets)
// on the same ids. Each node appends entries to the ids' logs, reconnecting
// now and then (close, then open again from the store, sometimes on a new
// client); on a real server their connections are also killed under them.
// Every stale write must fail with store.ErrConflict; the node reloads and
// retries. At the end every acknowledged entry is in its log exactly once
// and in order, and nothing unacknowledged is.
func TestTwoNodesRace(t *testing.T) {
	ids, appends := 8, 40
	if long() {
		ids, appends = 64, 200
	}
	for _, target := range twoNodeTargets(t) {
		t.Run("on "+target.name, func(t *testing.T) {
			probe := target.newClient("")
			t.Cleanup(func() { probe.Close() })
			prefix := redistest.Prefix(t, probe)
			victims := "livectx-race-" + strings.Trim(prefix[len("livectx-test:"):], ":")
			ctx := context.Background()

			// node opens a node's store and manager on a new client.
			type node struct {
				name string
				m    *socket.Manager[twoCtx]
			}
			newNode := func(name string) *node {
				c := target.newClient(victims)
				t.Cleanup(func() { c.Close() })
				s, err := redisstore.New(c, redisstore.WithPrefix(prefix), store.WithTTL(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				// EventRetries(0): the test drives the conflicts itself, as
				// the caller of a socket that must not re-run its handler.
				return &node{name, socket.NewManager[twoCtx](socket.WithStore(s), socket.KeepOnClose(), socket.EventRetries(0))}
			}

			t.Run("a stale write conflicts and overwrites nothing", func(t *testing.T) {
				a, b := newNode("A"), newNode("B")
				sa, err := a.m.Open(ctx, "stale", twoCtx{})
				if err != nil {
					t.Fatal(err)
				}
				sb, err := b.m.Open(ctx, "stale", twoCtx{})
				if err != nil {
					t.Fatal(err)
				}
				sa.Assign(twoLog.Set([]string{"A-0"}))
				if err := sa.Render(ctx, nil); err != nil {
					t.Fatal(err)
				}
				sb.Assign(twoLog.Set([]string{"B-0"}))
				if err := sb.Render(ctx, nil); !errors.Is(err, store.ErrConflict) {
					t.Fatalf("the stale node's write: %v, want store.ErrConflict", err)
				}
				if err := sb.Reload(ctx); err != nil {
					t.Fatal(err)
				}
				if got := twoLog.Get(sb); !slices.Equal(got, []string{"A-0"}) {
					t.Fatalf("after reload the stale node sees %q, want [A-0]", got)
				}
			})

			nodes := [2]*node{newNode("A"), newNode("B")}
			var stats raceStats
			// acked[n][i]: the entries node n acknowledged on id i, in order.
			var acked [2][][]string
			var wg sync.WaitGroup
			errs := make(chan error, 2*ids)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			for n := range 2 {
				acked[n] = make([][]string, ids)
				for i := range ids {
					wg.Go(func() {
						r := rand.New(rand.NewPCG(seed, uint64(n*ids+i)))
						err := raceAppends(ctx, r, nodes[n].m, func() *socket.Manager[twoCtx] { return newNode(nodes[n].name).m },
							nodes[n].name, fmt.Sprintf("race-%d", i), appends, &acked[n][i], &stats)
						if err != nil {
							errs <- err
						}
					})
				}
			}
			killed := 0
			stop, stopped := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(stopped)
				if target.chaos {
					killed = killConnections(t, probe, victims, stop)
				}
			}()
			wg.Wait()
			close(stop)
			<-stopped
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}

			check := newNode("check")
			for i := range ids {
				id := fmt.Sprintf("race-%d", i)
				s, err := check.m.Open(ctx, id, twoCtx{})
				if err != nil {
					t.Fatal(err)
				}
				final := s.Context()
				for n, name := range []string{"A", "B"} {
					var mine []string
					for _, e := range final.Log {
						if e[0] == name[0] {
							mine = append(mine, e)
						}
					}
					if !slices.Equal(mine, acked[n][i]) {
						t.Errorf("%s: node %s acknowledged %q, the log holds %q", id, name, acked[n][i], mine)
					}
				}
				if final.A != len(acked[0][i]) || final.B != len(acked[1][i]) {
					t.Errorf("%s: counters A=%d B=%d, acknowledged %d and %d", id, final.A, final.B, len(acked[0][i]), len(acked[1][i]))
				}
			}
			t.Logf("%d ids, %d appends per node and id: %d conflicts reported and retried; %d connections killed, %d calls failed by it, %d of them writes found applied",
				ids, appends, stats.conflicts.Load(), killed, stats.faults.Load(), stats.applied.Load())
			if target.chaos && killed == 0 {
				t.Error("no connection was killed: the chaos did not run")
			}
			if stats.conflicts.Load() == 0 {
				t.Error("the nodes never conflicted: the race was not run")
			}
		})
	}
}

// raceStats counts what the racing nodes met.
type raceStats struct {
	conflicts atomic.Int64 // stale writes refused with store.ErrConflict
	faults    atomic.Int64 // calls failed by a killed connection
	applied   atomic.Int64 // failed writes that Reload found applied
}

// again runs f until it succeeds or fails with store.ErrConflict or
// store.ErrNotFound, counting other failures (a killed connection) as
// faults; it gives up after many.
func (st *raceStats) again(f func() error) error {
	var err error
	for range 100 {
		if err = f(); err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return err
		}
		st.faults.Add(1)
	}
	return err
}

// raceAppends makes node append entries to id's log, each acknowledged by a
// successful render, reloading and retrying after a conflict. It reconnects
// at random (close, then open again, sometimes through a manager on a new
// client). When a write fails otherwise (its connection was killed) it may
// or may not have been applied: the node reloads and finds out, as a real
// client would by the entry's name.
func raceAppends(ctx context.Context, r *rand.Rand, m *socket.Manager[twoCtx], newManager func() *socket.Manager[twoCtx], node, id string, appends int, acked *[]string, st *raceStats) error {
	var s *socket.Socket[twoCtx]
	open := func() (err error) { s, err = m.Open(ctx, id, twoCtx{}); return err }
	if err := st.again(open); err != nil {
		return err
	}
	counter := twoA
	if node == "B" {
		counter = twoB
	}
	for k := 0; k < appends; {
		if r.IntN(10) == 0 { // a reconnect
			if err := st.again(func() error { return s.Close(ctx) }); err != nil {
				return err
			}
			if r.IntN(4) == 0 {
				m = newManager()
			}
			if err := st.again(open); err != nil {
				return err
			}
		}
		entry := fmt.Sprintf("%s-%d", node, k)
		err := s.Event(ctx, func() error {
			return s.Assign(twoLog.Set(append(slices.Clone(twoLog.Get(s)), entry)), counter.Set(counter.Get(s)+1))
		}, nil)
		if err == nil {
			*acked = append(*acked, entry)
			k++
			continue
		}
		if errors.Is(err, store.ErrConflict) {
			st.conflicts.Add(1)
		} else {
			st.faults.Add(1)
		}
		err = st.again(func() error { return s.Reload(ctx) })
		if errors.Is(err, store.ErrNotFound) {
			continue // no node has created the record yet: the entry is not stored
		}
		if err != nil {
			return fmt.Errorf("%s %s: reload: %w", node, id, err)
		}
		if slices.Contains(twoLog.Get(s), entry) {
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("%s %s: the write of %s returned %v, yet the entry is stored", node, id, entry, err)
			}
			*acked = append(*acked, entry) // the failed call did write it
			st.applied.Add(1)
			k++
		}
	}
	return nil
}

// killConnections kills, until stop is closed, the server connections whose
// client name is name (only this test's: the server may be shared).
func killConnections(t *testing.T, c *redis.Client, name string, stop <-chan struct{}) (killed int) {
	ctx := context.Background()
	for {
		select {
		case <-stop:
			return killed
		case <-time.After(3 * time.Millisecond):
		}
		list, err := c.ClientList(ctx).Result()
		if err != nil {
			t.Errorf("CLIENT LIST: %v", err)
			return killed
		}
		var ids []string
		for _, line := range strings.Split(list, "\n") {
			if strings.Contains(line, " name="+name+" ") {
				id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 && c.Do(ctx, "CLIENT", "KILL", "ID", ids[rand.IntN(len(ids))]).Err() == nil {
			killed++
		}
	}
}

// TestGrowthReturnsToBaseline abandons many instances (sockets opened and
// never closed) and requires that they expire by TTL and that the space they
// used is given back, with no goroutine left behind.
func TestGrowthReturnsToBaseline(t *testing.T) {
	n := 500
	if long() {
		n = 100_000
	}
	const ttl = time.Minute
	ctx := context.Background()
	// abandon opens n sockets from the given number of goroutines and
	// drops them.
	abandon := func(t *testing.T, s store.ContextStore, wave, goroutines int) {
		t.Helper()
		m := socket.NewManager[loadCtx](socket.WithStore(s))
		var wg sync.WaitGroup
		var failed atomic.Value
		for w := range goroutines {
			wg.Go(func() {
				for i := w; i < n; i += goroutines {
					// A page view writes nothing: each instance handles one event.
					s, err := m.Open(ctx, fmt.Sprintf("abandoned-%d-%d", wave, i), loadCtx{Count: i, Items: []string{"some", "state"}})
					if err == nil {
						err = s.Event(ctx, func() error { return s.Assign(lCount.Set(i + 1)) }, nil)
					}
					if err != nil {
						failed.CompareAndSwap(nil, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			t.Fatal(err)
		}
	}

	t.Run(fmt.Sprintf("%d instances on memory", n), func(t *testing.T) {
		ignore := goleak.IgnoreCurrent()
		clock := storetest.NewClock()
		heap0 := heapInUse()
		s := memory.New(store.WithTTL(ttl), store.WithClock(clock.Now))
		abandon(t, s, 0, 8)
		full := heapInUse()
		clock.Advance(ttl + time.Second)
		if swept := s.Sweep(); swept != n {
			t.Fatalf("the sweep removed %d records, want %d", swept, n)
		}
		if recs, bytes := s.Len(); recs != 0 || bytes != 0 {
			t.Fatalf("after expiry the store holds %d records, %d bytes", recs, bytes)
		}
		after := heapInUse()
		t.Logf("heap in use: %d KiB before, %d KiB with %d instances, %d KiB after expiry", heap0>>10, full>>10, n, after>>10)
		if grown := int64(after) - int64(heap0); grown > int64(full-heap0)/10+1<<20 {
			t.Errorf("after expiry the heap is %d KiB above its baseline (the instances took %d KiB)", grown>>10, (full-heap0)>>10)
		}
		s.Close()
		verifyNoLeaks(t, ignore)
	})

	t.Run(fmt.Sprintf("%d instances on bbolt", n), func(t *testing.T) {
		ignore := goleak.IgnoreCurrent()
		clock := storetest.NewClock()
		path := filepath.Join(t.TempDir(), "growth.db")
		// fsync has no bearing on the space used.
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		// Only the explicit sweeps below delete records.
		s, err := boltstore.New(db, store.WithTTL(ttl), store.WithClock(clock.Now), boltstore.WithSweepInterval(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// One goroutine, so that the pages each wave takes do not depend
		// on scheduling: bbolt reuses a freed page only once no read
		// transaction older than the write that freed it is open, and
		// concurrent Opens keep reads open for as long as the scheduler
		// leaves them waiting.
		highWater := make([]int64, 2)
		for wave := range 2 {
			abandon(t, s, wave, 1)
			clock.Advance(ttl + time.Second)
			swept, err := s.Sweep(ctx)
			if err != nil || swept != n {
				t.Fatalf("wave %d: the sweep removed %d records (%v), want %d", wave, swept, err, n)
			}
			if ids, err := diffList(s); err != nil || len(ids) != 0 {
				t.Fatalf("wave %d: after expiry the store lists %d ids (%v)", wave, len(ids), err)
			}
			// The data's high-water mark, not the file's size: bbolt grows
			// its file in doubling steps, which would hide or fake reuse.
			if err := db.View(func(tx *bbolt.Tx) error { highWater[wave] = tx.Size(); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		// bbolt never shrinks its file; the second wave, the same size as
		// the first, must fit in the pages the first wave's expiry freed.
		// Without reuse it needs as much again.
		t.Logf("data high-water mark after the first wave: %d KiB, after the second: %d KiB", highWater[0]>>10, highWater[1]>>10)
		if highWater[1] > highWater[0]+highWater[0]/10 {
			t.Errorf("the data grew from %d to %d KiB over a second wave: expired space is not reused", highWater[0]>>10, highWater[1]>>10)
		}
		s.Close()
		db.Close()
		verifyNoLeaks(t, ignore)
	})

	t.Run(fmt.Sprintf("%d instances on miniredis", n), func(t *testing.T) {
		ignore := goleak.IgnoreCurrent()
		mr := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		s, err := redisstore.New(c, store.WithTTL(ttl))
		if err != nil {
			t.Fatal(err)
		}
		abandon(t, s, 0, 8)
		if got := len(mr.Keys()); got != n {
			t.Fatalf("%d keys with %d instances", got, n)
		}
		mr.FastForward(ttl + time.Second)
		if got := len(mr.Keys()); got != 0 {
			t.Fatalf("after expiry %d keys remain", got)
		}
		s.Close()
		c.Close()
		mr.Close()
		verifyNoLeaks(t, ignore)
	})

	if addr := os.Getenv("LIVECTX_REDIS_ADDR"); addr != "" {
		t.Run(fmt.Sprintf("%d instances on a real redis", n), func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 16})
			t.Cleanup(func() { c.Close() }) // after redistest.Prefix's cleanup
			prefix := redistest.Prefix(t, c)
			const realTTL = 2 * time.Second
			s, err := redisstore.New(c, redisstore.WithPrefix(prefix), store.WithTTL(realTTL))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			abandon(t, s, 0, 8)
			count := func() int {
				n := 0
				iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
				for iter.Next(ctx) {
					n++
				}
				if err := iter.Err(); err != nil {
					t.Fatal(err)
				}
				return n
			}
			// The server expires keys on its own clock, actively in the
			// background: wait for the key count to reach zero.
			deadline := time.Now().Add(realTTL + 60*time.Second)
			for left := count(); left != 0; left = count() {
				if time.Now().After(deadline) {
					t.Fatalf("%d keys of %d remain a minute after their TTL", left, n)
				}
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
}

// verifyNoLeaks fails t if a goroutine started since ignore was taken is
// still running.
func verifyNoLeaks(t *testing.T, ignore goleak.Option) {
	t.Helper()
	goleak.VerifyNone(t, ignore)
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
