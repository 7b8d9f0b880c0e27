package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestDiffersMarksNoise checks the p column: rounds that overlap read "~",
// rounds that never overlap read the U test's p-value; the mount table,
// whose lines time the contenders in turns (each metric read as its
// contender's), reads the sign test, which sees a contender faster in every
// round even where the rounds overlap; and the reconnect table compares
// livectx with the peer of the highest rate.
func TestDiffersMarksNoise(t *testing.T) {
	var in strings.Builder
	for i := range 8 {
		// memory: livectx always faster, rounds apart; redis: livectx
		// faster in every round by less than the rounds drift; bbolt:
		// each faster in half the rounds.
		fmt.Fprintf(&in, "BenchmarkMount/memory/1KiB-2 1000 999 ns/op %d livectx-ns/op 10 livectx-B/op 2 livectx-allocs/op %d map-ns/op 20 map-B/op 3 map-allocs/op\n", 100+i, 200+i)
		fmt.Fprintf(&in, "BenchmarkMount/redis/1KiB-2 1000 9999 ns/op %d livectx-ns/op 10 livectx-B/op 1 livectx-allocs/op %d peer-ns/op 10 peer-B/op 1 peer-allocs/op\n", 1000+10*i, 1001+10*i)
		fmt.Fprintf(&in, "BenchmarkMount/bbolt/1KiB-2 1000 9999 ns/op %d livectx-ns/op 10 livectx-B/op 1 livectx-allocs/op %d peer-ns/op 10 peer-B/op 1 peer-allocs/op\n", 500+i, 500+i+1-2*(i%2))
		// reconnect: a rate, so the fastest peer is the highest (fast).
		fmt.Fprintf(&in, "BenchmarkReconnect/redis/livectx-2 3 1 ns/op %d mounts/s\n", 400+i)
		fmt.Fprintf(&in, "BenchmarkReconnect/redis/fast-2 3 1 ns/op %d mounts/s\n", 200+i)
		fmt.Fprintf(&in, "BenchmarkReconnect/redis/slow-2 3 1 ns/op %d mounts/s\n", 100+i)
	}
	res, _, err := parse(strings.NewReader(in.String()))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, got, want string
	}{
		{"U test, rounds that never overlap", res.differs("Mount/memory/1KiB/livectx", "Mount/memory/1KiB/map", "ns/op"), "p=0.000"},
		{"U test, overlapping rounds", res.differs("Mount/redis/1KiB/livectx", "Mount/redis/1KiB/peer", "ns/op"), "~ (p=0.72)"},
		{"sign test, faster in every round", res.differsPaired("Mount/redis/1KiB/livectx", "Mount/redis/1KiB/peer", "ns/op"), "p=0.008"},
		{"sign test, faster in half the rounds", res.differsPaired("Mount/bbolt/1KiB/livectx", "Mount/bbolt/1KiB/peer", "ns/op"), "~ (p=1.00)"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.what, c.got, c.want)
		}
	}
	var out strings.Builder
	write(&out, res, "2026-11-30", "test", "go", "")
	for _, row := range []string{
		"| memory | 1KiB | 104 ns | map | 204 ns | 1.97x | p=0.008 | 2 / 3 |",
		"| Mount/memory/1KiB/map | 204 ns | 20 | 3 |",
		"| redis | 1KiB | 1.0 µs | peer | 1.0 µs | 1.00x | p=0.008 |",
		"| 1.00x | ~ (p=1.00) |",
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
