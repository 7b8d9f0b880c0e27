// Command prometheus shows how to export livectx store metrics to
// Prometheus without the livectx module depending on it: an
// observe.Observer turns each store event into counters and a histogram.
//
//	go run . -addr :2112   # then read http://localhost:2112/metrics
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/observe"
	"github.com/livectx/livectx/store"
)

func main() {
	addr := flag.String("addr", ":2112", "address to serve /metrics on")
	flag.Parse()

	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		log.Fatal(err)
	}
	s := observe.New(memory.New(store.WithTTL(time.Hour)), m)
	defer s.Close()

	// Some traffic, so the metrics have something to show.
	go func() {
		ctx := context.Background()
		for i := 0; ; i++ {
			id := fmt.Sprintf("lv-%d", i%10)
			s.Apply(ctx, id, store.Change{Set: map[string][]byte{"count": fmt.Append(nil, i)}})
			s.Load(ctx, id)
			time.Sleep(time.Second)
		}
	}()

	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	log.Printf("serving metrics on %s/metrics", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
