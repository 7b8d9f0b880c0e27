package store

// SizeAfter returns the Size of the record that c makes of one whose Size is
// size, for backends that keep a record's size beside it and check it
// against MaxRecordSize (CheckRecordSize) before they write. stored returns
// the length of the value the record holds under name, and false when it
// holds no such field; a Replace does not call it. A field deleted more than
// once counts once, a missing one not at all. c must have passed
// CheckChange, so no field is both set and deleted.
//
// The result is negative only when size is smaller than the stored fields
// add up to: the stored size is corrupt.
func SizeAfter(size int, c Change, stored func(name string) (n int, ok bool)) int {
	if c.Replace {
		size = 0
	}
	for name, v := range c.Set {
		if !c.Replace {
			if n, ok := stored(name); ok {
				size -= len(name) + n
			}
		}
		size += len(name) + len(v)
	}
	if c.Replace {
		return size
	}
	var seen map[string]bool
	if len(c.Delete) > 1 {
		seen = make(map[string]bool, len(c.Delete))
	}
	for _, name := range c.Delete {
		if seen != nil {
			if seen[name] {
				continue
			}
			seen[name] = true
		}
		if n, ok := stored(name); ok {
			size -= len(name) + n
		}
	}
	return size
}
