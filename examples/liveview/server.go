package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/token"
)

// The client's prebuilt browser files, as the npm packages ship them.
var clientFiles = map[string]string{
	"/assets/phoenix.min.js":           "phoenix/priv/static/phoenix.min.js",
	"/assets/phoenix_live_view.min.js": "phoenix_live_view/priv/static/phoenix_live_view.min.js",
}

//go:embed assets
var ownAssets embed.FS

const (
	// sessionCookie names the cookie holding the browser's session id, the
	// owner every page token of the browser is bound to.
	sessionCookie = "livectx_session"
	// elementPrefix starts the id of a page's LiveView element; the rest is
	// the instance id, so the topic "lv:phx-<id>" names the instance.
	elementPrefix = "phx-"
)

// errUnauthorized is a join whose token does not open the view it names.
var errUnauthorized = errors.New("liveview: unauthorized")

// server serves the page, the client's files and the LiveView websocket.
type server struct {
	m        *socket.Manager[Page]
	signer   *token.Signer // signs the page tokens that name a view
	node     string        // this node's name, shown on the page
	csrfKeys [][]byte      // sign CSRF tokens: the first signs, all verify
	log      *slog.Logger
	mux      *http.ServeMux
}

// config is what a server is made of.
type config struct {
	store   store.ContextStore
	node    string
	keys    [][]byte // the nodes' shared secrets: the first signs, all verify
	modules string   // the node_modules folder holding the client
	log     *slog.Logger
}

// pageMaxAge is how long a page's token opens its view: a page left open
// longer cannot rejoin and reloads (the client does that by itself).
const pageMaxAge = 24 * time.Hour

// newServer returns a server on cfg.store. It fails if a key is shorter
// than 32 bytes.
func newServer(cfg config) (*server, error) {
	signer, err := token.NewSigner(derive(cfg.keys, "page"), token.WithMaxAge(pageMaxAge))
	if err != nil {
		return nil, fmt.Errorf("liveview: %w", err)
	}
	srv := &server{
		signer: signer,
		m: socket.NewManager[Page](append(managerOptions(),
			socket.WithStore(cfg.store), socket.KeepOnClose(), socket.WithLogger(cfg.log))...),
		node:     cfg.node,
		csrfKeys: derive(cfg.keys, "csrf"),
		log:      cfg.log,
		mux:      http.NewServeMux(),
	}
	for route, file := range clientFiles {
		path := filepath.Join(cfg.modules, filepath.FromSlash(file))
		srv.mux.HandleFunc("GET "+route, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			http.ServeFile(w, r, path)
		})
	}
	srv.mux.Handle("GET /assets/", http.FileServerFS(ownAssets))
	srv.mux.HandleFunc("GET /{$}", srv.page)
	srv.mux.HandleFunc("GET /live/websocket", srv.acceptLive)
	return srv, nil
}

// checkClient reports whether the client's files are in modules.
func checkClient(modules string) error {
	for _, file := range clientFiles {
		if _, err := os.Stat(filepath.Join(modules, filepath.FromSlash(file))); err != nil {
			return fmt.Errorf("liveview: the client's files are missing (run npm ci in examples/liveview): %w", err)
		}
	}
	return nil
}

func (srv *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	srv.mux.ServeHTTP(w, r)
}

// page serves a new page: a new LiveView instance, rendered from the
// initial context (nothing is written to the store before an event), whose
// element carries the token the client joins with.
func (srv *server) page(w http.ResponseWriter, r *http.Request) {
	owner := sessionOf(r)
	if owner == "" {
		owner = newSecret()
		http.SetCookie(w, &http.Cookie{
			Name: sessionCookie, Value: owner, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
		})
	}
	id, session, err := srv.mint(owner)
	if err != nil {
		srv.log.Error("mint a page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, pageHTML,
		html.EscapeString(csrfToken(srv.csrfKeys[0], owner)),
		html.EscapeString(elementPrefix+id), html.EscapeString(session),
		pageView.String(Page{Node: srv.node}))
}

const pageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="csrf-token" content="%s">
<title>livectx LiveView</title>
<link rel="stylesheet" href="/assets/style.css">
<script defer src="/assets/phoenix.min.js"></script>
<script defer src="/assets/phoenix_live_view.min.js"></script>
<script defer src="/assets/app.js"></script>
</head><body>
<div id="%s" data-phx-main data-phx-session="%s" data-phx-static="">%s</div>
</body></html>
`

// checkSocket checks a websocket request: it must come from a page of this
// host (its Origin) and carry the CSRF token of its session. It returns the
// session, the owner of the views the connection may join.
func (srv *server) checkSocket(r *http.Request) (string, error) {
	origin := r.Header.Get("Origin")
	u, err := url.Parse(origin)
	if origin == "" || err != nil || !strings.EqualFold(u.Host, r.Host) || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("liveview: origin %q is not this host %q", origin, r.Host)
	}
	q := r.URL.Query()
	if vsn := q.Get("vsn"); vsn != "2.0.0" {
		return "", fmt.Errorf("liveview: serializer version %q, want 2.0.0", vsn)
	}
	owner := sessionOf(r)
	if owner == "" {
		return "", errors.New("liveview: no session")
	}
	got := []byte(q.Get("_csrf_token"))
	for _, k := range srv.csrfKeys {
		if hmac.Equal(got, []byte(csrfToken(k, owner))) {
			return owner, nil
		}
	}
	return "", errors.New("liveview: a CSRF token not the session's")
}

// csrfToken is the CSRF token of a session under key: a MAC of the session
// id, so any node holding the key checks it without storing it.
func csrfToken(key []byte, owner string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(owner))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// sessionOf returns the request's session id, or "".
func sessionOf(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) != 43 { // 32 bytes, base64url
		return ""
	}
	return c.Value
}

// newSecret returns 256 random bits, base64url.
func newSecret() string { return base64.RawURLEncoding.EncodeToString(random(32)) }

// random returns n random bytes.
func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// derive returns the keys for one purpose from the nodes' shared secrets,
// so that one secret never serves two purposes.
func derive(keys [][]byte, purpose string) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte("livectx liveview " + purpose))
		out[i] = mac.Sum(nil)
	}
	return out
}

// mint makes a new LiveView instance for owner: its id, and the token the
// page carries (data-phx-session), which binds the id to the owner.
func (srv *server) mint(owner string) (id, tok string, err error) {
	return srv.signer.Mint(owner)
}

// open opens the socket of the view a join names, if its token was minted
// for owner and names the topic's instance. Every refusal matches
// errUnauthorized and happens before the store is read: the token is
// verified first, to compare its id with the topic; then OpenToken, the
// entry point that cannot skip verification, verifies it again (one MAC)
// and opens the socket.
func (srv *server) open(ctx context.Context, topic, tok, owner string) (*socket.Socket[Page], error) {
	id, err := srv.signer.Verify(tok, owner)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnauthorized, err)
	}
	if want, _ := topicID(topic); want != id {
		return nil, fmt.Errorf("%w: the token names another view than topic %q", errUnauthorized, topic)
	}
	s, err := srv.m.OpenToken(ctx, srv.signer, tok, owner, Page{})
	if errors.Is(err, token.ErrInvalid) {
		return nil, fmt.Errorf("%w: %w", errUnauthorized, err)
	}
	return s, err
}
