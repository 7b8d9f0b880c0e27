package codec_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/store"
)

func ExampleMarshal() {
	type cart struct {
		Items map[string]int `msgpack:"items"`
		Note  string         `msgpack:"note"`
	}
	a, _ := codec.Marshal(cart{Items: map[string]int{"apple": 2, "pear": 1, "plum": 5}})
	b, _ := codec.Marshal(cart{Items: map[string]int{"plum": 5, "pear": 1, "apple": 2}})
	// Equal values give equal bytes, so comparing encodings tells whether
	// anything changed.
	fmt.Println(bytes.Equal(a, b))
	// Output: true
}

func ExampleUnmarshal() {
	stored, _ := codec.Marshal([]string{"a", "b"})
	var got []string
	if err := codec.Unmarshal("room-7", "tags", stored, &got); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got)

	// Five hostile bytes declaring an array of 4 billion elements.
	hostile := []byte{0xdd, 0xff, 0xff, 0xff, 0xff}
	err := codec.Unmarshal("room-7", "tags", hostile, &got)
	fmt.Println(errors.Is(err, store.ErrCorrupt))
	fmt.Println(err)
	// Output:
	// [a b]
	// true
	// store: corrupt field "tags" of record "room-7": msgpack: array of 4294967295 elements declared at offset 0, 0 bytes remain
}
