package sealed_test

import (
	"testing"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/sealed"
	"github.com/livectx/livectx/store"
)

// BenchmarkSealing compares a memory store bare and sealed, writing and
// reading one 1 KiB field of a record.
func BenchmarkSealing(b *testing.B) {
	value := make([]byte, 1024)
	for _, tc := range []struct {
		name string
		seal bool
	}{{"bare", false}, {"sealed", true}} {
		open := func(b *testing.B) store.ContextStore {
			var s store.ContextStore = memory.New()
			if tc.seal {
				var err error
				if s, err = sealed.New(s, [][]byte{newKey(b)}); err != nil {
					b.Fatal(err)
				}
			}
			b.Cleanup(func() { s.Close() })
			return s
		}
		b.Run("apply/"+tc.name, func(b *testing.B) {
			s := open(b)
			c := store.Change{Set: map[string][]byte{"f": value}}
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Apply(ctx, "r", c); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("load/"+tc.name, func(b *testing.B) {
			s := open(b)
			if _, err := s.Apply(ctx, "r", store.Change{Set: map[string][]byte{"f": value}}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Load(ctx, "r"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
