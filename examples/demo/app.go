package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/token"
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
	photosPer = 24  // photos one "load photos" event sends
	// defaultMaxOpen bounds the sockets kept open; past it one is closed
	// (its record stays) and reopened from the store when its page comes
	// back.
	defaultMaxOpen = 1000
)

//go:embed assets
var assets embed.FS

// The session cookie: a random value naming the browser, the owner every
// token of the demo is bound to. The server keeps nothing for it.
const (
	sessionCookie = "livectx_demo_session"
	sessionLen    = 26 // rand.Text's length: 130 bits
)

// csrfPurpose separates the demo's CSRF tokens from its instance tokens,
// which the same keys sign.
const csrfPurpose = "livectx demo csrf"

// forbidden is the one answer to an event that fails any check (origin,
// session, instance token, CSRF token): a client learns nothing from it.
const forbidden = "forbidden"

// app serves the demo page and its events.
//
// Who may resume a page: the server mints every instance id and hands the
// browser a token (package token) binding the id to the browser's session
// cookie; the page's address carries the token (?t=), never a bare id. A
// request is checked (origin, session, token, CSRF token) before the store
// is touched, and a request that fails any check reads nothing.
type app struct {
	st       store.ContextStore
	storeURL string
	mgr      *socket.Manager[Page]
	signer   *token.Signer // instance tokens
	csrf     *token.Signer // CSRF tokens: the same keys, another purpose
	origin   *http.CrossOriginProtection
	log      *slog.Logger
	page     *template.Template
	static   http.Handler

	mu      sync.Mutex // guards sockets and maxOpen, and serialises Open
	sockets map[string]*socket.Socket[Page]
	maxOpen int
}

// newApp serves pages kept in st, their tokens signed with the first of
// keys and verified with every one (see token.NewSigner).
func newApp(st store.ContextStore, storeURL string, keys [][]byte, log *slog.Logger, opts ...token.Option) (*app, error) {
	signer, err := token.NewSigner(keys, opts...)
	if err != nil {
		return nil, err
	}
	csrf, err := token.NewSigner(keys, append(opts, token.WithPurpose(csrfPurpose))...)
	if err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(assets, "assets") // cannot fail: the directory is embedded
	return &app{
		st:       st,
		storeURL: redact(storeURL),
		// KeepOnClose: a record outlives the server, so a restarted
		// server resumes the page; the store's TTL removes abandoned ones.
		// WithLogger: a field reset by a change of Page's type is logged.
		mgr:     socket.NewManager[Page](socket.WithStore(st), socket.KeepOnClose(), socket.WithLogger(log)),
		signer:  signer,
		csrf:    csrf,
		origin:  http.NewCrossOriginProtection(),
		log:     log,
		page:    template.Must(template.New("").ParseFS(assets, "assets/*.html")),
		static:  http.StripPrefix("/static/", http.FileServerFS(sub)),
		sockets: map[string]*socket.Socket[Page]{},
		maxOpen: defaultMaxOpen,
	}, nil
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The page's address carries a token: no other site learns it from a
	// Referer header, and no other site may frame the page.
	h := w.Header()
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
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

// redact hides the password a store URL may hold: the page shows the URL.
func redact(storeURL string) string {
	u, err := url.Parse(storeURL)
	if err != nil { // a list of hosts, say: show the scheme only
		scheme, _, _ := strings.Cut(storeURL, "://")
		return scheme + "://…"
	}
	return u.Redacted()
}

// session returns the browser's session, setting a new one when the request
// carries none (or a malformed one). A session is only a random name: a
// browser that invents one owns nothing but the pages it then opens.
func (a *app) session(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil && validSession(c.Value) {
		return c.Value
	}
	v := rand.Text()
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    v,
		Path:     "/",
		MaxAge:   int(token.DefaultMaxAge.Seconds()),
		HttpOnly: true,                 // no script reads it
		SameSite: http.SameSiteLaxMode, // no other site's POST carries it
		Secure:   r.TLS != nil,
	})
	return v
}

// validSession accepts what rand.Text makes.
func validSession(v string) bool {
	if len(v) != sessionLen {
		return false
	}
	for _, c := range []byte(v) {
		if !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// socketFor returns the open socket of the instance tok names, if tok was
// issued to session, opening (and so restoring) it on first use. A bad
// token is token.ErrInvalid, and no store call is made.
func (a *app) socketFor(ctx context.Context, tok, session string) (*socket.Socket[Page], error) {
	// The open sockets are found by id, so the token is verified here;
	// OpenToken verifies it again, so that no store read can come before a
	// verification.
	id, err := a.signer.Verify(tok, session)
	if err != nil {
		return nil, err
	}
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
	s, err := a.mgr.OpenToken(ctx, a.signer, tok, session, Page{})
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
	Token       string // a fresh token for the page, for this session
	CSRF        string // the CSRF token events carry
	Count       int
	Text        string
	Photos      []template.URL
	PhotoBytes  int    // bytes of the photos this render carried
	StoredBytes int    // bytes the store holds for the instance, after the render
	Version     uint64 // the record's version
	Restored    bool
	Reset       []string // fields whose stored values an older Page type wrote
	StoreURL    string
}

// servePage renders the page whose token the address carries. Without a
// token, or with one that fails (forged, expired, another browser's, a bare
// or chosen id), it mints a new page for this browser and redirects to it,
// reading nothing: ?id= grants nothing.
func (a *app) servePage(w http.ResponseWriter, r *http.Request) {
	// The page carries tokens: no cache keeps it.
	w.Header().Set("Cache-Control", "no-store")
	session := a.session(w, r)
	s, err := a.socketFor(r.Context(), r.URL.Query().Get("t"), session)
	if errors.Is(err, token.ErrInvalid) {
		_, tok, err := a.signer.Mint(session)
		if err != nil {
			a.fail(w, "mint", "", err)
			return
		}
		http.Redirect(w, r, "/?t="+url.QueryEscape(tok), http.StatusSeeOther)
		return
	}
	if err != nil {
		a.fail(w, "open", "", err)
		return
	}
	// A page load shows the stored context, even if another node wrote it.
	if _, err := s.Sync(r.Context()); err != nil {
		a.recover(w, s.ID(), err)
		return
	}
	v, ok := a.cycle(r.Context(), w, s.ID(), session, func(render renderFunc) error { return s.Render(r.Context(), render) })
	if !ok {
		return
	}
	v.Restored, v.Reset = s.Restored(), s.ResetFields()
	a.write(w, "text/html; charset=utf-8", "page.html", v)
}

// eventReply is the JSON an event returns: the live region's new HTML, and
// photos to append to the gallery (the gallery keeps what earlier events
// appended, as LiveView's phx-update="append" does with temporary assigns).
type eventReply struct {
	Live   string `json:"live"`
	Append string `json:"append,omitempty"`
	Token  string `json:"token"` // a fresh token for the page
}

// serveEvent applies an event, a form of event, value, t (the page's token)
// and csrf (the CSRF token), if the request comes from the page's own
// origin, with the session the tokens were issued to. Any failed check is
// the same 403, before any store call.
func (a *app) serveEvent(w http.ResponseWriter, r *http.Request) {
	if err := a.origin.Check(r); err != nil {
		http.Error(w, forbidden, http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	var session string
	if c, err := r.Cookie(sessionCookie); err == nil {
		session = c.Value
	}
	if _, err := a.csrf.Verify(r.PostForm.Get("csrf"), session); err != nil {
		http.Error(w, forbidden, http.StatusForbidden)
		return
	}
	s, err := a.socketFor(r.Context(), r.PostForm.Get("t"), session)
	if errors.Is(err, token.ErrInvalid) {
		http.Error(w, forbidden, http.StatusForbidden)
		return
	}
	if err != nil {
		a.fail(w, "open", "", err)
		return
	}
	id := s.ID()
	handle, ok := a.handler(s, r.PostForm.Get("event"), r.PostForm.Get("value"))
	if !ok {
		http.Error(w, "unknown event", http.StatusBadRequest)
		return
	}
	v, ok := a.cycle(r.Context(), w, id, session, func(render renderFunc) error { return s.Event(r.Context(), handle, render) })
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
	json.NewEncoder(w).Encode(eventReply{Live: live.String(), Append: photos.String(), Token: v.Token})
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
// the context it rendered, with fresh tokens for session. When it returns
// false it has answered w.
func (a *app) cycle(ctx context.Context, w http.ResponseWriter, id, session string, run func(renderFunc) error) (view, bool) {
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
	// Re-issued on every render, so an open page does not expire.
	if v.Token, err = a.signer.Sign(id, session); err == nil {
		v.CSRF, err = a.csrf.Sign("csrf", session)
	}
	if err != nil {
		a.fail(w, "sign", id, err)
		return view{}, false
	}
	return v, true
}

// view builds the template data: the rendered context plus what the store
// now holds for id (the render cycle has written by the time it is called;
// a page that has assigned nothing has no record).
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
