// Command benchtable reads the output of the bench module's benchmarks (go
// test -bench, any number of rounds, concatenated) and prints the Markdown
// table README.md quotes: medians per benchmark, livectx against the
// fastest peer on each backend and context size, whether the difference
// stands out of the run's noise (benchstat's test), and whether each bar
// holds.
//
// Usage:
//
//	benchtable [-date D] [-machine M] [-go V] [-note N] < bench.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/perf/benchmath"
)

func main() {
	date := flag.String("date", time.Now().UTC().Format("2006-01-02"), "date the figures were measured")
	machine := flag.String("machine", "", `machine, for example "2 × AMD EPYC" (default: the cpu line of the input and runtime.NumCPU)`)
	goVersion := flag.String("go", runtime.Version(), "Go version the benchmarks ran with")
	note := flag.String("note", "", "a sentence printed under the heading, for example which Redis server was used")
	flag.Parse()
	res, cpu, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if len(res) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no benchmark results in the input")
		os.Exit(1)
	}
	if *machine == "" {
		*machine = fmt.Sprintf("%d × %s", runtime.NumCPU(), cpu)
	}
	write(os.Stdout, res, *date, *machine, *goVersion, *note)
}

// results maps a benchmark name (without its -GOMAXPROCS suffix) to each
// unit's values, one per round.
type results map[string]map[string][]float64

// perContender are the units a benchmark that times several contenders in
// turns (BenchmarkMount) reports for each, as <contender>-<unit>.
var perContender = []string{"ns/op", "B/op", "allocs/op"}

// parse reads go test -bench output. A line with per-contender metrics
// (Mount/redis/1KiB ... 91000 livectx-ns/op ...) becomes one benchmark per
// contender (Mount/redis/1KiB/livectx with 91000 ns/op); the line's own
// time, that of all its contenders, is dropped.
func parse(r io.Reader) (results, string, error) {
	res := results{}
	cpu := "unknown CPU"
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if c, ok := strings.CutPrefix(line, "cpu: "); ok {
			cpu = strings.TrimSpace(c)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		values := map[string]map[string]float64{}
		paired := false
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, "", fmt.Errorf("%q: %w", line, err)
			}
			bench, unit := name, f[i+1]
			for _, u := range perContender {
				if c, ok := strings.CutSuffix(unit, "-"+u); ok {
					bench, unit, paired = name+"/"+c, u, true
				}
			}
			if values[bench] == nil {
				values[bench] = map[string]float64{}
			}
			values[bench][unit] = v
		}
		if paired {
			delete(values, name)
		}
		for bench, units := range values {
			if res[bench] == nil {
				res[bench] = map[string][]float64{}
			}
			for unit, v := range units {
				res[bench][unit] = append(res[bench][unit], v)
			}
		}
	}
	return res, cpu, sc.Err()
}

// median returns the median of the unit's values for name, and false when
// there are none.
func (r results) median(name, unit string) (float64, bool) {
	vs := slices.Clone(r[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2, true
	}
	return vs[len(vs)/2], true
}

// differs compares the rounds of unit under a (livectx) and under b (a
// peer) with the Mann-Whitney U test, benchstat's: it returns the test's
// p-value, with "~" when the difference is within the noise of the run
// (p above 0.05, or too few rounds to tell).
func (r results) differs(a, b, unit string) string {
	t := &benchmath.DefaultThresholds
	c := benchmath.AssumeNothing.Compare(
		benchmath.NewSample(slices.Clone(r[a][unit]), t),
		benchmath.NewSample(slices.Clone(r[b][unit]), t))
	return pValue(c.P)
}

// differsPaired is differs for a benchmark that times its contenders in
// turns, so that the i-th values of a and b come from the same round: it
// tests the rounds' signs (which of the two was faster in each, ties left
// out) with the exact two-sided sign test, which the machine's drift from
// round to round, shared by both, does not blur as it blurs the U test's.
func (r results) differsPaired(a, b, unit string) string {
	as, bs := r[a][unit], r[b][unit]
	n, above := 0, 0
	for i := range min(len(as), len(bs)) {
		if as[i] != bs[i] {
			n++
			if as[i] > bs[i] {
				above++
			}
		}
	}
	// P(X <= k) for X ~ Binomial(n, 1/2), k the rarer side, doubled.
	k := min(above, n-above)
	tail, c := 0.0, 1.0 // c = C(n, i)
	for i := 0; i <= k; i++ {
		tail += c
		c = c * float64(n-i) / float64(i+1)
	}
	return pValue(min(1, 2*tail/math.Pow(2, float64(n))))
}

// pValue prints p, with "~" when it is above 0.05 (benchstat's alpha): a
// difference within the noise of the run.
func pValue(p float64) string {
	if p > 0.05 {
		return fmt.Sprintf("~ (p=%.2f)", p)
	}
	return fmt.Sprintf("p=%.3f", p)
}

// rounds returns the fewest values any event or mount benchmark has.
func (r results) rounds() int {
	n := -1
	for name, units := range r {
		if strings.HasPrefix(name, "IdleMemory/") {
			continue
		}
		for _, vs := range units {
			if n < 0 || len(vs) < n {
				n = len(vs)
			}
		}
	}
	return n
}

var (
	backends = []string{"memory", "bbolt", "redis"}
	sizes    = []string{"1KiB", "64KiB", "1MiB"}
)

// fastestPeer returns the peer under prefix (a benchmark name up to the
// contender, "Mount/redis/1KiB/") with the best median of unit: the lowest
// for a time (ns/op), the highest for a rate (mounts/s). Ties go to the
// peer whose name sorts first.
func (r results) fastestPeer(prefix, unit string) (string, float64, bool) {
	var peers []string
	for name := range r {
		if c, ok := strings.CutPrefix(name, prefix); ok && c != "livectx" && !strings.Contains(c, "/") {
			peers = append(peers, c)
		}
	}
	slices.Sort(peers)
	rate := strings.HasSuffix(unit, "/s")
	best, bestV := "", 0.0
	for _, c := range peers {
		v, ok := r.median(prefix+c, unit)
		if ok && (best == "" || rate && v > bestV || !rate && v < bestV) {
			best, bestV = c, v
		}
	}
	return best, bestV, best != ""
}

func write(w io.Writer, r results, date, machine, goVersion, note string) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("Measured %s with %s on %s, medians of %d rounds, by `bench/run.sh`.\n", date, goVersion, machine, r.rounds())
	if note != "" {
		p("%s\n", note)
	}
	p("Speed-up is the fastest peer's time divided by livectx's (above 1: livectx is faster);\n")
	p("p is the p-value of the Mann-Whitney U test (benchstat's) of livectx's rounds against that peer's\n")
	p("(for Mount, whose contenders run in the same rounds, the sign test of which was faster in each round),\n")
	p("and ~ marks a difference within the noise of this run (p above 0.05).\n")
	p("Bytes written are those handed to the backend per event: field names and values for livectx,\n")
	p("the whole encoded context for the peers; syscall bytes are what the process wrote through\n")
	p("system calls per event (bbolt's file pages, the commands sent to Redis).\n\n")

	p("**Events**: mount once, then each event sets one int field and persists.\n\n")
	p("| backend | context | livectx | fastest peer | peer | speed-up | p | B written livectx / peer | fewer bytes | syscall B written livectx / peer | allocs livectx / peer | bar |\n")
	p("| --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |\n")
	for _, b := range backends {
		for _, s := range sizes {
			lx := "Event/" + b + "/" + s + "/livectx"
			lns, ok := r.median(lx, "ns/op")
			peer, pns, pok := r.fastestPeer("Event/"+b+"/"+s+"/", "ns/op")
			if !ok || !pok {
				p("| %s | %s | not measured | | | | | | | | | |\n", b, s)
				continue
			}
			pn := "Event/" + b + "/" + s + "/" + peer
			lw, _ := r.median(lx, "B-written/event")
			pw, _ := r.median(pn, "B-written/event")
			la, _ := r.median(lx, "allocs/op")
			pa, _ := r.median(pn, "allocs/op")
			sys := "n/a"
			if ls, ok := r.median(lx, "syscall-B-written/event"); ok {
				ps, _ := r.median(pn, "syscall-B-written/event")
				sys = fmt.Sprintf("%.0f / %.0f", ls, ps)
			}
			speed := pns / lns
			fewer := pw / max(lw, 1e-9)
			p("| %s | %s | %s | %s | %s | %.2fx | %s | %.0f / %.0f | %.0fx | %s | %.0f / %.0f | %s |\n",
				b, s, dur(lns), peer, dur(pns), speed, r.differs(lx, pn, "ns/op"), lw, pw, fewer, sys, la, pa, eventBar(s, speed, fewer))
		}
	}

	p("\n**Mount**: restore the whole context from the store. Every contender of a backend mounts in each iteration,\n")
	p("in a random order, each mount timed on its own, so that all of them meet the same moments of the machine.\n\n")
	p("| backend | context | livectx | fastest peer | peer | speed-up | p | allocs livectx / peer | bar |\n")
	p("| --- | --- | ---: | --- | ---: | ---: | --- | ---: | --- |\n")
	for _, b := range backends {
		for _, s := range sizes {
			lx := "Mount/" + b + "/" + s + "/livectx"
			lns, ok := r.median(lx, "ns/op")
			peer, pns, pok := r.fastestPeer("Mount/"+b+"/"+s+"/", "ns/op")
			if !ok || !pok {
				p("| %s | %s | not measured | | | | | | |\n", b, s)
				continue
			}
			pn := "Mount/" + b + "/" + s + "/" + peer
			la, _ := r.median(lx, "allocs/op")
			pa, _ := r.median(pn, "allocs/op")
			p("| %s | %s | %s | %s | %s | %.2fx | %s | %.0f / %.0f | %s (≥ 1.0x) |\n",
				b, s, dur(lns), peer, dur(pns), pns/lns, r.differsPaired(lx, pn, "ns/op"), la, pa, verdict(pns/lns >= 1))
		}
	}

	p("\n**Mass reconnect**: 10,000 contexts of 2 KiB mounted from 32 goroutines at once, as after a failover.\n\n")
	p("| backend | livectx mounts/s | fastest peer | peer mounts/s | speed-up | p |\n")
	p("| --- | ---: | --- | ---: | ---: | --- |\n")
	for _, b := range backends {
		lx := "Reconnect/" + b + "/livectx"
		lm, ok := r.median(lx, "mounts/s")
		peer, pm, pok := r.fastestPeer("Reconnect/"+b+"/", "mounts/s")
		if !ok || !pok {
			p("| %s | not measured | | | | |\n", b)
			continue
		}
		p("| %s | %.0f | %s | %.0f | %.2fx | %s |\n", b, lm, peer, pm, lm/pm,
			r.differs(lx, "Reconnect/"+b+"/"+peer, "mounts/s"))
	}

	p("\n**Idle memory**: 10,000 instances of a 2 KiB context, live heap after GC per instance.\n\n")
	p("| holder | heap B/instance | payload B | overhead B | bar |\n")
	p("| --- | ---: | ---: | ---: | --- |\n")
	var idle []string
	for name := range r {
		if h, ok := strings.CutPrefix(name, "IdleMemory/"); ok {
			idle = append(idle, h)
		}
	}
	slices.Sort(idle)
	for _, h := range idle {
		n := "IdleMemory/" + h
		heap, _ := r.median(n, "heap-B/instance")
		pay, _ := r.median(n, "payload-B/instance")
		bar := ""
		switch h {
		case "livectx-store":
			limit := 0.2*pay + 512
			bar = fmt.Sprintf("%s (overhead at most %.0f)", verdict(heap-pay <= limit), limit)
		case "livectx-store+sockets", "livectx-store+restored-sockets":
			if peer, ok := r.median("IdleMemory/map+contexts", "heap-B/instance"); ok {
				bar = fmt.Sprintf("%s (%.2fx map+contexts, at most 1.1x)", verdict(heap <= 1.1*peer), heap/peer)
			}
		}
		p("| %s | %.0f | %.0f | %.0f | %s |\n", h, heap, pay, heap-pay, bar)
	}

	p("\n<details><summary>Every benchmark (medians)</summary>\n\n")
	p("| benchmark | time/op | B/op | allocs/op | B written/event | syscall B written/event |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: |\n")
	var names []string
	for name := range r {
		if !strings.HasPrefix(name, "IdleMemory/") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		ns, _ := r.median(n, "ns/op")
		bop, _ := r.median(n, "B/op")
		al, _ := r.median(n, "allocs/op")
		wr, sys := "", ""
		if v, ok := r.median(n, "B-written/event"); ok {
			wr = fmt.Sprintf("%.0f", v)
		}
		if v, ok := r.median(n, "syscall-B-written/event"); ok {
			sys = fmt.Sprintf("%.0f", v)
		}
		p("| %s | %s | %.0f | %.0f | %s | %s |\n", n, dur(ns), bop, al, wr, sys)
	}
	p("\n</details>\n")
}

// eventBar checks the bars of issue 8: at 1 KiB livectx runs at least 0.8x
// the fastest peer; above, at least 10x its throughput with at least 100x
// fewer bytes written.
func eventBar(size string, speed, fewer float64) string {
	if size == "1KiB" {
		return verdict(speed >= 0.8) + " (≥ 0.8x)"
	}
	return verdict(speed >= 10 && fewer >= 100) + " (≥ 10x, ≥ 100x fewer bytes)"
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// dur formats nanoseconds for reading.
func dur(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}
