package main

import (
	"os"
	"strings"
	"testing"

	"github.com/livectx/livectx/internal/redistest"
	"github.com/livectx/livectx/internal/selfexec"
)

func TestMain(m *testing.M) {
	selfexec.Main(main)
	os.Exit(m.Run())
}

func TestHelpPrintsTheUsageAndExitsZero(t *testing.T) {
	for _, flag := range []string{"-h", "-help", "--help"} {
		stdout, stderr, status := selfexec.Run(t, flag)
		if status != 0 || !strings.Contains(stderr, "-store") || strings.Contains(stdout+stderr, "help requested") {
			t.Errorf("demo %s: exit status %d, stdout %q, stderr:\n%s\nwant status 0 and the usage", flag, status, stdout, stderr)
		}
	}
}

func TestARefusedRedisConnectionIsReportedOnce(t *testing.T) {
	stdout, stderr, status := selfexec.Run(t, "-addr", "127.0.0.1:0", "-store", "redis://"+redistest.RefusedAddr(t))
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if status != 1 || stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "demo: ") || !strings.Contains(stderr, "connection refused") {
		t.Errorf("exit status %d, stdout %q, stderr:\n%s\nwant status 1 and one line saying the connection was refused", status, stdout, stderr)
	}
}
