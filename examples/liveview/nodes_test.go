package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/storeurl"
)

// This file runs the example as real node processes, as a deploy would:
// the binary built with go build, the nodes sharing keys and a store.

// builds are the binaries built for this test run, by build tags.
var builds = struct {
	sync.Mutex
	dir  string
	bins map[string]string
}{bins: map[string]string{}}

// nodeBinary builds the example with the build tags (none: version 1 of
// the view; "nextversion": version 2) once per test run and returns its
// path.
func nodeBinary(t *testing.T, tags string) string {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	if bin, ok := builds.bins[tags]; ok {
		return bin
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "livectx-liveview-bin")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir = dir
	}
	bin := filepath.Join(builds.dir, "liveview"+strings.ReplaceAll("-"+tags, ",", "-"))
	out, err := exec.Command("go", "build", "-tags", tags, "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -tags %q: %v\n%s", tags, err, out)
	}
	builds.bins[tags] = bin
	return bin
}

// TestMain removes the binaries nodeBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// node is a running node process.
type node struct {
	name string
	addr string // host:port it listens on
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited

	mu  sync.Mutex
	log strings.Builder // what it wrote to stderr
}

// startNode starts a node of bin named name on addr ("127.0.0.1:0" for any
// port) and storeURL, with the test keys, and waits until it listens. The
// test's end kills it.
func startNode(t *testing.T, bin, name, addr, storeURL string, extra ...string) *node {
	t.Helper()
	modules, err := filepath.Abs("node_modules")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-addr", addr, "-node", name, "-store", storeURL, "-modules", modules, "-v"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), keysEnv+"="+hex.EncodeToString(testKeys[0]))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, cmd: cmd, done: make(chan struct{})}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			n.mu.Lock()
			n.log.WriteString(line + "\n")
			n.mu.Unlock()
			if _, rest, ok := strings.Cut(line, " on http://"); ok && strings.HasPrefix(line, "liveview node") {
				listening <- strings.TrimSuffix(strings.Fields(rest)[0], "/")
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		n.kill(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("node %s log:\n%s", name, n.logText())
		}
	})
	select {
	case n.addr = <-listening:
		return n
	case <-n.done:
		t.Fatalf("node %s exited before listening:\n%s", name, n.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not listen within 30s:\n%s", name, n.logText())
	}
	return nil
}

func (n *node) logText() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

// kill sends sig to the node and waits until it has exited.
func (n *node) kill(sig syscall.Signal) {
	n.cmd.Process.Signal(sig)
	<-n.done
}

// freeAddr returns a local address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProxy serves a proxy over the nodes in this process.
func startProxy(t *testing.T, nodes ...*node) string {
	t.Helper()
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.addr)
	}
	hs := httptest.NewServer(newProxy(addrs, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(hs.Close)
	return hs.URL
}

// openStore opens the store url names, closed at the test's end.
func openStore(t testing.TB, url string) store.ContextStore {
	t.Helper()
	st, err := storeurl.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// redisURLs returns the store URLs of the Redis servers the environment
// names (LIVECTX_REDIS_ADDR, LIVECTX_REDIS_CLUSTER), each with a key
// prefix of its own for the test, or skips the test when it names none.
func redisURLs(t *testing.T) map[string]string {
	t.Helper()
	prefix := fmt.Sprintf("livectx-liveview-test-%d-%s:", os.Getpid(), strings.ToLower(hex.EncodeToString(random(4))))
	urls := map[string]string{}
	if a := os.Getenv("LIVECTX_REDIS_ADDR"); a != "" {
		urls["redis"] = "redis://" + a + "/0?ttl=10m&prefix=" + prefix
	}
	if c := os.Getenv("LIVECTX_REDIS_CLUSTER"); c != "" {
		urls["cluster"] = "redis+cluster://" + c + "?ttl=10m&prefix=" + prefix
	}
	if len(urls) == 0 {
		t.Skip("set LIVECTX_REDIS_ADDR (host:port of a Redis server) and/or LIVECTX_REDIS_CLUSTER (comma-separated addresses of a cluster) to run the nodes on Redis; .ci/run starts both")
	}
	return urls
}
