package memory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
	s := memory.New(store.OptionsFor[memory.Option](opts)...)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

func TestSweeperRemovesExpiredRecords(t *testing.T) {
	clock := storetest.NewClock()
	s := memory.New(store.WithTTL(time.Minute), store.WithClock(clock.Now))
	defer s.Close()
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Apply(ctx, id, store.Change{Set: map[string][]byte{"f": []byte("12345")}}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(30 * time.Second)
	if err := s.Touch(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(45 * time.Second)
	if n := s.Sweep(); n != 2 {
		t.Fatalf("Sweep removed %d records, want 2", n)
	}
	if recs, bytes := s.Len(); recs != 1 || bytes != 6 {
		t.Fatalf("after the sweep: %d records, %d bytes; want 1, 6", recs, bytes)
	}
}

func TestSweeperRunsOnItsOwn(t *testing.T) {
	clock := storetest.NewClock()
	s := memory.New(store.WithTTL(time.Minute), store.WithClock(clock.Now), memory.WithSweepInterval(time.Millisecond))
	defer s.Close()
	if _, err := s.Apply(context.Background(), "a", store.Change{}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for recs, _ := s.Len(); recs != 0; recs, _ = s.Len() {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not remove an expired record within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMaxBytesRefusesInsteadOfEvicting(t *testing.T) {
	s := memory.New(memory.WithMaxBytes(100))
	defer s.Close()
	ctx := context.Background()
	val := make([]byte, 39) // 40 bytes with its one-byte name
	for _, id := range []string{"a", "b"} {
		if _, err := s.Apply(ctx, id, store.Change{Set: map[string][]byte{"f": val}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Apply(ctx, "c", store.Change{Set: map[string][]byte{"f": val}}); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("a write past the store's cap: %v, want ErrTooLarge", err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := s.Load(ctx, id); err != nil {
			t.Fatalf("live record %q was evicted: %v", id, err)
		}
	}
	if _, err := s.Load(ctx, "c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused record was stored: %v", err)
	}
	// Overwriting within the cap, and writing after a delete, still work.
	if _, err := s.Apply(ctx, "a", store.Change{Set: map[string][]byte{"f": make([]byte, 59)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "c", store.Change{Set: map[string][]byte{"f": val}}); err != nil {
		t.Fatal(err)
	}
	if _, bytes := s.Len(); bytes != 100 {
		t.Fatalf("store holds %d bytes, want 100", bytes)
	}
}

func TestCloseStopsTheSweeper(t *testing.T) {
	s := memory.New(memory.WithSweepInterval(time.Millisecond))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t)
}

func TestSizeAccountingSurvivesRepeatedNames(t *testing.T) {
	s := memory.New(memory.WithMaxBytes(10))
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Apply(ctx, "a", store.Change{Set: map[string][]byte{"x": []byte("12345")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "a", store.Change{Delete: []string{"x", "x", "missing"}}); err != nil {
		t.Fatal(err)
	}
	if recs, bytes := s.Len(); recs != 1 || bytes != 0 {
		t.Fatalf("after deleting a field named twice: %d records, %d bytes; want 1, 0", recs, bytes)
	}
	if _, err := s.Apply(ctx, "b", store.Change{Set: map[string][]byte{"y": []byte("123456789")}}); err != nil {
		t.Fatalf("the freed bytes were not given back to the cap: %v", err)
	}
	if _, err := s.Apply(ctx, "c", store.Change{Set: map[string][]byte{"z": nil}}); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("a write past the cap: %v, want ErrTooLarge", err)
	}
}
