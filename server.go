// The server hub: accepting connections, the handshake and the username,
// the users online in join order, each member's read and write loops, and
// the chat commands (/pm, /list, /help, /quit).
//
// Nothing here prints: the server reports events through a callback, which
// main.go renders.

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the server's connections.
const (
	defaultQueueLen = 1024
	writeTimeout    = 10 * time.Second
	// socketBuffer bounds the kernel's send and receive buffers of each
	// connection (Linux gives twice this). The send buffer would otherwise
	// grow to tcp_wmem's 4 MiB for a client that stopped reading (180 of
	// them took the kernel's TCP memory to 790 MiB), and the receive
	// buffer of a client held back by the line rate towards tcp_rmem's. Chat does not notice: a
	// writer coalesces at most 64 KiB per Write.
	socketBuffer = 32 << 10
	maxCoalesce  = 64 << 10 // bytes gathered into one Write
	// serverReadBuffer is a member's read buffer, kept for as long as they
	// stay: most frames fit, and a larger one is read straight through.
	serverReadBuffer = 1 << 10
)

// remoteIP is what a connection counts against for -max-per-addr: its
// peer's IPv4 address, or the /64 network of its IPv6 address, since one
// IPv6 host or home is handed a whole /64 and may use any address in it.
func remoteIP(c net.Conn) string {
	addr := c.RemoteAddr().String()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			return host
		}
		return addr
	}
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip.WithZone(""), 64).Masked().String()
}

// serverEvent is one line of the server's log; the UI colours it by Kind.
type serverEvent struct {
	Time time.Time
	Kind eventKind
	Text string
}

// eventKind is what a line of the server's log is about. Its value is the
// label the log shows, the seed's where the seed has one.
type eventKind string

const (
	evHandshake eventKind = "HANDSHAKE"
	evJoin      eventKind = "JOIN"
	evBroadcast eventKind = "ENCRYPTED BROADCAST"
	evPM        eventKind = "PM ENCRYPTED"
	evLeave     eventKind = "LEAVE"
	evRefused   eventKind = "REFUSED" // a connection that did not join, and why
	evDropped   eventKind = "DROPPED" // a classic record that did not decrypt
	evLimit     eventKind = "LIMIT"   // a member over the line rate
)

// serverConfig is what a server needs; zero values get defaults.
type serverConfig struct {
	Key              *rsa.PrivateKey
	Suite            string
	HandshakeTimeout time.Duration
	MaxClients       int
	MaxPerAddr       int           // connections from one IP address; 0 = no limit
	MaxFrame         int           // largest frame a client may send; 0 = maxFrameLen
	Rate             float64       // chat lines per second per client; 0 = no limit
	Burst            int           // lines a client may send at once before Rate applies
	MaxPaced         time.Duration // longest a client is slowed without a break; 0 = defaultMaxPaced
	QueueLen         int
	SocketBuffer     int // kernel send and receive buffer per connection; 0 = socketBuffer, negative = the kernel's (for tests that size them)
	Rand             io.Reader
	Now              func() time.Time
	Record           *capture
	Keylog           *keylog
	Log              func(serverEvent)
}

// server is the hub: the users online, in join order, and their queues.
type server struct {
	cfg serverConfig

	mu       sync.Mutex
	members  []*member // join order
	byName   map[string]*member
	conns    map[net.Conn]struct{} // every open connection, for Shutdown
	perAddr  map[string]int        // open connections per remote IP
	ln       net.Listener
	closing  bool
	stopping atomic.Bool // closing, readable without mu by writers
	handlers sync.WaitGroup
	rsaSlots chan struct{} // one per core: RSA decryptions and signatures run to completion, not 16 interleaved (withRSASlot)
}

// member is a user who finished the handshake. out is its bounded queue of
// plaintext texts; its writer goroutine seals and writes them in order.
type member struct {
	name   string
	addr   string
	conn   net.Conn
	br     *bufio.Reader // the handshake's reader, so no byte read ahead is lost
	rc     recordCipher
	out    *outQueue
	gone   bool          // removed from the hub; guarded by server.mu
	quit   chan struct{} // closed with gone: ends a reader's wait in slowDown
	writer sync.WaitGroup
}

// depart marks the member gone, closes its queue (its writer flushes what
// is queued, then closes the connection) and ends its reader's wait, if
// any; s.mu must be held and m.gone false.
func (m *member) depart() {
	m.gone = true
	m.out.close()
	close(m.quit)
}

func newServer(cfg serverConfig) (*server, error) {
	if cfg.Suite == "" {
		cfg.Suite = suiteClassic
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = defaultQueueLen
	}
	if cfg.SocketBuffer == 0 {
		cfg.SocketBuffer = socketBuffer
	}
	if cfg.MaxFrame <= 0 || cfg.MaxFrame > maxFrameLen {
		cfg.MaxFrame = maxFrameLen
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = func(serverEvent) {}
	}
	if cfg.Rate > 0 && cfg.Burst <= 0 {
		cfg.Burst = 1
	}
	if cfg.MaxPaced <= 0 {
		cfg.MaxPaced = defaultMaxPaced
	}
	if cfg.Key == nil {
		return nil, errors.New("server: no RSA key")
	}
	return &server{
		cfg:      cfg,
		byName:   make(map[string]*member),
		conns:    make(map[net.Conn]struct{}),
		perAddr:  make(map[string]int),
		rsaSlots: make(chan struct{}, runtime.GOMAXPROCS(0)),
	}, nil
}

// withRSASlot runs an RSA decryption (classic) or signature (modern) once
// a core is free for it. Without the bound, 16 handshakes at once
// interleave their RSA operations and each takes 16 times as long.
func (s *server) withRSASlot(f func()) {
	s.rsaSlots <- struct{}{}
	defer func() { <-s.rsaSlots }()
	f()
}

func (s *server) logf(kind eventKind, format string, args ...any) {
	s.cfg.Log(serverEvent{Time: s.cfg.Now(), Kind: kind, Text: fmt.Sprintf(format, args...)})
}

// stamp prefixes a text with the server's local time, as the seed does.
func (s *server) stamp(text string) string {
	return "[" + s.cfg.Now().Format("15:04:05") + "] " + text
}

// Serve accepts connections until Shutdown; it returns nil after Shutdown.
func (s *server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			if retryAccept(err) {
				continue
			}
			return err
		}
		if !s.serveConn(nc) {
			return nil
		}
	}
}

// serveConn takes one accepted connection, whatever carries it (TCP, or a
// WebSocket from web.go), through the same path: capture, the per-address
// limit, bookkeeping and its handler. It reports false when the server is
// shutting down; the connection is then closed.
func (s *server) serveConn(nc net.Conn) bool {
	conn := s.cfg.Record.wrapConn(nc, "server")
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		conn.Close()
		return false
	}
	ip := remoteIP(conn)
	if s.cfg.MaxPerAddr > 0 && s.perAddr[ip] >= s.cfg.MaxPerAddr {
		s.mu.Unlock()
		s.logf(evRefused, "%s: too many connections from %s (max %d)", conn.RemoteAddr(), ip, s.cfg.MaxPerAddr)
		// No key is agreed yet, so this refusal is in clear text.
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		writeFrame(conn, []byte(tooManyText))
		conn.Close()
		return true
	}
	s.perAddr[ip]++
	s.conns[conn] = struct{}{}
	s.handlers.Add(1)
	s.mu.Unlock()
	go s.handle(conn)
	return true
}

// Shutdown tells everyone the server is going away, closes every
// connection and waits for their goroutines.
func (s *server) Shutdown() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.handlers.Wait()
		return
	}
	s.closing = true
	s.stopping.Store(true)
	if s.ln != nil {
		s.ln.Close()
	}
	joined := make(map[net.Conn]bool)
	for _, m := range s.members {
		joined[m.conn] = true
		m.tryPush(shutdownText) // dropped if the queue is full: that client is not reading
		m.depart()
	}
	s.members = nil
	clear(s.byName)
	for c := range s.conns {
		if !joined[c] {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.handlers.Wait()
}

// handle owns one connection from accept to close.
func (s *server) handle(conn net.Conn) {
	if tc := tcpConn(conn); tc != nil && s.cfg.SocketBuffer > 0 {
		tc.SetWriteBuffer(s.cfg.SocketBuffer)
		tc.SetReadBuffer(s.cfg.SocketBuffer)
	}
	addr := conn.RemoteAddr().String()
	m, err := s.handshake(conn, addr)
	if err != nil {
		s.logf(evRefused, "%s: %v", addr, err)
		conn.Close()
		s.release(conn)
		s.handlers.Done()
		return
	}
	// The handshake's stack grew for RSA, and an idle server collects no
	// garbage, so it would keep that size as long as the user stays: chat
	// runs on a fresh goroutine, which takes over the handler count.
	go s.chat(m)
}

// chat serves a member until they leave.
func (s *server) chat(m *member) {
	defer s.handlers.Done()
	defer s.release(m.conn)
	s.readLoop(m)
	// The writer flushes what was queued and closes the connection; wait for
	// it so Shutdown returns only when every connection is closed.
	m.writer.Wait()
}

// release forgets a closed connection.
func (s *server) release(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
	ip := remoteIP(conn)
	if s.perAddr[ip]--; s.perAddr[ip] <= 0 {
		delete(s.perAddr, ip)
	}
}

// online is the number of users online.
func (s *server) online() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.members)
}

// retryAccept reports whether an Accept error is passing (a timeout, such
// as running out of file descriptors for a moment); it pauses briefly first.
func retryAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		time.Sleep(10 * time.Millisecond)
		return true
	}
	return false
}

// acceptEach accepts connections on ln until ctx ends and runs handle for
// each in a goroutine of its own. It closes ln when ctx ends, and returns
// after every handler has returned; handlers see ctx cancelled by then.
func acceptEach(ctx context.Context, ln net.Listener, handle func(context.Context, net.Conn)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // runs before wg.Wait: handlers close their connections
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if retryAccept(err) {
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			handle(ctx, c)
		}()
	}
}

// handshake runs the suite's handshake and the username exchange, and
// registers the member. Every refusal returns an error saying why.
func (s *server) handshake(conn net.Conn, addr string) (*member, error) {
	conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	sent := &readCounter{r: conn}
	rw := frameRW{bufio.NewReaderSize(sent, serverReadBuffer), conn}
	s.logf(evHandshake, "Starting with %s (%s suite)", addr, s.cfg.Suite)
	handshake := classicServerHandshake
	if s.cfg.Suite == suiteModern {
		handshake = serverHandshakeModern
	}
	rc, err := handshake(rw, &handshakeConfig{
		Key: s.cfg.Key, Rand: s.cfg.Rand, Keylog: s.cfg.Keylog, Limit: s.withRSASlot,
		Log: func(msg string) { s.logf(evHandshake, "%s", msg) },
	})
	if err != nil {
		if sent.n == 0 && errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("closed during handshake, %s", silentHangUp(s.cfg.Suite))
		}
		return nil, handshakeError(err, "handshake")
	}

	// The username in, the welcome out: the same in both suites (the
	// classic suite's Step 8).
	payload, err := readFrame(rw)
	if err != nil {
		return nil, handshakeError(err, "username")
	}
	raw, err := rc.open(payload)
	if err != nil {
		return nil, fmt.Errorf("username record: %w", err)
	}
	name := string(raw)
	if err := validateName(name); err != nil {
		s.sendAndClose(conn, rc, "ERROR: Invalid username: "+err.Error())
		return nil, fmt.Errorf("invalid username %q: %v", sanitizeText(name), err)
	}

	m := &member{name: name, addr: addr, conn: conn, br: rw.Reader, rc: rc, out: newOutQueue(s.cfg.QueueLen), quit: make(chan struct{})}
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		return nil, errors.New("server shutting down")
	case s.byName[name] != nil:
		s.mu.Unlock()
		s.sendAndClose(conn, rc, nameTakenText)
		return nil, fmt.Errorf("username %q already taken", name)
	case s.cfg.MaxClients > 0 && len(s.members) >= s.cfg.MaxClients:
		s.mu.Unlock()
		s.sendAndClose(conn, rc, serverFullText)
		return nil, fmt.Errorf("server full (%d clients)", s.cfg.MaxClients)
	}
	// The welcome is queued first so it is the first record the user gets.
	m.tryPush(welcomeText(name))
	joined := s.stamp("[SYSTEM] " + name + " joined (secure channel)")
	kicked := s.noticeLocked(joined, m)
	s.members = append(s.members, m)
	s.byName[name] = m
	m.writer.Add(1)
	go s.writeLoop(m)
	s.mu.Unlock()
	conn.SetDeadline(time.Time{})

	s.logf(evHandshake, "✓ Secure channel established with user: %s", name)
	s.logf(evJoin, "%s joined from %s", name, addr)
	s.kick(kicked)
	return m, nil
}

// readCounter counts the bytes a client sent, so that a client that hung
// up without a word can be told from one cut off mid-frame.
type readCounter struct {
	r io.Reader
	n int64
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// sendAndClose sends one last text to a connection that never joined.
func (s *server) sendAndClose(conn net.Conn, rc recordCipher, text string) {
	if payload, err := rc.seal([]byte(text)); err == nil {
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		writeFrame(conn, payload)
	}
	conn.Close()
}

// broadcast queues text for everyone (skip may be nil), and reports
// whether it waited for writers that were behind (see waitForWriters).
func (s *server) broadcast(text string, skip *member) (held bool) {
	s.mu.Lock()
	kicked, behind := s.pushLocked(text, skip)
	s.mu.Unlock()
	s.kick(kicked)
	return s.waitForWriters(behind)
}

// pushLocked queues text for every member but skip; s.mu must be held.
// Members whose queue is full are returned for kick; members whose queue
// is over half full while their writer is not stalled in a Write are
// returned for waitForWriters.
func (s *server) pushLocked(text string, skip *member) (kicked, behind []*member) {
	for _, m := range s.members {
		if m == skip {
			continue
		}
		if queued, ok := m.out.push(text, false); !ok {
			kicked = append(kicked, m)
		} else if queued > m.out.limit/2 && !m.out.stalled(time.Now()) {
			behind = append(behind, m)
		}
	}
	return kicked, behind
}

// noticeLocked queues a join or leave notice for every member but skip;
// it may wait up to noticeDelay to share a write (see outQueue). Members
// whose queue is full are returned for kick; s.mu must be held.
func (s *server) noticeLocked(text string, skip *member) (kicked []*member) {
	for _, m := range s.members {
		if m == skip {
			continue
		}
		if _, ok := m.out.push(text, true); !ok {
			kicked = append(kicked, m)
		}
	}
	return kicked
}

// send queues text for one member.
func (s *server) send(m *member, text string) {
	s.mu.Lock()
	ok := m.gone || m.tryPush(text)
	s.mu.Unlock()
	if !ok {
		s.kick([]*member{m})
	}
}

// kick disconnects members whose queue overflowed: they stopped reading.
func (s *server) kick(ms []*member) {
	for _, m := range ms {
		m.abort()
		s.remove(m, "outbound queue full (client not reading)")
		m.conn.Close() // unblocks a writer stuck in Write
	}
}

// abort makes the member's connection close at once when it closes,
// discarding what its client never read (SO_LINGER 0: a reset), so that a
// client that stopped reading leaves no orphaned socket holding its data
// in the kernel for minutes. Members who leave in the ordinary way get an
// ordinary close, which delivers what was queued.
func (m *member) abort() {
	if tc := tcpConn(m.conn); tc != nil {
		tc.SetLinger(0)
	}
}

// tcpConn is the TCP connection under c (a recorded connection's too, and
// a WebSocket's), or nil for a connection that is not TCP.
func tcpConn(c net.Conn) *net.TCPConn {
	if rc, ok := c.(*recConn); ok {
		c = rc.Conn
	}
	if wc, ok := c.(interface{ rawConn() net.Conn }); ok { // a WebSocket (web.go)
		c = wc.rawConn()
	}
	tc, _ := c.(*net.TCPConn)
	return tc
}

// remove takes a member out of the hub and tells the others. It is
// idempotent; the member's writer flushes what is queued and closes.
func (s *server) remove(m *member, why string) {
	s.mu.Lock()
	if m.gone {
		s.mu.Unlock()
		return
	}
	m.depart()
	delete(s.byName, m.name)
	for i, x := range s.members {
		if x == m {
			s.members = append(s.members[:i], s.members[i+1:]...)
			break
		}
	}
	kicked := s.noticeLocked(s.stamp("[SYSTEM] "+m.name+" left the chat"), nil)
	s.mu.Unlock()
	s.logf(evLeave, "%s left the chat (%s)", m.name, why)
	s.kick(kicked)
}

// writeLoop is the member's only writer: it seals queued texts in order,
// coalesces what is waiting into one Write, and closes the connection when
// the queue is closed or a write fails.
func (s *server) writeLoop(m *member) {
	defer m.writer.Done()
	defer m.conn.Close()
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	seal := frameSealer(m.rc)
	for {
		items, ok := m.out.take(delay, noticeDelay)
		if !ok {
			return
		}
		buf := writeBuffers.get()
		var err error
		for i, text := range items {
			buf, err = seal(buf, text)
			if err != nil {
				break
			}
			if len(buf) >= maxCoalesce || i == len(items)-1 {
				timeout := writeTimeout
				if s.stopping.Load() {
					timeout = time.Second // do not hold up shutdown for a stalled reader
				}
				now := time.Now()
				m.conn.SetWriteDeadline(now.Add(timeout))
				m.out.writeSince.Store(now.UnixNano())
				_, err = m.conn.Write(buf)
				m.out.writeSince.Store(0)
				if err != nil {
					break
				}
				buf = buf[:0]
			}
		}
		writeBuffers.put(buf)
		if err != nil {
			m.abort() // what the client did not take in 10 s it will not take
			s.remove(m, "write failed: "+err.Error())
			return
		}
		clear(items) // let the texts go
		textSlices.put(items)
	}
}

// appendSealedFrame seals text and appends it to buf as one frame.
func appendSealedFrame(buf []byte, rc recordCipher, text string) ([]byte, error) {
	payload, err := rc.seal([]byte(text))
	if err != nil {
		return buf, err
	}
	return appendFrame(buf, payload), nil
}

// frameSealer returns what a member's writer seals its texts with:
// appendSealedFrame, or in the classic suite sealClassic with a
// classicSealer of the writer's own, straight into its buffer.
func frameSealer(rc recordCipher) func(buf []byte, text string) ([]byte, error) {
	if c, ok := rc.(*classicCipher); ok {
		sealer := &classicSealer{c: c}
		return func(buf []byte, text string) ([]byte, error) {
			framed, err := sealClassic(sealer, appendFrameHeader(buf, classicSealedLen(len(text))), text)
			if err != nil {
				return buf, err
			}
			return framed, nil
		}
	}
	return func(buf []byte, text string) ([]byte, error) { return appendSealedFrame(buf, rc, text) }
}

// readLoop reads the member's records until they leave.
func (s *server) readLoop(m *member) {
	br := m.br // holds whatever the client sent right behind its name
	_, classic := m.rc.(*classicCipher)
	dropped := 0
	limit := tokenBucket{rate: s.cfg.Rate, burst: float64(s.cfg.Burst), tokens: float64(s.cfg.Burst)}
	var buf []byte
	for {
		payload, err := readFrameTimed(m.conn, br, s.cfg.MaxFrame, buf)
		if err != nil {
			why := "connection closed"
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				why = fmt.Sprintf("frame not finished within %s", frameTimeout)
				m.abort()
			case errors.Is(err, errFrameHeader), errors.Is(err, errFrameTooLong):
				why = "protocol violation: " + err.Error()
			case errors.Is(err, io.ErrUnexpectedEOF):
				why = "connection closed mid-frame"
			case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
				why = err.Error()
			}
			s.remove(m, why)
			return
		}
		buf = keepBuffer(payload)
		raw, err := m.rc.open(payload)
		if err != nil {
			if !classic {
				s.remove(m, "record rejected: "+err.Error())
				m.conn.Close()
				return
			}
			// Classic records carry no MAC: a corrupted one is dropped and
			// counted, the same way whatever failed (no padding oracle).
			dropped++
			s.logf(evDropped, "%s: %v, dropped (%d so far)", m.name, err, dropped)
			continue
		}
		cost := s.lineCost(raw)
		if wait := limit.take(s.cfg.Now(), cost); wait > 0 && !s.slowDown(m, &limit, wait, cost) {
			return
		}
		quit, held := s.handleText(m, string(raw))
		if quit {
			s.remove(m, "/quit")
			return
		}
		if held && !s.heldBack(m, &limit) {
			return
		}
	}
}

// handleText interprets one line from a member; it reports whether they
// quit, and whether their line was held back for the others' writers
// (see waitForWriters).
func (s *server) handleText(m *member, text string) (quit, held bool) {
	text = strings.TrimSpace(text)
	if text == "" {
		return false, false
	}
	if len(text) > maxTextLen {
		s.send(m, s.stamp(fmt.Sprintf("[ERROR] Message too long (max %d bytes)", maxTextLen)))
		return false, false
	}
	if !strings.HasPrefix(text, "/") {
		text = strings.TrimSpace(sanitizeText(text))
		if text == "" {
			return false, false
		}
		s.logf(evBroadcast, "%s: %s", m.name, text)
		return false, s.broadcast(s.stamp(m.name+": "+text), nil)
	}
	cmd, rest, _ := strings.Cut(text, " ")
	switch cmd {
	case "/quit":
		return true, false
	case "/list":
		s.mu.Lock()
		names := make([]string, len(s.members))
		for i, x := range s.members {
			names[i] = x.name
		}
		s.mu.Unlock()
		s.send(m, listText(names))
	case "/pm":
		s.privateMessage(m, rest)
	case "/help":
		s.send(m, s.stamp(helpText()))
	default:
		s.send(m, s.stamp("[ERROR] Unknown command: "+sanitizeText(cmd)+" (try /help)"))
	}
	return false, false
}

// parsePM splits the arguments of "/pm user text"; text is sanitized and
// ok is false when either part is missing.
func parsePM(args string) (to, text string, ok bool) {
	to, text, _ = strings.Cut(strings.TrimSpace(args), " ")
	text = strings.TrimSpace(sanitizeText(text))
	return to, text, to != "" && text != ""
}

// privateMessage handles "/pm user text".
func (s *server) privateMessage(from *member, args string) {
	to, text, ok := parsePM(args)
	if !ok {
		s.send(from, s.stamp("[ERROR] Usage: /pm <username> <message>"))
		return
	}
	s.mu.Lock()
	target := s.byName[to]
	var kicked []*member
	if target != nil {
		if !target.tryPush(s.stamp("[PM from " + from.name + "] " + text)) {
			kicked = append(kicked, target)
		}
		// from may have been dropped meanwhile (its queue is then closed).
		if !from.gone && !from.tryPush(s.stamp("[PM to "+to+"] "+text)) {
			kicked = append(kicked, from)
		}
	}
	s.mu.Unlock()
	if target == nil {
		s.send(from, s.stamp("[ERROR] User '"+sanitizeText(to)+"' not found"))
		return
	}
	s.logf(evPM, "%s -> %s", from.name, to)
	s.kick(kicked)
}
