package observe_test

import (
	"context"
	"fmt"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/observe"
	"github.com/livectx/livectx/store"
)

func Example() {
	s := observe.New(memory.New(), observe.Func(func(_ context.Context, e observe.Event) {
		fmt.Printf("%s %q %s in=%d out=%d\n", e.Op, e.ID, observe.Outcome(e.Err), e.BytesIn, e.BytesOut)
	}))
	defer s.Close()

	ctx := context.Background()
	s.Apply(ctx, "lv-1", store.Change{Set: map[string][]byte{"count": []byte("1")}})
	s.Load(ctx, "lv-1")
	s.Load(ctx, "lv-2")
	// Output:
	// apply "lv-1" ok in=6 out=0
	// load "lv-1" ok in=0 out=6
	// load "lv-2" not_found in=0 out=0
	// close "" ok in=0 out=0
}
