package socket_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/livectx/livectx/socket"
)

// Foo is the context of LiveViewJS's first example: {foo: string}.
type Foo struct {
	Foo string `msgpack:"foo"`
}

var foo = socket.FieldOf(func(c *Foo) *string { return &c.Foo })

// LiveViewJS: socket.assign({foo: "bar"}), then read socket.context.foo.
func Example() {
	ctx := context.Background()
	views := socket.NewManager[Foo]() // contexts kept in memory
	defer views.Close()

	s, err := views.Open(ctx, "lv-1", Foo{}) // mount
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s.Assign(foo.Set("bar")) // socket.assign({ foo: "bar" })
	if s.Context().Foo == "baz" {
		fmt.Println("do something")
	}
	fmt.Println("foo:", foo.Get(s))

	// What LiveViewJS's type annotation refuses, livectx refuses too: by
	// name at once (and at compile time through a field handle).
	fmt.Println(s.Assign(socket.Set("baz", "qux")))
	// Output:
	// foo: bar
	// socket: context type socket_test.Foo has no stored field "baz"
}

// Photos is the context of a photo gallery: the list is temporary, so the
// socket (and its store) does not keep it between renders.
type Photos struct {
	Title  string   `msgpack:"title"`
	Photos []string `msgpack:"photos"`
}

var (
	title  = socket.FieldOf(func(c *Photos) *string { return &c.Title })
	photos = socket.FieldOf(func(c *Photos) *[]string { return &c.Photos })
)

// LiveViewJS: socket.tempAssign({photos: []}) in mount, then each event
// assigns the new photos, the render shows them, and the list goes back to
// [] after every render cycle.
func ExampleSocket_TempAssign() {
	ctx := context.Background()
	views := socket.NewManager[Photos]()
	defer views.Close()

	render := func(c Photos, changed socket.Changed) error {
		fmt.Printf("render %q %v (changed: %s)\n", c.Title, c.Photos, strings.Join(changed.Names(), ", "))
		return nil
	}

	s, _ := views.Open(ctx, "gallery-1", Photos{Title: "Holidays"})
	_ = s.TempAssign(photos.Set([]string{})) // mount: socket.tempAssign({ photos: [] })
	_ = s.Render(ctx, render)

	// handleEvent: photos were uploaded.
	_ = s.Event(ctx, func() error {
		return s.Assign(photos.Set([]string{"beach.jpg", "sunset.jpg"}))
	}, render)
	fmt.Println("after the render:", photos.Get(s))

	_ = s.Event(ctx, func() error { return s.Assign(title.Set("Summer")) }, render)
	// Output:
	// render "Holidays" [] (changed: photos, title)
	// render "Holidays" [beach.jpg sunset.jpg] (changed: photos)
	// after the render: []
	// render "Summer" [] (changed: photos, title)
}

// A field handle reads one field without copying the context, and a
// restored socket says so, so mount can skip loading its data again.
func ExampleManager_Open() {
	ctx := context.Background()
	views := socket.NewManager[Photos](socket.KeepOnClose())
	defer views.Close()

	s, _ := views.Open(ctx, "gallery-2", Photos{Title: "new"})
	_ = s.Assign(title.Set("Winter"))
	_ = s.Render(ctx, func(Photos, socket.Changed) error { return nil })
	_ = s.Close(ctx) // the record stays: KeepOnClose

	again, _ := views.Open(ctx, "gallery-2", Photos{Title: "new"}) // a reconnect
	fmt.Println(again.Restored(), title.Get(again))
	// Output:
	// true Winter
}
