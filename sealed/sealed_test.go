package sealed_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/livectx/livectx/internal/testbackends"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/sealed"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, sealed.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// capsForSealed shifts the suite's size caps onto sealed bytes: a field cap
// grows by one Overhead; the record cap by two, the number of fields the
// suite's cap cases hold at the boundary. Caps count stored bytes, as the
// package documents; TestCapsCountSealedBytes proves that semantic exactly.
func capsForSealed(opts []store.Option) []store.Option {
	cfg := store.NewConfig(nil, opts...)
	return append(opts,
		store.WithMaxFieldSize(cfg.MaxFieldSize+sealed.Overhead),
		store.WithMaxRecordSize(cfg.MaxRecordSize+2*sealed.Overhead))
}

// Wrap returns an Opener that seals over the stores open returns.
func wrap(t *testing.T, open storetest.Opener) storetest.Opener {
	key := newKey(t)
	return func(t *testing.T, clock *storetest.Clock, opts ...store.Option) store.ContextStore {
		s, err := sealed.New(open(t, clock, capsForSealed(opts)...), [][]byte{key}, sealed.WithNamespace("test"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// TestConformance runs the suite on sealed stores over every backend, and
// over a store without optional interfaces.
func TestConformance(t *testing.T) {
	for _, b := range append(testbackends.All, testbackends.Bare) {
		t.Run("over "+b.Name, func(t *testing.T) {
			storetest.Suite{Open: wrap(t, b.Open), TTL: b.TTL}.Run(t)
		})
	}
}

// rawAndSealed returns a memory store and a sealed store over it.
func rawAndSealed(t *testing.T, keys [][]byte, opts ...sealed.Option) (*memory.Store, *sealed.Store) {
	t.Helper()
	raw := memory.New()
	s, err := sealed.New(raw, keys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return raw, s
}

func mustApply(t *testing.T, s store.ContextStore, id string, c store.Change) uint64 {
	t.Helper()
	v, err := s.Apply(ctx, id, c)
	if err != nil {
		t.Fatalf("Apply(%q): %v", id, err)
	}
	return v
}

func setOf(kv ...string) store.Change {
	c := store.Change{Set: map[string][]byte{}}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Set[kv[i]] = []byte(kv[i+1])
	}
	return c
}

func TestValuesAreStoredSealed(t *testing.T) {
	raw, s := rawAndSealed(t, [][]byte{newKey(t)})
	secret := "card number 4111 1111 1111 1111"
	mustApply(t, s, "r", setOf("secret", secret))
	r, err := raw.Load(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	got := r.Fields["secret"]
	if bytes.Contains(got, []byte("4111")) {
		t.Fatalf("the inner store holds the plaintext: %q", got)
	}
	if len(got) != len(secret)+sealed.Overhead {
		t.Fatalf("sealed value holds %d bytes, want plaintext+Overhead = %d", len(got), len(secret)+sealed.Overhead)
	}
	mustApply(t, s, "r2", setOf("secret", secret))
	r2, _ := raw.Load(ctx, "r2")
	if bytes.Equal(r2.Fields["secret"][5:], got[5:]) {
		t.Fatal("two seals of the same value are identical: nonces are not random")
	}
}

// wantCorrupt fails unless err is a *store.CorruptError naming id and field.
func wantCorrupt(t *testing.T, err error, id, field string) {
	t.Helper()
	var ce *store.CorruptError
	if !errors.Is(err, store.ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("error %v, want a *store.CorruptError", err)
	}
	if ce.ID != id || ce.Field != field {
		t.Fatalf("CorruptError names id %q field %q, want %q %q", ce.ID, ce.Field, id, field)
	}
}

// sealedBytes returns the bytes a sealed store with key and namespace ns
// stores for value in field of record id.
func sealedBytes(t *testing.T, key []byte, ns, id, field, value string) []byte {
	t.Helper()
	raw, s := rawAndSealed(t, [][]byte{key}, sealed.WithNamespace(ns))
	mustApply(t, s, id, setOf(field, value))
	r, err := raw.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Fields[field]
}

func TestBytesThatFailToOpenAreCorrupt(t *testing.T) {
	key := newKey(t)
	// seal returns what the store under test would write for id.field in ns.
	seal := func(t *testing.T, ns, id, field string) []byte {
		return sealedBytes(t, key, ns, id, field, "the value")
	}
	flip := func(b []byte, i int, bit byte) []byte { b[i] ^= bit; return b }
	tests := []struct {
		name string
		bad  func(t *testing.T) []byte // planted as field "f" of record "r"
	}{
		{"a flipped ciphertext bit", func(t *testing.T) []byte { b := seal(t, "app", "r", "f"); return flip(b, len(b)-20, 1) }},
		{"a flipped tag bit", func(t *testing.T) []byte { b := seal(t, "app", "r", "f"); return flip(b, len(b)-1, 0x80) }},
		{"a flipped nonce bit", func(t *testing.T) []byte { return flip(seal(t, "app", "r", "f"), 6, 1) }},
		{"a flipped key id bit", func(t *testing.T) []byte { return flip(seal(t, "app", "r", "f"), 2, 1) }},
		{"an unknown format", func(t *testing.T) []byte { return flip(seal(t, "app", "r", "f"), 0, 8) }},
		{"a truncated value", func(t *testing.T) []byte { return seal(t, "app", "r", "f")[:sealed.Overhead-1] }},
		{"an empty value", func(t *testing.T) []byte { return nil }},
		{"plaintext written behind the wrapper's back", func(t *testing.T) []byte { return []byte(strings.Repeat("not sealed ", 5)) }},
		{"a value moved from another field", func(t *testing.T) []byte { return seal(t, "app", "r", "g") }},
		{"a value moved from another record", func(t *testing.T) []byte { return seal(t, "app", "other", "f") }},
		{"a value from another namespace", func(t *testing.T) []byte { return seal(t, "app2", "r", "f") }},
		{"a value sealed by an unknown key", func(t *testing.T) []byte { return sealedBytes(t, newKey(t), "app", "r", "f", "the value") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, s := rawAndSealed(t, [][]byte{key}, sealed.WithNamespace("app"))
			mustApply(t, s, "r", setOf("keep", "intact", "f", "the value"))
			mustApply(t, s, "bystander", setOf("f", "fine"))
			mustApply(t, raw, "r", store.Change{Set: map[string][]byte{"f": tt.bad(t)}})

			rec, err := s.Load(ctx, "r")
			wantCorrupt(t, err, "r", "f")
			if rec.Fields != nil {
				t.Fatalf("Load returned fields with its error: %q", rec.Fields)
			}
			if r, err := s.Load(ctx, "bystander"); err != nil || string(r.Fields["f"]) != "fine" {
				t.Fatalf("another record was disturbed: %q, %v", r.Fields, err)
			}
			// The damaged record can be repaired by a write of the field.
			mustApply(t, s, "r", setOf("f", "repaired"))
			if r, err := s.Load(ctx, "r"); err != nil || string(r.Fields["f"]) != "repaired" || string(r.Fields["keep"]) != "intact" {
				t.Fatalf("after a repair: %q, %v", r.Fields, err)
			}
		})
	}
	t.Run("the untampered control opens", func(t *testing.T) {
		raw, s := rawAndSealed(t, [][]byte{key}, sealed.WithNamespace("app"))
		mustApply(t, raw, "r", store.Change{Set: map[string][]byte{"f": seal(t, "app", "r", "f")}})
		if r, err := s.Load(ctx, "r"); err != nil || string(r.Fields["f"]) != "the value" {
			t.Fatalf("bytes sealed for this very place do not open: %q, %v", r.Fields, err)
		}
	})
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey_ := newKey(t), newKey(t)
	raw := memory.New()
	t.Cleanup(func() { raw.Close() })
	before, err := sealed.New(raw, [][]byte{oldKey})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, before, "r", setOf("a", "sealed by the old key"))

	rotated, err := sealed.New(raw, [][]byte{newKey_, oldKey})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, rotated, "r", setOf("b", "sealed by the new key"))
	r, err := rotated.Load(ctx, "r")
	if err != nil {
		t.Fatalf("the rotated store cannot open old values: %v", err)
	}
	if string(r.Fields["a"]) != "sealed by the old key" || string(r.Fields["b"]) != "sealed by the new key" {
		t.Fatalf("after rotation: %q", r.Fields)
	}

	_, err = before.Load(ctx, "r")
	wantCorrupt(t, err, "r", "b") // the old store does not know the new key

	dropped, err := sealed.New(raw, [][]byte{newKey_})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dropped.Load(ctx, "r")
	wantCorrupt(t, err, "r", "a")
	mustApply(t, rotated, "r", setOf("a", "resealed"))
	if r, err := dropped.Load(ctx, "r"); err != nil || string(r.Fields["a"]) != "resealed" {
		t.Fatalf("after resealing, the new key alone opens the record: %q, %v", r.Fields, err)
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	k := newKey(t)
	raw := memory.New()
	t.Cleanup(func() { raw.Close() })
	tests := []struct {
		name  string
		inner store.ContextStore
		keys  [][]byte
	}{
		{"no keys", raw, nil},
		{"a short key", raw, [][]byte{k[:16]}},
		{"a long key", raw, [][]byte{append(bytes.Clone(k), 0)}},
		{"the same key twice", raw, [][]byte{k, bytes.Clone(k)}},
		{"no inner store", nil, [][]byte{k}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := sealed.New(tt.inner, tt.keys); err == nil {
				t.Fatalf("New accepted it: %T", s)
			}
		})
	}
}

func TestKeysAreCopied(t *testing.T) {
	k := newKey(t)
	_, s := rawAndSealed(t, [][]byte{k})
	mustApply(t, s, "r", setOf("a", "A"))
	clear(k)
	if r, err := s.Load(ctx, "r"); err != nil || string(r.Fields["a"]) != "A" {
		t.Fatalf("changing the caller's key slice changed the store: %q, %v", r.Fields, err)
	}
}

func TestCapsCountSealedBytes(t *testing.T) {
	const capN = 100
	raw := memory.New(store.WithMaxFieldSize(capN), store.WithMaxRecordSize(2*capN))
	t.Cleanup(func() { raw.Close() })
	s, err := sealed.New(raw, [][]byte{newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	fits := string(make([]byte, capN-sealed.Overhead))
	if _, err := s.Apply(ctx, "r", setOf("a", fits+"x")); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("a plaintext of cap-Overhead+1 bytes: %v, want ErrTooLarge", err)
	}
	mustApply(t, s, "r", setOf("a", fits))
	// Record: 2 fields of (1 + capN) stored bytes each = 2*capN + 2 > cap.
	if _, err := s.Apply(ctx, "r", setOf("b", fits)); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("a record of two full sealed fields past the record cap: %v, want ErrTooLarge", err)
	}
	mustApply(t, s, "r", setOf("b", fits[2:]))
}

func TestOverheadIs33Bytes(t *testing.T) {
	if sealed.Overhead != 33 {
		t.Fatalf("Overhead = %d; the documented layout adds 33 bytes", sealed.Overhead)
	}
}
