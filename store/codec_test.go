package store_test

import (
	"errors"
	"testing"

	"github.com/livectx/livectx/store"
)

func TestSmoke(t *testing.T) {
	b, err := store.Marshal(map[string]any{"b": 1, "a": []any{"x", 2.5}})
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := store.Unmarshal("id", "f", b, &v); err != nil {
		t.Fatal(err)
	}
	t.Logf("%x %v", b, v)
	for _, h := range [][]byte{{0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}, {0xc1}, {1, 2}, {0x92, 1}, {0xc6, 0xff, 0xff, 0xff, 0xff}} {
		err := store.Unmarshal("id", "f", h, &v)
		t.Log(err, errors.Is(err, store.ErrCorrupt))
	}
}
