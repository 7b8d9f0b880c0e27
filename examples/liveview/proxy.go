package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// proxy is a reverse proxy over several nodes: each request (each websocket
// too) goes to the next node in turn, or to the one after when a node
// refuses the connection, so a killed node's clients reconnect to another.
// It keeps the Host header, which the nodes' Origin check compares with the
// page's origin.
type proxy struct {
	nodes []string // host:port
	next  atomic.Uint64
	rp    *httputil.ReverseProxy
}

// newProxy returns a proxy over nodes (host:port each).
func newProxy(nodes []string, log *slog.Logger) *proxy {
	p := &proxy{nodes: nodes}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "nodes" // the transport's dial picks the node
			r.Out.Host = r.In.Host
		},
		// No pooled connections: every request dials, so every request
		// picks a node that is up.
		Transport: &http.Transport{DialContext: p.dial, DisableKeepAlives: true},
		ErrorLog:  slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return p
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.rp.ServeHTTP(w, r) }

// dial connects to the next node that accepts.
func (p *proxy) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	start := p.next.Add(1)
	var errs []error
	for i := range p.nodes {
		addr := p.nodes[(int(start)+i)%len(p.nodes)]
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("liveview proxy: no node accepts: %w", errors.Join(errs...))
}

func runProxy(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("liveview proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4000", "address to listen on")
	to := fs.String("to", "", "comma-separated host:port of the nodes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" || fs.NArg() > 0 {
		return errors.New("proxy: -to host:port,host:port is required, and nothing else")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "liveview proxy on http://%s/ -> %s\n", ln.Addr(), *to)
	return serveUntil(ctx, ln, newProxy(strings.Split(*to, ","), slog.New(slog.NewTextHandler(stderr, nil))))
}

// serveUntil serves h on ln until ctx ends.
func serveUntil(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runTwoNodes starts nodes A and B (this program, with one shared key) on
// the ports after -addr's, and the proxy on -addr.
func runTwoNodes(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("liveview two-nodes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4000", "the proxy's address; the nodes listen on the next two ports")
	storeURL := fs.String("store", "", "a store both nodes reach: redis://..., redis+cluster://...")
	modules := fs.String("modules", "node_modules", "the node_modules folder npm ci filled")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *storeURL == "" || fs.NArg() > 0 {
		return errors.New("two-nodes: -store is required (both nodes must reach it: Redis)")
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil {
		return fmt.Errorf("two-nodes: -addr port %q: %w", port, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	keys := os.Getenv(keysEnv)
	if keys == "" {
		keys = hex.EncodeToString(random(32))
	}
	var nodes []string
	for i, name := range []string{"A", "B"} {
		naddr := net.JoinHostPort(host, fmt.Sprint(p+1+i))
		cmd := exec.Command(self, "-addr", naddr, "-node", name, "-store", *storeURL, "-modules", *modules)
		cmd.Env = append(os.Environ(), keysEnv+"="+keys)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
		fmt.Fprintf(stderr, "node %s: pid %d on %s; to kill it: kill -9 %d\n", name, cmd.Process.Pid, naddr, cmd.Process.Pid)
		nodes = append(nodes, naddr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "open http://%s/ : the page says which node serves it; kill that node and watch the page rejoin the other\n", ln.Addr())
	return serveUntil(ctx, ln, newProxy(nodes, slog.New(slog.NewTextHandler(stderr, nil))))
}
