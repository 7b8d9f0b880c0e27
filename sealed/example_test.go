package sealed_test

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/sealed"
	"github.com/livectx/livectx/store"
)

func Example() {
	// In production the keys come from a secret manager; the first seals.
	current := make([]byte, sealed.KeySize)
	rand.Read(current)

	s, err := sealed.New(memory.New(), [][]byte{current}, sealed.WithNamespace("myapp"))
	if err != nil {
		panic(err)
	}
	defer s.Close() // closes the memory store too

	ctx := context.Background()
	if _, err := s.Apply(ctx, "lv-1", store.Change{Set: map[string][]byte{"email": []byte("ada@example.com")}}); err != nil {
		panic(err)
	}
	r, err := s.Load(ctx, "lv-1")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", r.Fields["email"])
	// Output: ada@example.com
}
