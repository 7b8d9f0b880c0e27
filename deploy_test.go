package livectx_test

// Contexts that outlive nodes and builds (issue 13): two builds of one
// application, whose context types differ, share a store during a rolling
// deploy; and one page is driven through two nodes at once.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/internal/testbackends"
	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/store"
)

// buildN is the context type of the build being replaced.
type buildN struct {
	Count  int    `msgpack:"count"`  // both builds: every event adds one
	Title  string `msgpack:"title"`  // both builds: the last event's name
	Level  int    `msgpack:"level"`  // build N+1 makes it a string
	Hits   int    `msgpack:"hits"`   // build N+1 renames it "visits"
	Legacy string `msgpack:"legacy"` // build N+1 drops it
}

// buildN1 is the context type of the build that replaces it.
type buildN1 struct {
	Count  int    `msgpack:"count"`
	Title  string `msgpack:"title"`
	Level  string `msgpack:"level"`  // was an int
	Visits int    `msgpack:"visits"` // was "hits"
	Theme  string `msgpack:"theme"`  // new
}

var (
	nCount  = socket.FieldOf(func(c *buildN) *int { return &c.Count })
	nTitle  = socket.FieldOf(func(c *buildN) *string { return &c.Title })
	nLevel  = socket.FieldOf(func(c *buildN) *int { return &c.Level })
	nHits   = socket.FieldOf(func(c *buildN) *int { return &c.Hits })
	nLegacy = socket.FieldOf(func(c *buildN) *string { return &c.Legacy })

	n1Count  = socket.FieldOf(func(c *buildN1) *int { return &c.Count })
	n1Title  = socket.FieldOf(func(c *buildN1) *string { return &c.Title })
	n1Level  = socket.FieldOf(func(c *buildN1) *string { return &c.Level })
	n1Visits = socket.FieldOf(func(c *buildN1) *int { return &c.Visits })
	n1Theme  = socket.FieldOf(func(c *buildN1) *string { return &c.Theme })
)

// buildN1Options are build N+1's Manager options: its store, logger, and
// the migrations that read what build N wrote.
func buildN1Options(s store.ContextStore, log *bytes.Buffer) []socket.Option {
	return []socket.Option{
		socket.WithStore(s),
		socket.KeepOnClose(),
		socket.WithLogger(slog.New(slog.NewTextHandler(log, nil))),
		socket.Migrate("level", func(old socket.Stored) ([]socket.Assignment, error) {
			var n int
			if err := old.Decode(&n); err != nil {
				return nil, err
			}
			return []socket.Assignment{n1Level.Set(strconv.Itoa(n))}, nil
		}),
		socket.Migrate("hits", func(old socket.Stored) ([]socket.Assignment, error) {
			var n int
			if err := old.Decode(&n); err != nil {
				return nil, err
			}
			return []socket.Assignment{n1Visits.Set(n)}, nil
		}),
	}
}

// counting is a store that counts its Loads and the writes refused with
// store.ErrConflict (each one an event that Event runs again).
type counting struct {
	store.ContextStore
	loads, conflicts atomic.Int64
}

func (c *counting) Load(ctx context.Context, id string) (store.Record, error) {
	c.loads.Add(1)
	return c.ContextStore.Load(ctx, id)
}

func (c *counting) Apply(ctx context.Context, id string, ch store.Change) (uint64, error) {
	v, err := c.ContextStore.Apply(ctx, id, ch)
	if errors.Is(err, store.ErrConflict) {
		c.conflicts.Add(1)
	}
	return v, err
}

// node is one server node's open sockets of one context type, one per id,
// as a node keeps its LiveView processes.
type node[T any] struct {
	m       *socket.Manager[T]
	initial T
	open    map[string]*socket.Socket[T]
	opens   int
}

func newNode[T any](m *socket.Manager[T], initial T) *node[T] {
	return &node[T]{m: m, initial: initial, open: map[string]*socket.Socket[T]{}}
}

// page returns the node's socket for id, opening it when the node has none
// or when reconnect is set (the page was reloaded and landed on this node).
func (n *node[T]) page(ctx context.Context, id string, reconnect bool) (*socket.Socket[T], error) {
	s, ok := n.open[id]
	if ok && !reconnect {
		return s, nil
	}
	if ok {
		if err := s.Close(ctx); err != nil {
			return nil, err
		}
	}
	s, err := n.m.Open(ctx, id, n.initial)
	if err != nil {
		return nil, err
	}
	n.opens++
	n.open[id] = s
	return s, nil
}

// mixedModel is what the events acknowledged on one id must leave in its
// record.
type mixedModel struct {
	count       int    // acknowledged events
	title       string // the last one's name
	byN, byN1   int    // acknowledged per build
	hitsAtN1    int    // byN when build N+1 first acknowledged an event
	legacy      string // the last name build N acknowledged
	dark        bool   // build N+1 acknowledged a switch to the dark theme
	createdByN1 bool   // build N+1 acknowledged the first event
	lastByN1    bool   // the last acknowledged event ran on build N+1
	retiredOnce bool   // phase two wrote it
}

// TestMixedVersions runs a rolling deploy: builds N and N+1, whose context
// types differ (a field changed type, one renamed, one dropped, one added,
// two unchanged), share a store; 1,000 events on 20 ids run on either
// build at random, pages reconnecting now and then. No Open fails, every
// acknowledged event is counted once in the shared counter and the last
// acknowledged name survives, the migrated and kept fields hold what the
// model says, then a build N+1 that retires the dead fields makes one write
// per id and no dead field remains.
func TestMixedVersions(t *testing.T) {
	const ids, events = 20, 1000
	for _, b := range testbackends.All {
		t.Run(fmt.Sprintf("%d events on %d ids on %s", events, ids, b.Name), func(t *testing.T) {
			ctx := t.Context()
			st := &counting{ContextStore: b.Open(t, nil)}
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			r := rand.New(rand.NewPCG(seed, 0))
			var logN, logN1 bytes.Buffer
			old := newNode(socket.NewManager[buildN](socket.WithStore(st), socket.KeepOnClose(),
				socket.WithLogger(slog.New(slog.NewTextHandler(&logN, nil)))), buildN{})
			n1Initial := buildN1{Level: "0", Theme: "light"}
			cur := newNode(socket.NewManager[buildN1](buildN1Options(st, &logN1)...), n1Initial)
			idOf := func(i int) string { return fmt.Sprintf("mixed-%d", i) }
			models := make([]mixedModel, ids)
			runs := 0

			// eventN runs one event on build N: it checks that build N reads
			// the count and level both builds wrote, then adds one.
			eventN := func(s *socket.Socket[buildN], name string) error {
				return s.Event(ctx, func() error {
					runs++
					c := s.Context()
					reset := slices.Contains(s.ResetFields(), "level")
					if c.Level != c.Count && !(reset && c.Level == 0) {
						return fmt.Errorf("build N reads level %d beside count %d (reset %v)", c.Level, c.Count, s.ResetFields())
					}
					return s.Assign(nCount.Set(c.Count+1), nTitle.Set(name), nLevel.Set(c.Count+1), nHits.Set(c.Hits+1), nLegacy.Set(name))
				}, nil)
			}
			// eventN1 does the same on build N+1, which must read every
			// field: level migrated, theme at its initial value until set.
			eventN1 := func(s *socket.Socket[buildN1], name string, dark bool) error {
				return s.Event(ctx, func() error {
					runs++
					c := s.Context()
					if c.Level != strconv.Itoa(c.Count) || (c.Theme != "light" && c.Theme != "dark") || s.ResetFields() != nil {
						return fmt.Errorf("build N+1 reads level %q, count %d, theme %q, reset %v", c.Level, c.Count, c.Theme, s.ResetFields())
					}
					as := []socket.Assignment{n1Count.Set(c.Count + 1), n1Title.Set(name), n1Level.Set(strconv.Itoa(c.Count + 1)), n1Visits.Set(c.Visits + 1)}
					if dark { // the added field is assigned now and then
						as = append(as, n1Theme.Set("dark"))
					}
					return s.Assign(as...)
				}, nil)
			}

			start := time.Now()
			for k := range events {
				i := r.IntN(ids)
				id, m := idOf(i), &models[i]
				onN1, reconnect, dark := r.IntN(2) == 0, r.IntN(5) == 0, r.IntN(4) == 0
				name := fmt.Sprintf("event-%d", k)
				var err error
				if onN1 {
					var s *socket.Socket[buildN1]
					if s, err = cur.page(ctx, id, reconnect); err == nil {
						err = eventN1(s, name, dark)
					}
				} else {
					var s *socket.Socket[buildN]
					if s, err = old.page(ctx, id, reconnect); err == nil {
						err = eventN(s, name)
					}
				}
				if err != nil {
					t.Fatalf("event %d on %s (build N+1: %v): %v", k, id, onN1, err)
				}
				m.count++
				m.title, m.lastByN1 = name, onN1
				if onN1 {
					if m.byN1 == 0 {
						m.hitsAtN1 = m.byN
						m.createdByN1 = m.byN == 0
					}
					m.byN1++
					m.dark = m.dark || dark
				} else {
					m.byN++
					m.legacy = name
				}
			}
			elapsed := time.Since(start)

			before := 0
			for i := range ids {
				before += checkMixed(t, st, idOf(i), models[i])
			}
			resets, badResets := logLines(logN.String(), "level=WARN", "field=level")
			if resets == 0 || badResets != 0 {
				t.Errorf("build N logged %d resets (%d not of level); want some, all of level:\n%s", resets, badResets, logN.String())
			}
			if n1Resets, _ := logLines(logN1.String(), "level=WARN", ""); n1Resets != 0 {
				t.Errorf("build N+1 reset %d fields: its migrations should read every field:\n%s", n1Resets, logN1.String())
			}
			converted, _ := logLines(logN1.String(), "level=INFO", "field=level")
			if converted == 0 {
				t.Error("build N+1 never converted an int level: the versions did not mix")
			}
			if got := st.conflicts.Load(); int64(runs-events) != got || got == 0 {
				t.Errorf("%d handler runs for %d events, %d conflicts: want one re-run per conflict, and some conflicts", runs, events, got)
			}
			t.Logf("%d events (%d opens on build N, %d on N+1) in %v: %d conflicts, each re-run on the stored context; build N reset level %d times, build N+1 converted it %d times",
				events, old.opens, cur.opens, elapsed.Round(time.Millisecond), st.conflicts.Load(), resets, converted)

			// Contract: no node of build N remains; build N+1 retires the
			// fields it no longer has with one write per id.
			retiring := newNode(socket.NewManager[buildN1](append(buildN1Options(st, &logN1), socket.Retire("hits", "legacy"))...), n1Initial)
			after := 0
			for i := range ids {
				id, m := idOf(i), &models[i]
				s, err := retiring.page(ctx, id, false)
				if err == nil {
					err = eventN1(s, "retired", false)
				}
				if err != nil {
					t.Fatalf("the write after retirement on %s: %v", id, err)
				}
				m.count++
				m.title, m.lastByN1 = "retired", true
				if m.byN1 == 0 {
					m.hitsAtN1 = m.byN
				}
				m.byN1++
				m.retiredOnce = true
				after += checkMixed(t, st, id, *m)
			}
			t.Logf("retiring hits and legacy: the %d records went from %d to %d bytes", ids, before, after)
		})
	}
}

// checkMixed compares id's record with what the model says, and returns
// the record's size.
func checkMixed(t *testing.T, s store.ContextStore, id string, m mixedModel) int {
	t.Helper()
	rec, err := s.Load(t.Context(), id)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	// want maps each field the record must hold to its value; a field
	// absent from want must be absent from the record.
	want := map[string]any{"count": m.count, "title": m.title}
	if m.lastByN1 {
		want["level"] = strconv.Itoa(m.count)
	} else {
		want["level"] = m.count
	}
	if m.byN > 0 && !m.retiredOnce {
		want["hits"], want["legacy"] = m.byN, m.legacy
	}
	if m.byN1 > 0 {
		want["visits"] = m.hitsAtN1 + m.byN1
	}
	// The added field is written when assigned, or with the rest when build
	// N+1 creates the record.
	if m.dark {
		want["theme"] = "dark"
	} else if m.createdByN1 {
		want["theme"] = "light"
	}
	if got, w := slices.Sorted(maps.Keys(rec.Fields)), slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
		t.Errorf("%s holds fields %v, want %v", id, got, w)
	}
	for name, v := range want {
		b, ok := rec.Fields[name]
		if !ok {
			continue
		}
		got, err := decodeLike(id, name, b, v)
		if err != nil || got != v {
			t.Errorf("%s: stored %s = %v (%v), want %v", id, name, got, err, v)
		}
	}
	return rec.Size()
}

// decodeLike decodes b into a value of v's type (an int or a string).
func decodeLike(id, name string, b []byte, v any) (any, error) {
	if _, ok := v.(int); ok {
		var n int
		err := codec.Unmarshal(id, name, b, &n)
		return n, err
	}
	var s string
	err := codec.Unmarshal(id, name, b, &s)
	return s, err
}

// logLines counts the lines of log that contain kind, and how many of them
// lack want (when want is not empty).
func logLines(log, kind, want string) (n, without int) {
	for line := range strings.Lines(log) {
		if strings.Contains(line, kind) {
			n++
			if want != "" && !strings.Contains(line, " "+want+" ") {
				without++
			}
		}
	}
	return n, without
}

// clicks is the context of the page two nodes serve.
type clicks struct {
	Count int `msgpack:"count"`
}

var clickCount = socket.FieldOf(func(c *clicks) *int { return &c.Count })

// click runs one "inc" event on s: the handler reads the count through the
// socket and assigns one more. It returns how many times the handler ran
// and the count the render saw.
func click(ctx context.Context, s *socket.Socket[clicks]) (runs, rendered int, err error) {
	err = s.Event(ctx, func() error {
		runs++
		return s.Assign(clickCount.Set(clickCount.Get(s) + 1))
	}, func(c clicks, _ socket.Changed) error {
		rendered = c.Count
		return nil
	})
	return runs, rendered, err
}

// TestTwoNodesOnePage drives one page through two nodes (two Managers, one
// store) on every backend: 400 events alternating between them, then 2,000
// events from 8 goroutines on each. Every event is applied once: no error,
// and the count is the number of events.
func TestTwoNodesOnePage(t *testing.T) {
	for _, b := range testbackends.All {
		t.Run(b.Name, func(t *testing.T) {
			t.Run("400 events alternating between two nodes all land", func(t *testing.T) {
				const events = 400
				ctx := t.Context()
				st := &counting{ContextStore: b.Open(t, nil)}
				a, bn, viewer := twoNodesOpen(t, st, "alternating")
				runs := 0
				start := time.Now()
				for i := range events {
					n, rendered, err := click(ctx, []*socket.Socket[clicks]{a, bn}[i%2])
					if err != nil {
						t.Fatalf("event %d: %v", i, err)
					}
					if rendered != i+1 {
						t.Fatalf("event %d rendered count %d, want %d", i, rendered, i+1)
					}
					runs += n
				}
				elapsed := time.Since(start)
				// Every event but the first meets the other node's write.
				if got := st.conflicts.Load(); got != events-1 || runs != 2*events-1 {
					t.Errorf("%d conflicts, %d handler runs; want %d and %d", got, runs, events-1, 2*events-1)
				}
				checkClicks(t, st, viewer, "alternating", events)
				t.Logf("%d events in %v (%v each): 0 errors, count %d, %d conflicts re-run",
					events, elapsed.Round(time.Millisecond), (elapsed / events).Round(time.Microsecond), events, st.conflicts.Load())
			})
			t.Run("2,000 events from 8 goroutines on each of two nodes all land", func(t *testing.T) {
				const perNode, goroutines = 1000, 8
				ctx := t.Context()
				st := &counting{ContextStore: b.Open(t, nil)}
				a, bn, viewer := twoNodesOpen(t, st, "concurrent")
				var runs, failed atomic.Int64
				var mostRuns atomic.Int64
				var firstErr sync.Once
				var wg sync.WaitGroup
				start := time.Now()
				for _, s := range []*socket.Socket[clicks]{a, bn} {
					for range goroutines {
						wg.Go(func() {
							for range perNode / goroutines {
								n, _, err := click(ctx, s)
								runs.Add(int64(n))
								for m := mostRuns.Load(); int64(n) > m && !mostRuns.CompareAndSwap(m, int64(n)); m = mostRuns.Load() {
								}
								if err != nil {
									failed.Add(1)
									firstErr.Do(func() { t.Errorf("an event failed: %v", err) })
								}
							}
						})
					}
				}
				wg.Wait()
				elapsed := time.Since(start)
				// A failed event must have written nothing: the count is the
				// number of events acknowledged.
				checkClicks(t, st, viewer, "concurrent", 2*perNode-int(failed.Load()))
				if failed.Load() != 0 {
					t.Fatalf("%d of %d events failed; %d conflicts re-run, at most %d handler runs for one event (EventRetries allows %d)",
						failed.Load(), 2*perNode, st.conflicts.Load(), mostRuns.Load(), socket.DefaultEventRetries+1)
				}
				t.Logf("%d events in %v (%v each): 0 errors, count %d, %d conflicts re-run, %d handler runs, at most %d for one event (EventRetries allows %d)",
					2*perNode, elapsed.Round(time.Millisecond), (elapsed / (2 * perNode)).Round(time.Microsecond), 2*perNode,
					st.conflicts.Load(), runs.Load(), mostRuns.Load(), socket.DefaultEventRetries+1)
			})
		})
	}
}

// twoNodesOpen opens the page id on two nodes, and on a third that only
// views it; each node is a Manager of its own on st. The page view writes
// nothing and shows a new page.
func twoNodesOpen(t *testing.T, st store.ContextStore, id string) (a, b, viewer *socket.Socket[clicks]) {
	t.Helper()
	var ss [3]*socket.Socket[clicks]
	for i := range ss {
		var err error
		if ss[i], err = socket.NewManager[clicks](socket.WithStore(st)).Open(t.Context(), id, clicks{}); err != nil {
			t.Fatal(err)
		}
		if ss[i].Restored() {
			t.Fatalf("node %d: Restored() = true before anything was written", i)
		}
	}
	return ss[0], ss[1], ss[2]
}

// checkClicks requires the stored count to be want, and a node that only
// viewed the page since before the events to bring itself up to date with
// Sync, at the cost of one Load, and then say the page was resumed.
func checkClicks(t *testing.T, st *counting, viewer *socket.Socket[clicks], id string, want int) {
	t.Helper()
	rec, err := st.Load(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := codec.Unmarshal(id, "count", rec.Fields["count"], &n); err != nil || n != want {
		t.Fatalf("stored count %d (%v), want %d", n, err, want)
	}
	if viewer.Restored() || clickCount.Get(viewer) != 0 {
		t.Fatalf("the viewing node changed before it synced: restored %v, count %d", viewer.Restored(), clickCount.Get(viewer))
	}
	loads := st.loads.Load()
	reloaded, err := viewer.Sync(t.Context())
	if loads := st.loads.Load() - loads; loads != 1 {
		t.Errorf("Sync made %d Loads, want one", loads)
	}
	if err != nil || !reloaded || clickCount.Get(viewer) != want || !viewer.Restored() || viewer.Version() != rec.Version {
		t.Fatalf("Sync = %v, %v; count %d, restored %v, version %d; want true, nil, %d, true, %d",
			reloaded, err, clickCount.Get(viewer), viewer.Restored(), viewer.Version(), want, rec.Version)
	}
}
