package codec

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

type ordered struct {
	Long  int `msgpack:"a_field_name_longer_than_thirty_one_bytes"`
	B     int `msgpack:"b"`
	AA    int `msgpack:"aa"`
	A     int `msgpack:"a"`
	Upper int
}

// The direct decoder finds a struct's fields in the order Marshal writes
// them with one comparison each; that order must be Marshal's.
func TestStructPlanOrderIsMarshals(t *testing.T) {
	b, err := Marshal(ordered{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := readHeader(b, 0)
	var keys []string
	off := h.body
	for range h.n {
		start, end, ok := readStr(b, off)
		if !ok {
			t.Fatalf("key at offset %d is not a str", off)
		}
		keys = append(keys, string(b[start:end]))
		off = skip(b, end)
	}
	p := planFor(reflect.TypeFor[ordered]())
	var order []string
	for i, s := range p.order {
		order = append(order, s.name)
		if s.next != i+1 || p.fields[s.name].next != i+1 {
			t.Errorf("field %q: next %d (in the map: %d), want %d", s.name, s.next, p.fields[s.name].next, i+1)
		}
	}
	if !slices.Equal(order, keys) {
		t.Errorf("plan order %s, Marshal's %s", strings.Join(order, ","), strings.Join(keys, ","))
	}
}
