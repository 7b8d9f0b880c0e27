// Command skipreport lists the tests that skipped, with their reasons, from
// the output of go test -json on its standard input (go test shows skips
// only with -v, and there a subtest's reason and its SKIP line are far
// apart):
//
//	go test -json ./... | go run ./internal/skipreport
//
// It prints one line per skipped test ("package Test/subtest: reason") and a
// count; it exits 1 when the input is not go test -json output. With
// -text FILE it also writes to FILE the text go test -v would have printed
// (CI greps it for failures and figures).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	text := flag.String("text", "", "also write the tests' text output to this `file`")
	flag.Parse()
	var w io.Writer = io.Discard
	if *text != "" {
		f, err := os.Create(*text)
		if err != nil {
			fmt.Fprintln(os.Stderr, "skipreport:", err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	if err := report(os.Stdin, os.Stdout, w); err != nil {
		fmt.Fprintln(os.Stderr, "skipreport:", err)
		os.Exit(1)
	}
}

// event is the part of a go test -json event that report reads.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// report writes the skipped tests to out and every output line to text.
func report(in io.Reader, out, text io.Writer) error {
	said := map[string][]string{} // package and test -> what the test logged
	skipped := 0
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("not go test -json output: %w: %q", err, sc.Text())
		}
		if e.Action == "output" || e.Action == "build-output" {
			if _, err := io.WriteString(text, e.Output); err != nil {
				return err
			}
		}
		if e.Test == "" {
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			line := strings.TrimSpace(e.Output)
			if line != "" && !strings.HasPrefix(line, "=== ") && !strings.HasPrefix(line, "--- ") {
				said[key] = append(said[key], line)
			}
		case "skip":
			skipped++
			fmt.Fprintf(out, "%s: %s\n", key, strings.Join(said[key], " / "))
			delete(said, key)
		case "pass", "fail":
			delete(said, key)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d tests skipped\n", skipped)
	return nil
}
