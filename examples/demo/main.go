// Command demo serves a LiveView-style page whose state lives in a livectx
// socket: a counter, a text input that survives reloads, and a photo
// gallery whose photos are tempAssigned, so they reach the browser but never
// the store. The page shows how many bytes the store holds for it.
//
//	export LIVECTX_DEMO_KEYS=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
//	go run ./examples/demo                                   # memory store (ttl=1h), http://127.0.0.1:8080/
//	go run ./examples/demo -store 'bolt://demo.db?ttl=24h'    # survives a restart
//	go run ./examples/demo -store 'redis://127.0.0.1:6379/0?prefix=demo:&ttl=24h'
//
// Events reach the server by fetch POST; the server applies them through the
// socket, renders the HTML and the page swaps it in.
//
// The server mints every page's id and puts in the page URL (?t=...) a
// token binding the id to the browser's session cookie, signed with the
// keys in LIVECTX_DEMO_KEYS (hex, comma-separated, at least 32 bytes each;
// the first signs, all verify). A reload, or a restarted server on a bolt or
// Redis store with the same keys, resumes the page where it was; another
// browser, or a bare ?id=, gets a page of its own. Without LIVECTX_DEMO_KEYS
// the demo makes a random key, and a restart starts every page afresh.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9/logging"

	"github.com/livectx/livectx/storeurl"
	"github.com/livectx/livectx/token"
)

func main() {
	logging.Disable() // go-redis logs each failed dial; the error says it once
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	storeURL := fs.String("store", "memory://?ttl=1h", "store URL: memory://, bolt:///path/file.db, redis://host:port/db (see package storeurl); ttl= expires abandoned pages")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil // -h: the usage is printed
	} else if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	keys, err := parseKeys(os.Getenv("LIVECTX_DEMO_KEYS"))
	if err != nil {
		return err
	}
	random := keys == nil
	if random {
		keys = [][]byte{make([]byte, token.MinKeySize)}
		rand.Read(keys[0])
	}
	d, err := start(ctx, *addr, *storeURL, keys, log)
	if err != nil {
		return err
	}
	if random {
		log.Warn("demo: LIVECTX_DEMO_KEYS is not set: tokens are signed with a random key, so pages do not resume after a restart")
	}
	fmt.Fprintf(stderr, "livectx demo on http://%s/ (store %s); Ctrl-C stops it\n", d.Addr(), *storeURL)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.Stop(sctx)
}

// parseKeys reads LIVECTX_DEMO_KEYS: hex keys, comma-separated, the
// signing key first. It returns nil for "".
func parseKeys(s string) ([][]byte, error) {
	if s == "" {
		return nil, nil
	}
	var keys [][]byte
	for i, h := range strings.Split(s, ",") {
		k, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil {
			return nil, fmt.Errorf("LIVECTX_DEMO_KEYS: key %d is not hex: %w", i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// running is a started demo server.
type running struct {
	srv  *http.Server
	app  *app
	ln   net.Listener
	done chan error

	stop    sync.Once
	stopErr error
}

// start opens the store, listens on addr and serves the demo until Stop,
// its tokens signed with keys (see newApp).
func start(ctx context.Context, addr, storeURL string, keys [][]byte, log *slog.Logger) (*running, error) {
	st, err := storeurl.Open(ctx, storeURL)
	if err != nil {
		return nil, err
	}
	a, err := newApp(st, storeURL, keys, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		st.Close()
		return nil, err
	}
	r := &running{
		srv:  &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second},
		app:  a,
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { r.done <- r.srv.Serve(ln) }()
	return r, nil
}

// Addr is the address the server listens on.
func (r *running) Addr() string { return r.ln.Addr().String() }

// Stop shuts the server down, then closes the sockets (their records stay
// in the store) and the store. Later calls return the first one's error.
func (r *running) Stop(ctx context.Context) error {
	r.stop.Do(func() {
		err := r.srv.Shutdown(ctx)
		if serr := <-r.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		r.stopErr = errors.Join(err, r.app.Close(ctx))
	})
	return r.stopErr
}
