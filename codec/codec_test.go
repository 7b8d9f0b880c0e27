package codec_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/internal/allocs"
	"github.com/livectx/livectx/store"
)

// nested returns depth one-element arrays around a nil.
func nested(depth int) []byte {
	return append(bytes.Repeat([]byte{0x91}, depth), 0xc0)
}

// hostile returns stored bytes that Unmarshal must refuse, each with a
// piece of the error it must give.
func hostile() []struct {
	name string
	b    []byte
	want string
} {
	return []struct {
		name string
		b    []byte
		want string
	}{
		{"a str32 declaring 4 GiB with 3 bytes", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c'}, "str of 4294967295 bytes declared at offset 0, 3 bytes remain"},
		{"a bin32 declaring 4 GiB with 1 byte", []byte{0xc6, 0xff, 0xff, 0xff, 0xff, 0x00}, "bin of 4294967295 bytes declared"},
		{"a bin32 declaring 100 MB with 5 bytes", []byte{0xc6, 0x05, 0xf5, 0xe1, 0x00, 1, 2, 3, 4, 5}, "bin of 100000000 bytes declared"},
		{"an ext32 declaring 4 GiB", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00}, "ext of 4294967295 bytes declared at offset 0, 1 bytes remain"},
		{"an ext8 longer than its bytes", []byte{0xc7, 0x05, 0x01, 0x00}, "ext of 5 bytes declared at offset 0, 1 bytes remain"},
		{"a fixext1 without its type", []byte{0xd4}, "ext header at offset 0 truncated"},
		{"an ext8 without its type", []byte{0xc7, 0x00}, "ext header at offset 0 truncated: needs 3 bytes, 2 remain"},
		{"a fixext16 with 3 bytes", []byte{0xd8, 0x01, 0x00, 0x00}, "ext of 16 bytes declared at offset 0, 2 bytes remain"},
		{"an array32 of 4 billion elements in 3 bytes", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}, "array of 4294967295 elements declared at offset 0, 3 bytes remain"},
		{"an array16 inside an array, longer than its bytes", []byte{0x91, 0xdc, 0xff, 0xff, 0xc0}, "array of 65535 elements declared at offset 1, 1 bytes remain"},
		{"a map32 of 4 billion pairs in 2 bytes", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2}, "map of 4294967295 pairs declared at offset 0, 2 bytes remain"},
		{"a map16 whose pairs need more bytes than remain", []byte{0xde, 0x00, 0x03, 1, 2, 3, 4, 5}, "map of 3 pairs declared"},
		{"nesting 100000 levels deep", nested(100_000), "nested deeper than 64 levels"},
		{"nesting one level too deep", nested(codec.MaxDepth + 1), "nested deeper than 64 levels"},
		{"an empty map one level too deep", append(bytes.Repeat([]byte{0x91}, codec.MaxDepth), 0x80), "nested deeper than 64 levels"},
		{"no bytes at all", []byte{}, "a value expected at offset 0"},
		{"a float64 cut short", []byte{0xcb, 0x40, 0x09}, "float64 of 8 bytes declared at offset 0, 2 bytes remain"},
		{"a str16 header cut short", []byte{0xda, 0x00}, "str header at offset 0 truncated"},
		{"an array missing its last element", []byte{0x92, 0x01}, "array of 2 elements declared"},
		{"a map missing its last value", []byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'b'}, "a value expected at offset 6"},
		{"trailing bytes after an int", []byte{0x01, 0x02}, "1 trailing bytes after the value, at offset 1"},
		{"trailing bytes after a map", []byte{0x81, 0xa1, 'a', 0x01, 0xff, 0xff}, "2 trailing bytes"},
		{"the reserved code 0xc1", []byte{0xc1}, "reserved code 0xc1 at offset 0"},
		{"the reserved code 0xc1 inside an array", []byte{0x92, 0x01, 0xc1}, "reserved code 0xc1 at offset 2"},
		{"more arrays than MaxContainers", arrayOf(codec.MaxContainers, []byte{0x90}), fmt.Sprintf("more than %d arrays and maps", codec.MaxContainers)},
	}
}

// binOf returns a well-formed bin32 of n zero bytes.
func binOf(n int) []byte {
	b := make([]byte, 5+n)
	b[0] = 0xc6
	b[1], b[2], b[3], b[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

type small struct {
	Name  string         `msgpack:"name"`
	N     int            `msgpack:"n"`
	Tags  []string       `msgpack:"tags"`
	Score map[string]int `msgpack:"score"`
}

func TestUnmarshalRefusesHostileBytes(t *testing.T) {
	for _, tc := range hostile() {
		t.Run(tc.name+" is corrupt", func(t *testing.T) {
			if err := codec.Check(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want an error containing %q", err, tc.want)
			}
			for _, v := range []any{new(any), new(small), new([]byte), new(string)} {
				err := codec.Unmarshal("rec-1", "field-a", tc.b, v)
				assertCorrupt(t, err, "rec-1", "field-a")
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("into %T: error %q does not contain %q", v, err, tc.want)
				}
			}
		})
	}
}

func assertCorrupt(t *testing.T, err error, id, field string) {
	t.Helper()
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("error %v is not ErrCorrupt", err)
	}
	var ce *store.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *CorruptError", err)
	}
	if ce.ID != id || ce.Field != field {
		t.Errorf("CorruptError names record %q field %q, want %q %q", ce.ID, ce.Field, id, field)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", id)) || !strings.Contains(msg, fmt.Sprintf("%q", field)) {
		t.Errorf("message %q does not name record and field", msg)
	}
}

func TestCheckAcceptsValuesAtTheLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"nesting exactly MaxDepth deep", nested(codec.MaxDepth)},
		{"an empty map exactly MaxDepth deep", append(bytes.Repeat([]byte{0x91}, codec.MaxDepth-1), 0x80)},
		{"an array32 whose count equals the bytes remaining", []byte{0xdd, 0, 0, 0, 3, 1, 2, 3}},
		{"a map16 whose pairs fill the bytes remaining", []byte{0xde, 0, 2, 1, 2, 3, 4}},
		{"a str8 ending at the last byte", []byte{0xd9, 2, 'h', 'i'}},
		{"an ext8 with its type and data", []byte{0xc7, 2, 5, 'h', 'i'}},
		{"a timestamp fixext8", []byte{0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"a value larger than the default field cap (the store bounds size, not the codec)", binOf(store.DefaultMaxFieldSize + 1)},
	} {
		t.Run(tc.name+" passes", func(t *testing.T) {
			if err := codec.Check(tc.b); err != nil {
				t.Fatalf("Check = %v, want nil", err)
			}
		})
	}
}

// Well-formed bytes of another type are a schema change, not corruption:
// the context type changed since they were written.
func TestUnmarshalReportsAnotherTypeAsASchemaError(t *testing.T) {
	b, err := codec.Marshal("not a number")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	err = codec.Unmarshal("rec", "count", b, &n)
	var se *store.SchemaError
	if !errors.Is(err, store.ErrSchema) || errors.Is(err, store.ErrCorrupt) || !errors.As(err, &se) {
		t.Fatalf("Unmarshal = %v, want a *store.SchemaError that is not ErrCorrupt", err)
	}
	if se.ID != "rec" || se.Field != "count" || se.Stored != "str" || se.Go != "int" {
		t.Fatalf("SchemaError %+v, want rec, count, str, int", *se)
	}

	// A timestamp extension of a length msgpack does not know fits no
	// type: into an any, which any value fits, it is corrupt.
	assertCorrupt(t, codec.Unmarshal("rec", "at", []byte{0xd5, 0xff, 0, 0}, new(any)), "rec", "at")
}

type panicky struct{}

func (*panicky) DecodeMsgpack(*msgpack.Decoder) error { panic("boom") }

func TestUnmarshalTurnsADecoderPanicIntoCorrupt(t *testing.T) {
	err := codec.Unmarshal("rec", "p", []byte{0x01}, new(panicky))
	assertCorrupt(t, err, "rec", "p")
	if !strings.Contains(err.Error(), "boom") {
		t.Errorf("error %q does not carry the panic", err)
	}
}

func TestUnmarshalRefusesANonPointerAsACallerError(t *testing.T) {
	for _, v := range []any{nil, 0, small{}, (*small)(nil)} {
		err := codec.Unmarshal("rec", "f", []byte{0x01}, v)
		if err == nil || errors.Is(err, store.ErrCorrupt) {
			t.Errorf("Unmarshal into %T = %v, want a non-corrupt error", v, err)
		}
	}
}

type profile struct {
	Name     string            `msgpack:"name"`
	Age      int               `msgpack:"age"`
	Ratio    float64           `msgpack:"ratio"`
	Tags     []string          `msgpack:"tags"`
	Prefs    map[string]string `msgpack:"prefs"`
	Counts   map[string]int    `msgpack:"counts"`
	Friends  []friend          `msgpack:"friends"`
	Avatar   []byte            `msgpack:"avatar"`
	Joined   time.Time         `msgpack:"joined"`
	Optional *friend           `msgpack:"optional,omitempty"`
}

type friend struct {
	ID    uint64 `msgpack:"id"`
	Close bool   `msgpack:"close"`
}

func sampleProfile() profile {
	return profile{
		Name:    "Ada",
		Age:     36,
		Ratio:   0.25,
		Tags:    []string{"math", "engines", ""},
		Prefs:   map[string]string{"theme": "dark", "lang": "en"},
		Counts:  map[string]int{"a": 1, "b": -2, "c": math.MaxInt64},
		Friends: []friend{{ID: 1, Close: true}, {ID: math.MaxUint64}},
		Avatar:  []byte{0, 1, 2, 0xc1},
		Joined:  time.Date(1843, 7, 1, 12, 30, 0, 123456789, time.UTC),
	}
}

// roundTrip marshals v, unmarshals into a new T and compares. Times come
// back in time.Local, as msgpack decodes them, so they compare with Equal.
func roundTrip[T any](v T) func(t *testing.T) {
	return func(t *testing.T) {
		b, err := codec.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var got T
		if err := codec.Unmarshal("rec", "f", b, &got); err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if !reflect.DeepEqual(inUTC(got), inUTC(v)) {
			t.Errorf("got %#v, want %#v", got, v)
		}
	}
}

// inUTC returns v with its times, at the top level or in a profile, in UTC.
func inUTC(v any) any {
	switch v := v.(type) {
	case time.Time:
		return v.UTC()
	case profile:
		v.Joined = v.Joined.UTC()
		return v
	}
	return v
}

func TestMarshalAndUnmarshalRoundTrip(t *testing.T) {
	t.Run("a struct with msgpack tags, nested structs, maps, bytes and a time", roundTrip(sampleProfile()))
	p := sampleProfile()
	p.Optional = &friend{ID: 7}
	t.Run("a struct with an optional pointer set", roundTrip(p))
	t.Run("a map of strings to ints", roundTrip(map[string]int{"x": 1, "y": 2, "z": 3}))
	t.Run("a map of ints to strings", roundTrip(map[int]string{3: "c", 1: "a", 2: "b"}))
	t.Run("a slice of strings", roundTrip([]string{"a", "", "ccc"}))
	t.Run("an empty slice", roundTrip([]int{}))
	t.Run("a nested map of any", roundTrip(map[string]any{"a": map[string]any{"b": []any{"c", true, nil}}}))
	t.Run("a time", roundTrip(time.Date(2026, 11, 28, 4, 20, 0, 1, time.UTC)))
	t.Run("a zero int", roundTrip(0))
	t.Run("an empty string", roundTrip(""))
	t.Run("a long string", roundTrip(strings.Repeat("é", 70_000)))
	t.Run("a slice nested to the depth limit", roundTrip(nestedSlice(codec.MaxDepth)))
}

// nestedSlice returns depth nested []any around a nil.
func nestedSlice(depth int) any {
	var v any
	for range depth {
		v = []any{v}
	}
	return v
}

func TestMarshalIsDeterministic(t *testing.T) {
	many := map[string]int{}
	manyBackwards := map[string]int{}
	for i := range 200 {
		many[fmt.Sprint("key", i)] = i
	}
	for i := 199; i >= 0; i-- {
		manyBackwards[fmt.Sprint("key", i)] = i
	}
	for _, tc := range []struct {
		name string
		a, b any
	}{
		{"maps of strings to ints built in opposite orders", many, manyBackwards},
		{"maps of ints to strings", map[int]string{1: "a", 2: "b", 3: "c", 4: "d", 5: "e"}, map[int]string{5: "e", 4: "d", 3: "c", 2: "b", 1: "a"}},
		{"maps of any nested in maps", map[string]any{"m": many, "n": map[string]any{"x": 1, "y": 2}}, map[string]any{"n": map[string]any{"y": 2, "x": 1}, "m": manyBackwards}},
		{"structs holding maps", profile{Counts: many}, profile{Counts: manyBackwards}},
		{"maps of structs", map[string]friend{"a": {ID: 1}, "b": {ID: 2}, "c": {ID: 3}}, map[string]friend{"c": {ID: 3}, "b": {ID: 2}, "a": {ID: 1}}},
	} {
		t.Run(tc.name+" encode to the same bytes every time", func(t *testing.T) {
			want, err := codec.Marshal(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 50 {
				v := tc.a
				if i%2 == 1 {
					v = tc.b
				}
				got, err := codec.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("encoding %d differs:\n got %x\nwant %x", i, got, want)
				}
			}
		})
	}
}

func TestMarshalGivesTheCallerItsOwnBytes(t *testing.T) {
	a, err := codec.Marshal("first")
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(a)
	for range 10 {
		if _, err := codec.Marshal("second value, longer than the first"); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a, want) {
		t.Fatalf("an earlier result changed to %x, want %x", a, want)
	}
}

func TestMarshalRefusesWhatUnmarshalWouldRefuse(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"a value nested deeper than MaxDepth", nestedSlice(codec.MaxDepth + 1)},
		{"a value msgpack cannot encode", make(chan int)},
	} {
		t.Run(tc.name+" is an error", func(t *testing.T) {
			if b, err := codec.Marshal(tc.v); err == nil {
				t.Fatalf("Marshal gave %d bytes and no error", len(b))
			}
		})
	}
}

// TestPlainMsgpackAllocatesByDeclaredLength shows what the check prevents:
// msgpack.Unmarshal sizes a []any by the count an array declares, so five
// bytes declaring 6.3 million elements cost 100 MB. 100 MB is bounded and
// the memory limit makes the collector hand it back at once; a count of
// 2^32-1 would cost 64 GiB, which is why the demonstration stops here.
func TestPlainMsgpackAllocatesByDeclaredLength(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100 MB")
	}
	old := debug.SetMemoryLimit(1 << 30)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })

	b := []byte{0xdd, 0x00, 0x60, 0x00, 0x00} // array32 of 6,291,456 elements, none present
	var plain, safe any
	plainAlloc := allocs.During(func() { _ = msgpack.Unmarshal(b, &plain) })
	safeAlloc := allocs.During(func() { assertCorrupt(t, codec.Unmarshal("rec", "f", b, &safe), "rec", "f") })
	runtime.GC()
	t.Logf("5 hostile bytes: msgpack.Unmarshal allocated %d bytes, codec.Unmarshal %d", plainAlloc, safeAlloc)
	if plainAlloc < 100e6 {
		t.Errorf("msgpack.Unmarshal allocated only %d bytes; the demonstration no longer holds", plainAlloc)
	}
	// The bound of every Unmarshal of a few bytes: allocBase covers a fresh
	// decoder when the pool was emptied by a GC.
	if safeAlloc > allocBase {
		t.Errorf("codec.Unmarshal allocated %d bytes, want under %d", safeAlloc, allocBase)
	}
}

// Allocation bound of one Unmarshal of n bytes: allocPerByte*n + allocBase.
//
// Measured (TestUnmarshalAllocatesInProportion logs the figures): decoding
// into any costs at most about 170 bytes per input byte, for arrays of maps
// of one entry nested to the depth limit (each 2-byte "81 a0" becomes a
// map[string]any of about 340 bytes); plain scalars cost 4 to 16, empty
// containers 40 to 64. allocPerByte leaves 1.5x room over that worst
// shape. allocBase covers what any call may allocate once: a decoder for
// the pool, msgpack's per-type field cache on first use of a struct, an
// error message.
const (
	allocPerByte = 256
	allocBase    = 64 << 10
)

// arrayOf returns an array32 holding n copies of the encoded elem.
func arrayOf(n int, elem []byte) []byte {
	b := []byte{0xdd, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	for range n {
		b = append(b, elem...)
	}
	return b
}

// expensive are well-formed inputs of about n elements that cost the most
// to decode per byte: the allocation bound's measurement.
func expensive(n int) []struct {
	name string
	b    []byte
} {
	deepMaps := append(bytes.Repeat([]byte{0x81, 0xa0}, codec.MaxDepth-1), 0xc0)
	tags := []byte{0x81, 0xa4, 't', 'a', 'g', 's'}
	tags = append(tags, arrayOf(n, []byte{0xa0})...)
	score := []byte{0x81, 0xa5, 's', 'c', 'o', 'r', 'e', 0xde, byte(n >> 8), byte(n)}
	for i := range n {
		score = append(score, 0xa2, byte(i>>8), byte(i), 0x01)
	}
	return []struct {
		name string
		b    []byte
	}{
		{"maps of one entry", arrayOf(n, []byte{0x81, 0xa0, 0xc0})},
		{"maps of one entry nested to the depth limit", arrayOf(n/100+1, deepMaps)},
		{"maps holding empty maps", arrayOf(n, []byte{0x81, 0xa0, 0x80})},
		{"empty maps", arrayOf(n, []byte{0x80})},
		{"empty arrays", arrayOf(n, []byte{0x90})},
		{"arrays of one nil", arrayOf(n, []byte{0x91, 0xc0})},
		{"nils", arrayOf(n, []byte{0xc0})},
		{"one-byte strings", arrayOf(n, []byte{0xa1, 'a'})},
		{"timestamps", arrayOf(n, []byte{0xd6, 0xff, 0, 0, 0, 1})},
		{"a struct's slice of empty strings", tags},
		{"a struct's map of distinct keys", score},
		{"a map declaring many pairs that repeat one key", append([]byte{0xde, byte(n >> 8), byte(n)}, bytes.Repeat([]byte{0xa0, 0xc0}, n)...)},
	}
}

func TestUnmarshalAllocatesInProportion(t *testing.T) {
	for _, tc := range expensive(5000) {
		t.Run(tc.name+" stays within the bound", func(t *testing.T) {
			for _, fresh := range []func() any{func() any { return new(any) }, func() any { return new(small) }} {
				_ = codec.Unmarshal("rec", "f", tc.b, fresh()) // warm the type caches
				v := fresh()
				var err error
				n := allocs.During(func() { err = codec.Unmarshal("rec", "f", tc.b, v) })
				t.Logf("into %T: %d bytes for %d (%.1f per byte), error %v", v, n, len(tc.b), float64(n)/float64(len(tc.b)), err)
				if limit := uint64(allocPerByte*len(tc.b) + allocBase); n > limit {
					t.Errorf("into %T: allocated %d bytes for %d, bound %d", v, n, len(tc.b), limit)
				}
			}
		})
	}
}

func FuzzUnmarshal(f *testing.F) {
	// Small seeds: the fuzzer minimizes every new input it finds, at a cost
	// that grows with the input, so large seeds slow it down. The corpus in
	// testdata holds more.
	for _, tc := range hostile() {
		if len(tc.b) <= 4<<10 {
			f.Add(tc.b)
		}
	}
	for _, tc := range expensive(20) {
		f.Add(tc.b)
	}
	for _, v := range []any{
		sampleProfile(),
		small{Name: "n", N: -3, Tags: []string{"a", "b"}, Score: map[string]int{"x": 1, "y": 2}},
		map[string]any{"a": []any{1, "b", 2.5, true, nil, []byte{1}}, "t": time.Unix(1, 2)},
		nestedSlice(codec.MaxDepth),
	} {
		b, err := codec.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("a panic escaped: %v", r)
			}
		}()
		var decoded any
		for _, v := range []any{&decoded, new(small)} {
			var err error
			n := allocs.During(func() { err = codec.Unmarshal("fuzz", "f", b, v) })
			if limit := uint64(allocPerByte*len(b) + allocBase); n > limit {
				t.Fatalf("into %T: allocated %d bytes for %d input bytes, bound %d", v, n, len(b), limit)
			}
			if err != nil {
				var ce *store.CorruptError
				var se *store.SchemaError
				switch {
				case errors.As(err, &ce) && ce.ID == "fuzz" && ce.Field == "f":
				case errors.As(err, &se) && se.ID == "fuzz" && se.Field == "f" && v != &decoded:
				default:
					t.Fatalf("into %T: error %v is neither a CorruptError nor (typed targets only) a SchemaError naming the record", v, err)
				}
				continue
			}
			if cerr := codec.Check(b); cerr != nil {
				t.Fatalf("into %T: decoded bytes that Check refuses: %v", v, cerr)
			}
		}
		if codec.Check(b) != nil || decoded == nil && !bytes.Equal(b, []byte{0xc0}) {
			return // refused, or failed to decode into any
		}
		// What decodes re-encodes, and the encoding is canonical: decoding
		// and encoding it again gives the same bytes.
		enc, err := codec.Marshal(decoded)
		if err != nil {
			t.Fatalf("Marshal of decoded %#v: %v", decoded, err)
		}
		var again any
		if err := codec.Unmarshal("fuzz", "f", enc, &again); err != nil {
			t.Fatalf("Unmarshal of Marshal's output %x: %v", enc, err)
		}
		enc2, err := codec.Marshal(again)
		if err != nil {
			t.Fatalf("second Marshal: %v", err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("Marshal is not canonical:\n first %x\nsecond %x", enc, enc2)
		}
	})
}

// typical returns a profile whose encoding is about 1 KiB.
func typical(tb testing.TB) (profile, []byte) {
	p := sampleProfile()
	for i := range 12 {
		p.Tags = append(p.Tags, fmt.Sprintf("tag-number-%d", i))
		p.Friends = append(p.Friends, friend{ID: uint64(i) << 40, Close: i%2 == 0})
		p.Counts[fmt.Sprintf("counter-%d", i)] = i * 1000
	}
	p.Avatar = bytes.Repeat([]byte{0xab}, 300)
	b, err := codec.Marshal(p)
	if err != nil {
		tb.Fatal(err)
	}
	return p, b
}

func TestTypicalValueIsAboutOneKiB(t *testing.T) {
	if _, b := typical(t); len(b) < 900 || len(b) > 1200 {
		t.Errorf("typical value encodes to %d bytes, want about 1 KiB", len(b))
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	_, enc := typical(b)
	d := codec.DecoderFor(reflect.TypeFor[profile]())
	for _, u := range []struct {
		name   string
		decode func(p *profile) error
	}{
		{"codec.Unmarshal", func(p *profile) error { return codec.Unmarshal("rec", "f", enc, p) }},
		{"codec.Decoder.DecodeShared", func(p *profile) error { return d.DecodeShared("rec", "f", enc, reflect.ValueOf(p).Elem()) }},
		{"msgpack.Unmarshal", func(p *profile) error { return msgpack.Unmarshal(enc, p) }},
	} {
		b.Run(u.name, func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				var p profile
				if err := u.decode(&p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Check", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if err := codec.Check(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMarshal(b *testing.B) {
	p, enc := typical(b)
	b.Run("codec.Marshal", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := codec.Marshal(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("msgpack.Marshal", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := msgpack.Marshal(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// kinds is a struct of every shape the direct decoder covers, and of some
// it hands to msgpack, for FuzzDirectMatchesMsgpack.
type kinds struct {
	B    bool              `msgpack:"b"`
	I    int               `msgpack:"i"`
	I8   int8              `msgpack:"i8"`
	I16  int16             `msgpack:"i16"`
	I32  int32             `msgpack:"i32"`
	U    uint              `msgpack:"u"`
	U8   uint8             `msgpack:"u8"`
	U16  uint16            `msgpack:"u16"`
	U64  uint64            `msgpack:"u64"`
	F32  float32           `msgpack:"f32"`
	F64  float64           `msgpack:"f64"`
	S    string            `msgpack:"s"`
	Bin  []byte            `msgpack:"bin"`
	SS   []string          `msgpack:"ss"`
	Rows []friend          `msgpack:"rows"`
	Ptr  *friend           `msgpack:"ptr,omitempty"`
	Kids []kinds           `msgpack:"kids"`
	Grid [][]int16         `msgpack:"grid"`
	Self *kinds            `msgpack:"self"`
	M    map[string]int    `msgpack:"m"`
	Any  any               `msgpack:"any"`
	T    time.Time         `msgpack:"t"`
	Arr  [2]uint8          `msgpack:"arr"`
	Dur  time.Duration     `msgpack:"dur"`
	PS   *string           `msgpack:"ps"`
	Name named             `msgpack:"name"`
	Skip string            `msgpack:"-"`
	Go   int               // named by its Go name
	Dup  map[string]string `msgpack:"dup"`
	priv int
}

type named string

// FuzzDirectMatchesMsgpack decodes bytes that pass Check into several
// types with Unmarshal and with msgpack's own decoder, and requires the
// same outcome: both fail, or both succeed with equal values. Both start
// from a value holding data, so that what each leaves in place compares
// too.
func FuzzDirectMatchesMsgpack(f *testing.F) {
	full := kinds{B: true, I: -1, I8: -8, I16: 16, I32: -32, U: 1, U8: 8, U16: 16, U64: math.MaxUint64,
		F32: 1.5, F64: -2.25, S: "s", Bin: []byte{1, 2}, SS: []string{"a", ""}, Rows: []friend{{ID: 3, Close: true}},
		Ptr: &friend{ID: 4}, Kids: []kinds{{I: 5, SS: []string{}}}, Grid: [][]int16{{1, -1}, {}}, Self: &kinds{S: "inner"},
		M: map[string]int{"k": 1}, Any: []any{"x", 1}, T: time.Unix(5, 6), Arr: [2]uint8{7, 8}, Dur: time.Second,
		PS: new(string), Name: "n", Go: 9, Dup: map[string]string{"a": "b"}}
	for _, v := range []any{full, kinds{}, sampleProfile(), small{Name: "n", Tags: []string{"t"}}, []friend{{ID: 1}}, int8(-3), uint16(9), float32(0.5), "str", []byte("bin")} {
		b, err := codec.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x81, 0xa1, 'i', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0})                // a float where an int goes
	f.Add([]byte{0x82, 0xa1, 's', 0xc4, 1, 'x', 0x01, 0x02})                    // a bin string, then an int key
	f.Add([]byte{0x81, 0xa4, 'r', 'o', 'w', 's', 0x92, 0x80, 0x92, 0x01, 0xc3}) // a row as an array
	f.Add([]byte{0x81, 0xa2, 's', 's', 0x92, 0xa1, 'a', 0xc0})                  // a nil among strings
	f.Fuzz(func(t *testing.T, b []byte) {
		if codec.Check(b) != nil {
			return
		}
		for _, fresh := range []func() any{
			func() any { v := full; v.Self = &kinds{S: "inner"}; return &v },
			func() any { return new(kinds) },
			func() any { return new([]friend) },
			func() any { return &[]string{"keep"} },
			func() any { return new(small) },
			func() any { return new(*friend) },
			func() any { return new(int16) },
			func() any { return new(uint32) },
			func() any { return new(float32) },
			func() any { return new(string) },
			func() any { return new([]byte) },
		} {
			want := fresh()
			werr := decodeWithMsgpack(b, want)
			var schema []bool // per way: whether its error was a schema error
			for _, u := range unmarshalers() {
				got := fresh()
				err := u.unmarshal("fuzz", "f", bytes.Clone(b), got)
				if (err == nil) != (werr == nil) {
					t.Fatalf("into %T: %s says %v, msgpack says %v", got, u.name, err, werr)
				}
				if schema = append(schema, errors.Is(err, store.ErrSchema)); schema[0] != schema[len(schema)-1] {
					t.Fatalf("into %T: %s says %v, a schema error: %v; Unmarshal's was: %v", got, u.name, err, !schema[0], schema[0])
				}
				if !sameValue(got, want) {
					t.Fatalf("into %T (errors %v, %v):\n %s %+v\n   msgpack %+v", got, err, werr, u.name, got, want)
				}
			}
		}
	})
}

// decodeWithMsgpack decodes b into v with a plain msgpack decoder,
// turning a panic into an error as Unmarshal does.
func decodeWithMsgpack(b []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return msgpack.NewDecoder(bytes.NewReader(b)).Decode(v)
}

// sameValue reports whether a and b are deeply equal, or hold NaNs where
// they differ (which reflect.DeepEqual finds unequal): their canonical
// encodings, which keep every bit of a float, are then equal.
func sameValue(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	ea, erra := codec.Marshal(a)
	eb, errb := codec.Marshal(b)
	return erra == nil && errb == nil && bytes.Equal(ea, eb)
}

// decodeShared is Decoder.DecodeShared with Unmarshal's signature.
func decodeShared(id, field string, b []byte, v any) error {
	rv := reflect.ValueOf(v).Elem()
	return codec.DecoderFor(rv.Type()).DecodeShared(id, field, b, rv)
}

func TestDecodeSharedPointsStringsIntoItsInput(t *testing.T) {
	v := small{Name: "a name long enough to see", Tags: []string{"first tag", "second tag"}}
	for _, tc := range []struct {
		name      string
		unmarshal func(id, field string, b []byte, v any) error
		shares    bool
	}{{"DecodeShared shares", decodeShared, true}, {"Unmarshal copies", codec.Unmarshal, false}} {
		t.Run(tc.name+" the strings' bytes", func(t *testing.T) {
			b, err := codec.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var got small
			if err := tc.unmarshal("rec", "f", b, &got); err != nil {
				t.Fatal(err)
			}
			if got.Name != v.Name || !slices.Equal(got.Tags, v.Tags) {
				t.Fatalf("decoded %+v, want %+v", got, v)
			}
			start, end := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&b[0]))+uintptr(len(b))
			for _, s := range append([]string{got.Name}, got.Tags...) {
				p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
				if inside := p >= start && p < end; inside != tc.shares {
					t.Errorf("string %q inside the input: %v, want %v", s, inside, tc.shares)
				}
			}
		})
	}
}

// unmarshalers are the ways to decode stored bytes, each as a function of
// Unmarshal's signature.
func unmarshalers() []struct {
	name      string
	unmarshal func(id, field string, b []byte, v any) error
} {
	return []struct {
		name      string
		unmarshal func(id, field string, b []byte, v any) error
	}{
		{"Unmarshal", codec.Unmarshal},
		{"Decoder.DecodeShared", decodeShared},
	}
}

func TestDecoderRefusesAValueItCannotDecodeInto(t *testing.T) {
	b, err := codec.Marshal(7)
	if err != nil {
		t.Fatal(err)
	}
	d := codec.DecoderFor(reflect.TypeFor[int]())
	var n int
	var s string
	for _, tc := range []struct {
		name string
		v    reflect.Value
	}{
		{"a value of another type", reflect.ValueOf(&s).Elem()},
		{"a value that cannot be addressed", reflect.ValueOf(n)},
		{"no value", reflect.Value{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.DecodeShared("rec", "n", b, tc.v)
			if err == nil || errors.Is(err, store.ErrCorrupt) || errors.Is(err, store.ErrSchema) {
				t.Fatalf("Decode = %v, want a caller's error", err)
			}
		})
	}
	if err := d.DecodeShared("rec", "n", b, reflect.ValueOf(&n).Elem()); err != nil || n != 7 {
		t.Fatalf("Decode into an addressable int = %v, %d; want nil, 7", err, n)
	}
}

// Decoder.DecodeShared reports what Unmarshal reports: corrupt bytes, another
// type, an any that cannot hold the value.
func TestDecoderErrorsAreUnmarshals(t *testing.T) {
	str, err := codec.Marshal("not a number")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		v    func() any
	}{
		{"bytes that fail the check", []byte{0xc1}, func() any { return new(int) }},
		{"a str into an int", str, func() any { return new(int) }},
		{"a bad timestamp into an any", []byte{0xd5, 0xff, 0, 0}, func() any { return new(any) }},
		{"a bad timestamp into a time", []byte{0xd5, 0xff, 0, 0}, func() any { return new(time.Time) }},
		{"a str into a struct", str, func() any { return new(small) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := codec.Unmarshal("rec", "f", tc.b, tc.v())
			if want == nil {
				t.Fatal("Unmarshal accepted the bytes")
			}
			for _, u := range unmarshalers()[1:] {
				got := u.unmarshal("rec", "f", tc.b, tc.v())
				if got == nil || got.Error() != want.Error() || errors.Is(got, store.ErrSchema) != errors.Is(want, store.ErrSchema) {
					t.Errorf("%s: %v, want %v", u.name, got, want)
				}
			}
		})
	}
}
