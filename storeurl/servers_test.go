package storeurl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
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

// startRedis runs redis-server with args until the end of the test.
func startRedis(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

func TestOpenThroughSentinel(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed: no Sentinel to open")
	}
	master, sentinel := freePort(t), freePort(t)
	startRedis(t, "--port", fmt.Sprint(master), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	err := os.WriteFile(conf, []byte(strings.Join([]string{
		fmt.Sprintf("port %d", sentinel),
		"bind 127.0.0.1",
		fmt.Sprintf("sentinel monitor lctx 127.0.0.1 %d 1", master),
		"sentinel down-after-milliseconds lctx 60000",
	}, "\n")+"\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	startRedis(t, conf, "--sentinel")

	// Wait until the Sentinel answers with the master's address.
	sc := redis.NewSentinelClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", sentinel)})
	defer sc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err := sc.GetMasterAddrByName(ctx, "lctx").Result()
		cancel()
		if err == nil && len(got) == 2 && got[1] == fmt.Sprint(master) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Sentinel does not name the master: %q, %v", got, err)
		}
		time.Sleep(50 * time.Millisecond) // a server starting up: no clock to inject
	}
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
