package observe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/livectx/livectx/internal/testbackends"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/observe"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

// recorder keeps every event it observes.
type recorder struct {
	mu     sync.Mutex
	events []observe.Event
}

func (r *recorder) Observe(_ context.Context, e observe.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) take() []observe.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

func TestConformance(t *testing.T) {
	for _, b := range []testbackends.Backend{testbackends.All[0], testbackends.Bare} {
		t.Run("over "+b.Name, func(t *testing.T) {
			var total int
			var mu sync.Mutex
			counter := observe.Func(func(context.Context, observe.Event) { mu.Lock(); total++; mu.Unlock() })
			storetest.Run(t, func(t *testing.T, clock *storetest.Clock, opts ...store.Option) store.ContextStore {
				return observe.New(b.Open(t, clock, opts...), counter)
			})
			if total < 1000 {
				t.Fatalf("the suite's calls produced %d events; every call should report one", total)
			}
		})
	}
}

func TestEveryOperationIsReported(t *testing.T) {
	rec := &recorder{}
	s := observe.New(memory.New(store.WithMaxFieldSize(10)), rec)
	t.Cleanup(func() { s.Close() })
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	type want struct {
		op                       observe.Op
		id, outcome              string
		bytesIn, bytesOut, field int
		version                  uint64
	}
	steps := []struct {
		name string
		call func() error
		want want
	}{
		{"an apply reports the bytes it writes", func() error {
			_, err := s.Apply(ctx, "r", store.Change{Set: map[string][]byte{"ab": []byte("123"), "c": nil}, Delete: []string{"x"}})
			return err
		}, want{observe.OpApply, "r", "ok", 6, 0, 3, 1}},
		{"a load reports the bytes it returns", func() error { _, err := s.Load(ctx, "r"); return err },
			want{observe.OpLoad, "r", "ok", 0, 6, 2, 1}},
		{"a miss is not_found", func() error { _, err := s.Load(ctx, "nobody"); return err },
			want{observe.OpLoad, "nobody", "not_found", 0, 0, 0, 0}},
		{"a stale version is a conflict", func() error {
			_, err := s.Apply(ctx, "r", store.Change{CheckVersion: true, IfVersion: 7})
			return err
		}, want{observe.OpApply, "r", "conflict", 0, 0, 0, 0}},
		{"an oversize field is too_large", func() error {
			_, err := s.Apply(ctx, "r", store.Change{Set: map[string][]byte{"f": make([]byte, 11)}})
			return err
		}, want{observe.OpApply, "r", "too_large", 12, 0, 1, 0}},
		{"an empty id is invalid", func() error { return s.Touch(ctx, "") },
			want{observe.OpTouch, "", "invalid", 0, 0, 0, 0}},
		{"a cancelled call is canceled", func() error { return s.Touch(cancelled, "r") },
			want{observe.OpTouch, "r", "canceled", 0, 0, 0, 0}},
		{"a touch", func() error { return s.Touch(ctx, "r") }, want{observe.OpTouch, "r", "ok", 0, 0, 0, 0}},
		{"a time to live read", func() error { _, err := s.TTL(ctx, "r"); return err },
			want{observe.OpTTL, "r", "ok", 0, 0, 0, 0}},
		{"a delete", func() error { return s.Delete(ctx, "r") }, want{observe.OpDelete, "r", "ok", 0, 0, 0, 0}},
		{"a list reports the ids it returns", func() error {
			s.Apply(ctx, "a", store.Change{})
			s.Apply(ctx, "b", store.Change{})
			rec.take()
			_, _, err := s.List(ctx, "", 10)
			return err
		}, want{observe.OpList, "", "ok", 0, 0, 2, 0}},
		{"a close", s.Close, want{observe.OpClose, "", "ok", 0, 0, 0, 0}},
		{"a call after close is closed", func() error { _, err := s.Load(ctx, "a"); return err },
			want{observe.OpLoad, "a", "closed", 0, 0, 0, 0}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := st.call()
			events := rec.take()
			if len(events) != 1 {
				t.Fatalf("%d events, want 1: %+v", len(events), events)
			}
			e := events[0]
			if !errors.Is(e.Err, err) && !(e.Err == nil && err == nil) {
				t.Errorf("event error %v, call returned %v", e.Err, err)
			}
			got := want{e.Op, e.ID, observe.Outcome(e.Err), e.BytesIn, e.BytesOut, e.Fields, e.Version}
			if got != st.want {
				t.Errorf("event %+v, want %+v", got, st.want)
			}
			if e.Duration < 0 {
				t.Errorf("negative duration %v", e.Duration)
			}
		})
	}
}

func TestOutcomeNamesEverySentinel(t *testing.T) {
	tests := map[string]error{
		"ok":          nil,
		"not_found":   fmt.Errorf("x: %w", store.ErrNotFound),
		"conflict":    fmt.Errorf("x: %w", store.ErrConflict),
		"too_large":   store.ErrTooLarge,
		"invalid":     store.ErrInvalidField,
		"corrupt":     &store.CorruptError{ID: "r", Err: errors.New("bad")},
		"closed":      store.ErrClosed,
		"unsupported": fmt.Errorf("x: %w", store.ErrUnsupported),
		"canceled":    context.Canceled,
		"deadline":    context.DeadlineExceeded,
		"error":       errors.New("connection refused"),
	}
	for want, err := range tests {
		if got := observe.Outcome(err); got != want {
			t.Errorf("Outcome(%v) = %q, want %q", err, got, want)
		}
	}
	if got := observe.Outcome(store.ErrInvalidID); got != "invalid" {
		t.Errorf("Outcome(ErrInvalidID) = %q", got)
	}
}

func TestLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	obs := observe.Logger(l)
	tests := []struct {
		err   error
		level string
	}{
		{nil, "DEBUG"},
		{store.ErrNotFound, "DEBUG"},
		{store.ErrConflict, "DEBUG"},
		{store.ErrTooLarge, "WARN"},
		{context.Canceled, "WARN"},
		{&store.CorruptError{ID: "r", Err: errors.New("bad")}, "ERROR"},
		{errors.New("redis: connection refused"), "ERROR"},
	}
	for _, tt := range tests {
		buf.Reset()
		obs.Observe(ctx, observe.Event{Op: observe.OpApply, ID: "r", Err: tt.err, BytesIn: 42})
		line := buf.String()
		if !strings.Contains(line, "level="+tt.level) || !strings.Contains(line, "op=apply") || !strings.Contains(line, "bytes_in=42") {
			t.Errorf("error %v logged %q, want level %s with op and bytes_in", tt.err, line, tt.level)
		}
		if tt.err != nil && !strings.Contains(line, "err=") {
			t.Errorf("error %v logged without err: %q", tt.err, line)
		}
	}
	buf.Reset()
	quiet := observe.Logger(slog.New(slog.NewTextHandler(&buf, nil))) // Info and up
	quiet.Observe(ctx, observe.Event{Op: observe.OpLoad, ID: "r"})
	if buf.Len() != 0 {
		t.Errorf("a successful load logged at Info level: %q", buf.String())
	}
	quiet.Observe(ctx, observe.Event{Op: observe.OpLoad, ID: "r", Err: &store.CorruptError{ID: "r", Err: errors.New("bad")}})
	if lines := slices.DeleteFunc(strings.Split(buf.String(), "\n"), func(s string) bool { return s == "" }); len(lines) != 1 {
		t.Errorf("a corrupt load logged %d lines at Info level, want 1", len(lines))
	}
}

func TestNilObserverReportsNothing(t *testing.T) {
	m := memory.New()
	s := observe.New(m, nil)
	t.Cleanup(func() { s.Close() })
	if _, err := s.Apply(ctx, "r", store.Change{Set: map[string][]byte{"a": []byte("A")}}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Load(ctx, "r"); err != nil || string(r.Fields["a"]) != "A" {
		t.Fatalf("Load through a nil observer = %q, %v", r.Fields, err)
	}
	if s.Unwrap() != store.ContextStore(m) {
		t.Errorf("Unwrap = %T, want the inner store", s.Unwrap())
	}
}

// Over a store without optional interfaces, List, TTL and LoadFields say
// so, and are reported as "unsupported".
func TestMissingCapabilitiesAreUnsupported(t *testing.T) {
	rec := &recorder{}
	m := memory.New()
	s := observe.New(struct{ store.ContextStore }{m}, rec)
	t.Cleanup(func() { s.Close() })
	if _, ok := store.As[store.Lister](s); ok {
		t.Error("store.As finds a Lister the inner store does not have")
	}
	if _, ok := store.As[store.TTLReader](s); ok {
		t.Error("store.As finds a TTLReader the inner store does not have")
	}
	if _, ok := store.As[store.FieldLoader](s); ok {
		t.Error("store.As finds a FieldLoader the inner store does not have")
	}
	_, _, errList := s.List(ctx, "", 10)
	_, errTTL := s.TTL(ctx, "r")
	_, _, errLoad := s.LoadFields(ctx, "r", []string{"a"})
	for i, err := range []error{errList, errTTL, errLoad} {
		if !errors.Is(err, store.ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("call %d: %v, want store.ErrUnsupported", i, err)
		}
	}
	var outcomes []string
	for _, e := range rec.take() {
		outcomes = append(outcomes, string(e.Op)+" "+observe.Outcome(e.Err))
	}
	if want := []string{"list unsupported", "ttl unsupported", "load unsupported"}; !slices.Equal(outcomes, want) {
		t.Errorf("events %q, want %q", outcomes, want)
	}
}
