package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestDiffersMarksNoise checks the p column: rounds that overlap read "~",
// rounds that never overlap read the U test's p-value, the mount table
// carries both, and the reconnect table compares livectx with the peer of
// the highest rate.
func TestDiffersMarksNoise(t *testing.T) {
	var in strings.Builder
	for i := range 8 {
		// memory: livectx always faster; redis: the two interleave.
		fmt.Fprintf(&in, "BenchmarkMount/memory/1KiB/livectx-2 1000 %d ns/op 10 B/op 1 allocs/op\n", 100+i)
		fmt.Fprintf(&in, "BenchmarkMount/memory/1KiB/map-2 1000 %d ns/op 10 B/op 1 allocs/op\n", 200+i)
		fmt.Fprintf(&in, "BenchmarkMount/redis/1KiB/livectx-2 1000 %d ns/op 10 B/op 1 allocs/op\n", 1000+2*i)
		fmt.Fprintf(&in, "BenchmarkMount/redis/1KiB/peer-2 1000 %d ns/op 10 B/op 1 allocs/op\n", 1001+2*i)
		// reconnect: a rate, so the fastest peer is the highest (fast).
		fmt.Fprintf(&in, "BenchmarkReconnect/redis/livectx-2 3 1 ns/op %d mounts/s\n", 400+i)
		fmt.Fprintf(&in, "BenchmarkReconnect/redis/fast-2 3 1 ns/op %d mounts/s\n", 200+i)
		fmt.Fprintf(&in, "BenchmarkReconnect/redis/slow-2 3 1 ns/op %d mounts/s\n", 100+i)
	}
	res, _, err := parse(strings.NewReader(in.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.differs("Mount/memory/1KiB/livectx", "Mount/memory/1KiB/map", "ns/op"); got != "p=0.000" {
		t.Errorf("rounds that never overlap: %q, want p=0.000", got)
	}
	got := res.differs("Mount/redis/1KiB/livectx", "Mount/redis/1KiB/peer", "ns/op")
	if !strings.HasPrefix(got, "~ (p=") {
		t.Errorf("interleaved rounds: %q, want ~ (p=...)", got)
	}
	var out strings.Builder
	write(&out, res, "2026-11-30", "test", "go", "")
	for _, row := range []string{
		"| memory | 1KiB | 104 ns | map | 204 ns | 1.97x | p=0.000 |",
		"| redis | 1KiB | 1.0 µs | peer | 1.0 µs | 1.00x | " + got + " |",
		"| redis | 404 | fast | 204 | 1.98x | p=0.000 |",
	} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the table lacks the row %q:\n%s", row, out.String())
		}
	}
}
