package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sync"

	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/store"
)

// Page is the context (the LiveView state) of one demo page. Count and Text
// are stored; Photos is tempAssigned: a render sees the photos, then the
// field returns to nil, which is all the store ever holds of it.
type Page struct {
	Count  int      `msgpack:"count"`
	Text   string   `msgpack:"text"`
	Photos []string `msgpack:"photos"`
}

// Typed handles on Page's fields.
var (
	countField  = socket.FieldOf(func(p *Page) *int { return &p.Count })
	textField   = socket.FieldOf(func(p *Page) *string { return &p.Text })
	photosField = socket.FieldOf(func(p *Page) *[]string { return &p.Photos })
)

// Limits on what a browser may send.
const (
	maxText   = 200 // characters kept from the text input
	maxIDLen  = 64
	photosPer = 24 // photos one "load photos" event sends
	// defaultMaxOpen bounds the sockets kept open; past it one is closed
	// (its record stays) and reopened from the store when its page comes
	// back.
	defaultMaxOpen = 1000
)

//go:embed assets
var assets embed.FS

// app serves the demo page and its events.
type app struct {
	st       store.ContextStore
	storeURL string
	mgr      *socket.Manager[Page]
	log      *slog.Logger
	page     *template.Template
	static   http.Handler

	mu      sync.Mutex // guards sockets and maxOpen, and serialises Open
	sockets map[string]*socket.Socket[Page]
	maxOpen int
}

func newApp(st store.ContextStore, storeURL string, log *slog.Logger) *app {
	sub, _ := fs.Sub(assets, "assets") // cannot fail: the directory is embedded
	return &app{
		st:       st,
		storeURL: storeURL,
		// KeepOnClose: a record outlives the server, so a restarted
		// server resumes the page; the store's TTL removes abandoned ones.
		mgr:     socket.NewManager[Page](socket.WithStore(st), socket.KeepOnClose()),
		log:     log,
		page:    template.Must(template.New("").ParseFS(assets, "assets/*.html")),
		static:  http.StripPrefix("/static/", http.FileServerFS(sub)),
		sockets: map[string]*socket.Socket[Page]{},
		maxOpen: defaultMaxOpen,
	}
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/" && r.Method == http.MethodGet:
		a.servePage(w, r)
	case r.URL.Path == "/event" && r.Method == http.MethodPost:
		a.serveEvent(w, r)
	case len(r.URL.Path) > len("/static/") && r.URL.Path[:len("/static/")] == "/static/":
		a.static.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// socketFor returns the open socket of id, opening (and so restoring) it
// on first use.
func (a *app) socketFor(ctx context.Context, id string) (*socket.Socket[Page], error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.sockets[id]; ok {
		return s, nil
	}
	if len(a.sockets) >= a.maxOpen {
		for old, s := range a.sockets {
			s.Close(ctx)
			delete(a.sockets, old)
			break
		}
	}
	s, err := a.mgr.Open(ctx, id, Page{})
	if err != nil {
		return nil, err
	}
	// Photos are temporary: after every render they return to nil. The
	// temporary mark belongs to the socket, so it is set at every Open.
	if err := s.TempAssign(photosField.Set(nil)); err != nil {
		return nil, err
	}
	a.sockets[id] = s
	return s, nil
}

// forget drops a socket whose record changed under it (expired, or written
// by another server), so the next request opens it afresh.
func (a *app) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sockets, id)
}

// Close closes every socket (KeepOnClose keeps their records) and the store.
func (a *app) Close(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for id, s := range a.sockets {
		errs = append(errs, s.Close(ctx))
		delete(a.sockets, id)
	}
	errs = append(errs, a.mgr.Close(), a.st.Close())
	return errors.Join(errs...)
}

// view is what the templates render.
type view struct {
	ID          string
	Count       int
	Text        string
	Photos      []template.URL
	PhotoBytes  int    // bytes of the photos this render carried
	StoredBytes int    // bytes the store holds for the instance, after the render
	Version     uint64 // the record's version
	Restored    bool
	StoreURL    string
}

func (a *app) servePage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if !validID(id) {
		http.Redirect(w, r, "/?id="+url.QueryEscape(newID()), http.StatusSeeOther)
		return
	}
	s, err := a.socketFor(r.Context(), id)
	if err != nil {
		a.fail(w, "open", id, err)
		return
	}
	// A page load shows the stored context, even if another node wrote it.
	if _, err := s.Sync(r.Context()); err != nil {
		a.recover(w, id, err)
		return
	}
	v, ok := a.cycle(r.Context(), w, id, func(render renderFunc) error { return s.Render(r.Context(), render) })
	if !ok {
		return
	}
	v.Restored = s.Restored()
	a.write(w, "text/html; charset=utf-8", "page.html", v)
}

// eventReply is the JSON an event returns: the live region's new HTML, and
// photos to append to the gallery (the gallery keeps what earlier events
// appended, as LiveView's phx-update="append" does with temporary assigns).
type eventReply struct {
	Live   string `json:"live"`
	Append string `json:"append,omitempty"`
}

func (a *app) serveEvent(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if !validID(id) {
		http.Error(w, "bad id", http.StatusBadRequest)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s, err := a.socketFor(r.Context(), id)
	if err != nil {
		a.fail(w, "open", id, err)
		return
	}
	handle, ok := a.handler(s, r.PostForm.Get("event"), r.PostForm.Get("value"))
	if !ok {
		http.Error(w, "unknown event", http.StatusBadRequest)
		return
	}
	v, ok := a.cycle(r.Context(), w, id, func(render renderFunc) error { return s.Event(r.Context(), handle, render) })
	if !ok {
		return
	}
	var live, photos bytes.Buffer
	if err := a.page.ExecuteTemplate(&live, "live", v); err != nil {
		a.fail(w, "render", id, err)
		return
	}
	if err := a.page.ExecuteTemplate(&photos, "photos", v); err != nil {
		a.fail(w, "render", id, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(eventReply{Live: live.String(), Append: photos.String()})
}

// handler returns what an event does to the socket.
func (a *app) handler(s *socket.Socket[Page], event, value string) (func() error, bool) {
	switch event {
	case "inc", "dec":
		step := 1
		if event == "dec" {
			step = -1
		}
		return func() error { return s.Assign(countField.Set(countField.Get(s) + step)) }, true
	case "input":
		if r := []rune(value); len(r) > maxText {
			value = string(r[:maxText])
		}
		return func() error { return s.Assign(textField.Set(value)) }, true
	case "photos":
		return func() error { return s.Assign(photosField.Set(makePhotos(photosPer))) }, true
	}
	return nil, false
}

// renderFunc is what a render cycle calls with the context it renders.
type renderFunc = func(Page, socket.Changed) error

// cycle runs one render cycle through run and returns the template data for
// the context it rendered. When it returns false it has answered w.
func (a *app) cycle(ctx context.Context, w http.ResponseWriter, id string, run func(renderFunc) error) (view, bool) {
	var c Page
	if err := run(func(p Page, _ socket.Changed) error { c = p; return nil }); err != nil {
		a.recover(w, id, err)
		return view{}, false
	}
	v, err := a.view(ctx, id, c)
	if err != nil {
		a.fail(w, "load", id, err)
		return view{}, false
	}
	return v, true
}

// view builds the template data: the rendered context plus what the store
// now holds for id (the render cycle has written by the time it is called).
func (a *app) view(ctx context.Context, id string, c Page) (view, error) {
	rec, err := a.st.Load(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) { // a page view writes nothing
		return view{}, err
	}
	v := view{ID: id, Count: c.Count, Text: c.Text, StoredBytes: rec.Size(), Version: rec.Version, StoreURL: a.storeURL}
	for _, p := range c.Photos {
		v.Photos = append(v.Photos, template.URL(p)) // made by makePhotos: safe data URLs
		v.PhotoBytes += len(p)
	}
	return v, nil
}

// recover answers a failed render cycle. A conflict or a vanished record
// means the socket is stale, and a closed one was evicted: it is dropped
// and the browser reloads.
func (a *app) recover(w http.ResponseWriter, id string, err error) {
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) || errors.Is(err, socket.ErrClosed) {
		a.forget(id)
		http.Error(w, "state changed elsewhere: reload", http.StatusConflict)
		return
	}
	a.fail(w, "render", id, err)
}

func (a *app) fail(w http.ResponseWriter, op, id string, err error) {
	a.log.Error("demo: "+op, "id", id, "err", err)
	http.Error(w, fmt.Sprintf("%s failed; see the server log", op), http.StatusInternalServerError)
}

func (a *app) write(w http.ResponseWriter, contentType, name string, data any) {
	var buf bytes.Buffer
	if err := a.page.ExecuteTemplate(&buf, name, data); err != nil {
		a.fail(w, "render", "", err)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Write(buf.Bytes())
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID accepts the ids newID makes and other short, plain ones.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
