// Package allocs measures heap allocation, for the tests that bound what
// hostile input may make the code allocate.
package allocs

import "runtime"

// During returns the bytes the whole process allocated on the heap while f
// ran, so a caller keeps other work out of the way while it measures.
func During(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
