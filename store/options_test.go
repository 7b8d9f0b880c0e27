package store_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/store"
)

// TestOptionsOfAnotherBackendDoNotCompile builds two small programs inside
// this module: one passing shared and own options to each backend, which
// must build, and one passing a bbolt option to the memory store, which
// must fail with a type error.
func TestOptionsOfAnotherBackendDoNotCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	const imports = `package main

import (
	"time"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/store"
)

var _ = []any{time.Second, boltstore.Open, memory.New, redisstore.New, store.WithTTL}

`
	build := func(t *testing.T, body string) (string, error) {
		t.Helper()
		// Inside the module, so that its imports resolve; a name that
		// starts with "_" keeps it out of ./... patterns.
		dir, err := os.MkdirTemp(".", "_optioncheck-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(imports+body), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(goCmd, "build", "-o", os.DevNull, "./"+filepath.ToSlash(dir)).CombinedOutput()
		return string(out), err
	}

	t.Run("shared and own options build with each backend", func(t *testing.T) {
		out, err := build(t, `func main() {
	memory.New(store.WithTTL(time.Minute), memory.WithMaxBytes(1<<20))
	boltstore.Open("x.db", store.WithTTL(time.Minute), store.WithClock(time.Now), boltstore.WithBucket("b"))
	redisstore.New(nil, redisstore.WithPrefix("app:"), store.WithMaxRecordSize(1<<20))
	shared := []store.Option{store.WithTTL(time.Minute)}
	memory.New(store.OptionsFor[memory.Option](shared)...)
}
`)
		if err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	})
	t.Run("another backend's option is a type error", func(t *testing.T) {
		out, err := build(t, `func main() {
	memory.New(boltstore.WithBucket("x"))
}
`)
		if err == nil {
			t.Fatal("memory.New(boltstore.WithBucket(\"x\")) compiled")
		}
		if !strings.Contains(out, `cannot use boltstore.WithBucket("x")`) || !strings.Contains(out, "memory.Option") {
			t.Fatalf("go build failed, but not with the type error:\n%s", out)
		}
	})
}

// A backend's option put in a []store.Option can reach another backend's
// constructor; the constructors that return an error say so.
func TestAnOptionOfAnotherBackendIsReported(t *testing.T) {
	laundered := []store.Option{store.WithTTL(1), memory.WithMaxBytes(1 << 20)}
	_, err := boltstore.Open(filepath.Join(t.TempDir(), "x.db"), store.OptionsFor[boltstore.Option](laundered)...)
	if !errors.Is(err, store.ErrUnusedOption) || !strings.Contains(err.Error(), "memory.WithMaxBytes") {
		t.Errorf("boltstore.Open with memory.WithMaxBytes: %v, want store.ErrUnusedOption naming it", err)
	}
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // New does no I/O
	t.Cleanup(func() { client.Close() })
	_, err = redisstore.New(client, store.OptionsFor[redisstore.Option]([]store.Option{boltstore.WithBucket("b")})...)
	if !errors.Is(err, store.ErrUnusedOption) || !strings.Contains(err.Error(), "boltstore.WithBucket") {
		t.Errorf("redisstore.New with boltstore.WithBucket: %v, want store.ErrUnusedOption naming it", err)
	}

}
