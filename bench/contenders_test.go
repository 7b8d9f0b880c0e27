package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2/memstore"
	fiberredis "github.com/gofiber/storage/redis/v3"
	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"
	"go.etcd.io/bbolt"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/store"
)

// ttl is the time to live of every contender that has one, as a sessions
// store would be configured. The plain map and raw bbolt have none.
const ttl = 24 * time.Hour

// runner is one contender's store, fresh for one benchmark.
type runner interface {
	// seed stores c under id (not timed).
	seed(ctx context.Context, id string, c Ctx) error
	// mount restores the context stored under id.
	mount(ctx context.Context, id string) (session, error)
	// written returns the bytes handed to the backend so far: field names
	// and values for livectx, whole encoded values for the peers (keys are
	// counted by neither).
	written() int64
}

// session is one mounted LiveView instance.
type session interface {
	// event sets the counter to n and persists the context.
	event(ctx context.Context, n int) error
	// context returns the context as the session holds it.
	context() Ctx
}

// contender is one store on one backend.
type contender struct {
	backend, name string
	peer          bool
	new           func(tb testing.TB) runner
}

func contenders() []contender {
	return []contender{
		{"memory", "livectx", false, func(tb testing.TB) runner {
			st := memory.New(store.WithTTL(ttl))
			tb.Cleanup(func() { st.Close() })
			return newLivectx(st)
		}},
		{"memory", "scs-memstore", true, func(tb testing.TB) runner {
			return &peer{blobs: scsMemory{newMemstore(tb)}}
		}},
		{"memory", "map", true, func(tb testing.TB) runner {
			return &peer{blobs: &plainMap{m: map[string][]byte{}}}
		}},
		{"bbolt", "livectx", false, func(tb testing.TB) runner {
			st, err := boltstore.Open(filepath.Join(tb.TempDir(), "livectx.db"), store.WithTTL(ttl))
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { st.Close() })
			return newLivectx(st)
		}},
		{"bbolt", "raw-bbolt", true, func(tb testing.TB) runner {
			db, err := bbolt.Open(filepath.Join(tb.TempDir(), "raw.db"), 0o600, nil)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { db.Close() })
			return &peer{blobs: rawBolt{db}}
		}},
		{"redis", "livectx", false, func(tb testing.TB) runner {
			c, prefix := redisClient(tb)
			st, err := redisstore.New(c, redisstore.WithPrefix(prefix), store.WithTTL(ttl))
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { st.Close() })
			return newLivectx(st)
		}},
		{"redis", "scs-goredisstore", true, func(tb testing.TB) runner {
			c, prefix := redisClient(tb)
			return &peer{blobs: scsRedis{goredisstore.NewWithPrefix(c, prefix)}}
		}},
		{"redis", "fiber-redis", true, func(tb testing.TB) runner {
			c, prefix := redisClient(tb)
			return &peer{blobs: fiberRedis{fiberredis.NewFromConnection(c), prefix}}
		}},
	}
}

// redisAddr is the real Redis server the benchmarks use.
func redisAddr() string {
	if a := os.Getenv("LIVECTX_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// redisClient returns a client of its own on the real server and a key
// prefix no one else uses; every key under the prefix is deleted when tb
// ends. It skips tb when the server cannot be reached.
func redisClient(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		tb.Skipf("no Redis at %s (set LIVECTX_REDIS_ADDR): %v", redisAddr(), err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "livectx-bench:" + hex.EncodeToString(b) + ":"
	tb.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Unlink(ctx, iter.Val()).Err(); err != nil {
				tb.Errorf("deleting %q: %v", iter.Val(), err)
				return
			}
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("deleting the keys under %q: %v", prefix, err)
		}
	})
	return c, prefix
}

// livectx runs the job through socket.Socket over a store that counts what
// it is asked to write.
type livectx struct {
	m  *socket.Manager[Ctx]
	cs *counting
}

func newLivectx(st store.ContextStore) *livectx {
	cs := &counting{next: st}
	return &livectx{m: socket.NewManager[Ctx](socket.WithStore(cs), socket.KeepOnClose()), cs: cs}
}

func (l *livectx) seed(ctx context.Context, id string, c Ctx) error {
	s, err := create(ctx, l.m, id, c)
	if err != nil {
		return err
	}
	return s.Close(ctx)
}

// create opens the socket of a new id with context c and writes its record:
// Open writes nothing until a render has something to write, and the first
// such render writes every stored field.
func create(ctx context.Context, m *socket.Manager[Ctx], id string, c Ctx) (*socket.Socket[Ctx], error) {
	s, err := m.Open(ctx, id, c)
	if err != nil {
		return nil, err
	}
	if err := s.Assign(count.Set(c.Count)); err != nil {
		return nil, err
	}
	if err := s.Render(ctx, nil); err != nil {
		return nil, err
	}
	return s, nil
}

func (l *livectx) mount(ctx context.Context, id string) (session, error) {
	s, err := l.m.Open(ctx, id, Ctx{})
	if err != nil {
		return nil, err
	}
	if !s.Restored() {
		return nil, fmt.Errorf("livectx: %q was not restored", id)
	}
	return livectxSession{s}, nil
}

func (l *livectx) written() int64 { return l.cs.n.Load() }

type livectxSession struct{ s *socket.Socket[Ctx] }

func (s livectxSession) event(ctx context.Context, n int) error {
	if err := s.s.Assign(count.Set(n)); err != nil {
		return err
	}
	return s.s.Render(ctx, render)
}

func (s livectxSession) context() Ctx { return s.s.Context() }

// render stands for the template: the benchmark measures the store.
func render(Ctx, socket.Changed) error { return nil }

// counting is a store.ContextStore that counts the bytes Apply is asked to
// write (field names and values) and forwards every call to next.
type counting struct {
	next store.ContextStore
	n    atomic.Int64
}

func (c *counting) Load(ctx context.Context, id string) (store.Record, error) {
	return c.next.Load(ctx, id)
}

func (c *counting) Apply(ctx context.Context, id string, ch store.Change) (uint64, error) {
	n := 0
	for k, v := range ch.Set {
		n += len(k) + len(v)
	}
	c.n.Add(int64(n))
	return c.next.Apply(ctx, id, ch)
}

// LoadShared, LoadFields and Unwrap keep the counter transparent to
// store.As, so that the sockets borrow the bytes of a store that lends them
// (store.SharedLoader) and name their fields to a store that reads them by
// name (store.FieldLoader) as they would without it.
func (c *counting) LoadShared(ctx context.Context, id string) (store.Record, error) {
	return c.next.(store.SharedLoader).LoadShared(ctx, id)
}

func (c *counting) LoadFields(ctx context.Context, id string, names []string) ([][]byte, store.Record, error) {
	return c.next.(store.FieldLoader).LoadFields(ctx, id, names)
}

func (c *counting) Unwrap() store.ContextStore { return c.next }

func (c *counting) Delete(ctx context.Context, id string) error { return c.next.Delete(ctx, id) }
func (c *counting) Touch(ctx context.Context, id string) error  { return c.next.Touch(ctx, id) }
func (c *counting) Close() error                                { return c.next.Close() }

// blobs is a peer's store as the peers use it: one value per instance.
type blobs interface {
	get(ctx context.Context, id string) ([]byte, error)
	put(ctx context.Context, id string, b []byte) error
}

var errMissing = errors.New("no value stored")

// peer runs the job the way sessions stores are used: the whole context
// encoded into one msgpack value, written on every event.
type peer struct {
	blobs
	n atomic.Int64
}

func (p *peer) seed(ctx context.Context, id string, c Ctx) error {
	b, err := msgpack.Marshal(&c)
	if err != nil {
		return err
	}
	return p.put(ctx, id, b)
}

func (p *peer) mount(ctx context.Context, id string) (session, error) {
	b, err := p.get(ctx, id)
	if err != nil {
		return nil, err
	}
	s := &peerSession{p: p, id: id}
	if err := msgpack.Unmarshal(b, &s.c); err != nil {
		return nil, err
	}
	return s, nil
}

func (p *peer) written() int64 { return p.n.Load() }

type peerSession struct {
	p  *peer
	id string
	c  Ctx
}

func (s *peerSession) event(ctx context.Context, n int) error {
	s.c.Count = n
	b, err := msgpack.Marshal(&s.c)
	if err != nil {
		return err
	}
	s.p.n.Add(int64(len(b)))
	return s.p.put(ctx, s.id, b)
}

func (s *peerSession) context() Ctx { return s.c }

// plainMap is what a hand-written in-memory store is: a map under a mutex.
type plainMap struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (p *plainMap) get(_ context.Context, id string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.m[id]
	if !ok {
		return nil, errMissing
	}
	return b, nil
}

func (p *plainMap) put(_ context.Context, id string, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[id] = b
	return nil
}

type scsMemory struct{ st *memstore.MemStore }

// newMemstore returns an scs memstore without its cleanup goroutine: its
// StopCleanup races with the goroutine's start (the race detector reports
// it), and Find ignores expired items either way.
func newMemstore(testing.TB) *memstore.MemStore {
	return memstore.NewWithCleanupInterval(0)
}

func (s scsMemory) get(_ context.Context, id string) ([]byte, error) {
	b, ok, err := s.st.Find(id)
	if err == nil && !ok {
		err = errMissing
	}
	return b, err
}

func (s scsMemory) put(_ context.Context, id string, b []byte) error {
	return s.st.Commit(id, b, time.Now().Add(ttl))
}

// rawBolt is what a store written plainly on bbolt does (scs's boltstore
// among them): one bucket, one value per instance, fsynced on commit as
// livectx's boltstore is.
type rawBolt struct{ db *bbolt.DB }

var rawBucket = []byte("contexts")

func (r rawBolt) get(_ context.Context, id string) (b []byte, err error) {
	err = r.db.View(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(rawBucket)
		if bk == nil {
			return errMissing
		}
		v := bk.Get([]byte(id))
		if v == nil {
			return errMissing
		}
		b = bytes.Clone(v) // bbolt's bytes die with the transaction
		return nil
	})
	return b, err
}

func (r rawBolt) put(_ context.Context, id string, b []byte) error {
	return r.db.Update(func(tx *bbolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(rawBucket)
		if err != nil {
			return err
		}
		return bk.Put([]byte(id), b)
	})
}

type scsRedis struct{ st *goredisstore.RedisStore }

func (s scsRedis) get(ctx context.Context, id string) ([]byte, error) {
	b, ok, err := s.st.FindCtx(ctx, id)
	if err == nil && !ok {
		err = errMissing
	}
	return b, err
}

func (s scsRedis) put(ctx context.Context, id string, b []byte) error {
	return s.st.CommitCtx(ctx, id, b, time.Now().Add(ttl))
}

type fiberRedis struct {
	st     *fiberredis.Storage
	prefix string
}

func (f fiberRedis) get(ctx context.Context, id string) ([]byte, error) {
	b, err := f.st.GetWithContext(ctx, f.prefix+id)
	if err == nil && b == nil {
		err = errMissing
	}
	return b, err
}

func (f fiberRedis) put(ctx context.Context, id string, b []byte) error {
	return f.st.SetWithContext(ctx, f.prefix+id, b, ttl)
}
