package boltstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/goleak"

	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

// A test binary started with childEnv set runs one of the child processes
// below instead of the tests: the crash, restart and lock tests need a
// second process.
const (
	childEnv     = "LIVECTX_BOLTSTORE_CHILD"
	childPathEnv = "LIVECTX_BOLTSTORE_PATH"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode, os.Getenv(childPathEnv)))
	}
	goleak.VerifyTestMain(m)
}

func runChild(mode, path string) int {
	if err := childMain(mode, path); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

func childMain(mode, path string) error {
	ctx := context.Background()
	s, err := Open(path)
	if err != nil {
		return err
	}
	defer s.Close()
	switch mode {
	case "restart": // write a record and exit cleanly
		v, err := s.Apply(ctx, "restart", store.Change{Set: map[string][]byte{"a": []byte("A"), "b": []byte("B")}})
		if err == nil {
			v, err = s.Apply(ctx, "restart", store.Change{Set: map[string][]byte{"b": []byte("B2")}})
		}
		fmt.Println(v)
		return err
	case "hold": // hold the file until stdin closes
		fmt.Println("holding")
		_, err := io.Copy(io.Discard, os.Stdin)
		return err
	case "crash": // write until killed, reporting each acknowledged write
		errs := make(chan error)
		for g := range crashWriters {
			go func() {
				for i := 0; ; i++ {
					if _, err := s.Apply(ctx, crashID(g), crashChange(i)); err != nil {
						errs <- err
						return
					}
					fmt.Printf("%d %d\n", g, i) // unbuffered: one write(2) per line
				}
			}()
		}
		return <-errs
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// child starts this test binary as a child process in mode on path.
func child(t *testing.T, mode, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childPathEnv+"="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

// open opens a store on a new file.
func open(t *testing.T, opts ...Option) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "ctx.db"), opts...)
}

// openAt opens a store on path and closes it when the test ends.
func openAt(t *testing.T, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
		return open(t, store.OptionsFor[Option](opts)...)
	})
}

func TestConformanceOnACallersDB(t *testing.T) {
	storetest.Run(t, func(t *testing.T, _ *storetest.Clock, opts ...store.Option) store.ContextStore {
		db, err := bbolt.Open(filepath.Join(t.TempDir(), "shared.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		// Another application's bucket in the same file must not show.
		other, err := New(db, WithBucket("other"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		for _, id := range storetest.HostileIDs() {
			if _, err := other.Apply(context.Background(), id, store.Change{Set: map[string][]byte{"other": nil}}); err != nil {
				t.Fatal(err)
			}
		}
		s, err := New(db, store.OptionsFor[Option](opts)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestCloseLeavesACallersDBOpen(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "shared.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), "r", store.Change{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(*bbolt.Tx) error { return nil }); err != nil {
		t.Fatalf("the caller's db after Close: %v", err)
	}
	s2, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Load(context.Background(), "r"); err != nil {
		t.Fatalf("a record written before Close: %v", err)
	}
}

func TestNewRefusesAnOpenTimeoutAndAnEmptyBucket(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "shared.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := New(db, WithOpenTimeout(time.Second)); !errors.Is(err, store.ErrUnusedOption) {
		t.Errorf("New with WithOpenTimeout: %v, want store.ErrUnusedOption", err)
	}
	if _, err := New(db, WithBucket("")); err == nil || !strings.Contains(err.Error(), "empty bucket name") {
		t.Errorf("New with an empty bucket: %v, want an error", err)
	}
}

func TestCloseStopsTheSweeper(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ctx.db"), store.WithTTL(time.Minute), WithSweepInterval(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), "r", store.Change{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t)
}

func TestARecordSurvivesARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctx.db")
	out, err := child(t, "restart", path).Output()
	if err != nil {
		t.Fatalf("writer process: %v", err)
	}
	var written uint64
	if _, err := fmt.Sscan(string(out), &written); err != nil {
		t.Fatalf("writer printed %q: %v", out, err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Load(context.Background(), "restart")
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != written || string(r.Fields["a"]) != "A" || string(r.Fields["b"]) != "B2" || len(r.Fields) != 2 {
		t.Fatalf("after a restart: version %d, fields %q; want version %d, a=A b=B2", r.Version, r.Fields, written)
	}
	v, err := s.Apply(context.Background(), "restart", store.Change{})
	if err != nil || v != written+1 {
		t.Fatalf("the first write after a restart: version %d, %v; want %d", v, err, written+1)
	}
}

func TestOpeningAFileAnotherProcessHoldsTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctx.db")
	holder := child(t, "hold", path)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); holder.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "holding\n" {
		t.Fatalf("holder said %q, %v", line, err)
	}

	s, err := Open(path, WithOpenTimeout(200*time.Millisecond))
	if err == nil {
		s.Close()
		t.Fatal("Open of a file another process holds succeeded")
	}
	if !errors.Is(err, berrors.ErrTimeout) || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("Open of a held file: %v; want a timeout saying the file is locked", err)
	}

	stdin.Close()
	if err := holder.Wait(); err != nil {
		t.Fatalf("holder: %v", err)
	}
	s, err = Open(path, WithOpenTimeout(time.Second))
	if err != nil {
		t.Fatalf("Open once the holder has exited: %v", err)
	}
	s.Close()
}

func TestADamagedFileIsAnErrorNotAPanic(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"random bytes", func(t *testing.T, path string) {
			writeFile(t, path, randomBytes(64<<10))
		}},
		{"a file shorter than its meta pages", func(t *testing.T, path string) {
			writeFile(t, path, []byte("bolt"))
		}},
		{"zeroed meta pages", func(t *testing.T, path string) {
			overwrite(t, path, 0, make([]byte, 2*os.Getpagesize()))
		}},
		{"a truncated file", func(t *testing.T, path string) {
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, info.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"data pages overwritten with random bytes", func(t *testing.T, path string) {
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			page := int64(os.Getpagesize())
			overwrite(t, path, 2*page, randomBytes(int(info.Size()-2*page)))
		}},
		{"data pages zeroed", func(t *testing.T, path string) {
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			page := int64(os.Getpagesize())
			overwrite(t, path, 2*page, make([]byte, info.Size()-2*page))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ctx.db")
			fill(t, path, 300)
			tt.damage(t, path)
			s, err := Open(path, WithOpenTimeout(time.Second))
			if err != nil {
				t.Logf("Open: %v", err)
				return
			}
			defer s.Close()
			// bbolt has no checksums on data pages: damage there may go
			// unseen, but every call must return.
			ctx := context.Background()
			var errs int
			for i := range 300 {
				id := fmt.Sprintf("rec-%d", i)
				if _, err := s.Load(ctx, id); err != nil {
					errs++
				}
				if _, err := s.Apply(ctx, id, store.Change{Set: map[string][]byte{"x": []byte("y")}}); err != nil {
					errs++
				}
			}
			if _, _, err := s.List(ctx, "", 0); err != nil {
				errs++
			}
			if _, err := s.Sweep(ctx); err != nil {
				errs++
			}
			t.Logf("Open succeeded; %d of 602 calls failed", errs)
			if errs == 0 {
				t.Error("every call on a damaged file succeeded")
			}
		})
	}
}

func TestEachDamagedPageIsAnErrorNotAPanic(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	const records = 100
	fill(t, good, records)
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	ctx := context.Background()
	var opened, failedCalls int
	for p := 2; p < len(orig)/page; p++ {
		for _, fillByte := range []byte{0x00, 0xff} {
			damaged := bytes.Clone(orig)
			for i := p * page; i < (p+1)*page; i++ {
				damaged[i] = fillByte
			}
			path := filepath.Join(dir, fmt.Sprintf("page-%d-%x.db", p, fillByte))
			writeFile(t, path, damaged)
			s, err := Open(path, WithOpenTimeout(time.Second))
			if err != nil {
				continue
			}
			opened++
			for i := range records {
				if _, err := s.Load(ctx, fmt.Sprintf("rec-%d", i)); err != nil {
					failedCalls++
				}
			}
			for i := 0; i < records; i += records / 4 { // writes fsync: a few
				if _, err := s.Apply(ctx, fmt.Sprintf("rec-%d", i), store.Change{Set: map[string][]byte{"x": []byte("y")}}); err != nil {
					failedCalls++
				}
			}
			if _, _, err := s.List(ctx, "", 0); err != nil {
				failedCalls++
			}
			s.Close()
		}
	}
	t.Logf("%d damaged files opened; %d calls on them failed", opened, failedCalls)
	if opened == 0 || failedCalls == 0 {
		t.Fatal("no damaged page reached a store call: the test proves nothing")
	}
}

func fill(t *testing.T, path string, n int) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.db.Update(func(tx *bbolt.Tx) error {
		for i := range n {
			c := store.Change{Set: map[string][]byte{"a": make([]byte, 1000), "b": []byte("B")}}
			if _, err := s.applyTx(tx, fmt.Sprintf("rec-%d", i), c, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func overwrite(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestCorruptMetadataIsACorruptError(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.Apply(ctx, "r", store.Change{Set: map[string][]byte{"a": []byte("A")}}); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		recs, _ := s.buckets(tx)
		return recs.Put(recordPrefix("r"), []byte("garbage"))
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Load":  func() error { _, err := s.Load(ctx, "r"); return err },
		"Apply": func() error { _, err := s.Apply(ctx, "r", store.Change{}); return err },
		"Touch": func() error { return s.Touch(ctx, "r") },
	}
	for name, call := range calls {
		var ce *store.CorruptError
		if err := call(); !errors.As(err, &ce) || ce.ID != "r" {
			t.Errorf("%s of a record with corrupt metadata: %v; want a *store.CorruptError naming it", name, err)
		}
	}
	if ids, _, err := s.List(ctx, "", 0); err != nil || len(ids) != 1 {
		t.Errorf("List with a corrupt record: %q, %v; want it listed", ids, err)
	}
	if err := s.Delete(ctx, "r"); err != nil {
		t.Errorf("Delete of a corrupt record: %v", err)
	}
}

func TestAOneFieldApplyWritesOnlyThatField(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	big := map[string][]byte{}
	for i := range 64 {
		big[fmt.Sprintf("f%02d", i)] = make([]byte, 64<<10) // 4 MiB in all
	}
	if _, err := s.Apply(ctx, "r", store.Change{Set: big}); err != nil {
		t.Fatal(err)
	}
	before := s.db.Stats()
	if _, err := s.Apply(ctx, "r", store.Change{Set: map[string][]byte{"small": []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	after := s.db.Stats()
	diff := after.Sub(&before)
	// Written pages: the leaf holding the new field and the metadata,
	// the branches above it, the bucket roots and the freelist.
	if pages := diff.TxStats.GetWrite(); pages > 16 {
		t.Fatalf("a one-field Apply on a 4 MiB record wrote %d pages", pages)
	}
}

// crashWriters write concurrently in the crash child, so the kill lands
// among batched commits.
const crashWriters = 4

func crashID(g int) string { return fmt.Sprintf("crash-%d", g) }

func crashChange(i int) store.Change {
	return store.Change{Set: map[string][]byte{fmt.Sprintf("n%d", i): fmt.Appendf(nil, "%d", i)}}
}

func TestEveryAcknowledgedWriteSurvivesSIGKILL(t *testing.T) {
	runs := 5
	if testing.Short() {
		runs = 2
	}
	for run := range runs {
		t.Run(fmt.Sprintf("run %d", run+1), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ctx.db")
			killAt := 1 + mrand.IntN(400)
			acked := crashChild(t, path, killAt)
			t.Logf("killed after %d acknowledged writes; %d in all were acknowledged", killAt, countAcks(acked))
			checkFile(t, path)
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for g, n := range acked {
				r, err := s.Load(context.Background(), crashID(g))
				if n == 0 {
					continue
				}
				if err != nil {
					t.Fatalf("writer %d had %d writes acknowledged: %v", g, n, err)
				}
				for i := range n {
					name := fmt.Sprintf("n%d", i)
					if got := string(r.Fields[name]); got != fmt.Sprint(i) {
						t.Fatalf("writer %d: acknowledged write %d is lost (field %s = %q)", g, i, name, got)
					}
				}
				if r.Version < uint64(n) {
					t.Fatalf("writer %d: version %d after %d acknowledged writes", g, r.Version, n)
				}
			}
		})
	}
}

// crashChild runs the crash child on path, kills it with SIGKILL once it has
// acknowledged killAt writes, and returns how many writes of each writer were
// acknowledged (writers acknowledge in order).
func crashChild(t *testing.T, path string, killAt int) (acked [crashWriters]int) {
	t.Helper()
	cmd := child(t, "crash", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	total, killed := 0, false
	for sc.Scan() {
		var g, i int
		if _, err := fmt.Sscan(sc.Text(), &g, &i); err != nil || g < 0 || g >= crashWriters || i != acked[g] {
			cmd.Process.Kill()
			t.Fatalf("child printed %q after %v", sc.Text(), acked)
		}
		acked[g]++
		total++
		if total == killAt && !killed {
			// Lines already in the pipe are acknowledged writes too: read on.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !killed || !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child ended before the kill: %v", err)
	}
	return acked
}

func countAcks(acked [crashWriters]int) int {
	n := 0
	for _, a := range acked {
		n += a
	}
	return n
}

// checkFile runs bbolt's consistency check on the file at path.
func checkFile(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("reopening after the kill: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("consistency check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
