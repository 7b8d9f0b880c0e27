package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/store"
)

// Environment variables that point the tests at real servers.
const (
	envAddr    = "LIVECTX_REDIS_ADDR"    // host:port of a standalone server
	envCluster = "LIVECTX_REDIS_CLUSTER" // comma-separated addresses of a cluster
	envFaults  = "LIVECTX_REDIS_FAULTS"  // "1": start redis-server processes for fault tests
)

// target is a Redis the tests can run against.
type target struct {
	name   string
	client redis.UniversalClient
	// advance makes the server's clock pass d: miniredis fast-forwards, a
	// real server sleeps.
	advance func(d time.Duration)
	// ttl is the TTL the conformance suite's expiry cases use.
	ttl time.Duration
}

// newMiniredis starts a miniredis for t and returns a client on it.
func newMiniredis(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { c.Close() })
	return mr, c
}

// serverClient returns a client on LIVECTX_REDIS_ADDR; it skips t when the
// variable is unset and fails t when the server cannot be reached.
func serverClient(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv(envAddr)
	if addr == "" {
		t.Skipf("%s is not set: no real Redis server to test against", envAddr)
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	ping(t, c, addr)
	return c
}

// clusterClient returns a client on LIVECTX_REDIS_CLUSTER, skipping or
// failing t as serverClient does.
func clusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	addrs := os.Getenv(envCluster)
	if addrs == "" {
		t.Skipf("%s is not set: no real Redis Cluster to test against", envCluster)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	t.Cleanup(func() { c.Close() })
	ping(t, c, addrs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() }); err != nil {
		t.Fatalf("cluster %s: %v", addrs, err)
	}
	return c
}

func ping(t testing.TB, c redis.UniversalClient, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s is set but unreachable: %v", addr, err)
	}
}

// testPrefix returns a prefix no other test uses, and deletes every key
// under it when t ends.
func testPrefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	p := "livectx-test:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() { deleteUnder(t, c, p) })
	return p
}

// deleteUnder deletes the keys under prefix p (which holds no glob
// character) on every master.
func deleteUnder(t testing.TB, c redis.UniversalClient, p string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	del := func(ctx context.Context, n *redis.Client) error {
		iter := n.Scan(ctx, 0, p+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := n.Unlink(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	var err error
	switch c := c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, del)
	case *redis.Client:
		err = del(ctx, c)
	}
	if err != nil {
		t.Errorf("deleting the keys under %q: %v", p, err)
	}
}

// targets returns miniredis and, when their variables are set, the real
// server and cluster. Each one's client is shared by its subtests; every
// store gets its own prefix.
func targets() []func(t *testing.T) target {
	return []func(t *testing.T) target{
		func(t *testing.T) target {
			mr, c := newMiniredis(t)
			return target{name: "miniredis", client: c, advance: mr.FastForward, ttl: time.Minute}
		},
		func(t *testing.T) target {
			return target{name: "server", client: serverClient(t), advance: time.Sleep, ttl: 2 * time.Second}
		},
		func(t *testing.T) target {
			return target{name: "cluster", client: clusterClient(t), advance: time.Sleep, ttl: 2 * time.Second}
		},
	}
}

var targetNames = []string{"miniredis", "server", "cluster"}

// forEachTarget runs f in a subtest per target.
func forEachTarget(t *testing.T, f func(t *testing.T, tg target)) {
	for i, open := range targets() {
		t.Run("on "+targetNames[i], func(t *testing.T) { f(t, open(t)) })
	}
}

// newStore returns a store on tg under a fresh prefix, closed when t ends.
func newStore(t testing.TB, c redis.UniversalClient, opts ...store.Option) *redisstore.Store {
	t.Helper()
	opts = append([]store.Option{redisstore.WithPrefix(testPrefix(t, c))}, opts...)
	s, err := redisstore.New(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
