package storeurl

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/store"
)

func TestParseAcceptsEveryForm(t *testing.T) {
	cases := []struct {
		name, url string
		want      spec
	}{
		{"memory with no parameters", "memory://", spec{kind: kindMemory}},
		{"memory with caps and a ttl", "memory://?ttl=30m&max_field=1024&max_record=4096&max_bytes=1048576",
			spec{kind: kindMemory, ttl: 30 * time.Minute, maxField: 1024, maxRecord: 4096, maxBytes: 1 << 20}},
		{"bolt with an absolute path", "bolt:///var/lib/app/livectx.db",
			spec{kind: kindBolt, path: "/var/lib/app/livectx.db"}},
		{"bolt with a relative path and a bucket", "bolt://data/demo.db?bucket=demo&ttl=1h",
			spec{kind: kindBolt, path: "data/demo.db", bucket: "demo", ttl: time.Hour}},
		{"bolt with an escaped space in the path", "bolt:///tmp/my%20file.db",
			spec{kind: kindBolt, path: "/tmp/my file.db"}},
		{"redis with the default port", "redis://localhost",
			spec{kind: kindRedis, addrs: []string{"localhost:6379"}}},
		{"redis with credentials, a database and a prefix", "redis://app:s%40cret@10.0.0.1:6380/3?prefix=app:&ttl=2h",
			spec{kind: kindRedis, addrs: []string{"10.0.0.1:6380"}, username: "app", password: "s@cret",
				db: 3, prefix: "app:", ttl: 2 * time.Hour, redacted: "redis://app:xxxxx@10.0.0.1:6380/3?prefix=app:&ttl=2h"}},
		{"redis with only a password", "redis://:pw@h:1",
			spec{kind: kindRedis, addrs: []string{"h:1"}, password: "pw", redacted: "redis://:xxxxx@h:1"}},
		{"redis on an IPv6 address", "redis://[::1]:6390",
			spec{kind: kindRedis, addrs: []string{"[::1]:6390"}}},
		{"rediss over TLS", "rediss://cache.example:6380",
			spec{kind: kindRedis, tls: true, addrs: []string{"cache.example:6380"}}},
		{"a cluster of three nodes", "redis+cluster://n1:7000,n2:7001,n3?prefix=c:",
			spec{kind: kindCluster, addrs: []string{"n1:7000", "n2:7001", "n3:6379"}, prefix: "c:"}},
		{"a cluster over TLS", "rediss+cluster://n1:7000",
			spec{kind: kindCluster, tls: true, addrs: []string{"n1:7000"}}},
		{"sentinels naming a master", "redis+sentinel://s1,s2:5000/2?master=mymaster&sentinel_password=x",
			spec{kind: kindSentinel, addrs: []string{"s1:26379", "s2:5000"}, db: 2, master: "mymaster", sentinelPassword: "x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parse(c.url)
			if err != nil {
				t.Fatalf("parse(%q): %v", c.url, err)
			}
			if c.want.redacted == "" {
				c.want.redacted = c.url
			}
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("parse(%q)\n got %+v\nwant %+v", c.url, *got, c.want)
			}
		})
	}
}

func TestParseRejectsBadURLsSayingWhy(t *testing.T) {
	cases := []struct {
		name, url, want string
	}{
		{"a bare path", "/tmp/x.db", `no "://"`},
		{"an unknown scheme", "postgres://h/db", `unknown scheme "postgres"`},
		{"an unknown parameter", "redis://h?pool=3", `unknown parameter "pool"`},
		{"a parameter of another backend", "memory://?prefix=a:", `unknown parameter "prefix" for memory://`},
		{"a ttl that is not a duration", "memory://?ttl=10", `ttl="10"`},
		{"a negative ttl", "memory://?ttl=-1s", `ttl="-1s"`},
		{"a ttl given twice", "memory://?ttl=1s&ttl=2s", `ttl="1s,2s"`},
		{"a size that is not a number", "bolt:///x.db?max_field=1k", `max_field="1k"`},
		{"a zero record cap", "bolt:///x.db?max_record=0", `max_record="0"`},
		{"a host on memory", "memory://host", "takes no host"},
		{"bolt without a path", "bolt://", "needs a file path"},
		{"an empty bucket", "bolt:///x.db?bucket=", "empty bucket"},
		{"redis without a host", "redis:///0", "needs a host"},
		{"redis with a bad port", "redis://h:port", `port "port"`},
		{"redis with a port out of range", "redis://h:70000", `port "70000"`},
		{"redis with two hosts", "redis://a,b", "takes one host"},
		{"redis with a bad database", "redis://h/x", `database "x"`},
		{"a cluster with a database", "redis+cluster://a,b/1", "only database 0"},
		{"sentinels without a master", "redis+sentinel://s1", "needs master=NAME"},
		{"an empty host in a list", "redis+cluster://a,,b", "empty host"},
		{"a fragment", "memory://#x", "unexpected fragment"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(c.url)
			if err == nil {
				t.Fatalf("parse(%q) succeeded, want an error containing %q", c.url, c.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || !strings.Contains(msg, "forms: memory://") || !strings.HasPrefix(msg, "storeurl: ") {
				t.Errorf("parse(%q) = %q, want it to start with \"storeurl: \", contain %q and list the forms", c.url, msg, c.want)
			}
		})
	}
}

func TestErrorsNeverShowThePassword(t *testing.T) {
	_, err := parse("redis://u:hunter2@h:1?bogus=1")
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "u:xxxxx@h:1") {
		t.Fatalf("error = %v, want the URL with its password hidden", err)
	}
}

// roundTrip writes a field under id, reads it back and lists it.
func roundTrip(t *testing.T, s store.ContextStore, id string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Apply(ctx, id, store.Change{Set: map[string][]byte{"n": {0x01}}}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	rec, err := s.Load(ctx, id)
	if err != nil || string(rec.Fields["n"]) != "\x01" {
		t.Fatalf("Load = %v, %v; want field n = 0x01", rec, err)
	}
	l, ok := s.(store.Lister)
	if !ok {
		t.Fatalf("%T is not a store.Lister", s)
	}
	ids, _, err := l.List(ctx, "", 10)
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("List = %q, %v; want [%q]", ids, err, id)
	}
}

func TestOpenMemoryAppliesTheCaps(t *testing.T) {
	s, err := Open(context.Background(), "memory://?max_field=4")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	roundTrip(t, s, "a")
	_, err = s.Apply(context.Background(), "a", store.Change{Set: map[string][]byte{"big": []byte("12345")}})
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Apply of 5 bytes with max_field=4: %v, want ErrTooLarge", err)
	}
}

func TestOpenBoltKeepsRecordsAcrossReopening(t *testing.T) {
	u := "bolt://" + filepath.Join(t.TempDir(), "s.db") + "?bucket=b&ttl=1h"
	s, err := Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s, "a")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	s, err = Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Load(context.Background(), "a"); err != nil {
		t.Fatalf("Load after reopening: %v", err)
	}
	other, err := Open(context.Background(), "bolt://"+filepath.Join(t.TempDir(), "missing-dir", "x", "s.db"))
	if err == nil {
		other.Close()
		t.Fatal("Open of a file in a missing directory succeeded")
	}
}

func TestExistingFindsTheStoreAndReadOnlyDoesNotWriteIt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	u := "bolt://" + path + "?bucket=b"
	s, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s, "a")
	s.Close()

	ro, err := Open(ctx, u, Existing(), ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Load(ctx, "a"); err != nil {
		t.Errorf("Load on a read-only store: %v", err)
	}
	if err := ro.Delete(ctx, "a"); !errors.Is(err, boltstore.ErrReadOnly) {
		t.Errorf("Delete on a read-only store: %v, want boltstore.ErrReadOnly", err)
	}
	ro.Close() // it holds the file's lock
	for _, u := range []string{"memory://", "bolt://" + path + "?bucket=zzz", "bbolt://" + path + ".typo"} {
		if s, err := Open(ctx, u, Existing()); !errors.Is(err, ErrNoStore) {
			if err == nil {
				s.Close()
			}
			t.Errorf("Open(%q, Existing()): %v, want ErrNoStore", u, err)
		}
	}
}

func TestOpenRedisOwnsItsClient(t *testing.T) {
	m := miniredis.RunT(t)
	s, err := Open(context.Background(), "redis://"+m.Addr()+"/0?prefix=t:&ttl=30m")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s, "a")
	if got := m.TTL("t:a"); got != 30*time.Minute {
		t.Errorf("TTL of t:a = %v, want 30m", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.(*ownedRedis).client.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Ping after Close = %v, want the client closed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := s.Load(context.Background(), "a"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Load after Close = %v, want ErrClosed", err)
	}
}

func TestOpenRedisUsesTheDatabaseAndPassword(t *testing.T) {
	m := miniredis.RunT(t)
	m.RequireAuth("pw")
	s, err := Open(context.Background(), "redis://:pw@"+m.Addr()+"/2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	roundTrip(t, s, "a")
	m.Select(2)
	if !m.Exists("livectx:a") {
		t.Errorf("livectx:a is not in database 2; keys: %q", m.Keys())
	}
}

func TestOpenRedisFailsFastOnAWrongPassword(t *testing.T) {
	m := miniredis.RunT(t)
	m.RequireAuth("pw")
	s, err := Open(context.Background(), "redis://:nope@"+m.Addr())
	if err == nil {
		s.Close()
		t.Fatal("Open with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "nope") {
		t.Errorf("error shows the password: %v", err)
	}
}
