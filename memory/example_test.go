package memory_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/store"
)

func Example() {
	ctx := context.Background()
	s := memory.New(store.WithTTL(30*time.Minute), memory.WithMaxBytes(64<<20))
	defer s.Close()

	v, _ := s.Apply(ctx, "page-1", store.Change{Set: map[string][]byte{"count": {0x01}}})
	fmt.Println("version", v)

	// Only if nobody wrote since version 1.
	v, _ = s.Apply(ctx, "page-1", store.Change{Set: map[string][]byte{"count": {0x02}}, CheckVersion: true, IfVersion: 1})
	_, err := s.Apply(ctx, "page-1", store.Change{Set: map[string][]byte{"count": {0x03}}, CheckVersion: true, IfVersion: 1})
	fmt.Println("version", v, "then", errors.Is(err, store.ErrConflict))

	rec, _ := s.Load(ctx, "page-1")
	fmt.Println(rec.Fields["count"], rec.Version)

	_, err = s.Load(ctx, "nobody")
	fmt.Println(errors.Is(err, store.ErrNotFound))
	// Output:
	// version 1
	// version 2 then true
	// [2] 2
	// true
}
