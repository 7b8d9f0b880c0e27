// Package selfexec lets the tests of a command run the command as a process,
// to check what it prints and how it exits: Run starts the test binary again
// with an environment variable set, and Main, called first in TestMain, runs
// the command's main instead of the tests.
package selfexec

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// env is set in the environment of the process Run starts.
const env = "LIVECTX_SELFEXEC"

// Main runs main, then exits with status 0, when the binary was started by
// Run; otherwise it returns at once.
func Main(main func()) {
	if os.Getenv(env) == "1" {
		main()
		os.Exit(0)
	}
}

// Run starts the test binary again with args as the command's arguments and
// returns what it printed and its exit status.
func Run(tb testing.TB, args ...string) (stdout, stderr string, status int) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), env+"=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		tb.Fatalf("run %q: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}
