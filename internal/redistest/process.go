package redistest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Process is a redis-server a test starts for itself on a free loopback
// port. It is killed when the test ends.
type Process struct {
	Port int // on 127.0.0.1
	tb   testing.TB
	dir  string
	args []string
	cmd  *exec.Cmd
}

// StartProcess runs redis-server with args (a configuration file first, if
// any), then --port, --bind 127.0.0.1, --dir (a directory of the test's),
// --save "" and --logfile, and waits until it answers PING. It skips tb
// unless LIVECTX_REDIS_FAULTS=1, and fails tb when redis-server is missing.
func StartProcess(tb testing.TB, args ...string) *Process {
	tb.Helper()
	if os.Getenv(EnvFaults) != "1" {
		tb.Skipf("%s is not 1: this test starts redis-server processes of its own", EnvFaults)
	}
	p := &Process{Port: FreePort(tb), tb: tb, dir: tb.TempDir(), args: args}
	p.Restart()
	tb.Cleanup(p.Kill)
	return p
}

// Restart starts the server again after Kill, on the same port and
// directory, with the same arguments.
func (p *Process) Restart() {
	p.tb.Helper()
	p.cmd = exec.Command("redis-server", slices.Concat(p.args, []string{"--port", strconv.Itoa(p.Port),
		"--bind", "127.0.0.1", "--dir", p.dir, "--save", "", "--logfile", "redis.log"})...)
	p.cmd.Dir = p.dir
	if err := p.cmd.Start(); err != nil {
		p.tb.Fatalf("starting redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer c.Close()
	WaitFor(p.tb, "redis-server on "+p.Addr()+" to answer", func() bool { return c.Ping(context.Background()).Err() == nil })
}

// Addr is the server's host:port.
func (p *Process) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)) }

// Kill kills the server with SIGKILL: no shutdown, no final save. Killing
// a killed server does nothing.
func (p *Process) Kill() {
	if p.cmd != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
	}
}

// WaitFor polls cond until it holds, failing tb after 30 seconds: servers
// starting, restarting or failing over run on their own clocks.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
	}
}
