package boltstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/store"
)

func Example() {
	dir, err := os.MkdirTemp("", "livectx-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "contexts.db")
	ctx := context.Background()

	s, err := boltstore.Open(path, store.WithTTL(24*time.Hour))
	if err != nil {
		panic(err)
	}
	v, err := s.Apply(ctx, "lv:42", store.Change{Set: map[string][]byte{"count": []byte("1"), "user": []byte("ada")}})
	if err != nil {
		panic(err)
	}
	fmt.Println("written at version", v)
	s.Close()

	// After a restart, the same file restores the context.
	s, err = boltstore.Open(path, store.WithTTL(24*time.Hour))
	if err != nil {
		panic(err)
	}
	defer s.Close()
	rec, err := s.Load(ctx, "lv:42")
	if err != nil {
		panic(err)
	}
	fmt.Printf("restored version %d: count=%s user=%s\n", rec.Version, rec.Fields["count"], rec.Fields["user"])

	// A one-field change writes that field only.
	v, err = s.Apply(ctx, "lv:42", store.Change{Set: map[string][]byte{"count": []byte("2")}, CheckVersion: true, IfVersion: rec.Version})
	if err != nil {
		panic(err)
	}
	fmt.Println("updated to version", v)
	// Output:
	// written at version 1
	// restored version 1: count=1 user=ada
	// updated to version 2
}
