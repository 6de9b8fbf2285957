// Classroom mode's HTTP side (-web): the browser client at /, the live wire
// at /wire, and the WebSocket at /ws, whose binary messages carry the
// protocol's byte stream and which is handed over as one more net.Conn (to
// the server, or through wsListener to the tap; dialWS is bench's side).

//go:build !js

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const (
	// wsMaxMessage bounds one WebSocket message from a client: the largest
	// frame the protocol allows, header included. Message boundaries mean
	// nothing, so no client ever needs a larger message to send any byte
	// stream (the browser client sends one frame per message, and may pack
	// several smaller ones into one up to this). coder/websocket streams a
	// message rather than buffering it, so the bound is not about memory: it
	// keeps a client from holding the reader in one endless message.
	wsMaxMessage = headerLen + maxFrameLen
	// wsCloseWait is how long closing a WebSocket waits for the peer's
	// close frame before the TCP connection is cut.
	wsCloseWait = time.Second

	webReadHeaderTimeout = 10 * time.Second // a request's headers
	webIdleTimeout       = 2 * time.Minute  // a keep-alive connection between requests
	webWriteTimeout      = time.Minute      // a page or asset (not /ws, not /wire's stream)
	webMaxHeaderBytes    = 16 << 10
)

// webConfig is what the HTTP side serves.
type webConfig struct {
	Client http.Handler // "/": the browser client (webClientFiles)
	Wire   http.Handler // "/wire" and "/wire/"; nil answers 404
	// Conn takes over each /ws connection (a *wsConn), called from the
	// request's goroutine; it owns the connection from then on.
	Conn func(net.Conn)
	// Log reports a refused request in one line; it is called from several
	// goroutines.
	Log func(string)
}

// webServer is the HTTP server of -web. Close stops it.
type webServer struct {
	cfg webConfig
	srv *http.Server

	mu       sync.Mutex
	closed   bool
	handlers sync.WaitGroup // requests being served (a /ws one until it hands its connection over)
	done     chan struct{}  // Serve returned
	err      error          // what Serve returned, when not ErrServerClosed
}

// startWebServer serves cfg on ln until Close.
func startWebServer(ln net.Listener, cfg webConfig) *webServer {
	if cfg.Log == nil {
		cfg.Log = func(string) {}
	}
	ws := &webServer{cfg: cfg, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", ws.serveWS)
	if cfg.Wire != nil {
		mux.Handle("/wire", cfg.Wire)
		mux.Handle("/wire/", cfg.Wire)
	}
	if cfg.Client != nil {
		mux.Handle("/", withWriteTimeout(cfg.Client, webWriteTimeout))
	}
	ws.srv = &http.Server{
		Handler:           ws.owned(mux),
		ReadHeaderTimeout: webReadHeaderTimeout,
		IdleTimeout:       webIdleTimeout,
		MaxHeaderBytes:    webMaxHeaderBytes,
		// A server-wide ReadTimeout or WriteTimeout would cut /wire's
		// event stream; pages get theirs from withWriteTimeout.
	}
	go func() {
		defer close(ws.done)
		if err := ws.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			ws.err = err
		}
	}()
	return ws
}

// owned counts every request's handler, so that Close can wait for them:
// http.Server.Close does not. A request that comes as it closes gets 503.
func (ws *webServer) owned(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws.mu.Lock()
		if ws.closed {
			ws.mu.Unlock()
			http.Error(w, "server shutting down", http.StatusServiceUnavailable)
			return
		}
		ws.handlers.Add(1)
		ws.mu.Unlock()
		defer ws.handlers.Done()
		h.ServeHTTP(w, r)
	})
}

// withWriteTimeout gives each response of h at most d to be written.
func withWriteTimeout(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
		h.ServeHTTP(w, r)
	})
}

// Close stops accepting, closes every HTTP connection (which ends /wire's
// streams), and returns once every request's handler has returned (a /ws
// one has handed its connection over, or closed it) and Serve has. Connections already handed over belong to
// cfg.Conn's owner, which closes them. It returns Serve's error, if any.
func (ws *webServer) Close() error {
	ws.mu.Lock()
	ws.closed = true
	ws.mu.Unlock()
	ws.srv.Close()
	ws.handlers.Wait()
	<-ws.done
	return ws.err
}

// serveWS upgrades a same-origin request to a WebSocket and hands it over.
func (ws *webServer) serveWS(w http.ResponseWriter, r *http.Request) {
	// A page of another site must not open a socket here with the
	// student's browser (cross-site WebSocket hijacking). Browsers always
	// send Origin; a program that sends none is not a page of any site.
	if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r.Host) {
		ws.cfg.Log(fmt.Sprintf("%s: cross-site WebSocket refused: Origin %q is not this server's page (Host %q)", r.RemoteAddr, origin, r.Host))
		http.Error(w, "403 Forbidden: a page of another site may not open this WebSocket", http.StatusForbidden)
		return
	}
	hj := &hijackWatch{ResponseWriter: w}
	c, err := websocket.Accept(hj, r, nil) // nil: same origin only, no compression
	if err != nil {
		// Accept has answered with the status (400, 426, ...).
		ws.cfg.Log(fmt.Sprintf("%s: /ws: %v", r.RemoteAddr, err))
		return
	}
	// The connection lives on after this request: its life is its owner's,
	// so it is tied to no request's context.
	nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
	c.SetReadLimit(wsMaxMessage) // after NetConn, which lifts the limit
	ws.cfg.Conn(&wsConn{Conn: nc, raw: hj.conn})
}

// sameOrigin reports whether origin (an Origin header) is a page of host
// (the request's Host).
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

// hijackWatch keeps the TCP connection websocket.Accept takes over, so that
// its addresses are the real peer's and a close can be bounded.
type hijackWatch struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackWatch) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	return c, brw, err
}

// wsConn is a WebSocket as a net.Conn: websocket.NetConn, with the real TCP
// addresses, a bounded Close, and errors named as their TCP twins are (a
// timeout is a net.Error timeout, a close is io.EOF or net.ErrClosed) or as
// the protocol violations they are (a text message, a message over the
// bound). Its Transport is "websocket", which the capture records.
type wsConn struct {
	net.Conn          // websocket.NetConn
	raw      net.Conn // the TCP connection under it

	mu            sync.Mutex
	readDeadline  time.Time
	writeDeadline time.Time
	closed        atomic.Bool
	closeOnce     sync.Once
}

// Errors of a WebSocket client that break the transport's rules.
var (
	errWSText     = errors.New("protocol violation: a text message (this WebSocket carries binary messages only)")
	errWSTooLarge = fmt.Errorf("protocol violation: a WebSocket message over %d bytes", wsMaxMessage)
)

func (c *wsConn) Transport() string    { return "websocket" }
func (c *wsConn) rawConn() net.Conn    { return c.raw }
func (c *wsConn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }
func (c *wsConn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }

func (c *wsConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		err = c.plainError(err, false)
	}
	return n, err
}

func (c *wsConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		err = c.plainError(err, true)
	}
	return n, err
}

// plainError names a WebSocket error as a TCP connection's would be.
func (c *wsConn) plainError(err error, write bool) error {
	c.mu.Lock()
	deadline := c.readDeadline
	if write {
		deadline = c.writeDeadline
	}
	c.mu.Unlock()
	switch {
	case c.closed.Load():
		return net.ErrClosed
	case !deadline.IsZero() && !time.Now().Before(deadline):
		// NetConn cancels a read or write whose deadline passes, which
		// closes the socket: a timeout all the same.
		return os.ErrDeadlineExceeded
	case errors.Is(err, websocket.ErrMessageTooBig):
		return errWSTooLarge
	case strings.Contains(err.Error(), "unexpected frame type read"):
		// NetConn's error for a message of the other type (it has no
		// sentinel); TestWebTextMessageDropsOnlyThatClient holds it to this.
		return errWSText
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// A peer that closed the TCP connection without a close frame.
		return io.EOF
	case errors.Is(err, net.ErrClosed):
		return net.ErrClosed
	}
	return err
}

func (c *wsConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline, c.writeDeadline = t, t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *wsConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *wsConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.writeDeadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// Close sends a close frame and waits for the peer's, at most wsCloseWait,
// then closes the TCP connection. (NetConn's Close waits up to ten seconds
// for a peer that never answers.) It may be called more than once.
func (c *wsConn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		cut := time.AfterFunc(wsCloseWait, func() { c.raw.Close() })
		c.Conn.Close()
		cut.Stop()
		c.raw.Close()
	})
	return nil
}

// dialWS connects to a /ws endpoint (ws://HOST:PORT/ws) as a program: no
// Origin header, as a page of no site.
func dialWS(ctx context.Context, wsURL string) (*wsConn, error) {
	var raw net.Conn
	ctx = context.WithValue(ctx, wsRawConnKey{}, &raw)
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: wsDialClient})
	if err != nil {
		return nil, err
	}
	if raw == nil {
		c.CloseNow()
		return nil, errors.New("websocket: no TCP connection under the WebSocket")
	}
	nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
	return &wsConn{Conn: nc, raw: raw}, nil
}

// wsRawConnKey is the context key of the slot where wsDialClient leaves the
// TCP connection it dialled, for dialWS.
type wsRawConnKey struct{}

// wsDialClient is the HTTP client of every dialWS: one transport for all
// (bench dials hundreds), no proxy, no connection kept for another request.
var wsDialClient = &http.Client{Transport: &http.Transport{
	DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if slot, ok := ctx.Value(wsRawConnKey{}).(*net.Conn); ok && err == nil {
			*slot = c
		}
		return c, err
	},
	DisableKeepAlives: true,
}}

// wsURL is the /ws endpoint of a -web address (HOST:PORT).
func wsURL(addr string) string {
	return "ws://" + addr + "/ws"
}

// wsListener is a net.Listener whose connections come from /ws: it lets
// code written for a listener (tap, tap -rewrite, tap -mitm) serve browser
// clients unchanged.
type wsListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newWSListener(addr net.Addr) *wsListener {
	return &wsListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to an Accept, or closes it once the listener is closed.
// It is webConfig.Conn.
func (l *wsListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *wsListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *wsListener) Addr() net.Addr { return l.addr }

// checkWebToken says what is wrong with a -web-token ("" when nothing).
func checkWebToken(t string) string {
	if len(t) < 12 {
		return fmt.Sprintf("-web-token must be at least 12 characters (a student who guesses it reads every message), not %d", len(t))
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
			return "-web-token may hold only letters, digits and - . _ ~ (it goes into a URL)"
		}
	}
	return ""
}

// webURLHost is the host a student's browser should use for a server
// listening on addr: the address itself, or for an unspecified one (":8080")
// this machine's first LAN address, else localhost.
func webURLHost(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if !tcp.IP.IsUnspecified() {
		return tcp.String()
	}
	host := "localhost"
	if ifaddrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifaddrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				host = ipn.IP.String()
				break
			}
		}
	}
	return net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

// bothListener accepts from a TCP listener and from /ws alike, so that one
// tap serves terminal and browser clients with one handler.
type bothListener struct {
	*wsListener
	tcp    net.Listener
	pumped chan struct{} // the TCP accept loop ended
	err    error         // why it ended, unless closed; read after pumped
}

// listenBoth starts accepting on tcp; its connections come out of Accept
// with ws's.
func listenBoth(tcp net.Listener, ws *wsListener) *bothListener {
	b := &bothListener{wsListener: ws, tcp: tcp, pumped: make(chan struct{})}
	go func() {
		defer close(b.pumped)
		for {
			c, err := tcp.Accept()
			if err != nil {
				if retryAccept(err) {
					continue
				}
				b.err = err
				ws.Close()
				return
			}
			ws.deliver(c)
		}
	}()
	return b
}

func (b *bothListener) Accept() (net.Conn, error) {
	c, err := b.wsListener.Accept()
	if err != nil {
		<-b.pumped
		if b.err != nil && !errors.Is(b.err, net.ErrClosed) {
			return nil, b.err
		}
	}
	return c, err
}

// Close stops both and waits for the TCP accept loop to end.
func (b *bothListener) Close() error {
	b.wsListener.Close()
	err := b.tcp.Close()
	<-b.pumped
	return err
}

func (b *bothListener) Addr() net.Addr { return b.tcp.Addr() }
