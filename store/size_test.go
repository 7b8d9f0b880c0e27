package store_test

import (
	"testing"

	"github.com/livectx/livectx/store"
)

func TestSizeAfter(t *testing.T) {
	// The record holds a=1234 and bb=xy: 1+4 + 2+2 = 9 bytes.
	held := map[string]int{"a": 4, "bb": 2}
	const size = 9
	v := func(n int) []byte { return make([]byte, n) }
	for name, tc := range map[string]struct {
		c    store.Change
		want int
	}{
		"an empty change keeps the size":          {store.Change{}, 9},
		"a new field adds its name and value":     {store.Change{Set: map[string][]byte{"c": v(3)}}, 9 + 1 + 3},
		"an overwrite counts the new value alone": {store.Change{Set: map[string][]byte{"a": v(1)}}, 9 - 4 + 1},
		"a nil value counts its name":             {store.Change{Set: map[string][]byte{"c": nil}}, 9 + 1},
		"a delete takes the field off":            {store.Change{Delete: []string{"bb"}}, 9 - 4},
		"a missing field's delete takes nothing":  {store.Change{Delete: []string{"zz"}}, 9},
		"a field deleted twice counts once":       {store.Change{Delete: []string{"a", "bb", "a"}}, 0},
		"set and delete together":                 {store.Change{Set: map[string][]byte{"a": v(2)}, Delete: []string{"bb", "bb"}}, 1 + 2},
		"a replace counts what it sets":           {store.Change{Set: map[string][]byte{"a": v(1), "z": v(5)}, Replace: true}, 1 + 1 + 1 + 5},
		"an empty replace empties the record":     {store.Change{Replace: true, Delete: []string{"a"}}, 0},
	} {
		t.Run(name, func(t *testing.T) {
			calls := 0
			got := store.SizeAfter(size, tc.c, func(name string) (int, bool) {
				calls++
				n, ok := held[name]
				return n, ok
			})
			if got != tc.want {
				t.Errorf("SizeAfter = %d, want %d", got, tc.want)
			}
			if tc.c.Replace && calls != 0 {
				t.Errorf("a replace looked up %d stored fields, want none", calls)
			}
		})
	}
	t.Run("a stored size below its fields is negative", func(t *testing.T) {
		got := store.SizeAfter(2, store.Change{Delete: []string{"a"}}, func(string) (int, bool) { return 4, true })
		if got >= 0 {
			t.Errorf("SizeAfter = %d, want a negative size", got)
		}
	})
}
