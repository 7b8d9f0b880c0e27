// Command liveview serves a LiveView page to the unmodified Phoenix LiveView
// browser client (the npm packages phoenix and phoenix_live_view), on the
// Phoenix channel protocol, with the page's state in a livectx socket: on a
// bolt file it survives a restart, on Redis it survives losing its node.
//
//	npm ci && go run .                                   # http://127.0.0.1:4000/, memory store
//	go run . -store 'bolt://page.db?ttl=24h'             # survives a restart
//	go run . two-nodes -store 'redis://127.0.0.1:6379/0?prefix=lvdemo:&ttl=1h'
//
// two-nodes starts nodes A and B (this program, twice) and a reverse proxy
// in front of them on -addr, and prints how to kill the node serving the
// page. proxy runs the proxy alone:
//
//	go run . proxy -addr 127.0.0.1:4000 -to 127.0.0.1:4001,127.0.0.1:4002
//
// Nodes that serve one store must share their keys (-keys or
// LIVECTX_LIVEVIEW_KEYS: comma-separated hex secrets, the first signs),
// so that a page minted by one joins on the other.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/livectx/livectx/storeurl"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "liveview:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 {
		switch args[0] {
		case "proxy":
			return runProxy(ctx, args[1:], stderr)
		case "two-nodes":
			return runTwoNodes(ctx, args[1:], stderr)
		}
	}
	return runNode(ctx, args, stderr)
}

// keysEnv holds the nodes' shared keys when -keys is not given.
const keysEnv = "LIVECTX_LIVEVIEW_KEYS"

func runNode(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("liveview", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4000", "address to listen on")
	storeURL := fs.String("store", "memory://?ttl=1h", "store URL (see package storeurl): memory://, bolt:///path/file.db, redis://host:port/db, redis+cluster://...; ttl= expires abandoned pages")
	node := fs.String("node", "", "this node's name, shown on the page (default: the address)")
	keys := fs.String("keys", os.Getenv(keysEnv), "comma-separated hex secrets shared by the nodes, the first signs (default $"+keysEnv+", else a random one: pages then join this process only)")
	modules := fs.String("modules", "node_modules", "the node_modules folder npm ci filled")
	verbose := fs.Bool("v", false, "log every join and refusal")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ks, err := parseKeys(*keys)
	if err != nil {
		return err
	}
	if err := checkClient(*modules); err != nil {
		return err
	}
	st, err := storeurl.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *node == "" {
		*node = ln.Addr().String()
	}
	srv, err := newServer(config{store: st, node: *node, keys: ks, modules: *modules, log: log})
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(stderr, "liveview node %s on http://%s/ (store %s)\n", *node, ln.Addr(), *storeURL)
	return serveUntil(ctx, ln, srv)
}

// parseKeys reads comma-separated hex keys of at least 32 bytes; none makes
// one random key.
func parseKeys(s string) ([][]byte, error) {
	if s == "" {
		return [][]byte{random(32)}, nil
	}
	var ks [][]byte
	for _, h := range strings.Split(s, ",") {
		k, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil || len(k) < 32 {
			return nil, fmt.Errorf("keys: each key is at least 32 bytes in hex (openssl rand -hex 32)")
		}
		ks = append(ks, k)
	}
	return ks, nil
}
