package socket

import (
	"fmt"
	"hash/maphash"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/store"
)

// field describes one top-level field of a context type.
type field struct {
	name   string // msgpack name if stored, else the Go name
	index  int
	typ    reflect.Type
	stored bool
	refs   bool           // a stored field whose copy must be deep (hasRefs)
	dec    *codec.Decoder // stored fields: decodes the field's type
}

// table is the fields of a context type T, built once per Manager.
type table struct {
	typ    reflect.Type
	fields []field
	byName map[string]int // stored fields only: the names a record holds
	names  []string       // every field's name, sorted (what a first render reports)
	// The names a record holds, the stored fields' and leaseField, and the
	// index in fields of each (-1: leaseField).
	stored      []string
	storedIndex []int
	cycles      sync.Pool    // of *cycle, for the sockets' renders
	seed        maphash.Seed // of the digests of encodings
}

// newTable reads T's top-level fields. A field is stored under its msgpack
// name (the tag's first part, else the Go name) unless it is unexported or
// tagged `msgpack:"-"`. An exported embedded field must carry a msgpack name
// or "-": msgpack would inline it, which has no top-level field to store.
func newTable(t reflect.Type) (*table, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("socket: context type %v is a %v, want a struct", t, t.Kind())
	}
	tab := &table{typ: t, byName: map[string]int{}, seed: maphash.MakeSeed()}
	seen := map[string]string{}
	for i := range t.NumField() {
		sf := t.Field(i)
		f := field{name: sf.Name, index: i, typ: sf.Type}
		tag, _, _ := strings.Cut(sf.Tag.Get("msgpack"), ",")
		if sf.IsExported() && tag != "-" {
			if sf.Anonymous && tag == "" {
				return nil, fmt.Errorf("socket: context type %v: embedded field %s needs a msgpack name tag or `msgpack:\"-\"`", t, sf.Name)
			}
			f.stored = true
			if tag != "" {
				f.name = tag
			}
			if strings.HasPrefix(f.name, "\x00") {
				return nil, fmt.Errorf("socket: context type %v: field name %q starts with NUL, which livectx reserves (leases)", t, f.name)
			}
			if len(f.name) > store.MaxFieldNameLen {
				return nil, fmt.Errorf("socket: context type %v: field name %.20q... is longer than %d bytes", t, f.name, store.MaxFieldNameLen)
			}
			tab.byName[f.name] = i
		}
		if other, ok := seen[f.name]; ok {
			return nil, fmt.Errorf("socket: context type %v: fields %s and %s share the name %q", t, other, sf.Name, f.name)
		}
		seen[f.name] = sf.Name
		if f.stored {
			f.dec, f.refs = codec.DecoderFor(f.typ), hasRefs(f.typ)
		}
		tab.fields = append(tab.fields, f)
		tab.names = append(tab.names, f.name)
	}
	slices.Sort(tab.names)
	tab.stored = append(slices.Sorted(maps.Keys(tab.byName)), leaseField)
	for _, name := range tab.stored {
		tab.storedIndex = append(tab.storedIndex, tab.index(name))
	}
	return tab, nil
}

// index returns the index in fields of the stored field name, or -1 when
// the type stores no such field.
func (t *table) index(name string) int {
	if i, ok := t.byName[name]; ok {
		return i
	}
	return -1
}

// Field is a typed handle on one top-level field of the context type T,
// holding values of type V. Make it once with FieldOf, typically as a
// package-level variable, and use it to assign (checked by the compiler) and
// to read.
type Field[T, V any] struct {
	index int
	name  string
	get   func(*T) *V
	set   func(ctx, v any) // *get(ctx.(*T)) = v.(V), made once in FieldOf
}

// FieldOf returns the handle of the top-level field of T that get points
// to, for example
//
//	var Count = socket.FieldOf(func(c *Counter) *int { return &c.Count })
//
// It finds the field by calling get on a zero T and comparing addresses.
// Like regexp.MustCompile, it panics if T is not a struct or get does not
// return the address of one of T's top-level fields (stored or not); call it
// where a mistake shows at once, as in a package-level var.
func FieldOf[T, V any](get func(*T) *V) Field[T, V] {
	tab, err := newTable(reflect.TypeFor[T]())
	if err != nil {
		panic(err)
	}
	var zero T
	base := reflect.ValueOf(&zero).Pointer()
	p := get(&zero)
	if p == nil {
		panic(fmt.Sprintf("socket: FieldOf[%v]: accessor returned nil", tab.typ))
	}
	addr := reflect.ValueOf(p).Pointer()
	vt := reflect.TypeFor[V]()
	for _, f := range tab.fields {
		if addr == base+tab.typ.Field(f.index).Offset && f.typ == vt {
			return Field[T, V]{
				index: f.index,
				name:  f.name,
				get:   get,
				set: func(ctx, v any) {
					val, _ := v.(V) // nil for an interface-typed V gives its zero value
					*get(ctx.(*T)) = val
				},
			}
		}
	}
	panic(fmt.Sprintf("socket: FieldOf[%v, %v]: accessor does not return the address of a top-level field", tab.typ, vt))
}

// Name returns the field's name: its msgpack name for a stored field (the
// name its record and Changed use), else its Go name.
func (f Field[T, V]) Name() string { return f.name }

// Set returns the assignment of v to the field, for Socket.Assign and
// Socket.TempAssign. The socket holds v as it is, without copying it.
func (f Field[T, V]) Set(v V) Assignment {
	return Assignment{typ: reflect.TypeFor[T](), index: f.index, name: f.name, value: v, set: f.set}
}

// Get returns the field's current value in s. It is cheap: no copy is made,
// so a slice, map or pointer it returns is the context's own; do not modify
// it in place, assign a new value instead (or modify, then assign it again).
func (f Field[T, V]) Get(s *Socket[T]) V {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *f.get(&s.state)
}

// Assignment is one field's new value, made by Field.Set (checked by the
// compiler) or by Set (by name, checked by Assign).
type Assignment struct {
	typ   reflect.Type // the context type of a Field's assignment; nil for Set
	index int
	name  string
	value any
	set   func(ctx, v any) // nil for Set: assigned through reflect
}

// Set returns the assignment of v to the stored field named name (its
// msgpack name), for dynamic input such as form values. Assign and
// TempAssign refuse it, with an error naming the field and changing nothing,
// when the context type has no stored field of that name or v is not
// assignable to the field's type. A nil v assigns the zero value of a slice,
// map, pointer or interface field.
func Set(name string, v any) Assignment {
	return Assignment{index: -1, name: name, value: v}
}

// resolved is an Assignment checked against a socket's table.
type resolved struct {
	Assignment
	field *field
}

// resolve checks a against tab and returns which field it sets.
func (tab *table) resolve(a Assignment) (resolved, error) {
	if a.typ != nil {
		if a.typ != tab.typ {
			return resolved{}, fmt.Errorf("socket: field %q belongs to context type %v, not %v", a.name, a.typ, tab.typ)
		}
		return resolved{a, &tab.fields[a.index]}, nil
	}
	i, ok := tab.byName[a.name]
	if !ok {
		return resolved{}, fmt.Errorf("socket: context type %v has no stored field %q", tab.typ, a.name)
	}
	f := &tab.fields[i]
	if a.value == nil {
		switch f.typ.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
		default:
			return resolved{}, fmt.Errorf("socket: field %q: cannot assign nil to %v", a.name, f.typ)
		}
	} else if vt := reflect.TypeOf(a.value); !vt.AssignableTo(f.typ) {
		return resolved{}, fmt.Errorf("socket: field %q: cannot assign a %v to %v", a.name, vt, f.typ)
	}
	a.index = i
	return resolved{a, f}, nil
}

// setField assigns v to field f of the context *ptr (rv being *ptr).
func setField(rv reflect.Value, ptr any, f *field, set func(ctx, v any), v any) {
	if set != nil {
		set(ptr, v)
		return
	}
	if v == nil {
		rv.Field(f.index).SetZero()
		return
	}
	rv.Field(f.index).Set(reflect.ValueOf(v))
}
