package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/store"
)

// The benchmarks run on LIVECTX_REDIS_ADDR (BenchmarkApplyScriptCache on a
// redis-server of its own, when LIVECTX_REDIS_FAULTS=1), the store side by
// side with the raw go-redis commands doing the same work without
// versioning:
//
//	go test ./redisstore -run '^$' -bench . -benchmem -count 6 > bench.txt
//	benchstat -col /impl bench.txt

// countingConn counts the bytes a client sends and receives.
type countingConn struct {
	net.Conn
	out, in *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

// benchClient returns a client on addr with counters of the bytes it sends
// and receives.
func benchClient(b *testing.B, addr string) (c *redis.Client, out, in *atomic.Int64) {
	out, in = new(atomic.Int64), new(atomic.Int64)
	c = redis.NewClient(&redis.Options{
		Addr:     addr,
		PoolSize: 64,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return countingConn{conn, out, in}, err
		},
	})
	b.Cleanup(func() { c.Close() })
	return c, out, in
}

// runGoroutines runs op b.N times in total from n goroutines; op gets the
// goroutine's number.
func runGoroutines(b *testing.B, n int, op func(g int) error) {
	if n == 1 {
		for b.Loop() {
			if err := op(0); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism((n + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		g := int(next.Add(1) - 1)
		for pb.Next() {
			if err := op(g); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// wire reports the bytes sent and received per operation, the CPU time
// the server's main thread spent per operation (what bounds a Redis
// server's throughput, and less noisy than wall time on a shared machine),
// and the part of it spent inside the commands (cmd-µs/op).
func wire(b *testing.B, c *redis.Client, out, in *atomic.Int64, do func()) {
	cpu0, cmd0 := serverCPU(b, c), commandTime(b, c)
	out.Store(0)
	in.Store(0)
	do()
	sent, recv := out.Load(), in.Load()
	b.ReportMetric(float64(sent)/float64(b.N), "sent-B/op")
	b.ReportMetric(float64(recv)/float64(b.N), "recv-B/op")
	b.ReportMetric((serverCPU(b, c)-cpu0)*1e6/float64(b.N), "server-µs/op")
	b.ReportMetric(commandTime(b, c).since(cmd0)/float64(b.N), "cmd-µs/op")
}

// commandTimes are the microseconds the server spent inside each command
// (INFO commandstats): its work on the records, without the socket reads
// and writes, parsing and replies around it, which cost about the same for
// any command sent alone and make most of server-µs/op and of its noise.
type commandTimes map[string]float64

// since returns the microseconds spent in commands since t0: in scripts
// and functions when some ran (the commands they call are counted in their
// time and again on their own), else in every command but INFO.
func (t commandTimes) since(t0 commandTimes) float64 {
	var scripts, all float64
	for k, v := range t {
		switch d := v - t0[k]; k {
		case "info":
		case "eval", "evalsha", "fcall":
			scripts += d
			all += d
		default:
			all += d
		}
	}
	if scripts > 0 {
		return scripts
	}
	return all
}

// commandTime returns the server's commandTimes.
func commandTime(b *testing.B, c *redis.Client) commandTimes {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	t := commandTimes{}
	for _, line := range strings.Split(info, "\r\n") {
		// cmdstat_hset:calls=2,usec=12,usec_per_call=6.00,...
		name, stats, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || name == line {
			continue
		}
		for _, kv := range strings.Split(stats, ",") {
			if v, ok := strings.CutPrefix(kv, "usec="); ok {
				t[name], _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return t
}

// serverCPU returns the seconds of CPU the server's main thread has used.
func serverCPU(b *testing.B, c *redis.Client) float64 {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "used_cpu_sys_main_thread" || k == "used_cpu_user_main_thread" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

const benchTTL = 10 * time.Minute

// floorScript makes the four calls apply.lua makes for a one-field merge
// (HGET, HSTRLEN, HSET, PEXPIRE) and nothing else: what any script doing
// that work costs, beside which the rest of apply.lua's cost shows.
var floorScript = redis.NewScript(`
redis.call('HGET', KEYS[1], '')
redis.call('HSTRLEN', KEYS[1], 'field')
redis.call('HSET', KEYS[1], '', '1 1028', 'field', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)

// entryScript does nothing: what calling a script costs before its body.
var entryScript = redis.NewScript(`return 1`)

// applyFunctions is a library of Redis 7 functions named lib: lib_floor
// makes floorScript's four calls, lib_apply runs apply.lua's body (KEYS and
// ARGV its parameters). FCALL skips EVALSHA's script-cache lookup; these
// show whether that makes a call cheaper (on Redis 7.0.15 it does not).
func applyFunctions(lib string) string {
	return "#!lua name=" + lib + `
redis.register_function('` + lib + `_floor', function(KEYS, ARGV)
redis.call('HGET', KEYS[1], '')
redis.call('HSTRLEN', KEYS[1], 'field')
redis.call('HSET', KEYS[1], '', '1 1028', 'field', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
end)
redis.register_function('` + lib + `_apply', function(KEYS, ARGV)
` + redisstore.ApplySource + `
end)`
}

// loadFunctions loads applyFunctions under a library name of its own, and
// deletes the library when b ends (functions are global to the server). It
// returns the library's name, or "" when the server has no functions.
func loadFunctions(b *testing.B, c *redis.Client) string {
	r := make([]byte, 8)
	rand.Read(r)
	lib := "livectx_bench_" + hex.EncodeToString(r)
	ctx := context.Background()
	if err := c.FunctionLoad(ctx, applyFunctions(lib)).Err(); err != nil {
		b.Logf("no functions on this server (Redis 7 has them): %v", err)
		return ""
	}
	b.Cleanup(func() {
		if err := c.FunctionDelete(ctx, lib).Err(); err != nil {
			b.Errorf("deleting function library %s: %v", lib, err)
		}
	})
	return lib
}

// versionedArgs are apply.lua's ARGV for a versioned merge of one field
// named "field" (see apply.lua), as a store sends them.
func versionedArgs(version uint64, value []byte) []any {
	return []any{version, "0", benchTTL.Milliseconds(), 1 << 24, 1, "field", value}
}

// rawApply is what Apply of one field does without versioning: HSET and
// PEXPIRE in one pipeline, one round trip.
func rawApply(ctx context.Context, c *redis.Client, key string, value []byte) error {
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "field", value)
		p.PExpire(ctx, key, benchTTL)
		return nil
	})
	return err
}

// BenchmarkApply writes one 1 KiB field of one record per goroutine.
func BenchmarkApply(b *testing.B) {
	c, out, in := benchClient(b, redistest.Server(b).Options().Addr) // skips or fails as the tests do
	ctx := context.Background()
	s := newStore(b, c, store.WithTTL(benchTTL))
	prefix := redistest.Prefix(b, c)
	value := bytes.Repeat([]byte("v"), 1024)
	applyScript := redis.NewScript(redisstore.ApplySource)
	lib := loadFunctions(b, c)
	for _, n := range []int{1, 32} {
		b.Run(fmt.Sprintf("goroutines=%d/impl=livectx", n), func(b *testing.B) {
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(g int) error {
					_, err := s.Apply(ctx, fmt.Sprint("apply-", g), store.Change{Set: map[string][]byte{"field": value}})
					return err
				})
			})
		})
		// The versioned cases keep each record's version across the calls
		// b.Run makes, and a record per goroutine count.
		versions := map[string][]uint64{"livectx": make([]uint64, n), "script": make([]uint64, n), "fcall": make([]uint64, n)}
		b.Run(fmt.Sprintf("goroutines=%d/impl=livectx-versioned", n), func(b *testing.B) {
			// What a socket's event sends: the write checks the version.
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(g int) error {
					v, err := s.Apply(ctx, fmt.Sprint("versioned-", n, "-", g), store.Change{Set: map[string][]byte{"field": value}, CheckVersion: true, IfVersion: versions["livectx"][g]})
					versions["livectx"][g] = v
					return err
				})
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/impl=raw", n), func(b *testing.B) {
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(g int) error { return rawApply(ctx, c, fmt.Sprint(prefix, "apply-", g), value) })
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/impl=blind-set", n), func(b *testing.B) {
			// What the peers send per event: SET of one value, no check.
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(g int) error { return c.Set(ctx, fmt.Sprint(prefix, "set-", g), value, benchTTL).Err() })
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/impl=script-floor", n), func(b *testing.B) {
			ttl := benchTTL.Milliseconds()
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(g int) error {
					key := fmt.Sprint(prefix, "floor-", g)
					return floorScript.Run(ctx, c, []string{key}, value, ttl).Err()
				})
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/impl=script-entry", n), func(b *testing.B) {
			// A script that does nothing, given the arguments of a
			// one-field merge (the 1 KiB value among them): what entering
			// Lua and building ARGV cost, beside which the floor's four
			// calls show.
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(int) error {
					return entryScript.Run(ctx, c, []string{prefix + "entry"}, versionedArgs(1, value)...).Err()
				})
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/impl=script-entry-noargs", n), func(b *testing.B) {
			// The same script without arguments: entering Lua alone.
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(int) error {
					return entryScript.Run(ctx, c, []string{prefix + "entry"}).Err()
				})
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/impl=script-apply", n), func(b *testing.B) {
			// What livectx-versioned sends, from the client itself: the
			// server's work is the same, the store's queue is left out.
			versions := versions["script"]
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(g int) error {
					key := fmt.Sprint(prefix, "script-apply-", n, "-", g)
					v, err := applyScript.Run(ctx, c, []string{key}, versionedArgs(versions[g], value)...).Uint64()
					versions[g] = v
					return err
				})
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/impl=fcall-floor", n), func(b *testing.B) {
			// script-floor's four calls as a function.
			if lib == "" {
				b.Skip("no functions")
			}
			ttl := benchTTL.Milliseconds()
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(g int) error {
					key := fmt.Sprint(prefix, "fcall-floor-", g)
					return c.FCall(ctx, lib+"_floor", []string{key}, value, ttl).Err()
				})
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/impl=fcall-apply", n), func(b *testing.B) {
			// script-apply's body and arguments as a function.
			if lib == "" {
				b.Skip("no functions")
			}
			versions := versions["fcall"]
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(g int) error {
					key := fmt.Sprint(prefix, "fcall-apply-", n, "-", g)
					v, err := c.FCall(ctx, lib+"_apply", []string{key}, versionedArgs(versions[g], value)...).Uint64()
					versions[g] = v
					return err
				})
			})
		})
	}
}

// BenchmarkApplyScriptCache writes one 1 KiB field from one goroutine on a
// server of its own, beside the raw commands, first with apply.lua the only
// script the server caches, then with 20,000 others cached: every script
// call's cost grows with the server's Lua heap, which other applications'
// scripts on a shared server make larger.
func BenchmarkApplyScriptCache(b *testing.B) {
	srv := redistest.StartProcess(b)
	c, out, in := benchClient(b, srv.Addr())
	ctx := context.Background()
	s := newStore(b, c, store.WithTTL(benchTTL))
	value := bytes.Repeat([]byte("v"), 1024)
	loaded := 0
	for _, others := range []int{0, 20000} {
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for ; loaded < others; loaded++ {
				p.ScriptLoad(ctx, fmt.Sprint("return ", loaded))
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("other-scripts=%d/impl=livectx", others), func(b *testing.B) {
			wire(b, c, out, in, func() {
				runGoroutines(b, 1, func(int) error {
					_, err := s.Apply(ctx, "apply", store.Change{Set: map[string][]byte{"field": value}})
					return err
				})
			})
		})
		b.Run(fmt.Sprintf("other-scripts=%d/impl=raw", others), func(b *testing.B) {
			wire(b, c, out, in, func() {
				runGoroutines(b, 1, func(int) error { return rawApply(ctx, c, "raw", value) })
			})
		})
	}
}

// BenchmarkLoad reads a record of 20 fields of 1 KiB each: with Load
// (HGETALL), with LoadFields told the 20 names (HMGET), and raw HGETALL.
func BenchmarkLoad(b *testing.B) {
	c, out, in := benchClient(b, redistest.Server(b).Options().Addr) // skips or fails as the tests do
	ctx := context.Background()
	s := newStore(b, c, store.WithTTL(benchTTL))
	prefix := redistest.Prefix(b, c)
	fields := map[string][]byte{}
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprint("field-", i))
		fields[names[i]] = bytes.Repeat([]byte{byte('a' + i)}, 1024)
	}
	if _, err := s.Apply(ctx, "load", store.Change{Set: fields}); err != nil {
		b.Fatal(err)
	}
	for k, v := range fields {
		c.HSet(ctx, prefix+"load", k, v)
	}
	for _, n := range []int{1, 32} {
		b.Run(fmt.Sprintf("goroutines=%d/impl=livectx", n), func(b *testing.B) {
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(int) error {
					rec, err := s.Load(ctx, "load")
					if err == nil && len(rec.Fields) != 20 {
						err = fmt.Errorf("loaded %d fields", len(rec.Fields))
					}
					return err
				})
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/impl=livectx-fields", n), func(b *testing.B) {
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(int) error {
					values, rest, err := s.LoadFields(ctx, "load", names)
					if err == nil && (len(values) != 20 || values[19] == nil || len(rest.Fields) != 0) {
						err = fmt.Errorf("loaded %d values and %d other fields", len(values), len(rest.Fields))
					}
					return err
				})
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/impl=raw", n), func(b *testing.B) {
			wire(b, c, out, in, func() {
				runGoroutines(b, n, func(int) error {
					h, err := c.HGetAll(ctx, prefix+"load").Result()
					if err == nil && len(h) != 20 {
						err = fmt.Errorf("loaded %d fields", len(h))
					}
					return err
				})
			})
		})
	}
}
