package redisstore_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/redisstore"
)

// forEachTarget runs f in a subtest per Redis target: miniredis, and the
// real server and cluster when their variables are set.
func forEachTarget(t *testing.T, f func(t *testing.T, tg redistest.Target)) {
	for _, tgt := range redistest.Targets {
		t.Run("on "+tgt.Name, func(t *testing.T) { f(t, tgt.Open(t)) })
	}
}

// newStore returns a store on c under a fresh prefix, closed when t ends.
func newStore(t testing.TB, c redis.UniversalClient, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	opts = append([]redisstore.Option{redisstore.WithPrefix(redistest.Prefix(t, c))}, opts...)
	s, err := redisstore.New(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
