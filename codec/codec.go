// Package codec is the msgpack encoding livectx stores context fields in:
// Marshal gives canonical bytes (equal values, equal bytes, so a socket can
// tell a changed field by its encoding) and Unmarshal decodes bytes read back
// from a store, which are untrusted, with every allocation bounded by the
// bytes present.
//
// Application authors rarely call it: socket encodes and decodes fields.
// Backends never need it (they store bytes as they are given); tools that
// show stored fields (cmd/livectx) and tests do.
package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"unsafe"

	"github.com/livectx/livectx/store"
	"github.com/vmihailenco/msgpack/v5"
)

// Bounds that Check enforces on stored bytes before they are decoded. The
// size of a value is not bounded here: the store's field cap
// (store.WithMaxFieldSize) bounds what a socket may write, and decoding
// allocates in proportion to the bytes present (see Unmarshal).
const (
	// MaxDepth is the deepest nesting of arrays and maps a stored value
	// may have: a scalar has depth 0, an array of scalars depth 1.
	MaxDepth = 64
	// MaxContainers is the most arrays and maps one value may hold.
	// Decoding a container into an interface costs a hundred bytes or more
	// whatever its size, so this cap bounds what hostile containers cost
	// decoded into `any`, however many bytes the value holds.
	MaxContainers = 1 << 18
)

// maxPooledBuffer is the largest buffer Marshal and Unmarshal keep for
// reuse, so that one huge value does not pin its buffer in the pool.
const maxPooledBuffer = 64 << 10

// encoder is a msgpack encoder writing into its own buffer, with the
// scratch space that canonicalize needs, reused through a sync.Pool.
type encoder struct {
	buf     bytes.Buffer
	enc     *msgpack.Encoder
	scratch []byte  // a copy of the map being reordered
	entries []entry // a stack of the entries of the maps being walked
}

// encoders holds idle encoders. A sync.Pool is a cache with no state a
// caller can observe, so it is not the kind of mutable global the house
// rules forbid.
var encoders = sync.Pool{New: func() any {
	e := new(encoder)
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}

// Marshal returns the msgpack encoding of v, as
// github.com/vmihailenco/msgpack/v5 encodes it (msgpack struct tags name
// the fields), made canonical: the entries of every map, and of every struct
// encoded as a map, are ordered by their encoded bytes. So equal values give
// equal bytes, whatever the map types (msgpack's own SetSortMapKeys sorts
// only map[string]string, map[string]bool and map[string]any), and callers
// may compare encodings to decide whether a value changed.
//
// Marshal refuses, with an error, a value that Unmarshal would refuse
// (nested deeper than MaxDepth, more than MaxContainers arrays and maps),
// so nothing it returns fails to read back. The returned slice belongs to the caller.
// Marshal is safe for concurrent use.
func Marshal(v any) ([]byte, error) {
	e := encoders.Get().(*encoder)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		encoders.Put(e)
		return nil, fmt.Errorf("codec: marshal %T: %w", v, err)
	}
	raw := e.buf.Bytes()
	if err := Check(raw); err != nil {
		encoders.Put(e)
		return nil, fmt.Errorf("codec: marshal %T: %w", v, err)
	}
	e.canonicalize(raw, 0)
	out := bytes.Clone(raw)
	if e.buf.Cap() <= maxPooledBuffer && cap(e.scratch) <= maxPooledBuffer {
		encoders.Put(e)
	}
	return out, nil
}

// entry locates one encoded map entry: its key at [key, val), its value at
// [val, end).
type entry struct{ key, val, end int }

// canonicalize reorders in place the entries of every map in the value at
// b[off:], by their key bytes (then their value bytes, for keys that encode
// alike), innermost maps first, and returns the offset after the value. b
// must have passed Check, which also bounds the recursion by
// MaxDepth.
func (e *encoder) canonicalize(b []byte, off int) int {
	h, _ := readHeader(b, off) // b passed Check
	switch h.kind {
	case kindBytes:
		return h.body + int(h.n)
	case kindArray:
		off = h.body
		for range h.n {
			off = e.canonicalize(b, off)
		}
		return off
	}
	start, base := h.body, len(e.entries)
	off = start
	sorted := true
	for range h.n {
		k := off
		v := e.canonicalize(b, k)
		off = e.canonicalize(b, v)
		e.entries = append(e.entries, entry{k, v, off})
		if n := len(e.entries); n-base > 1 && compareEntries(b, e.entries[n-2], e.entries[n-1]) > 0 {
			sorted = false
		}
	}
	if !sorted {
		entries := e.entries[base:]
		slices.SortFunc(entries, func(x, y entry) int { return compareEntries(b, x, y) })
		e.scratch = append(e.scratch[:0], b[start:off]...)
		w := start
		for _, en := range entries {
			w += copy(b[w:], e.scratch[en.key-start:en.end-start])
		}
	}
	e.entries = e.entries[:base]
	return off
}

func compareEntries(b []byte, x, y entry) int {
	if c := bytes.Compare(b[x.key:x.val], b[y.key:y.val]); c != 0 {
		return c
	}
	return bytes.Compare(b[x.val:x.end], b[y.val:y.end])
}

// decoder is a msgpack decoder with the reader it reads from, reused
// through a sync.Pool (as encoders are) so that a decode allocates neither.
type decoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var decoders = sync.Pool{New: func() any {
	d := new(decoder)
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// Unmarshal decodes b, bytes read back from a store under record id and
// field, into v, which must be a non-nil pointer.
//
// The bytes are untrusted. Unmarshal first checks them with Check,
// then decodes them as github.com/vmihailenco/msgpack/v5 does: bools,
// numbers, strings, byte slices, slices, pointers and structs of those
// straight from b into v, through a plan made once per type; maps,
// interfaces, time.Time, types with their own decoding methods and values
// of unusual codes through msgpack's decoder. Bytes that fail
// the check, and a panic inside the decoder, are returned as a
// *store.CorruptError naming id and field (errors.Is(err, store.ErrCorrupt)
// holds). Bytes that pass the check but do not decode into v (a str stored
// where v is an int: the type changed since they were written) are returned
// as a *store.SchemaError (errors.Is(err, store.ErrSchema) holds); into a
// *any, which any value fits, a decode error is a *store.CorruptError. v may
// then be partly written. A v that is not a non-nil pointer is the caller's error,
// returned as a plain error.
//
// Unmarshal never panics, whatever b holds, runs in time linear in len(b)
// and allocates in proportion to len(b), since no slice or map is sized
// beyond the bytes left to fill it. The worst case measured, decoding into
// any, is about 170 bytes per byte of b (arrays of one-entry maps); into a
// typed slice it is at most the element's size per byte.
//
// Decoding follows msgpack's rules: fields missing from b keep their value
// in v, a time.Time comes back in time.Local, and a *any must hold nil (a
// *any holding a non-pointer value is a decode error). Unlike
// msgpack.Unmarshal it does not preallocate values from msgpack's per-type
// caches, which start a goroutine per type that never ends.
func Unmarshal(id, field string, b []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("codec: unmarshal field %q of record %q: want a non-nil pointer, got %T", field, id, v)
	}
	return decode(id, field, b, planFor(rv.Type().Elem()), rv.Elem(), v, false)
}

// A Decoder decodes values of one type as Unmarshal does, with the work
// Unmarshal does on every call to find how to decode that type done once,
// for a caller that decodes many values of it and owns the bytes: socket
// decodes each field of every record it restores. It is safe for
// concurrent use.
type Decoder struct {
	typ  reflect.Type
	plan *plan
}

// DecoderFor returns the Decoder of values of type t.
func DecoderFor(t reflect.Type) *Decoder { return &Decoder{typ: t, plan: planFor(t)} }

// DecodeShared is Unmarshal into v, an addressable value of d's type (a
// field of a struct reached through a pointer, for example): the same
// checks, the same decoding, the same errors, for a caller that owns b and
// never modifies it afterwards. The strings it decodes (string fields and
// elements of string slices, wherever it decodes them itself rather than
// through msgpack) share b's memory instead of being copied, so decoding
// allocates less and the value holds its text once; every such string
// keeps all of b in memory as long as it lives. Byte slices are copied. A v
// of another type, or one that cannot be addressed, is the caller's error,
// returned as a plain error.
func (d *Decoder) DecodeShared(id, field string, b []byte, v reflect.Value) error {
	if !v.IsValid() || v.Type() != d.typ || !v.CanAddr() {
		return fmt.Errorf("codec: decode field %q of record %q: want an addressable %v, got %v", field, id, d.typ, v)
	}
	var ptr any // what msgpack's Decode is given, made only if it is needed
	if d.plan.op == opMsgpack {
		ptr = v.Addr().Interface()
	}
	return decode(id, field, b, d.plan, v, ptr, true)
}

// decode decodes b into v, addressable, whose plan is p; ptr is v's address
// (needed only when p hands v to msgpack, which decodes through Decode as
// Unmarshal always did).
func decode(id, field string, b []byte, p *plan, v reflect.Value, ptr any, shared bool) (err error) {
	if err := Check(b); err != nil {
		return &store.CorruptError{ID: id, Field: field, Err: err}
	}
	defer func() {
		if r := recover(); r != nil {
			err = &store.CorruptError{ID: id, Field: field, Err: fmt.Errorf("msgpack: decoder panicked: %v", r)}
		}
	}()
	var derr error
	var d *decoder
	if p.op != opMsgpack {
		dd := direct{b: b, shared: shared}
		_, derr = dd.decode(p, 0, unsafe.Pointer(v.UnsafeAddr()))
		d = dd.dec
	} else {
		d = decoders.Get().(*decoder)
		d.r.Reset(b)
		d.dec.Reset(&d.r) // also clears the options a previous use may have set
		derr = d.dec.Decode(ptr)
	}
	// Not reached after a panic, so a decoder left in a strange state is
	// dropped rather than reused; so is one that may hold a large scratch
	// buffer after decoding a long string.
	if d != nil && len(b) <= maxPooledBuffer {
		d.r.Reset(nil) // the pool must not keep b
		decoders.Put(d)
	}
	if derr != nil && p.typ == anyType {
		// Any msgpack value fits an any: the bytes are at fault (an
		// unknown extension, a timestamp of a bad length).
		return &store.CorruptError{ID: id, Field: field, Err: derr}
	}
	if derr != nil {
		// b is well-formed (Check passed): it holds a value of another type.
		return &store.SchemaError{ID: id, Field: field, Stored: typeName(b[0]), Go: p.typ.String(), Err: derr}
	}
	return nil
}

// Check reports whether b holds exactly one complete msgpack value
// that is safe to decode: no trailing bytes; every declared length of a str, bin or ext within the bytes that
// remain; every array or map count no more than the bytes that remain (each
// element takes at least one byte, so a decoder sizing its allocations by a
// count stays proportional to len(b)); nesting no deeper than
// MaxDepth; no more than MaxContainers arrays and maps; no use
// of the reserved code 0xc1.
//
// It walks b once, iteratively, without allocating (except for the error
// it returns), so it is cheap beside a decode. It returns nil or an error
// saying what is wrong and at which offset.
func Check(b []byte) error {
	// pending[d] counts the values still to read at nesting depth d.
	var pending [MaxDepth + 1]uint64
	pending[0] = 1
	depth := 0
	off := 0
	containers := 0
	for {
		for pending[depth] == 0 {
			if depth == 0 {
				if off != len(b) {
					return fmt.Errorf("msgpack: %d trailing bytes after the value, at offset %d", len(b)-off, off)
				}
				return nil
			}
			depth--
		}
		if off >= len(b) {
			return fmt.Errorf("msgpack: truncated: a value expected at offset %d, the input ends", off)
		}
		pending[depth]--
		h, ok := readHeader(b, off)
		if !ok {
			return headerError(b, off)
		}
		remain := uint64(len(b) - h.body)
		switch h.kind {
		case kindBytes:
			if h.n > remain {
				return fmt.Errorf("msgpack: %s of %d bytes declared at offset %d, %d bytes remain", typeName(b[off]), h.n, off, remain)
			}
			off = h.body + int(h.n)
		case kindArray, kindMap:
			elems := h.n
			if h.kind == kindMap {
				elems *= 2 // a key and a value per pair; n < 2^32, no overflow
			}
			if elems > remain {
				unit := "elements"
				if h.kind == kindMap {
					unit = "pairs"
				}
				return fmt.Errorf("msgpack: %s of %d %s declared at offset %d, %d bytes remain", typeName(b[off]), h.n, unit, off, remain)
			}
			if containers++; containers > MaxContainers {
				return fmt.Errorf("msgpack: more than %d arrays and maps, at offset %d", MaxContainers, off)
			}
			if depth+1 > MaxDepth {
				return fmt.Errorf("msgpack: %s at offset %d nested deeper than %d levels", typeName(b[off]), off, MaxDepth)
			}
			off = h.body
			if elems > 0 {
				depth++
				pending[depth] = elems
			}
		}
	}
}

type kind uint8

const (
	kindBytes kind = iota // n bytes of payload follow the header
	kindArray             // n values follow
	kindMap               // n key/value pairs follow
)

// header is the decoded head of one msgpack value.
type header struct {
	kind kind
	n    uint64 // payload bytes, elements or pairs, as kind says
	body int    // offset of the first byte after the header
}

// readHeader decodes the head of the value at b[off] (off < len(b)). It
// returns false for the reserved code 0xc1 and for a header cut short;
// headerError says which.
func readHeader(b []byte, off int) (header, bool) {
	c := b[off]
	switch {
	case c <= 0x7f, c >= 0xe0: // positive and negative fixint
		return header{kind: kindBytes, body: off + 1}, true
	case c <= 0x8f:
		return header{kind: kindMap, n: uint64(c & 0x0f), body: off + 1}, true
	case c <= 0x9f:
		return header{kind: kindArray, n: uint64(c & 0x0f), body: off + 1}, true
	case c <= 0xbf:
		return header{kind: kindBytes, n: uint64(c & 0x1f), body: off + 1}, true
	case c <= 0xc3: // nil, 0xc1, false, true
		return header{kind: kindBytes, body: off + 1}, c != 0xc1
	case c <= 0xc6:
		return sized(b, off, kindBytes, 1<<(c-0xc4), 0)
	case c <= 0xc9: // ext: the length, then a type byte it does not count
		return sized(b, off, kindBytes, 1<<(c-0xc7), 1)
	case c <= 0xcb: // float32, float64
		return header{kind: kindBytes, n: 4 << (c - 0xca), body: off + 1}, true
	case c <= 0xcf:
		return header{kind: kindBytes, n: 1 << (c - 0xcc), body: off + 1}, true
	case c <= 0xd3:
		return header{kind: kindBytes, n: 1 << (c - 0xd0), body: off + 1}, true
	case c <= 0xd8: // fixext: a type byte, then 1 to 16 bytes
		return header{kind: kindBytes, n: 1 << (c - 0xd4), body: off + 2}, off+2 <= len(b)
	case c <= 0xdb:
		return sized(b, off, kindBytes, 1<<(c-0xd9), 0)
	case c <= 0xdd:
		return sized(b, off, kindArray, 2<<(c-0xdc), 0)
	default: // 0xde, 0xdf
		return sized(b, off, kindMap, 2<<(c-0xde), 0)
	}
}

// sized decodes a header whose count is a big-endian integer of width bytes
// after the code, followed by extra header bytes (an ext's type).
func sized(b []byte, off int, k kind, width, extra int) (header, bool) {
	end := off + 1 + width + extra
	if end > len(b) {
		return header{}, false
	}
	var n uint64
	switch width {
	case 1:
		n = uint64(b[off+1])
	case 2:
		n = uint64(binary.BigEndian.Uint16(b[off+1:]))
	default:
		n = uint64(binary.BigEndian.Uint32(b[off+1:]))
	}
	return header{kind: k, n: n, body: end}, true
}

// headerError describes why readHeader refused the value at b[off].
func headerError(b []byte, off int) error {
	c := b[off]
	if c == 0xc1 {
		return fmt.Errorf("msgpack: reserved code 0xc1 at offset %d", off)
	}
	need := 2 // fixext
	switch {
	case c >= 0xc4 && c <= 0xc6:
		need = 1 + 1<<(c-0xc4)
	case c >= 0xc7 && c <= 0xc9:
		need = 2 + 1<<(c-0xc7)
	case c >= 0xd9 && c <= 0xdb:
		need = 1 + 1<<(c-0xd9)
	case c >= 0xdc:
		need = 1 + 2<<((c-0xdc)%2)
	}
	return fmt.Errorf("msgpack: %s header at offset %d truncated: needs %d bytes, %d remain", typeName(c), off, need, len(b)-off)
}

// typeName names the type of the value a code starts, for error messages.
func typeName(c byte) string {
	switch {
	case c >= 0xcc && c <= 0xcf:
		return "uint"
	case c <= 0x7f, c >= 0xe0, c >= 0xd0 && c <= 0xd3:
		return "int"
	case c <= 0x8f, c == 0xde, c == 0xdf:
		return "map"
	case c <= 0x9f, c == 0xdc, c == 0xdd:
		return "array"
	case c <= 0xbf, c >= 0xd9 && c <= 0xdb:
		return "str"
	case c <= 0xc3:
		return "nil or bool"
	case c <= 0xc6:
		return "bin"
	case c <= 0xc9, c >= 0xd4 && c <= 0xd8:
		return "ext"
	case c == 0xca:
		return "float32"
	default:
		return "float64"
	}
}
