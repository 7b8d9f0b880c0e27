// Command livectx inspects what a livectx store holds: the contexts
// (LiveView states) of LiveView instances.
//
//	livectx -store URL list [-cursor C] [-limit N]   ids, one a line; the next page's cursor on stderr
//	livectx -store URL show ID                       one record as JSON: fields decoded, size, version, TTL
//	livectx -store URL delete ID                     remove one record
//	livectx -store URL stats                         count and sizes over the whole store, as JSON
//
// The store URL takes the forms of package storeurl (bolt:///path/file.db,
// redis://host:port/db?prefix=..., cluster and Sentinel forms); -store
// defaults to $LIVECTX_STORE. The inspector changes only what delete
// removes: list, show and stats open a bolt file read-only. It creates
// nothing, and a URL that names no store is an error saying where to look: a
// missing file or bucket, a Redis prefix under which no record lies, or
// memory:// (a memory store lives in its application's process).
//
// Stored bytes are untrusted: every field is decoded with codec.Unmarshal,
// which bounds what hostile bytes can cost, and a field or record that does
// not decode is reported, never a crash. Ids that are not plain printable
// text are printed Go-quoted ("a\x00b"); show and delete accept that form.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9/logging"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/storeurl"
)

const usage = `usage: livectx -store URL COMMAND [ARGS]

commands:
  list [-cursor C] [-limit N]   list record ids, a page at a time (the next cursor goes to stderr)
  show ID                       show one record as JSON: each field decoded, size, version, time to live
  delete ID                     delete one record
  stats                         count the records and sum their sizes, over the whole store

store URLs: ` + storeurl.Forms + `
-store defaults to $LIVECTX_STORE.
`

func main() {
	// go-redis logs every failed dial of its pool; the error run returns
	// says it once. Only a command may change go-redis's global logger.
	logging.Disable()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, errUsage):
		os.Exit(2) // the usage is printed
	case err != nil:
		fmt.Fprintln(os.Stderr, "livectx:", err)
		os.Exit(1)
	}
}

// errUsage is returned for a command line that does not parse; the usage
// has been printed.
var errUsage = errors.New("bad command line")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	storeURL, cmd, err := parseArgs(args, stdout, stderr)
	if err != nil {
		return err
	}
	opts := []storeurl.OpenOption{storeurl.Existing()}
	if !cmd.writes {
		opts = append(opts, storeurl.ReadOnly())
	}
	st, err := storeurl.Open(ctx, storeURL, opts...)
	if err != nil {
		return err
	}
	return errors.Join(cmd.run(ctx, st), st.Close())
}

// command is a parsed command, ready to run against a store.
type command struct {
	run    func(ctx context.Context, st store.ContextStore) error
	writes bool // it may change the store
}

// parseArgs reads the command line; on a bad one it prints the usage to
// stderr and returns errUsage.
func parseArgs(args []string, stdout, stderr io.Writer) (storeURL string, do command, err error) {
	fs := flag.NewFlagSet("livectx", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	flagStore := fs.String("store", os.Getenv("LIVECTX_STORE"), "store URL")
	if err := fs.Parse(args); err != nil {
		return "", command{}, errUsage
	}
	if fs.NArg() == 0 || *flagStore == "" {
		fs.Usage()
		return "", command{}, errUsage
	}
	bad := func(format string, args ...any) (string, command, error) {
		fmt.Fprintf(stderr, "livectx: "+format+"\n%s", append(args, usage)...)
		return "", command{}, errUsage
	}
	cmd, cargs := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "list":
		lf := flag.NewFlagSet("list", flag.ContinueOnError)
		lf.SetOutput(io.Discard)
		cursor := lf.String("cursor", "", "cursor of the page to list (from the previous page)")
		limit := lf.Int("limit", 100, "ids per page")
		if err := lf.Parse(cargs); err != nil {
			return bad("list: %v", err)
		}
		if lf.NArg() != 0 {
			return bad("list takes no arguments besides -cursor and -limit")
		}
		do.run = func(ctx context.Context, st store.ContextStore) error {
			return list(ctx, st, *cursor, *limit, stdout, stderr)
		}
	case "show", "delete":
		if len(cargs) != 1 {
			return bad("%s takes one id", cmd)
		}
		id, err := parseID(cargs[0])
		if err != nil {
			return "", command{}, err
		}
		if cmd == "show" {
			do.run = func(ctx context.Context, st store.ContextStore) error { return show(ctx, st, id, stdout) }
		} else {
			do.run = func(ctx context.Context, st store.ContextStore) error { return remove(ctx, st, id, stdout) }
			do.writes = true
		}
	case "stats":
		if len(cargs) != 0 {
			return bad("stats takes no arguments")
		}
		do.run = func(ctx context.Context, st store.ContextStore) error { return stats(ctx, st, stdout) }
	default:
		return bad("unknown command %q", cmd)
	}
	return *flagStore, do, nil
}

func lister(st store.ContextStore) (store.Lister, error) {
	l, ok := st.(store.Lister)
	if !ok {
		return nil, fmt.Errorf("this store (%T) cannot list its ids", st)
	}
	return l, nil
}

func list(ctx context.Context, st store.ContextStore, cursor string, limit int, stdout, stderr io.Writer) error {
	l, err := lister(st)
	if err != nil {
		return err
	}
	ids, next, err := l.List(ctx, cursor, limit)
	if err != nil {
		return err
	}
	for _, id := range ids {
		fmt.Fprintln(stdout, formatID(id))
	}
	if next != "" {
		fmt.Fprintf(stderr, "more: list -cursor %s\n", strconv.Quote(next))
	}
	return nil
}

// shown is what show prints.
type shown struct {
	ID      string                `json:"id"`
	Version uint64                `json:"version"`
	Size    int                   `json:"size"` // as size caps count it
	TTL     string                `json:"ttl"`
	Fields  map[string]shownField `json:"fields"`
	Corrupt []string              `json:"corrupt_fields,omitempty"`
}

type shownField struct {
	Size    int    `json:"size"`
	Value   any    `json:"value"`
	Corrupt string `json:"corrupt,omitempty"` // why the bytes did not decode
	Raw     string `json:"raw_base64,omitempty"`
}

func show(ctx context.Context, st store.ContextStore, id string, stdout io.Writer) error {
	rec, err := st.Load(ctx, id)
	if err != nil {
		return fmt.Errorf("show %s: %w", formatID(id), err)
	}
	out := shown{ID: id, Version: rec.Version, Size: rec.Size(), Fields: map[string]shownField{}}
	out.TTL = ttlOf(ctx, st, id)
	for name, b := range rec.Fields {
		f := shownField{Size: len(b)}
		var v any
		if err := codec.Unmarshal(id, name, b, &v); err != nil {
			f.Corrupt = err.Error()
			f.Raw = base64.StdEncoding.EncodeToString(b)
			out.Corrupt = append(out.Corrupt, name)
		} else {
			f.Value = jsonValue(v)
		}
		out.Fields[name] = f
	}
	slices.Sort(out.Corrupt)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func ttlOf(ctx context.Context, st store.ContextStore, id string) string {
	r, ok := st.(store.TTLReader)
	if !ok {
		return "unknown: this store does not report time to live"
	}
	d, err := r.TTL(ctx, id)
	switch {
	case err != nil:
		return "unknown: " + err.Error()
	case d == 0:
		return "none: never expires"
	}
	return d.Round(time.Millisecond).String()
}

// jsonValue makes a decoded msgpack value printable as JSON: binary as
// {"base64": ...}, map keys as strings, times in RFC 3339, and the floats
// JSON cannot hold as strings.
func jsonValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return map[string]string{"base64": base64.StdEncoding.EncodeToString(x)}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
	case float32:
		if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(x)
		}
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

func remove(ctx context.Context, st store.ContextStore, id string, stdout io.Writer) error {
	_, err := st.Load(ctx, id)
	missing := errors.Is(err, store.ErrNotFound)
	if err := st.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete %s: %w", formatID(id), err)
	}
	if missing {
		fmt.Fprintf(stdout, "no record %s: nothing deleted\n", formatID(id))
	} else {
		fmt.Fprintf(stdout, "deleted %s\n", formatID(id))
	}
	return nil
}

// summary is what stats prints.
type summary struct {
	Records    int    `json:"records"` // readable records
	Fields     int    `json:"fields"`
	TotalBytes int    `json:"total_bytes"` // sum of the readable records' sizes
	MaxBytes   int    `json:"max_bytes"`
	MaxID      string `json:"max_id,omitempty"`
	// Corrupt counts the records the store cannot read, and the readable
	// ones holding a field that is not well-formed msgpack.
	Corrupt    int      `json:"corrupt"`
	CorruptIDs []string `json:"corrupt_ids,omitempty"` // the first maxCorruptListed, sorted
	// Vanished counts ids listed, then gone (expired or deleted) before
	// they were read.
	Vanished int `json:"vanished"`
}

// maxCorruptListed bounds the corrupt ids stats prints.
const maxCorruptListed = 100

func stats(ctx context.Context, st store.ContextStore, stdout io.Writer) error {
	l, err := lister(st)
	if err != nil {
		return err
	}
	var sum summary
	corrupt := func(id string) {
		sum.Corrupt++
		if len(sum.CorruptIDs) < maxCorruptListed {
			sum.CorruptIDs = append(sum.CorruptIDs, id)
		}
	}
	cursor := ""
	for {
		ids, next, err := l.List(ctx, cursor, 1000)
		if err != nil {
			return err
		}
		for _, id := range ids {
			rec, err := st.Load(ctx, id)
			switch {
			case errors.Is(err, store.ErrNotFound):
				sum.Vanished++
				continue
			case errors.Is(err, store.ErrCorrupt):
				corrupt(id)
				continue
			case err != nil:
				return fmt.Errorf("stats: load %s: %w", formatID(id), err)
			}
			sum.Records++
			sum.Fields += len(rec.Fields)
			size := rec.Size()
			sum.TotalBytes += size
			if size > sum.MaxBytes || sum.MaxID == "" {
				sum.MaxBytes, sum.MaxID = size, id
			}
			for _, b := range rec.Fields {
				if codec.Check(b) != nil {
					corrupt(id)
					break
				}
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	slices.Sort(sum.CorruptIDs)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(sum)
}

// formatID prints plain ids as they are and others Go-quoted.
func formatID(id string) string {
	for _, r := range id {
		if r == '"' || r == '\\' || r == unicode.ReplacementChar || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return strconv.Quote(id)
		}
	}
	if id == "" {
		return `""`
	}
	return id
}

// parseID accepts what formatID prints.
func parseID(s string) (string, error) {
	if strings.HasPrefix(s, `"`) {
		id, err := strconv.Unquote(s)
		if err != nil {
			return "", fmt.Errorf("id %s: a quoted id must be a Go string literal: %w", s, err)
		}
		return id, nil
	}
	return s, nil
}
