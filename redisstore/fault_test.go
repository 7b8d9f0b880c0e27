package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/store"
)

// writeLog is what one writer saw: the version and value of its last
// acknowledged write.
type writeLog struct {
	acked, failed int
	version, n    uint64
}

func TestServerKilledAndRestartedLosesNoAcknowledgedWrite(t *testing.T) {
	srv := redistest.StartProcess(t, "--appendonly", "yes", "--appendfsync", "always")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	s := newStore(t, c)

	const writers = 8
	var (
		stop  atomic.Bool
		phase atomic.Int32 // 0 before the kill, 1 while down, 2 after the restart
		mu    sync.Mutex
		logs  [writers][3]writeLog
		final [writers]writeLog // each writer's last acknowledged write
		wg    sync.WaitGroup
	)
	count := func(p int, f func(writeLog) int) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for w := range writers {
			n += f(logs[w][p])
		}
		return n
	}
	for w := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("w%d", w)
			var last writeLog
			for n := uint64(1); !stop.Load(); n++ {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				v, err := s.Apply(ctx, id, store.Change{Set: map[string][]byte{
					"n": strconv.AppendUint(nil, n, 10), "pad": bytes.Repeat([]byte{'x'}, 512)}})
				cancel()
				p := phase.Load()
				mu.Lock()
				if err != nil {
					logs[w][p].failed++
				} else {
					// Every acknowledged write survives: versions never go back.
					if v <= last.version {
						t.Errorf("%s: acknowledged version %d after %d: an acknowledged write was lost", id, v, last.version)
					}
					last = writeLog{version: v, n: n}
					l := &logs[w][p]
					l.acked++
					l.version, l.n = v, n
				}
				mu.Unlock()
			}
			final[w] = last
		})
	}
	redistest.WaitFor(t, "writes before the kill", func() bool { return count(0, func(l writeLog) int { return l.acked }) >= 400 })
	phase.Store(1)
	srv.Kill()
	redistest.WaitFor(t, "failed writes while the server is down", func() bool { return count(1, func(l writeLog) int { return l.failed }) >= writers })
	srv.Restart()
	phase.Store(2)
	redistest.WaitFor(t, "writes after the restart", func() bool {
		return count(2, func(l writeLog) int { return min(l.acked, 20) }) == 20*writers
	})
	stop.Store(true)
	wg.Wait()

	ctx := context.Background()
	for w := range writers {
		id := fmt.Sprintf("w%d", w)
		rec, err := s.Load(ctx, id)
		if err != nil {
			t.Fatalf("Load(%s): %v", id, err)
		}
		// Writes that failed may or may not have been applied after the last
		// acknowledged one.
		n, _ := strconv.ParseUint(string(rec.Fields["n"]), 10, 64)
		if want := final[w]; rec.Version < want.version || n < want.n {
			t.Errorf("%s: stored n %d at version %d, last acknowledged n %d at version %d", id, n, rec.Version, want.n, want.version)
		}
	}
	t.Logf("acknowledged %d writes before the kill, %d failed while down, %d acknowledged after the restart",
		count(0, func(l writeLog) int { return l.acked }), count(1, func(l writeLog) int { return l.failed }),
		count(2, func(l writeLog) int { return l.acked }))
}

// proxy is a TCP proxy to upstream that cuts each connection after a
// random number of bytes in one direction or the other: mid-command, or
// after a command reached the server but before its reply came back.
type proxy struct {
	l        net.Listener
	upstream string
	cuts     atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, upstream string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, upstream: upstream, conns: map[net.Conn]bool{}}
	p.wg.Go(p.serve)
	return p
}

func (p *proxy) serve() {
	for {
		down, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		p.conns[down], p.conns[up] = true, true
		p.mu.Unlock()
		// Each direction gets a budget; the first to run out cuts both.
		var once sync.Once
		cut := func() {
			once.Do(func() { p.cuts.Add(1); down.Close(); up.Close() })
		}
		p.wg.Go(func() { p.pipe(up, down, rand.Int64N(256<<10), cut) })
		p.wg.Go(func() { p.pipe(down, up, rand.Int64N(64<<10), cut) })
	}
}

// pipe copies src to dst until budget bytes went through, then cuts.
func (p *proxy) pipe(dst, src net.Conn, budget int64, cut func()) {
	io.CopyN(dst, src, budget)
	cut()
}

func (p *proxy) Close() {
	p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func TestConnectionsCutMidWriteLeaveRecordsWhole(t *testing.T) {
	srv := redistest.StartProcess(t)
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { direct.Close() })
	prefix := redistest.Prefix(t, direct)
	p := startProxy(t, srv.Addr())
	t.Cleanup(p.Close)
	viaProxy := redis.NewClient(&redis.Options{Addr: p.l.Addr().String(), MaxRetries: 2})
	t.Cleanup(func() { viaProxy.Close() })
	writer, err := redisstore.New(viaProxy, redisstore.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := redisstore.New(direct, redisstore.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}

	// Each write sets 16 fields of 4 KiB to one generation number: a record
	// is whole when every field holds the same one.
	const writers, fields = 4, 16
	gen := func(rec store.Record) (string, error) {
		var g []byte
		for i := range fields {
			v, ok := rec.Fields[fmt.Sprint(i)]
			if !ok || g != nil && !bytes.Equal(v, g) {
				return "", fmt.Errorf("mixed record at version %d: field %d differs", rec.Version, i)
			}
			g = v
		}
		return string(g[:8]), nil
	}
	ctx := context.Background()
	var acked, failed atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	lastAcked := make([]uint64, writers)
	for w := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("w%d", w)
			for g := uint64(1); !stop.Load(); g++ {
				value := bytes.Repeat(fmt.Appendf(nil, "%08d", g), 512)
				c := store.Change{Set: map[string][]byte{}}
				for i := range fields {
					c.Set[fmt.Sprint(i)] = value
				}
				if _, err := writer.Apply(ctx, id, c); err != nil {
					failed.Add(1)
					continue
				}
				acked.Add(1)
				lastAcked[w] = g
			}
		})
		wg.Go(func() {
			id := fmt.Sprintf("w%d", w)
			for !stop.Load() {
				rec, err := reader.Load(ctx, id)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err == nil {
					_, err = gen(rec)
				}
				if err != nil {
					t.Errorf("Load(%s): %v", id, err)
					return
				}
			}
		})
	}
	redistest.WaitFor(t, "cuts and writes", func() bool { return p.cuts.Load() >= 50 && acked.Load() >= 200 })
	stop.Store(true)
	wg.Wait()
	for w := range writers {
		id := fmt.Sprintf("w%d", w)
		rec, err := reader.Load(ctx, id)
		if err != nil {
			t.Fatalf("Load(%s): %v", id, err)
		}
		g, err := gen(rec)
		if err != nil {
			t.Fatalf("Load(%s): %v", id, err)
		}
		if n, _ := strconv.ParseUint(g, 10, 64); n < lastAcked[w] {
			t.Errorf("%s holds generation %d, older than the acknowledged %d", id, n, lastAcked[w])
		}
	}
	t.Logf("%d connections cut, %d writes acknowledged, %d failed", p.cuts.Load(), acked.Load(), failed.Load())
}

// stallListener accepts connections and never answers.
func stallListener(t *testing.T) (addr string, closeAll func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return l.Addr().String(), func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
}

func TestDeadlineReturnsPromptlyFromAStalledServer(t *testing.T) {
	for _, ctxTimeouts := range []bool{false, true} {
		t.Run(fmt.Sprintf("with ContextTimeoutEnabled %v", ctxTimeouts), func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			addr, closeAll := stallListener(t)
			// Without ctx, the client would wait a minute per attempt.
			c := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
				ContextTimeoutEnabled: ctxTimeouts})
			s, err := redisstore.New(c)
			if err != nil {
				t.Fatal(err)
			}
			calls := map[string]func(ctx context.Context) error{
				"Apply": func(ctx context.Context) error { _, err := s.Apply(ctx, "a", store.Change{}); return err },
				"Load":  func(ctx context.Context) error { _, err := s.Load(ctx, "a"); return err },
				"List":  func(ctx context.Context) error { _, _, err := s.List(ctx, "", 0); return err },
			}
			for name, call := range calls {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				done := make(chan error, 1)
				go func() { done <- call(ctx) }()
				select {
				case err := <-done:
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("%s: %v, want context.DeadlineExceeded", name, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s did not return 10s after its 50ms deadline", name)
				}
				cancel()
			}
			// Calls left running end when their connections do; Close waits
			// for them, and nothing is left behind.
			closeAll()
			s.Close()
			c.Close()
			goleak.VerifyNone(t, ignore)
		})
	}
}

func TestPoolExhaustionReturnsAnError(t *testing.T) {
	mr, _ := redistest.Miniredis(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: 1, PoolTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	s, err := redisstore.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	// Hold the only connection in a blocking pop.
	held := make(chan error, 1)
	go func() { held <- c.BLPop(context.Background(), 0, "hold").Err() }()
	redistest.WaitFor(t, "the blocking pop to hold the connection", func() bool { return c.PoolStats().TotalConns == 1 && c.PoolStats().IdleConns == 0 })

	done := make(chan error, 1)
	go func() { _, err := s.Apply(context.Background(), "a", store.Change{}); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, redis.ErrPoolTimeout) {
			t.Errorf("Apply with no free connection: %v, want redis.ErrPoolTimeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Apply hangs on an exhausted pool")
	}

	mr.Lpush("hold", "go")
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), "a", store.Change{}); err != nil {
		t.Errorf("Apply once the connection is free: %v", err)
	}
}
