package main

import (
	"bytes"
	"strings"
	"testing"
)

// What go test -json prints for a package with a skipped subtest (its
// reason logged before its parent's summary), a skipped test and a passing
// one that logs.
const events = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"run","Package":"p","Test":"TestA/on_server"}
{"Action":"output","Package":"p","Test":"TestA/on_server","Output":"=== RUN   TestA/on_server\n"}
{"Action":"output","Package":"p","Test":"TestA/on_server","Output":"    a_test.go:9: LIVECTX_REDIS_ADDR is not set\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"output","Package":"p","Test":"TestA/on_server","Output":"    --- SKIP: TestA/on_server (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestA/on_server"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:3: chromium is missing\n"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:5: a figure\n"}
{"Action":"pass","Package":"p","Test":"TestC"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}
{"Action":"pass","Package":"p"}
`

func TestReportListsEachSkipWithItsReason(t *testing.T) {
	var out, text bytes.Buffer
	if err := report(strings.NewReader(events), &out, &text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "    c_test.go:5: a figure\n") || !strings.HasSuffix(text.String(), "ok  \tp\t0.1s\n") {
		t.Errorf("the text output lacks lines of the tests:\n%s", text.String())
	}
	want := "p TestA/on_server: a_test.go:9: LIVECTX_REDIS_ADDR is not set\n" +
		"p TestB: b_test.go:3: chromium is missing\n" +
		"2 tests skipped\n"
	if out.String() != want {
		t.Errorf("report printed:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestReportRefusesOtherInput(t *testing.T) {
	if err := report(strings.NewReader("ok  \tp\t0.1s\n"), &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("report accepted go test output without -json")
	}
}
