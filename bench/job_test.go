package bench

import (
	"fmt"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/livectx/livectx/socket"
)

// Row is one element of the context's lists: what a LiveView shows in a
// table or a feed.
type Row struct {
	ID   int64  `msgpack:"id"`
	Name string `msgpack:"name"`
	Text string `msgpack:"text"`
}

// Ctx is the context of the benchmarked LiveView: a counter the events
// change, and nine lists that hold the bulk of its bytes.
type Ctx struct {
	Count    int   `msgpack:"count"`
	Messages []Row `msgpack:"messages"`
	Users    []Row `msgpack:"users"`
	Rooms    []Row `msgpack:"rooms"`
	Files    []Row `msgpack:"files"`
	Events   []Row `msgpack:"events"`
	Tasks    []Row `msgpack:"tasks"`
	Notes    []Row `msgpack:"notes"`
	Tags     []Row `msgpack:"tags"`
	Links    []Row `msgpack:"links"`
}

// count is the field every event changes.
var count = socket.FieldOf(func(c *Ctx) *int { return &c.Count })

// size is a context size the benchmarks run.
type size struct {
	name  string
	bytes int
}

var sizes = []size{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// lists returns pointers to Ctx's nine lists.
func (c *Ctx) lists() []*[]Row {
	return []*[]Row{&c.Messages, &c.Users, &c.Rooms, &c.Files, &c.Events, &c.Tasks, &c.Notes, &c.Tags, &c.Links}
}

// newCtx returns a context whose msgpack encoding (the whole struct, as the
// peers store it) holds about n bytes, spread evenly over its nine lists.
func newCtx(n int) Ctx {
	const fields = 9
	rows := max(1, n/(fields*128))
	text := 64
	var c Ctx
	for range 3 { // settle the text length on the target size
		c = Ctx{Count: 1}
		for f, l := range c.lists() {
			for r := range rows {
				id := int64(f*rows + r)
				*l = append(*l, Row{
					ID:   id,
					Name: fmt.Sprintf("name-%010d", id),
					Text: strings.Repeat(string(rune('a'+(f+r)%26)), max(1, text)),
				})
			}
		}
		got := encodedSize(&c)
		text += (n - got) / (fields * rows)
	}
	return c
}

func encodedSize(c *Ctx) int {
	b, err := msgpack.Marshal(c)
	if err != nil {
		panic(err)
	}
	return len(b)
}
