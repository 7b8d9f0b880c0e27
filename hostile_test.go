package livectx_test

// Hostile input: corrupt records planted behind the store's back, in the
// bbolt file and in Redis, then read through a socket (bare and sealed).
// Each must give a clear error naming the record (and field), allocate
// little, and disturb nothing else: other records read back intact and the
// damaged one can be deleted and started afresh.

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/internal/allocs"
	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/internal/testbackends"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/sealed"
	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

// hostileCtx is the context the hostile tests store.
type hostileCtx struct {
	Count int      `msgpack:"count"`
	Items []string `msgpack:"items"`
	Name  string   `msgpack:"name"`
}

var hostileItems = socket.FieldOf(func(c *hostileCtx) *[]string { return &c.Items })

// plantable is a backend whose stored bytes a test can overwrite directly.
type plantable struct {
	name string
	// current returns the store as it is now (planting may reopen it).
	current func() store.ContextStore
	// field overwrites the raw bytes of one field of record id.
	field func(t *testing.T, id, field string, b []byte)
	// meta overwrites the record's metadata (version and the like).
	meta func(t *testing.T, id string, b []byte)
	// other plants a key of the wrong type, or is nil.
	other func(t *testing.T, id string)
}

func plantableBolt(t *testing.T) plantable {
	path := filepath.Join(t.TempDir(), "hostile.db")
	var cur *boltstore.Store
	open := func() {
		var err error
		if cur, err = boltstore.Open(path); err != nil {
			t.Fatal(err)
		}
	}
	open()
	t.Cleanup(func() { cur.Close() })
	// edit closes the store, changes the file with bbolt itself, reopens.
	edit := func(t *testing.T, fn func(records *bbolt.Bucket) error) {
		t.Helper()
		if err := cur.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			return fn(tx.Bucket([]byte(boltstore.DefaultBucket)).Bucket([]byte("records")))
		})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		open()
	}
	key := func(id string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(id))), id...) }
	return plantable{
		name:    "bbolt",
		current: func() store.ContextStore { return cur },
		field: func(t *testing.T, id, field string, b []byte) {
			edit(t, func(r *bbolt.Bucket) error { return r.Put(append(key(id), field...), b) })
		},
		meta: func(t *testing.T, id string, b []byte) {
			edit(t, func(r *bbolt.Bucket) error { return r.Put(key(id), b) })
		},
	}
}

// plantableRedis returns a store on c under a prefix of its own; ids must
// be plain (letters) so that their key is prefix+id.
func plantableRedis(t *testing.T, name string, c *redis.Client) plantable {
	prefix := redistest.Prefix(t, c)
	s, err := redisstore.New(c, redisstore.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	return plantable{
		name:    name,
		current: func() store.ContextStore { return s },
		field: func(t *testing.T, id, field string, b []byte) {
			must(t, c.HSet(ctx, prefix+id, field, b).Err())
		},
		meta: func(t *testing.T, id string, b []byte) {
			must(t, c.HSet(ctx, prefix+id, "", b).Err())
		},
		other: func(t *testing.T, id string) {
			must(t, c.Del(ctx, prefix+id).Err())
			must(t, c.Set(ctx, prefix+id, "not a hash", 0).Err())
		},
	}
}

type plantableOpener struct {
	name      string
	open      func(t *testing.T) plantable
	wrongType bool // other plants a key of the wrong type
}

// plantables returns bbolt, miniredis and, when LIVECTX_REDIS_ADDR is set,
// a real Redis.
func plantables() []plantableOpener {
	ps := []plantableOpener{
		{"bbolt", plantableBolt, false},
		{"miniredis", func(t *testing.T) plantable {
			_, c := redistest.Miniredis(t)
			return plantableRedis(t, "miniredis", c)
		}, true},
	}
	if addr := os.Getenv("LIVECTX_REDIS_ADDR"); addr != "" {
		ps = append(ps, plantableOpener{"a real redis", func(t *testing.T) plantable {
			c := redis.NewClient(&redis.Options{Addr: addr})
			t.Cleanup(func() { c.Close() })
			return plantableRedis(t, "redis "+addr, c)
		}, true})
	}
	return ps
}

// Hostile msgpack for the field "items" (a []string). Well-formed msgpack
// of another type (a map where the list belongs) is not here: it is a schema
// change, which opens the page (socket/sockettest's type-change behaviours).
var hostileValues = []struct {
	name string
	b    []byte
}{
	{"an array declaring 4 billion elements", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}},
	{"a string declaring 2 GiB", []byte{0x91, 0xdb, 0x7f, 0xff, 0xff, 0xff, 'x'}},
	{"a binary declaring 4 GiB", []byte{0x91, 0xc6, 0xff, 0xff, 0xff, 0xff}},
	{"arrays nested a million deep", bytes.Repeat([]byte{0x91}, 1_000_000)},
	{"maps nested a hundred thousand deep", bytes.Repeat([]byte{0x81, 0xa1, 'k'}, 100_000)},
	{"a truncated array", []byte{0x92, 0xa1, 'a'}},
	{"a reserved type byte", []byte{0xc1}},
	{"an empty value", nil},
}

func TestHostileRecords(t *testing.T) {
	key := make([]byte, sealed.KeySize)
	crand.Read(key)
	type damage struct {
		name  string
		plant func(t *testing.T, p plantable)
		field string // the field the error names; "" for the whole record
	}
	var damages []damage
	for _, v := range hostileValues {
		damages = append(damages, damage{v.name, func(t *testing.T, p plantable) { p.field(t, "victim", "items", v.b) }, "items"})
	}
	damages = append(damages,
		damage{"unreadable metadata", func(t *testing.T, p plantable) { p.meta(t, "victim", []byte("\xff garbage")) }, ""},
		damage{"empty metadata", func(t *testing.T, p plantable) { p.meta(t, "victim", nil) }, ""},
	)
	sealedDamages := []damage{
		{"a flipped bit in a sealed value", func(t *testing.T, p plantable) {
			r, err := p.current().Load(context.Background(), "victim")
			if err != nil {
				t.Fatal(err)
			}
			b := r.Fields["items"]
			b[len(b)/2] ^= 1
			p.field(t, "victim", "items", b)
		}, "items"},
		{"a sealed value moved from another field", func(t *testing.T, p plantable) {
			r, err := p.current().Load(context.Background(), "victim")
			if err != nil {
				t.Fatal(err)
			}
			p.field(t, "victim", "items", r.Fields["name"])
		}, "items"},
	}

	for _, po := range plantables() {
		t.Run("on "+po.name, func(t *testing.T) {
			for _, seal := range []bool{false, true} {
				// wrap returns the store the sockets use: the backend, or sealed over it.
				wrap := func(s store.ContextStore) store.ContextStore {
					if !seal {
						return s
					}
					w, err := sealed.New(s, [][]byte{key})
					if err != nil {
						t.Fatal(err)
					}
					return w
				}
				name, ds := "through a socket", damages
				if seal {
					// Under a sealed store, the hostile msgpack of damages
					// is refused before any decoding.
					name, ds = "through a socket over a sealed store", append(slices.Clip(damages), sealedDamages...)
				}
				t.Run(name, func(t *testing.T) {
					for _, d := range ds {
						t.Run(d.name+" is refused", func(t *testing.T) {
							hostileRecord(t, po.open(t), wrap, d.plant, d.field, true)
						})
					}
					if po.wrongType {
						t.Run("a key of the wrong type is refused", func(t *testing.T) {
							// redisstore returns the server's WRONGTYPE error as it is,
							// not store.ErrCorrupt: only a clear error is required.
							hostileRecord(t, po.open(t), wrap, func(t *testing.T, p plantable) { p.other(t, "victim") }, "", false)
						})
					}
				})
			}
		})
	}
}

// hostileRecord writes two records through sockets, damages one with plant,
// and checks that opening it fails clearly and cheaply while the other is
// intact and the damaged one can be replaced. The error must be a
// *store.CorruptError naming the record and field, or when corrupt is false
// any error naming the record that is not store.ErrNotFound.
func hostileRecord(t *testing.T, p plantable, wrap func(store.ContextStore) store.ContextStore, plant func(*testing.T, plantable), field string, corrupt bool) {
	ctx := context.Background()
	initial := hostileCtx{Count: 1, Name: "initial"}
	m := socket.NewManager[hostileCtx](socket.WithStore(wrap(p.current())))
	for _, id := range []string{"victim", "bystander"} {
		s, err := m.Open(ctx, id, initial)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Assign(hostileItems.Set([]string{"x", id})); err != nil {
			t.Fatal(err)
		}
		if err := s.Render(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}

	plant(t, p)

	m = socket.NewManager[hostileCtx](socket.WithStore(wrap(p.current())))
	var err error
	if alloc := allocs.During(func() { _, err = m.Open(ctx, "victim", initial) }); alloc > 64<<20 {
		t.Errorf("opening the damaged record allocated %d MiB", alloc>>20)
	}
	var ce *store.CorruptError
	switch {
	case err == nil:
		t.Fatal("opening the damaged record succeeded")
	case !corrupt:
		if errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), `"victim"`) {
			t.Fatalf("opening the damaged record: %v; want an error naming it", err)
		}
	case !errors.Is(err, store.ErrCorrupt) || !errors.As(err, &ce):
		t.Fatalf("opening the damaged record: %v; want an error matching store.ErrCorrupt", err)
	case ce.ID != "victim" || ce.Field != field:
		t.Fatalf("the error names record %q field %q, want %q %q: %v", ce.ID, ce.Field, "victim", field, err)
	}
	t.Logf("%v", err)

	s, err := m.Open(ctx, "bystander", initial)
	if err != nil {
		t.Fatalf("another record was disturbed: %v", err)
	}
	if got := s.Context(); !s.Restored() || !slices.Equal(got.Items, []string{"x", "bystander"}) || got.Count != 1 {
		t.Fatalf("another record was disturbed: restored %v, %+v", s.Restored(), got)
	}

	if err := m.Store().Delete(ctx, "victim"); err != nil {
		t.Fatalf("deleting the damaged record: %v", err)
	}
	s, err = m.Open(ctx, "victim", initial)
	if err != nil || s.Restored() {
		t.Fatalf("after deleting the damaged record, Open: restored %v, %v", s != nil && s.Restored(), err)
	}
}

// TestHostileInputThroughSockets sends hostile ids, field names and oversize
// values through sockets on every backend: each is stored one to one or
// refused with a clear error, and nothing else is disturbed.
func TestHostileInputThroughSockets(t *testing.T) {
	ctx := context.Background()
	for _, b := range testbackends.All {
		t.Run("on "+b.Name, func(t *testing.T) {
			s := b.Open(t, nil, store.WithMaxFieldSize(1024))
			m := socket.NewManager[hostileCtx](socket.WithStore(s), socket.KeepOnClose())

			t.Run("hostile ids are stored one to one", func(t *testing.T) {
				ids := storetest.HostileIDs()
				for _, id := range ids {
					so, err := m.Open(ctx, id, hostileCtx{})
					if err != nil {
						t.Fatalf("open %q: %v", id, err)
					}
					if err := so.Assign(hostileItems.Set([]string{id})); err != nil {
						t.Fatal(err)
					}
					if err := so.Render(ctx, nil); err != nil {
						t.Fatalf("render %q: %v", id, err)
					}
				}
				for _, id := range ids {
					so, err := m.Open(ctx, id, hostileCtx{})
					if err != nil {
						t.Fatalf("reopen %q: %v", id, err)
					}
					if got := hostileItems.Get(so); !so.Restored() || !slices.Equal(got, []string{id}) {
						t.Fatalf("id %q restored %v with items %q: another id's write reached it", id, so.Restored(), got)
					}
				}
			})

			t.Run("invalid ids are refused and store nothing", func(t *testing.T) {
				for _, id := range []string{"", strings.Repeat("z", store.MaxIDLen+1)} {
					if _, err := m.Open(ctx, id, hostileCtx{}); !errors.Is(err, store.ErrInvalidID) {
						t.Fatalf("open of a %d-byte id: %v, want store.ErrInvalidID", len(id), err)
					}
				}
			})

			t.Run("unknown or hostile field names are refused and change nothing", func(t *testing.T) {
				so, err := m.Open(ctx, "names", hostileCtx{Name: "kept"})
				if err != nil {
					t.Fatal(err)
				}
				for _, name := range []string{"", "*", "{items}", "items\x00", "Items", strings.Repeat("f", 300)} {
					err := so.Assign(socket.Set("count", 7), socket.Set(name, []string{"x"}))
					if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
						t.Errorf("assigning field %q: %v, want an error naming it", name, err)
					}
				}
				if err := so.Render(ctx, nil); err != nil {
					t.Fatal(err)
				}
				if c := so.Context(); c.Count != 0 || c.Name != "kept" {
					t.Fatalf("a refused assign changed the context: %+v", c)
				}
			})

			t.Run("an oversize value is refused and the next cycle recovers", func(t *testing.T) {
				so, err := m.Open(ctx, "big", hostileCtx{Name: "before"})
				if err != nil {
					t.Fatal(err)
				}
				so.Assign(hostileItems.Set([]string{"created"}))
				if err := so.Render(ctx, nil); err != nil {
					t.Fatal(err)
				}
				v := so.Version()
				so.Assign(hostileItems.Set([]string{strings.Repeat("x", 2000)}))
				if err := so.Render(ctx, nil); !errors.Is(err, store.ErrTooLarge) {
					t.Fatalf("rendering a 2000-byte field under a 1024-byte cap: %v, want store.ErrTooLarge", err)
				}
				if got := hostileItems.Get(so); len(got) != 1 || len(got[0]) != 2000 {
					t.Fatal("the failed write changed the in-memory context")
				}
				r, err := s.Load(ctx, "big")
				if err != nil || r.Version != v {
					t.Fatalf("the failed write changed the record: version %d (was %d), %v", r.Version, v, err)
				}
				so.Assign(hostileItems.Set([]string{"small"}))
				if err := so.Render(ctx, nil); err != nil {
					t.Fatalf("after the oversize value was replaced: %v", err)
				}
				again, err := m.Open(ctx, "big", hostileCtx{})
				if err != nil || !slices.Equal(hostileItems.Get(again), []string{"small"}) || again.Context().Name != "before" {
					t.Fatalf("reopened: %+v, %v", again.Context(), err)
				}
			})
		})
	}
}
