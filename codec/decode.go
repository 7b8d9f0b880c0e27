package codec

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

// The direct decoder. Unmarshal decodes checked bytes straight into the
// value's memory, with a plan made once per Go type, instead of through
// msgpack's io.Reader-based decoder, which copies every string into a
// scratch buffer first and resolves a decoder per value. It covers the
// shapes contexts are made of (bools, numbers, strings, []byte, slices,
// pointers and structs of those) and only the codes msgpack encodes them
// with; at any other type (maps, interfaces, time.Time, types with their
// own decoding methods...) and at any other code it hands the value, whose
// extent Check has made known, to msgpack. So every value decodes as
// msgpack would decode it, errors and partial writes included; the fuzz
// test FuzzDirectMatchesMsgpack compares the two. (A type registered with
// msgpack.RegisterExt is found by the encoding of its zero value and left
// to msgpack; one registered only for decoding, with RegisterExtDecoder,
// is not found, and decodes by its kind.)

// op says how a plan decodes its type.
type op uint8

const (
	opMsgpack     op = iota // hand the value to msgpack
	opBool                  // bool kinds
	opInt                   // integer kinds, signed or not
	opFloat32               // float32 kinds
	opFloat64               // float64 kinds
	opString                // string kinds
	opBytes                 // slices of a uint8 kind
	opStringSlice           // []string
	opSlice                 // other slices
	opPointer               // pointers
	opStruct                // structs decoded field by field
)

// plan is how to decode into a value of typ.
type plan struct {
	op     op
	typ    reflect.Type
	size   uintptr         // opInt: the value's bytes
	elem   *plan           // opSlice, opPointer
	fields map[string]slot // opStruct: by msgpack name
	order  []slot          // opStruct: the fields as Marshal orders them
}

// slot is one decodable field of a struct.
type slot struct {
	name   string
	offset uintptr
	plan   *plan
	next   int // index in plan.order of the field canonical bytes hold next
}

// plans caches a plan per type. Like the pools, it holds nothing a caller
// can observe.
var plans sync.Map // reflect.Type → *plan

// planFor returns the plan of t, making it (and those of the types it
// holds) on first use.
func planFor(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	building := map[reflect.Type]*plan{}
	p := makePlan(t, building)
	for t, q := range building {
		plans.LoadOrStore(t, q)
	}
	return p
}

var (
	customDecoderType     = reflect.TypeFor[msgpack.CustomDecoder]()
	unmarshalerType       = reflect.TypeFor[msgpack.Unmarshaler]()
	binaryUnmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	textUnmarshalerType   = reflect.TypeFor[encoding.TextUnmarshaler]()
	stringType            = reflect.TypeFor[string]()
	anyType               = reflect.TypeFor[any]()
)

// decodesItself reports whether msgpack decodes t through a method rather
// than by its kind.
func decodesItself(t reflect.Type) bool {
	for _, i := range [...]reflect.Type{customDecoderType, unmarshalerType, binaryUnmarshalerType, textUnmarshalerType} {
		if t.Implements(i) || t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}

// registeredExt reports whether msgpack encodes a zero t as an extension
// (msgpack.RegisterExt), so that its decoding is the extension's.
func registeredExt(t reflect.Type) (ext bool) {
	defer func() {
		if recover() != nil {
			ext = true // let msgpack say what it makes of such a type
		}
	}()
	b, err := msgpack.Marshal(reflect.New(t).Interface())
	if err != nil || len(b) == 0 {
		return true // let msgpack say what it makes of such a type
	}
	c := b[0]
	return c >= 0xc7 && c <= 0xc9 || c >= 0xd4 && c <= 0xd8
}

func makePlan(t reflect.Type, building map[reflect.Type]*plan) *plan {
	if p, ok := building[t]; ok {
		return p // a recursive type: its plan is being filled in
	}
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	p := &plan{typ: t}
	building[t] = p
	if decodesItself(t) || t.Kind() != reflect.Pointer && registeredExt(t) {
		return p
	}
	switch t.Kind() {
	case reflect.Bool:
		p.op = opBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		p.op, p.size = opInt, t.Size() // not uintptr, which msgpack does not decode
	case reflect.Float32:
		p.op = opFloat32
	case reflect.Float64:
		p.op = opFloat64
	case reflect.String:
		p.op = opString
	case reflect.Slice:
		switch {
		case t.Elem().Kind() == reflect.Uint8:
			p.op = opBytes
		case t.Elem() == stringType:
			p.op = opStringSlice
		default:
			p.op, p.elem = opSlice, makePlan(t.Elem(), building)
		}
	case reflect.Pointer:
		// A pointer to a pointer is left to msgpack, so that decoding
		// always moves on in b (type P *P would not).
		if t.Elem().Kind() != reflect.Pointer && !registeredExt(t.Elem()) {
			p.op, p.elem = opPointer, makePlan(t.Elem(), building)
		}
	case reflect.Struct:
		if fields, ok := structSlots(t, building); ok {
			p.op, p.fields, p.order = opStruct, fields, canonicalOrder(fields)
		}
	}
	return p
}

// structSlots returns the fields msgpack decodes into a struct of type t,
// by name, or false for a struct whose fields msgpack finds otherwise
// (embedded structs, tag options that change decoding).
func structSlots(t reflect.Type, building map[reflect.Type]*plan) (map[string]slot, bool) {
	fields := make(map[string]slot, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("msgpack")
		if strings.ContainsAny(tag, `'"\`) {
			return nil, false // quoting, which msgpack's tag parser reads
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous {
			return nil, false
		}
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "", "omitempty", "as_array", "asArray": // encoding only
			default:
				return nil, false
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = slot{name: name, offset: f.Offset, plan: makePlan(f.Type, building)}
	}
	return fields, true
}

// canonicalOrder returns the fields in the order Marshal writes them (by
// the bytes of their encoded names), each knowing the index of the one
// after it, so that decoding canonical bytes finds each field by one
// comparison rather than a map lookup.
func canonicalOrder(fields map[string]slot) []slot {
	order := slices.SortedFunc(maps.Values(fields), func(a, b slot) int {
		return bytes.Compare(encodedStr(a.name), encodedStr(b.name))
	})
	for i := range order {
		order[i].next = i + 1
		fields[order[i].name] = order[i]
	}
	return order
}

// encodedStr returns the msgpack encoding of s.
func encodedStr(s string) []byte {
	switch n := len(s); {
	case n < 32:
		return append([]byte{0xa0 | byte(n)}, s...)
	case n < 1<<8:
		return append([]byte{0xd9, byte(n)}, s...)
	case n < 1<<16:
		return append([]byte{0xda, byte(n >> 8), byte(n)}, s...)
	default:
		return append(binary.BigEndian.AppendUint32([]byte{0xdb}, uint32(n)), s...)
	}
}

// direct decodes checked bytes b through plans, handing what plans do not
// cover to a msgpack decoder taken from the pool on first need.
type direct struct {
	b      []byte
	shared bool // strings may point into b (Decoder.DecodeShared)
	dec    *decoder
}

// str returns b[start:end] as a string: a copy, or a view of b if shared.
func (d *direct) str(start, end int) string {
	if d.shared && end > start {
		return unsafe.String(&d.b[start], end-start)
	}
	return string(d.b[start:end])
}

// decode decodes the value at b[off] into the value of p's type at ptr and
// returns the offset after it.
func (d *direct) decode(p *plan, off int, ptr unsafe.Pointer) (int, error) {
	b := d.b
	c := b[off]
	switch p.op {
	case opBool:
		if c == 0xc2 || c == 0xc3 {
			*(*bool)(ptr) = c == 0xc3
			return off + 1, nil
		}
	case opInt:
		// Signed and unsigned kinds alike take the integer's low bytes,
		// as reflect's SetInt and SetUint do.
		if n, end, ok := readInt(b, off); ok {
			switch p.size {
			case 1:
				*(*uint8)(ptr) = uint8(n)
			case 2:
				*(*uint16)(ptr) = uint16(n)
			case 4:
				*(*uint32)(ptr) = uint32(n)
			default:
				*(*uint64)(ptr) = uint64(n)
			}
			return end, nil
		}
	case opFloat32:
		switch c {
		case 0xca:
			*(*float32)(ptr) = math.Float32frombits(binary.BigEndian.Uint32(b[off+1:]))
			return off + 5, nil
		case 0xcb:
		default:
			if n, end, ok := readInt(b, off); ok {
				*(*float32)(ptr) = float32(n)
				return end, nil
			}
		}
	case opFloat64:
		switch c {
		case 0xca:
			*(*float64)(ptr) = float64(math.Float32frombits(binary.BigEndian.Uint32(b[off+1:])))
			return off + 5, nil
		case 0xcb:
			*(*float64)(ptr) = math.Float64frombits(binary.BigEndian.Uint64(b[off+1:]))
			return off + 9, nil
		default:
			if n, end, ok := readInt(b, off); ok {
				*(*float64)(ptr) = float64(n)
				return end, nil
			}
		}
	case opString:
		if start, end, ok := readStr(b, off); ok {
			*(*string)(ptr) = d.str(start, end)
			return end, nil
		}
	case opBytes:
		// msgpack reuses a slice that has room; only a nil one is decoded
		// here.
		if s := (*[]byte)(ptr); *s == nil {
			if start, end, ok := readStr(b, off); ok || isBin(c) {
				if !ok {
					start, end = binBody(b, off)
				}
				*s = append(make([]byte, 0, end-start), b[start:end]...)
				return end, nil
			}
		}
	case opStringSlice:
		// msgpack sets the slice only once every string is decoded, so a
		// slice holding an element of another code goes to msgpack whole.
		if s := (*[]string)(ptr); *s == nil {
			if h, ok := readHeader(b, off); ok && h.kind == kindArray && c != 0xc0 {
				if ss, end, ok := d.strings(h); ok {
					*s = ss
					return end, nil
				}
			}
		}
	case opSlice:
		s := (*sliceHeader)(ptr)
		if c == 0xc0 {
			*s = sliceHeader{}
			return off + 1, nil
		}
		if h, ok := readHeader(b, off); ok && h.kind == kindArray && s.data == nil {
			return d.slice(p, h, s)
		}
	case opPointer:
		pp := (*unsafe.Pointer)(ptr)
		if c == 0xc0 {
			*pp = nil
			return off + 1, nil
		}
		if *pp == nil {
			*pp = reflect.New(p.elem.typ).UnsafePointer()
		}
		return d.decode(p.elem, off, *pp)
	case opStruct:
		if c == 0xc0 {
			reflect.NewAt(p.typ, ptr).Elem().SetZero()
			return off + 1, nil
		}
		if h, ok := readHeader(b, off); ok && h.kind == kindMap {
			return d.structFields(p, h, ptr)
		}
	}
	return d.msgpack(p, off, ptr)
}

// msgpack decodes the value at b[off] with msgpack.
func (d *direct) msgpack(p *plan, off int, ptr unsafe.Pointer) (int, error) {
	end := skip(d.b, off)
	if d.dec == nil {
		d.dec = decoders.Get().(*decoder)
	}
	d.dec.r.Reset(d.b[off:end])
	d.dec.dec.Reset(&d.dec.r)
	return end, d.dec.dec.DecodeValue(reflect.NewAt(p.typ, ptr).Elem())
}

// strings decodes the array of header h as strings, or returns false if an
// element is not a str.
func (d *direct) strings(h header) ([]string, int, bool) {
	off := h.body
	for range h.n { // only look, so that nothing is allocated in vain
		_, end, ok := readStr(d.b, off)
		if !ok {
			return nil, 0, false
		}
		off = end
	}
	ss := make([]string, h.n)
	off = h.body
	for i := range ss {
		start, end, _ := readStr(d.b, off)
		ss[i] = d.str(start, end)
		off = end
	}
	return ss, off, true
}

// sliceHeader is the memory of a slice of any type.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// slice decodes the array of header h into the nil slice of type p.typ at
// s, as msgpack does: the slice is set first, then its elements decoded.
func (d *direct) slice(p *plan, h header, s *sliceHeader) (int, error) {
	n := int(h.n) // Check bounded it by the bytes that remain
	off := h.body
	if n == 0 { // empty, not nil
		*s = sliceHeader{data: reflect.MakeSlice(p.typ, 0, 0).UnsafePointer()}
		return off, nil
	}
	// Grown in place: reflect.MakeSlice would allocate a slice header too.
	v := reflect.NewAt(p.typ, unsafe.Pointer(s)).Elem()
	v.Grow(n)
	v.SetLen(n)
	data, size := s.data, p.elem.typ.Size()
	for i := range n {
		var err error
		if off, err = d.decode(p.elem, off, unsafe.Add(data, uintptr(i)*size)); err != nil {
			return off, err
		}
	}
	return off, nil
}

// structFields decodes the map of header h into the struct at ptr: by
// name, skipping the names the struct does not have, as msgpack does.
func (d *direct) structFields(p *plan, h header, ptr unsafe.Pointer) (int, error) {
	b, off, next := d.b, h.body, 0
	for range h.n {
		start, end, ok := readStr(b, off)
		switch {
		case ok:
		case isBin(b[off]):
			start, end = binBody(b, off)
		case b[off] == 0xc0:
			start, end = off+1, off+1
		default:
			return off, fmt.Errorf("msgpack: invalid code=%x decoding string/bytes length", b[off])
		}
		off = end
		var f slot
		if next < len(p.order) && string(b[start:end]) == p.order[next].name {
			f = p.order[next]
		} else if f, ok = p.fields[string(b[start:end])]; !ok {
			off = skip(b, off)
			continue
		}
		next = f.next
		var err error
		if off, err = d.decode(f.plan, off, unsafe.Add(ptr, f.offset)); err != nil {
			return off, err
		}
	}
	return off, nil
}

// readInt reads the msgpack integer at b[off], which must have passed Check,
// with the sign its code gives it.
func readInt(b []byte, off int) (n int64, end int, ok bool) {
	c := b[off]
	switch {
	case c <= 0x7f || c >= 0xe0:
		return int64(int8(c)), off + 1, true
	case c == 0xcc:
		return int64(b[off+1]), off + 2, true
	case c == 0xcd:
		return int64(binary.BigEndian.Uint16(b[off+1:])), off + 3, true
	case c == 0xce:
		return int64(binary.BigEndian.Uint32(b[off+1:])), off + 5, true
	case c == 0xcf || c == 0xd3:
		return int64(binary.BigEndian.Uint64(b[off+1:])), off + 9, true
	case c == 0xd0:
		return int64(int8(b[off+1])), off + 2, true
	case c == 0xd1:
		return int64(int16(binary.BigEndian.Uint16(b[off+1:]))), off + 3, true
	case c == 0xd2:
		return int64(int32(binary.BigEndian.Uint32(b[off+1:]))), off + 5, true
	}
	return 0, off, false
}

// readStr returns the bounds of the body of the str at b[off], which must
// have passed Check, or false if it is not a str.
func readStr(b []byte, off int) (start, end int, ok bool) {
	c := b[off]
	if c >= 0xa0 && c <= 0xbf || c >= 0xd9 && c <= 0xdb {
		h, _ := readHeader(b, off)
		return h.body, h.body + int(h.n), true
	}
	return 0, 0, false
}

func isBin(c byte) bool { return c >= 0xc4 && c <= 0xc6 }

// binBody returns the bounds of the body of the checked bin at b[off].
func binBody(b []byte, off int) (start, end int) {
	h, _ := readHeader(b, off)
	return h.body, h.body + int(h.n)
}

// skip returns the offset after the value at b[off], which must have
// passed Check.
func skip(b []byte, off int) int {
	for pending := uint64(1); pending > 0; pending-- {
		h, _ := readHeader(b, off)
		switch h.kind {
		case kindBytes:
			off = h.body + int(h.n)
		case kindArray:
			off, pending = h.body, pending+h.n
		case kindMap:
			off, pending = h.body, pending+2*h.n
		}
	}
	return off
}
