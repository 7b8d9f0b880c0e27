package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"go.etcd.io/bbolt"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/internal/selfexec"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/storeurl"
)

func TestMain(m *testing.M) {
	selfexec.Main(main)
	os.Exit(m.Run())
}

// A field whose bin32 header declares 4 GiB but holds five bytes: decoding
// it naively would allocate gigabytes.
var hostileField = []byte{0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5}

const oddID = "odd id\x00é"

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seed writes the records every test inspects.
func seed(t *testing.T, st store.ContextStore) {
	t.Helper()
	ctx := context.Background()
	records := map[string]map[string][]byte{
		"page-1": {
			"count":  mustMarshal(t, 3),
			"text":   mustMarshal(t, "hi"),
			"blob":   mustMarshal(t, []byte{0xde, 0xad}),
			"nested": mustMarshal(t, map[string]any{"a": []any{1, "x"}}),
			"photos": mustMarshal(t, nil),
		},
		"page-2": {"count": mustMarshal(t, 1)},
		oddID:    {"count": mustMarshal(t, 2)},
		"broken": {"ok": mustMarshal(t, true), "bad": hostileField},
	}
	for id, fields := range records {
		if _, err := st.Apply(ctx, id, store.Change{Set: fields}); err != nil {
			t.Fatal(err)
		}
	}
}

// backend is a store the commands run against, opened on demand.
type backend struct {
	name string
	open func(t *testing.T) store.ContextStore
}

func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T) store.ContextStore {
			s := memory.New()
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"bolt", func(t *testing.T) store.ContextStore {
			s, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
	}
}

// inspect runs a command line (without -store) against st.
func inspect(t *testing.T, st store.ContextStore, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	_, do, err := parseArgs(append([]string{"-store", "memory://"}, args...), &out, &errOut)
	if err != nil {
		t.Fatalf("parse %q: %v\n%s", args, err, errOut.String())
	}
	err = do.run(context.Background(), st)
	return out.String(), errOut.String(), err
}

func forEachBackend(t *testing.T, f func(t *testing.T, st store.ContextStore)) {
	for _, b := range backends() {
		t.Run("on "+b.name, func(t *testing.T) {
			st := b.open(t)
			seed(t, st)
			f(t, st)
		})
	}
}

func TestListPrintsEveryIDOncePageByPage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.ContextStore) {
		var got []string
		var args []string
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("listing does not end")
			}
			out, errOut, err := inspect(t, st, append([]string{"list", "-limit", "1"}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if out = strings.TrimSpace(out); out != "" {
				got = append(got, strings.Split(out, "\n")...)
			}
			if errOut == "" {
				break
			}
			cursor, ok := strings.CutPrefix(strings.TrimSpace(errOut), "more: list -cursor ")
			if !ok {
				t.Fatalf("stderr = %q, want the next cursor", errOut)
			}
			args = []string{"-cursor", mustUnquote(t, cursor)}
		}
		out, _, err := inspect(t, st, "list")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		slices.Sort(lines)
		want := []string{`"odd id\x00é"`, "broken", "page-1", "page-2"}
		slices.Sort(want)
		if !slices.Equal(lines, want) {
			t.Errorf("list printed %q, want %q", lines, want)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("paging one id at a time printed %q, want %q", got, want)
		}
	})
}

func mustUnquote(t *testing.T, s string) string {
	t.Helper()
	id, err := parseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestShowDecodesEveryFieldSafely(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.ContextStore) {
		out, _, err := inspect(t, st, "show", "page-1")
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			ID      string
			Version uint64
			Size    int
			TTL     string
			Fields  map[string]struct {
				Size    int
				Value   any
				Corrupt string
			}
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("show printed no JSON (%v):\n%s", err, out)
		}
		rec, err := st.Load(context.Background(), "page-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "page-1" || got.Version != rec.Version || got.Size != rec.Size() || got.TTL != "none: never expires" {
			t.Errorf("show printed id %q, version %d, size %d, ttl %q; want page-1, %d, %d, none: never expires", got.ID, got.Version, got.Size, got.TTL, rec.Version, rec.Size())
		}
		values := map[string]string{}
		for name, f := range got.Fields {
			b, _ := json.Marshal(f.Value)
			values[name] = string(b)
			if f.Size != len(rec.Fields[name]) || f.Corrupt != "" {
				t.Errorf("field %s: size %d, corrupt %q; want %d, none", name, f.Size, f.Corrupt, len(rec.Fields[name]))
			}
		}
		want := map[string]string{
			"count":  `3`,
			"text":   `"hi"`,
			"blob":   `{"base64":"3q0="}`,
			"nested": `{"a":[1,"x"]}`,
			"photos": `null`,
		}
		for name, v := range want {
			if values[name] != v {
				t.Errorf("field %s shown as %s, want %s", name, values[name], v)
			}
		}
	})
}

func TestShowReportsACorruptFieldAndTheOthers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.ContextStore) {
		out, _, err := inspect(t, st, "show", "broken")
		if err != nil {
			t.Fatal(err)
		}
		var got shown
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("show printed no JSON (%v):\n%s", err, out)
		}
		bad := got.Fields["bad"]
		if !slices.Equal(got.Corrupt, []string{"bad"}) || !strings.Contains(bad.Corrupt, "corrupt field") || bad.Raw != "xv////8BAgMEBQ==" {
			t.Errorf("the hostile field is shown as %+v (corrupt fields %q); want it reported corrupt with its raw bytes", bad, got.Corrupt)
		}
		if got.Fields["ok"].Value != true {
			t.Errorf("the good field of a corrupt record is shown as %v, want true", got.Fields["ok"].Value)
		}
	})
}

func TestShowAndDeleteTakeAQuotedID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.ContextStore) {
		out, _, err := inspect(t, st, "show", `"odd id\x00é"`)
		if err != nil || !strings.Contains(out, `"count"`) {
			t.Fatalf("show of a quoted id: %v\n%s", err, out)
		}
		if out, _, err := inspect(t, st, "delete", `"odd id\x00é"`); err != nil || out != "deleted \"odd id\\x00é\"\n" {
			t.Fatalf("delete of a quoted id printed %q, %v", out, err)
		}
		if _, err := st.Load(context.Background(), oddID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Load after delete: %v, want ErrNotFound", err)
		}
	})
}

func TestShowOfAMissingIDIsAnError(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.ContextStore) {
		if _, _, err := inspect(t, st, "show", "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("show of a missing id: %v, want ErrNotFound", err)
		}
	})
}

func TestDeleteRemovesOneRecord(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.ContextStore) {
		out, _, err := inspect(t, st, "delete", "page-2")
		if err != nil || out != "deleted page-2\n" {
			t.Fatalf("delete printed %q, %v", out, err)
		}
		if _, err := st.Load(context.Background(), "page-2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Load after delete: %v, want ErrNotFound", err)
		}
		if _, err := st.Load(context.Background(), "page-1"); err != nil {
			t.Errorf("delete removed another record: %v", err)
		}
		if out, _, err := inspect(t, st, "delete", "page-2"); err != nil || out != "no record page-2: nothing deleted\n" {
			t.Errorf("second delete printed %q, %v", out, err)
		}
	})
}

func TestStatsCountsAndSizesTheWholeStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.ContextStore) {
		out, _, err := inspect(t, st, "stats")
		if err != nil {
			t.Fatal(err)
		}
		var got summary
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("stats printed no JSON (%v):\n%s", err, out)
		}
		want := summary{Records: 4, Fields: 9, Corrupt: 1, CorruptIDs: []string{"broken"}}
		for _, id := range []string{"page-1", "page-2", oddID, "broken"} {
			rec, err := st.Load(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			want.TotalBytes += rec.Size()
			if rec.Size() > want.MaxBytes {
				want.MaxBytes, want.MaxID = rec.Size(), id
			}
		}
		if !equalSummary(got, want) {
			t.Errorf("stats = %+v, want %+v", got, want)
		}
	})
}

func equalSummary(a, b summary) bool {
	return a.Records == b.Records && a.Fields == b.Fields && a.TotalBytes == b.TotalBytes &&
		a.MaxBytes == b.MaxBytes && a.MaxID == b.MaxID && a.Corrupt == b.Corrupt &&
		slices.Equal(a.CorruptIDs, b.CorruptIDs) && a.Vanished == b.Vanished
}

// plantCorruptRecord overwrites the metadata of id in a bolt file by hand,
// following boltstore's documented layout.
func plantCorruptRecord(t *testing.T, path, id string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		recs := tx.Bucket([]byte(boltstore.DefaultBucket)).Bucket([]byte("records"))
		key := binary.BigEndian.AppendUint16(nil, uint16(len(id)))
		return recs.Put(append(key, id...), []byte("garbage"))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTheCommandLineOnABoltFileWithACorruptRecord(t *testing.T) {
	path := boltFile(t)
	plantCorruptRecord(t, path, "page-2")
	url := "bolt://" + path

	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"-store", url}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := cli("list"); err != nil || !strings.Contains(out, "page-2\n") {
		t.Errorf("list: %v\n%s", err, out)
	}
	if _, err := cli("show", "page-2"); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("show of the corrupt record: %v, want an error matching store.ErrCorrupt", err)
	}
	out, err := cli("stats")
	var got summary
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Records != 3 || got.Corrupt != 2 || !slices.Equal(got.CorruptIDs, []string{"broken", "page-2"}) {
		t.Errorf("stats with a corrupt record: %v\n%s", err, out)
	}
	if out, err := cli("delete", "page-2"); err != nil || out != "deleted page-2\n" {
		t.Errorf("delete of the corrupt record: %q, %v", out, err)
	}
	if out, err := cli("stats"); err != nil || !strings.Contains(out, `"records": 3`) || !strings.Contains(out, `"corrupt": 1`) {
		t.Errorf("stats after deleting the corrupt record: %v\n%s", err, out)
	}
}

func TestShowOnRedisReportsTheTimeToLive(t *testing.T) {
	m := miniredis.RunT(t)
	url := "redis://" + m.Addr() + "?prefix=t:&ttl=45m"
	st, err := storeurl.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, st)
	st.Close()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"-store", url, "show", "page-1"}, &out, &errOut); err != nil {
		t.Fatalf("show: %v\n%s", err, errOut.String())
	}
	var got shown
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.TTL != "45m0s" || got.Fields["count"].Value != float64(3) {
		t.Errorf("show on redis: ttl %q, count %v (%v); want 45m0s, 3\n%s", got.TTL, got.Fields["count"].Value, err, out.String())
	}
}

func TestBadCommandLinesPrintTheUsage(t *testing.T) {
	cases := [][]string{
		{},
		{"-store", "memory://"},
		{"-store", "memory://", "frob"},
		{"-store", "memory://", "show"},
		{"-store", "memory://", "show", "a", "b"},
		{"-store", "memory://", "stats", "x"},
		{"-store", "memory://", "list", "-limit", "x"},
		{"-store", "memory://", "list", "extra"},
	}
	for _, args := range cases {
		var out, errOut bytes.Buffer
		t.Setenv("LIVECTX_STORE", "")
		err := run(context.Background(), args, &out, &errOut)
		if !errors.Is(err, errUsage) || !strings.Contains(errOut.String(), "usage: livectx") {
			t.Errorf("run(%q) = %v, stderr %q; want the usage", args, err, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-store", "nope://", "stats"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "forms:") {
		t.Errorf("a bad store URL: %v, want the URL forms listed", err)
	}
}

// boltFile writes the seeded records to a bolt file and returns its path.
func boltFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func md5Of(t *testing.T, path string) [md5.Size]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return md5.Sum(b)
}

func TestReadingABoltFileLeavesItByteForByte(t *testing.T) {
	path := boltFile(t)
	before := md5Of(t, path)
	for _, args := range [][]string{{"list"}, {"show", "page-1"}, {"show", "nope"}, {"stats"}} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"-store", "bolt://" + path}, args...), &out, &errOut)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%q: %v\n%s", args, err, errOut.String())
		}
		if md5Of(t, path) != before {
			t.Fatalf("%q changed the file", args)
		}
	}
}

func TestAURLThatNamesNoStoreIsAnErrorThatSaysWhereToLook(t *testing.T) {
	path := boltFile(t)
	m := miniredis.RunT(t)
	app, err := storeurl.Open(context.Background(), "redis://"+m.Addr()+"?prefix=app:")
	if err != nil {
		t.Fatal(err)
	}
	seed(t, app)
	app.Close()
	missing := filepath.Join(t.TempDir(), "typo.db")

	cases := []struct {
		name, url string
		hint      []string // what the error says
	}{
		{"a missing bolt file", "bolt://" + missing, []string{"no file", "typo.db"}},
		{"a missing bolt file, scheme bbolt", "bbolt://" + missing, []string{"no file", "typo.db"}},
		{"a missing bolt file, scheme in capitals", "BOLT://" + missing, []string{"no file", "typo.db"}},
		{"a missing bucket", "bolt://" + path + "?bucket=zzz", []string{`bucket "zzz"`, `the file holds "livectx"`, "?bucket="}},
		{"a Redis prefix without records", "redis://" + m.Addr(), []string{`prefix "livectx:"`, "?prefix=", `records lie under "app:"`}},
		{"a Redis prefix on an empty server", "redis://" + miniredis.RunT(t).Addr(), []string{`prefix "livectx:"`, "no prefix holds records"}},
		{"memory://", "memory://", []string{"a memory store lives in the process that made it"}},
	}
	for _, c := range cases {
		for _, cmd := range [][]string{{"list"}, {"stats"}, {"show", "page-1"}, {"delete", "page-1"}} {
			t.Run(c.name+" fails "+cmd[0], func(t *testing.T) {
				before := md5Of(t, path)
				var out, errOut bytes.Buffer
				err := run(context.Background(), append([]string{"-store", c.url}, cmd...), &out, &errOut)
				if !errors.Is(err, storeurl.ErrNoStore) {
					t.Fatalf("error %v, want storeurl.ErrNoStore", err)
				}
				for _, h := range c.hint {
					if !strings.Contains(err.Error(), h) {
						t.Errorf("the error does not say %q:\n%v", h, err)
					}
				}
				if out.Len() > 0 {
					t.Errorf("it printed %q", out.String())
				}
				if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("the missing bolt file was created (stat: %v)", err)
				}
				if md5Of(t, path) != before {
					t.Error("the bolt file changed")
				}
			})
		}
	}
	if keys := m.Keys(); slices.ContainsFunc(keys, func(k string) bool { return !strings.HasPrefix(k, "app:") }) {
		t.Errorf("the inspector wrote Redis keys outside the application's prefix: %q", keys)
	}
}

func TestARefusedRedisConnectionIsReportedOnce(t *testing.T) {
	stdout, stderr, status := selfexec.Run(t, "-store", "redis://"+redistest.RefusedAddr(t), "list")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if status != 1 || stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "livectx: ") || !strings.Contains(stderr, "connection refused") {
		t.Errorf("exit status %d, stdout %q, stderr:\n%s\nwant status 1 and one line saying the connection was refused", status, stdout, stderr)
	}
}
