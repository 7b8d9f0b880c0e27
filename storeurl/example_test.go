package storeurl_test

import (
	"context"
	"fmt"

	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/storeurl"
)

func ExampleOpen() {
	ctx := context.Background()
	// A server would take the URL from a flag or $LIVECTX_STORE, for
	// example bolt:///var/lib/app/livectx.db?ttl=24h.
	st, err := storeurl.Open(ctx, "memory://?ttl=30m&max_field=65536")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	v, _ := st.Apply(ctx, "page-1", store.Change{Set: map[string][]byte{"count": {0x03}}})
	fmt.Println("version", v)

	_, err = storeurl.Open(ctx, "postgres://db/app")
	fmt.Println(err != nil)
	// Output:
	// version 1
	// true
}
