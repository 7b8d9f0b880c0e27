package socket

import "reflect"

// cloner deep-copies values through reflect: slices, arrays, maps, pointers,
// interfaces and the exported fields of structs are copied; unexported
// struct fields, channels and functions are copied as they are (shallow),
// since they may hold handles that must not be duplicated. Pointers are
// followed once: a pointer met again is given the same copy, so cycles end.
type cloner struct {
	ptrs map[ptrKey]reflect.Value
}

type ptrKey struct {
	addr uintptr
	typ  reflect.Type
}

// clone returns a deep copy of v (v may be invalid: the copy is too).
func (c *cloner) clone(v reflect.Value) reflect.Value {
	if !v.IsValid() || !hasRefs(v.Type()) {
		return v
	}
	switch v.Kind() {
	case reflect.Pointer:
		return c.clonePointer(v)
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(c.clone(v.Elem()))
		return out
	case reflect.Slice:
		return c.cloneSlice(v)
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			out.Index(i).Set(c.clone(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), c.clone(it.Value()))
		}
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v) // unexported fields stay shallow
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out.Field(i).Set(c.clone(v.Field(i)))
			}
		}
		return out
	}
	return v // channels, functions, unsafe pointers
}

// clonePointer copies what v points to, once per pointer met.
func (c *cloner) clonePointer(v reflect.Value) reflect.Value {
	if v.IsNil() {
		return v
	}
	k := ptrKey{v.Pointer(), v.Type()}
	if p, ok := c.ptrs[k]; ok {
		return p
	}
	if c.ptrs == nil {
		c.ptrs = map[ptrKey]reflect.Value{}
	}
	p := reflect.New(v.Type().Elem())
	c.ptrs[k] = p
	p.Elem().Set(c.clone(v.Elem()))
	return p
}

func (c *cloner) cloneSlice(v reflect.Value) reflect.Value {
	if v.IsNil() {
		return v
	}
	out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
	if !hasRefs(v.Type().Elem()) {
		reflect.Copy(out, v)
		return out
	}
	for i := range v.Len() {
		out.Index(i).Set(c.clone(v.Index(i)))
	}
	return out
}

// hasRefs reports whether a value of type t can share memory with a copy
// made by assignment, so that cloning it needs more than assignment.
func hasRefs(t reflect.Type) bool {
	return hasRefsDepth(t, 0)
}

func hasRefsDepth(t reflect.Type, depth int) bool {
	if depth > 32 {
		return true // deeply nested value types: be safe rather than exact
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasRefsDepth(t.Elem(), depth+1)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && hasRefsDepth(f.Type, depth+1) {
				return true
			}
		}
	}
	return false
}

// deepCopy returns a deep copy of v.
func deepCopy(v any) any {
	var c cloner
	out := c.clone(reflect.ValueOf(v))
	if !out.IsValid() {
		return nil
	}
	return out.Interface()
}
