package storeurl

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/store"
)

// uniquePrefix keeps a test's keys apart from everything else on a shared
// server.
func uniquePrefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "storeurl-test-" + hex.EncodeToString(b) + ":"
}

// openAndRoundTrip opens u, writes, reads and lists a record, and deletes it.
func openAndRoundTrip(t *testing.T, u string) {
	t.Helper()
	s, err := Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Delete(context.Background(), "a")
		s.Close()
	})
	roundTrip(t, s, "a")
}

func TestOpenARealRedisServer(t *testing.T) {
	addr := os.Getenv(redistest.EnvAddr)
	if addr == "" {
		t.Skipf("%s is not set: no real Redis server to open", redistest.EnvAddr)
	}
	openAndRoundTrip(t, "redis://"+addr+"/0?prefix="+uniquePrefix())
}

func TestOpenARealRedisCluster(t *testing.T) {
	addrs := os.Getenv(redistest.EnvCluster)
	if addrs == "" {
		t.Skipf("%s is not set: no real Redis Cluster to open", redistest.EnvCluster)
	}
	openAndRoundTrip(t, "redis+cluster://"+addrs+"?prefix="+uniquePrefix())
}

// freePort returns a port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRedis runs redis-server with args until the end of the test; kill
// kills it sooner.
func startRedis(t *testing.T, args ...string) (kill func()) {
	t.Helper()
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(kill)
	return kill
}

// startSentinel starts a Sentinel monitoring, as "lctx" with a quorum of
// one, the master on port master; it considers the master down after
// downAfter. It returns the Sentinel's port once the Sentinel names that
// master.
func startSentinel(t *testing.T, master int, downAfter time.Duration) int {
	t.Helper()
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	err := os.WriteFile(conf, []byte(strings.Join([]string{
		fmt.Sprintf("port %d", port),
		"bind 127.0.0.1",
		fmt.Sprintf("sentinel monitor lctx 127.0.0.1 %d 1", master),
		fmt.Sprintf("sentinel down-after-milliseconds lctx %d", downAfter.Milliseconds()),
		"sentinel failover-timeout lctx 5000",
	}, "\n")+"\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	startRedis(t, conf, "--sentinel")
	sc := redis.NewSentinelClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer sc.Close()
	waitUntil(t, "the Sentinel names the master", func() bool {
		got, err := sc.GetMasterAddrByName(context.Background(), "lctx").Result()
		return err == nil && len(got) == 2 && got[1] == fmt.Sprint(master)
	})
	return port
}

// waitUntil polls cond for up to 30 s: servers starting up, or Sentinel
// failing over, run on their own clocks.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, still not: %s", what)
		}
	}
}

func skipWithoutRedisServer(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed: no Sentinel to open")
	}
}

func TestOpenThroughSentinel(t *testing.T) {
	skipWithoutRedisServer(t)
	master := freePort(t)
	startRedis(t, "--port", fmt.Sprint(master), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	sentinel := startSentinel(t, master, time.Minute)
	openAndRoundTrip(t, fmt.Sprintf("redis+sentinel://127.0.0.1:%d/1?master=lctx&prefix=s:&ttl=1m", sentinel))

	// The record is on the master, in database 1.
	mc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", master), DB: 1})
	defer mc.Close()
	s, err := Open(context.Background(), fmt.Sprintf("redis+sentinel://127.0.0.1:%d/1?master=lctx&prefix=s:", sentinel))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply(context.Background(), "b", store.Change{Set: map[string][]byte{"f": {1}}}); err != nil {
		t.Fatal(err)
	}
	if n, err := mc.Exists(context.Background(), "s:b").Result(); err != nil || n != 1 {
		t.Errorf("s:b on the master's database 1: %d, %v; want it there", n, err)
	}
}

// TestStoreFollowsASentinelFailover kills the master under a store opened
// through Sentinel: writes fail while no master is elected, then the store
// writes to the promoted replica by itself, and every write the replica had
// acknowledged (WAIT) before the kill is there. Redis replicates
// asynchronously, so a write the master acknowledged but never copied may
// be lost in a failover; the test asserts only what replication promises.
func TestStoreFollowsASentinelFailover(t *testing.T) {
	skipWithoutRedisServer(t)
	ctx := context.Background()
	master, replica := freePort(t), freePort(t)
	killMaster := startRedis(t, "--port", fmt.Sprint(master), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--repl-diskless-sync-delay", "0")
	startRedis(t, "--port", fmt.Sprint(replica), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--replicaof", "127.0.0.1", fmt.Sprint(master))
	mc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", master)})
	defer mc.Close()
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", replica)})
	defer rc.Close()
	waitUntil(t, "the replica is in sync", func() bool {
		info, err := rc.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	sentinel := startSentinel(t, master, 500*time.Millisecond)
	s, err := Open(ctx, fmt.Sprintf("redis+sentinel://127.0.0.1:%d?master=lctx&prefix=f:", sentinel))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const before = 50
	for i := range before {
		if _, err := s.Apply(ctx, fmt.Sprint("before-", i), store.Change{Set: map[string][]byte{"i": {byte(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := mc.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d replicas acknowledged, %v; want 1", n, err)
	}
	killMaster()

	failed := 0
	waitUntil(t, "a write reaches the promoted replica", func() bool {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := s.Apply(wctx, "after", store.Change{Set: map[string][]byte{"i": {1}}})
		if err != nil {
			failed++
		}
		return err == nil
	})
	if failed == 0 {
		t.Error("no write failed while the master was down")
	}
	if n, err := rc.Exists(ctx, "f:after").Result(); err != nil || n != 1 {
		t.Errorf("f:after on the promoted replica: %d, %v; want it there", n, err)
	}
	for i := range before {
		id := fmt.Sprint("before-", i)
		rec, err := s.Load(ctx, id)
		if err != nil || rec.Version != 1 || !bytes.Equal(rec.Fields["i"], []byte{byte(i)}) {
			t.Errorf("Load(%s) after the failover = %+v, %v; want version 1, i = %d", id, rec, err, i)
		}
	}
	t.Logf("%d writes failed while Sentinel elected a new master", failed)
}
