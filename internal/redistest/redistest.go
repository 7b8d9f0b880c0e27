// Package redistest gives livectx's tests the Redis servers they run
// against: a miniredis per test, the real server and cluster that
// LIVECTX_REDIS_ADDR and LIVECTX_REDIS_CLUSTER name (.ci/run starts both),
// and redis-server processes of a test's own when LIVECTX_REDIS_FAULTS=1.
// Tests get a prefix of their own and every key under it is deleted when
// they end; nothing else on a shared server is touched.
package redistest

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
)

// Environment variables that point the tests at real servers.
const (
	EnvAddr    = "LIVECTX_REDIS_ADDR"    // host:port of a standalone server
	EnvCluster = "LIVECTX_REDIS_CLUSTER" // comma-separated addresses of a cluster
	EnvFaults  = "LIVECTX_REDIS_FAULTS"  // "1": tests start redis-server processes of their own
)

// Target is a Redis the tests can run against.
type Target struct {
	Name   string
	Client redis.UniversalClient
	// Advance makes the server's clock pass d: miniredis fast-forwards, a
	// real server sleeps.
	Advance func(d time.Duration)
}

// Targets opens, for t, miniredis and, when their variables are set, the
// real server and the real cluster (a subtest per target is the usual use:
// unset variables skip it with a message, unreachable servers fail it).
var Targets = []struct {
	Name string
	// TTL suits expiry tests on this target: zero (a test's default) where
	// time is fake, two real seconds on a server.
	TTL  time.Duration
	Open func(t testing.TB) Target
}{
	{"miniredis", 0, func(t testing.TB) Target {
		mr, c := Miniredis(t)
		return Target{Name: "miniredis", Client: c, Advance: mr.FastForward}
	}},
	{"server", 2 * time.Second, func(t testing.TB) Target {
		return Target{Name: "server", Client: Server(t), Advance: time.Sleep}
	}},
	{"cluster", 2 * time.Second, func(t testing.TB) Target {
		return Target{Name: "cluster", Client: Cluster(t), Advance: time.Sleep}
	}},
}

// Miniredis starts a miniredis for t and returns a client on it.
func Miniredis(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { c.Close() })
	return mr, c
}

// Server returns a client on LIVECTX_REDIS_ADDR; it skips t when the
// variable is unset and fails t when the server cannot be reached.
func Server(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv(EnvAddr)
	if addr == "" {
		t.Skipf("%s is not set: no real Redis server to test against", EnvAddr)
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	ping(t, c, addr)
	return c
}

// Cluster returns a client on LIVECTX_REDIS_CLUSTER, skipping or failing t
// as Server does.
func Cluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	addrs := os.Getenv(EnvCluster)
	if addrs == "" {
		t.Skipf("%s is not set: no real Redis Cluster to test against", EnvCluster)
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

// Prefix returns a key prefix no other test uses, and deletes every key
// under it when t ends.
func Prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	p := "livectx-test:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() { DeleteUnder(t, c, p) })
	return p
}

// DeleteUnder deletes the keys under prefix p (which holds no glob
// character) on every master, with SCAN, never KEYS.
func DeleteUnder(t testing.TB, c redis.UniversalClient, p string) {
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
