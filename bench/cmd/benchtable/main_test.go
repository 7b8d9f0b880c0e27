package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestDiffersMarksNoise checks the p column: rounds that overlap read "~",
// rounds that never overlap read the U test's p-value, the mount table
// carries both (from lines that time the contenders in turns, each metric
// read as its contender's), and the reconnect table compares livectx with
// the peer of the highest rate.
func TestDiffersMarksNoise(t *testing.T) {
	var in strings.Builder
	for i := range 8 {
		// Mount times its contenders in turns, one line for all.
		// memory: livectx always faster; redis: the two interleave.
		fmt.Fprintf(&in, "BenchmarkMount/memory/1KiB-2 1000 999 ns/op %d livectx-ns/op 10 livectx-B/op 2 livectx-allocs/op %d map-ns/op 20 map-B/op 3 map-allocs/op\n", 100+i, 200+i)
		fmt.Fprintf(&in, "BenchmarkMount/redis/1KiB-2 1000 9999 ns/op %d livectx-ns/op 10 livectx-B/op 1 livectx-allocs/op %d peer-ns/op 10 peer-B/op 1 peer-allocs/op\n", 1000+2*i, 1001+2*i)
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
		"| memory | 1KiB | 104 ns | map | 204 ns | 1.97x | p=0.000 | 2 / 3 |",
		"| Mount/memory/1KiB/map | 204 ns | 20 | 3 |",
		"| redis | 1KiB | 1.0 µs | peer | 1.0 µs | 1.00x | " + got + " |",
		"| redis | 404 | fast | 204 | 1.98x | p=0.000 |",
	} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the table lacks the row %q:\n%s", row, out.String())
		}
	}
	if strings.Contains(out.String(), "| Mount/memory/1KiB |") {
		t.Errorf("the table lists the time of a mount line's contenders together:\n%s", out.String())
	}
}
