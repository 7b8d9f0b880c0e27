package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/store"
)

// A store on a Redis server shared by every node of an application. It
// needs a server, so it only compiles.
func Example() {
	// The caller owns the client; ContextTimeoutEnabled lets ctx deadlines
	// reach the socket (the store honours them either way).
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()

	s, err := redisstore.New(client,
		redisstore.WithPrefix("myapp:liveview:"),
		store.WithTTL(30*time.Minute),
		store.WithMaxRecordSize(1<<20),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	// Create the record only if no other node did (expected version 0).
	v, err := s.Apply(ctx, "view-42", store.Change{
		Set:          map[string][]byte{"count": []byte("\x00")},
		CheckVersion: true,
	})
	if errors.Is(err, store.ErrConflict) {
		fmt.Println("another node created it first")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	rec, err := s.Load(ctx, "view-42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v, rec.Version, len(rec.Fields))
}

// Listing the ids a store holds, page by page, on a Cluster.
func ExampleStore_List() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"},
	})
	defer client.Close()
	s, err := redisstore.New(client)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	for cursor := ""; ; {
		ids, next, err := s.List(context.Background(), cursor, 100)
		if err != nil {
			log.Fatal(err)
		}
		for _, id := range ids {
			fmt.Println(id)
		}
		if next == "" {
			break
		}
		cursor = next
	}
}
