package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/livectx/livectx/observe"
)

// metrics exports livectx store events as Prometheus metrics. It is an
// observe.Observer: wrap a store with observe.New(inner, m).
//
// Labels have few values: op is one of the observe.Op constants and outcome
// one of observe.Outcome's names. Ids are never labels.
type metrics struct {
	ops      *prometheus.CounterVec   // livectx_store_operations_total{op,outcome}
	duration *prometheus.HistogramVec // livectx_store_operation_duration_seconds{op}
	written  prometheus.Counter       // livectx_store_written_bytes_total
	read     prometheus.Counter       // livectx_store_read_bytes_total
}

// newMetrics creates the metrics and registers them with reg.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livectx_store_operations_total",
			Help: "Store operations by operation and outcome.",
		}, []string{"op", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "livectx_store_operation_duration_seconds",
			Help:    "Time spent in the store, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10), // 50µs to about 13s
		}, []string{"op"}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livectx_store_written_bytes_total",
			Help: "Bytes of field names and values that Apply was asked to write.",
		}),
		read: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livectx_store_read_bytes_total",
			Help: "Bytes of field names and values that Load returned.",
		}),
	}
	for _, c := range []prometheus.Collector{m.ops, m.duration, m.written, m.read} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe records one event.
func (m *metrics) Observe(_ context.Context, e observe.Event) {
	m.ops.WithLabelValues(string(e.Op), observe.Outcome(e.Err)).Inc()
	m.duration.WithLabelValues(string(e.Op)).Observe(e.Duration.Seconds())
	m.written.Add(float64(e.BytesIn))
	m.read.Add(float64(e.BytesOut))
}
