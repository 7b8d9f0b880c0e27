package socket

import (
	"reflect"
	"testing"
)

type cloneInner struct {
	Names []string
	Any   any
}

type cloneAll struct {
	Ptr    *cloneInner
	Map    map[string][]int
	Arr    [2]*int
	Iface  any
	Nested cloneInner
	Self   *cloneAll
	hidden *int
}

func TestDeepCopyCopiesEverythingReachableFromExportedFields(t *testing.T) {
	one, two, secret := 1, 2, 3
	orig := &cloneAll{
		Ptr:    &cloneInner{Names: []string{"a"}, Any: map[string]int{"k": 1}},
		Map:    map[string][]int{"m": {1, 2}},
		Arr:    [2]*int{&one, &two},
		Iface:  []byte{1, 2},
		Nested: cloneInner{Names: []string{"n"}},
		hidden: &secret,
	}
	orig.Self = orig // a cycle ends at the copy of the pointer met again
	cp := deepCopy(orig).(*cloneAll)

	if cp == orig || cp.Self != cp {
		t.Fatalf("copy %p, its Self %p: want a new value pointing to itself", cp, cp.Self)
	}
	if !reflect.DeepEqual(cp.Map, orig.Map) || !reflect.DeepEqual(*cp.Ptr, *orig.Ptr) || *cp.Arr[0] != 1 {
		t.Fatal("the copy differs from the original")
	}
	cp.Ptr.Names[0] = "x"
	cp.Ptr.Any.(map[string]int)["k"] = 9
	cp.Map["m"][0] = 9
	*cp.Arr[0] = 9
	cp.Iface.([]byte)[0] = 9
	cp.Nested.Names[0] = "x"
	if orig.Ptr.Names[0] != "a" || orig.Ptr.Any.(map[string]int)["k"] != 1 || orig.Map["m"][0] != 1 ||
		one != 1 || orig.Iface.([]byte)[0] != 1 || orig.Nested.Names[0] != "n" {
		t.Fatalf("modifying the copy changed the original: %+v", orig)
	}
	if cp.hidden != orig.hidden {
		t.Fatal("an unexported field was copied deeply, want it shared")
	}
}

func TestDeepCopyKeepsNilAsNil(t *testing.T) {
	cp := deepCopy(cloneAll{}).(cloneAll)
	if cp.Ptr != nil || cp.Map != nil || cp.Iface != nil || cp.Nested.Names != nil {
		t.Fatalf("copy of the zero value = %+v, want zero", cp)
	}
	if deepCopy(nil) != nil {
		t.Fatal("deepCopy(nil) != nil")
	}
}
