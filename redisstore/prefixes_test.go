package redisstore_test

import (
	"context"
	"slices"
	"testing"

	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/store"
)

func TestPrefixesFindsTheRecordsOfEveryPrefixAndNothingElse(t *testing.T) {
	ctx := context.Background()
	_, c := redistest.Miniredis(t)
	for _, pfx := range []string{"app:", "other:v2:"} {
		s, err := redisstore.New(c, redisstore.WithPrefix(pfx))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Apply(ctx, "id:1", store.Change{Set: map[string][]byte{"f": []byte("v")}}); err != nil {
			t.Fatal(err)
		}
	}
	// Keys that are no records: a string, a hash without the version
	// field, a hash whose "" field is no version, a key without ':'.
	c.Set(ctx, "cache:x", "1", 0)
	c.HSet(ctx, "users:7", "name", "ann")
	c.HSet(ctx, "odd:7", "", "v1 2")
	c.Set(ctx, "plain", "1", 0)

	s, err := redisstore.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	got, err := s.Prefixes(ctx, 0)
	if want := []string{"app:", "other:v2:"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Prefixes = %q, %v; want %q", got, err, want)
	}
}
