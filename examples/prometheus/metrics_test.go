package main

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/observe"
	"github.com/livectx/livectx/store"
)

func TestStoreEventsBecomeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := observe.New(memory.New(), m)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()

	v, err := s.Apply(ctx, "r", store.Change{Set: map[string][]byte{"count": []byte("12345")}}) // 10 bytes
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	s.Load(ctx, "missing")
	s.Apply(ctx, "r", store.Change{CheckVersion: true, IfVersion: v + 1})

	want := `
# HELP livectx_store_operations_total Store operations by operation and outcome.
# TYPE livectx_store_operations_total counter
livectx_store_operations_total{op="apply",outcome="conflict"} 1
livectx_store_operations_total{op="apply",outcome="ok"} 1
livectx_store_operations_total{op="load",outcome="not_found"} 1
livectx_store_operations_total{op="load",outcome="ok"} 1
# HELP livectx_store_read_bytes_total Bytes of field names and values that Load returned.
# TYPE livectx_store_read_bytes_total counter
livectx_store_read_bytes_total 10
# HELP livectx_store_written_bytes_total Bytes of field names and values that Apply was asked to write.
# TYPE livectx_store_written_bytes_total counter
livectx_store_written_bytes_total 10
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"livectx_store_operations_total", "livectx_store_read_bytes_total", "livectx_store_written_bytes_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Fatalf("duration histogram has %d series, want one per op seen (2)", n)
	}
}

func TestRegisteringTwiceFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := newMetrics(reg); err == nil {
		t.Fatal("registering the metrics twice with one registry succeeded")
	}
}
