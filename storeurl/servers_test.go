package storeurl

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// startSentinel starts a Sentinel monitoring, as "lctx" with a quorum of
// one, the master on port master; it considers the master down after
// downAfter. It returns the Sentinel's address once the Sentinel names that
// master.
func startSentinel(t *testing.T, master int, downAfter time.Duration) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	err := os.WriteFile(conf, []byte(strings.Join([]string{
		fmt.Sprintf("sentinel monitor lctx 127.0.0.1 %d 1", master),
		fmt.Sprintf("sentinel down-after-milliseconds lctx %d", downAfter.Milliseconds()),
		"sentinel failover-timeout lctx 5000",
	}, "\n")+"\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sentinel := redistest.StartProcess(t, conf, "--sentinel")
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.Addr()})
	defer sc.Close()
	redistest.WaitFor(t, "the Sentinel names the master", func() bool {
		got, err := sc.GetMasterAddrByName(context.Background(), "lctx").Result()
		return err == nil && len(got) == 2 && got[1] == fmt.Sprint(master)
	})
	return sentinel.Addr()
}

func TestOpenThroughSentinel(t *testing.T) {
	master := redistest.StartProcess(t)
	sentinel := startSentinel(t, master.Port, time.Minute)
	openAndRoundTrip(t, "redis+sentinel://"+sentinel+"/1?master=lctx&prefix=s:&ttl=1m")

	// The record is on the master, in database 1.
	mc := redis.NewClient(&redis.Options{Addr: master.Addr(), DB: 1})
	defer mc.Close()
	s, err := Open(context.Background(), "redis+sentinel://"+sentinel+"/1?master=lctx&prefix=s:")
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
	ctx := context.Background()
	master := redistest.StartProcess(t, "--repl-diskless-sync-delay", "0")
	replica := redistest.StartProcess(t, "--replicaof", "127.0.0.1", fmt.Sprint(master.Port))
	mc := redis.NewClient(&redis.Options{Addr: master.Addr()})
	defer mc.Close()
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	defer rc.Close()
	redistest.WaitFor(t, "the replica is in sync", func() bool {
		info, err := rc.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	sentinel := startSentinel(t, master.Port, 500*time.Millisecond)
	s, err := Open(ctx, "redis+sentinel://"+sentinel+"?master=lctx&prefix=f:")
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
	master.Kill()

	failed := 0
	redistest.WaitFor(t, "a write reaches the promoted replica", func() bool {
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
