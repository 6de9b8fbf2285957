// Framing, handshakes, the server hub and the client session.
//
// Nothing here prints: the server reports events through a callback and the
// client returns data and errors; main.go and repl.go render them.

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
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Framing: every frame is a 10-digit zero-padded ASCII length, then the payload.
const (
	headerLen   = 10
	maxFrameLen = 65536 // larger is a protocol violation
)

// errFrameHeader and errFrameTooLong are protocol violations: the peer is dropped.
var (
	errFrameHeader  = errors.New("frame header is not ten ASCII digits")
	errFrameTooLong = errors.New("frame too long")
)

// parseFrameHeader returns the payload length a header announces.
func parseFrameHeader(h []byte) (int, error) {
	return parseFrameHeaderLimit(h, maxFrameLen)
}

// parseFrameHeaderLimit is parseFrameHeader with a lower limit of the
// caller's (the server's -max-frame).
func parseFrameHeaderLimit(h []byte, limit int) (int, error) {
	if len(h) != headerLen {
		return 0, errFrameHeader
	}
	n := 0
	for _, c := range h {
		if c < '0' || c > '9' {
			return 0, errFrameHeader
		}
		n = n*10 + int(c-'0')
		if n > limit {
			return 0, fmt.Errorf("%w: over %d bytes", errFrameTooLong, limit)
		}
	}
	return n, nil
}

// appendFrame appends a header and payload to dst.
func appendFrame(dst, payload []byte) []byte {
	var h [headerLen]byte
	n := len(payload)
	for i := headerLen - 1; i >= 0; i-- {
		h[i] = byte('0' + n%10)
		n /= 10
	}
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// frameHeader returns the header for a payload of n bytes.
func frameHeader(n int) []byte {
	return []byte(fmt.Sprintf("%010d", n))
}

// readFrame reads one frame. The length is checked before anything is
// allocated. A clean EOF before a header is io.EOF; EOF inside a frame is
// io.ErrUnexpectedEOF.
func readFrame(r io.Reader) ([]byte, error) {
	return readFrameLimit(r, maxFrameLen)
}

// readFrameLimit is readFrame refusing payloads over limit bytes.
func readFrameLimit(r io.Reader, limit int) ([]byte, error) {
	return readFrameInto(r, limit, nil)
}

// readFrameInto is readFrameLimit reading the payload into buf when it is
// large enough, so a loop that keeps buf reads without allocating.
func readFrameInto(r io.Reader, limit int, buf []byte) ([]byte, error) {
	if cap(buf) < headerLen {
		buf = make([]byte, headerLen)
	}
	h := buf[:headerLen] // in buf: a local array would escape to the heap
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, err
	}
	n, err := parseFrameHeaderLimit(h, limit)
	if err != nil {
		return nil, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	payload := buf[:n]
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return payload, nil
}

// writeFrame writes one frame with a single Write.
func writeFrame(w io.Writer, payload []byte) error {
	_, err := w.Write(appendFrame(make([]byte, 0, headerLen+len(payload)), payload))
	return err
}

// Limits and texts of the chat layer.
const (
	maxNameLen      = 32
	maxTextLen      = 4096
	defaultQueueLen = 1024
	writeTimeout    = 10 * time.Second
	maxCoalesce     = 64 << 10 // bytes gathered into one Write
	// serverReadBuffer is a member's read buffer, kept for as long as they
	// stay: most frames fit, and a larger one is read straight through.
	serverReadBuffer = 1 << 10
	// clientReadBuffer is a client's: one per process, large enough that a
	// burst of chat arrives in few reads.
	clientReadBuffer = 16 << 10
	separator        = "=================================================="
	shutdownText     = "[SYSTEM] Server shutting down"
	serverFullText   = "ERROR: Server full"
	nameTakenText    = "ERROR: Username already taken"
	tooManyText      = "ERROR: Too many connections from your address"
)

// remoteIP is the IP part of a connection's remote address.
func remoteIP(c net.Conn) string {
	addr := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// tokenBucket limits a client's lines: Burst at once, then Rate per second.
// Only the member's reader touches it.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
	warned              bool // "Slow down" sent for this empty spell
}

// allow reports whether one more line may pass at now.
func (b *tokenBucket) allow(now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.warned = false
		return true
	}
	return false
}

// chatCommands drives the server's /help and the client's completion.
var chatCommands = []struct{ name, args, help string }{
	{"/pm", "<username> <message>", "send a private message"},
	{"/list", "", "show who is online"},
	{"/help", "", "show the commands"},
	{"/quit", "", "leave the chat"},
}

// validateName applies the username rules; the error says why.
func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case !utf8.ValidString(name):
		return errors.New("not UTF-8")
	case utf8.RuneCountInString(name) > maxNameLen:
		return fmt.Errorf("longer than %d characters", maxNameLen)
	case strings.EqualFold(name, "system") || strings.EqualFold(name, "server"):
		return fmt.Errorf("%q is reserved", name)
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' && r != '.' {
			return fmt.Errorf("%q is not allowed (letters, digits, _ - . only)", r)
		}
	}
	return nil
}

// isControl reports the runes that must never reach a terminal: C0, DEL,
// C1 and the Unicode bidi controls.
func isControl(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f,
		r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// sanitizeText removes control characters from one line of chat text.
func sanitizeText(s string) string {
	if printableASCII(s, false) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
}

// sanitizeForTerminal is sanitizeText that keeps line breaks, for the
// server's multi-line texts (welcome, /list) on the client's screen.
func sanitizeForTerminal(s string) string {
	if printableASCII(s, true) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		if isControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
}

// printableASCII reports whether s is printable ASCII (and line breaks, when
// allowed): the common case, returned unchanged without decoding runes.
func printableASCII(s string, newlines bool) bool {
	// Eight bytes at a time: a word passes when no byte is below 0x20 and
	// none above 0x7e (the "has less" and "has more" bit tricks, exact for
	// these bounds); any other word is checked byte by byte below.
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if ((x-ones*0x20)&^x|(x+ones*(0x7f-0x7e)|x))&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			if c != '\n' || !newlines {
				return false
			}
		}
	}
	return true
}

// welcomeText is the seed's welcome, byte for byte.
func welcomeText(name string) string {
	return "\n" + separator + "\n✓ Secure connection established!\nWelcome " + name +
		"!\nAll messages are encrypted with AES-256\n" + separator
}

// listText is the seed's /list answer.
func listText(names []string) string {
	return fmt.Sprintf("\n%s\nOnline Users (%d): %s\n%s", separator, len(names), strings.Join(names, ", "), separator)
}

// handshakeStep is one step of the client's handshake walk-through.
type handshakeStep struct {
	N, Total int
	Title    string
	Results  []string
}

// serverEvent is one line of the server's log; the UI colours it by Kind.
type serverEvent struct {
	Time time.Time
	Kind string // HANDSHAKE, JOIN, ENCRYPTED BROADCAST, PM ENCRYPTED, LEAVE, REFUSED, DROPPED
	Text string
}

// serverConfig is what a server needs; zero values get defaults.
type serverConfig struct {
	Key              *rsa.PrivateKey
	Suite            string
	HandshakeTimeout time.Duration
	MaxClients       int
	MaxPerAddr       int     // connections from one IP address; 0 = no limit
	MaxFrame         int     // largest frame a client may send; 0 = maxFrameLen
	Rate             float64 // chat lines per second per client; 0 = no limit
	Burst            int     // lines a client may send at once before Rate applies
	QueueLen         int
	Rand             io.Reader
	Now              func() time.Time
	Record           *capture
	Keylog           *keylog
	Log              func(serverEvent)
}

// server is the hub: the users online, in join order, and their queues.
type server struct {
	cfg    serverConfig
	pemKey []byte // the classic first frame

	mu       sync.Mutex
	members  []*member // join order
	byName   map[string]*member
	conns    map[net.Conn]struct{} // every open connection, for Shutdown
	perAddr  map[string]int        // open connections per remote IP
	ln       net.Listener
	closing  bool
	stopping atomic.Bool // closing, readable without mu by writers
	handlers sync.WaitGroup
	rsaSlots chan struct{} // one per core: RSA decryptions run to completion, not 16 interleaved
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
	gone   bool // removed from the hub; guarded by server.mu
	writer sync.WaitGroup
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
	pemKey, err := marshalPublicKeyPEM(&cfg.Key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &server{
		cfg:      cfg,
		pemKey:   pemKey,
		byName:   make(map[string]*member),
		conns:    make(map[net.Conn]struct{}),
		perAddr:  make(map[string]int),
		rsaSlots: make(chan struct{}, runtime.GOMAXPROCS(0)),
	}, nil
}

func (s *server) logf(kind, format string, args ...any) {
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
		conn := s.cfg.Record.wrapConn(nc, "server")
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			conn.Close()
			return nil
		}
		ip := remoteIP(conn)
		if s.cfg.MaxPerAddr > 0 && s.perAddr[ip] >= s.cfg.MaxPerAddr {
			s.mu.Unlock()
			s.logf("REFUSED", "%s: too many connections from %s (max %d)", conn.RemoteAddr(), ip, s.cfg.MaxPerAddr)
			// No key is agreed yet, so this refusal is in clear text.
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			writeFrame(conn, []byte(tooManyText))
			conn.Close()
			continue
		}
		s.perAddr[ip]++
		s.conns[conn] = struct{}{}
		s.handlers.Add(1)
		s.mu.Unlock()
		go s.handle(conn)
	}
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
		m.gone = true
		m.out.close() // the writer flushes, then closes the connection
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
	addr := conn.RemoteAddr().String()
	m, err := s.handshake(conn, addr)
	if err != nil {
		s.logf("REFUSED", "%s: %v", addr, err)
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

// frameRW reads frames through a buffer and writes them straight to the conn.
type frameRW struct {
	*bufio.Reader
	net.Conn
}

func (f frameRW) Read(p []byte) (int, error)  { return f.Reader.Read(p) }
func (f frameRW) Write(p []byte) (int, error) { return f.Conn.Write(p) }

// handshake runs the suite's handshake and the username exchange, and
// registers the member. Every refusal returns an error saying why.
func (s *server) handshake(conn net.Conn, addr string) (*member, error) {
	conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	rw := frameRW{bufio.NewReaderSize(conn, serverReadBuffer), conn}
	s.logf("HANDSHAKE", "Starting with %s (%s suite)", addr, s.cfg.Suite)
	var rc recordCipher
	var err error
	if s.cfg.Suite == suiteModern {
		rc, err = serverHandshakeModern(rw, s.cfg.Key, s.cfg.Rand, s.cfg.Keylog, func(msg string) {
			s.logf("HANDSHAKE", "%s", msg)
		})
	} else {
		rc, err = s.classicHandshake(rw)
	}
	if err != nil {
		return nil, handshakeError(err, "handshake")
	}

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

	m := &member{name: name, addr: addr, conn: conn, br: rw.Reader, rc: rc, out: newOutQueue(s.cfg.QueueLen)}
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

	s.logf("HANDSHAKE", "✓ Secure channel established with user: %s", name)
	s.logf("JOIN", "%s joined from %s", name, addr)
	s.kick(kicked)
	return m, nil
}

// classicHandshake is the seed's handshake, server side: PEM key out,
// RSA-OAEP blob in, HANDSHAKE_OK out.
func (s *server) classicHandshake(rw frameRW) (recordCipher, error) {
	if err := writeFrame(rw, s.pemKey); err != nil {
		return nil, err
	}
	s.logf("HANDSHAKE", "Sent RSA public key (%d bytes)", len(s.pemKey))
	blob, err := readFrame(rw)
	if err != nil {
		return nil, err
	}
	s.logf("HANDSHAKE", "Received encrypted AES key (%d bytes)", len(blob))
	s.rsaSlots <- struct{}{}
	key, err := classicUnwrapKey(s.cfg.Key, blob)
	<-s.rsaSlots
	if err != nil {
		return nil, err
	}
	s.cfg.Keylog.logKey("CLASSIC", blob[:8], key)
	s.logf("HANDSHAKE", "Decrypted AES-256 key (%d bytes)", len(key))
	rc, err := newClassicCipher(key, s.cfg.Rand)
	if err != nil {
		return nil, err
	}
	ok, err := rc.seal([]byte(handshakeOKText))
	if err != nil {
		return nil, err
	}
	if err := writeFrame(rw, ok); err != nil {
		return nil, err
	}
	s.logf("HANDSHAKE", "Sent encrypted confirmation")
	return rc, nil
}

// handshakeError names timeouts and early closes plainly.
func handshakeError(err error, during string) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("handshake timeout during %s", during)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("closed during %s", during)
	}
	return fmt.Errorf("%s: %w", during, err)
}

// sendAndClose sends one last text to a connection that never joined.
func (s *server) sendAndClose(conn net.Conn, rc recordCipher, text string) {
	if payload, err := rc.seal([]byte(text)); err == nil {
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		writeFrame(conn, payload)
	}
	conn.Close()
}

// pushLocked queues text for every member but skip; s.mu must be held.
// Members whose queue is full are returned for kick; members whose queue
// is over half full while their writer is not stalled in a Write are
// returned for pace.
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

// pace holds a broadcaster back while writers that are only short of CPU
// drain their queues. On two cores, one reader goroutine can push a
// client's whole burst to every queue in one time slice while the writers
// that would drain them wait to run; without pacing a burst longer than
// the queue bound disconnects clients that are reading. Waiting here
// leaves the rest of the burst in the sender's socket, so TCP slows the
// sender instead. It does not wait for a writer stalled in a Write (a
// client that stopped reading is still disconnected when its queue fills),
// and never longer than paceLimit in all.
func (s *server) pace(behind []*member) {
	if len(behind) == 0 {
		return
	}
	deadline := time.Now().Add(paceLimit)
	timer := time.NewTimer(paceLimit)
	defer timer.Stop()
	for _, m := range behind {
		for m.out.len() > m.out.limit/4 {
			now := time.Now()
			if m.out.stalled(now) || !now.Before(deadline) {
				break
			}
			// Wake when the writer takes a batch, when its current Write
			// would count as stalled, or at the deadline.
			wait := deadline.Sub(now)
			if since := m.out.writeSince.Load(); since != 0 {
				wait = min(wait, time.Unix(0, since).Add(writeStall).Sub(now))
			}
			timer.Reset(wait)
			select {
			case <-m.out.took:
			case <-timer.C:
			}
		}
	}
}

const (
	// paceLimit is the longest pace holds a broadcaster back.
	paceLimit = 100 * time.Millisecond
	// writeStall is how long a Write lasts before its client counts as
	// not reading. A Write to a reading client returns at once, but on a
	// busy machine its writer may wait a while for a core afterwards.
	writeStall = 20 * time.Millisecond
)

func (m *member) tryPush(text string) bool {
	_, ok := m.out.push(text, false)
	return ok
}

// noticeDelay is how long a join or leave notice may wait in a queue for
// company. Every join is announced to everyone online, so N clients
// joining cost N²/2 notices; sent one write each, their syscalls and
// wake-ups cost as much CPU as the joins' RSA decryptions. Held for a
// moment, a burst of joins reaches each member in a few writes. Anything
// else queued behind a notice sends it at once, so order never changes.
const noticeDelay = 50 * time.Millisecond

// outQueue is a member's bounded outbound queue. It holds texts, not sealed
// frames: a broadcast shares one string among its recipients, and each
// recipient's writer seals it. Its memory follows what is waiting, up to
// limit entries, so an idle client costs almost nothing. Notices (joins and
// leaves) may wait up to noticeDelay; any other text takes them along.
type outQueue struct {
	mu     sync.Mutex
	items  []string
	limit  int
	closed bool
	urgent bool          // a text that is not a notice is queued
	ready  chan struct{} // holds one token when the writer should look

	took       chan struct{} // holds one token after the writer took a batch, for pace
	writeSince atomic.Int64  // when the writer's current conn.Write began (Unix ns), 0 outside one
}

func newOutQueue(limit int) *outQueue {
	return &outQueue{limit: limit, ready: make(chan struct{}, 1), took: make(chan struct{}, 1)}
}

// stalled reports whether the writer has been inside one Write for
// writeStall or longer: its client is not reading, or not fast enough.
func (q *outQueue) stalled(now time.Time) bool {
	since := q.writeSince.Load()
	return since != 0 && now.Sub(time.Unix(0, since)) >= writeStall
}

// len is the number of texts waiting.
func (q *outQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// push appends text and returns how many texts are waiting, with ok false
// when the queue is full. A push to a closed queue is dropped. A notice
// wakes the writer only when the queue was empty, so that it starts its
// delay, or when the queue is half full.
func (q *outQueue) push(text string, notice bool) (queued int, ok bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, true
	}
	if len(q.items) >= q.limit {
		q.mu.Unlock()
		return len(q.items), false
	}
	if notice && len(q.items) >= q.limit/2 {
		notice = false // a queue half full of notices is not held back
	}
	wake := !notice || len(q.items) == 0
	if q.items == nil {
		q.items = textSlices.get()
	}
	q.items = append(q.items, text)
	q.urgent = q.urgent || !notice
	queued = len(q.items)
	q.mu.Unlock()
	if wake {
		q.wake()
	}
	return queued, true
}

func (q *outQueue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// close lets the writer drain what is queued and stop.
func (q *outQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

// take waits for texts and returns all that are queued (the caller gives
// the slice back to textSlices); ok is false once the queue is closed and
// empty. When only notices are queued it waits for more, up to delay (a
// stopped timer it owns, stopped again on return).
func (q *outQueue) take(delay *time.Timer, wait time.Duration) (items []string, ok bool) {
	waiting, expired := false, false
	defer func() {
		if waiting {
			delay.Stop()
		}
	}()
	for {
		q.mu.Lock()
		n, closed := len(q.items), q.closed
		if n > 0 && (q.urgent || closed || expired) {
			items, q.items = q.items, nil
			q.urgent = false
			q.mu.Unlock()
			select {
			case q.took <- struct{}{}:
			default:
			}
			return items, true
		}
		q.mu.Unlock()
		switch {
		case closed:
			return nil, false
		case n == 0:
			<-q.ready
		default: // notices only
			if !waiting {
				waiting = true
				delay.Reset(wait)
			}
			select {
			case <-q.ready:
			case <-delay.C:
				waiting, expired = false, true
			}
		}
	}
}

// broadcast queues text for everyone (skip may be nil).
func (s *server) broadcast(text string, skip *member) {
	s.mu.Lock()
	kicked, behind := s.pushLocked(text, skip)
	s.mu.Unlock()
	s.kick(kicked)
	s.pace(behind)
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
		s.remove(m, "outbound queue full (client not reading)")
		m.conn.Close() // unblocks a writer stuck in Write
	}
}

// remove takes a member out of the hub and tells the others. It is
// idempotent; the member's writer flushes what is queued and closes.
func (s *server) remove(m *member, why string) {
	s.mu.Lock()
	if m.gone {
		s.mu.Unlock()
		return
	}
	m.gone = true
	m.out.close()
	delete(s.byName, m.name)
	for i, x := range s.members {
		if x == m {
			s.members = append(s.members[:i], s.members[i+1:]...)
			break
		}
	}
	kicked := s.noticeLocked(s.stamp("[SYSTEM] "+m.name+" left the chat"), nil)
	s.mu.Unlock()
	s.logf("LEAVE", "%s left the chat (%s)", m.name, why)
	s.kick(kicked)
}

// writeLoop is the member's only writer: it seals queued texts in order,
// coalesces what is waiting into one Write, and closes the connection when
// the queue is closed or a write fails.
func (s *server) writeLoop(m *member) {
	defer m.writer.Done()
	defer m.conn.Close()
	var sealer *classicSealer
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	if classic, ok := m.rc.(*classicCipher); ok {
		sealer = classic.sealer()
	}
	for {
		items, ok := m.out.take(delay, noticeDelay)
		if !ok {
			return
		}
		buf := writeBuffers.get()
		var err error
		for i, text := range items {
			if sealer != nil {
				buf, err = sealer.appendFrame(buf, text)
			} else {
				buf, err = appendSealedFrame(buf, m.rc, text)
			}
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
			s.remove(m, "write failed: "+err.Error())
			return
		}
		clear(items) // let the texts go
		textSlices.put(items)
	}
}

// Buffers that members use only while they have something to send: an
// idle member holds none, and a burst does not grow new ones per batch for
// every member.
var (
	textSlices   = slicePool[string]{max: 4096}          // queues' backing arrays
	writeBuffers = slicePool[byte]{max: 2 * maxCoalesce} // writers' coalescing buffers
)

// slicePool is a sync.Pool of empty slices, keeping none larger than max.
type slicePool[T any] struct {
	p   sync.Pool
	max int
}

func (sp *slicePool[T]) get() []T {
	if b, ok := sp.p.Get().(*[]T); ok {
		return *b
	}
	return nil
}

func (sp *slicePool[T]) put(b []T) {
	if cap(b) <= sp.max {
		b = b[:0]
		sp.p.Put(&b)
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

// readLoop reads the member's records until they leave.
func (s *server) readLoop(m *member) {
	br := m.br // holds whatever the client sent right behind its name
	_, classic := m.rc.(*classicCipher)
	open := recordOpener(m.rc)
	dropped := 0
	limit := tokenBucket{rate: s.cfg.Rate, burst: float64(s.cfg.Burst), tokens: float64(s.cfg.Burst)}
	var buf []byte
	for {
		payload, err := readFrameInto(br, s.cfg.MaxFrame, buf)
		if err != nil {
			why := "connection closed"
			switch {
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
		raw, err := open(payload)
		if err != nil {
			if !classic {
				s.remove(m, "record rejected: "+err.Error())
				m.conn.Close()
				return
			}
			// Classic records carry no MAC: a corrupted one is dropped and
			// counted, the same way whatever failed (no padding oracle).
			dropped++
			s.logf("DROPPED", "%s: record %v (%d so far)", m.name, err, dropped)
			continue
		}
		if !limit.allow(s.cfg.Now()) {
			if !limit.warned {
				limit.warned = true
				s.logf("LIMIT", "%s: over %g lines/s, dropping until they slow down", m.name, s.cfg.Rate)
				s.send(m, s.stamp("[ERROR] Slow down"))
			}
			continue
		}
		if quit := s.handleText(m, string(raw)); quit {
			s.remove(m, "/quit")
			return
		}
	}
}

// recordOpener returns rc's open, reusing its buffers between calls for
// the classic suite: what it returns is valid until its next call, and
// calls must come from one goroutine.
func recordOpener(rc recordCipher) func([]byte) ([]byte, error) {
	if c, ok := rc.(*classicCipher); ok {
		return c.opener().open
	}
	return rc.open
}

// keepBuffer returns a frame buffer to read the next frame into, or nil
// after a large frame so that a long-lived reader does not hold its memory.
func keepBuffer(b []byte) []byte {
	if cap(b) > 4<<10 {
		return nil
	}
	return b
}

// handleText interprets one line from a member; it reports whether they quit.
func (s *server) handleText(m *member, text string) (quit bool) {
	text = strings.TrimSpace(text)
	if text == "" {
		return false
	}
	if len(text) > maxTextLen {
		s.send(m, s.stamp(fmt.Sprintf("[ERROR] Message too long (max %d bytes)", maxTextLen)))
		return false
	}
	if !strings.HasPrefix(text, "/") {
		text = strings.TrimSpace(sanitizeText(text))
		if text == "" {
			return false
		}
		s.logf("ENCRYPTED BROADCAST", "%s: %s", m.name, text)
		s.broadcast(s.stamp(m.name+": "+text), nil)
		return false
	}
	cmd, rest, _ := strings.Cut(text, " ")
	switch cmd {
	case "/quit":
		return true
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
		var b strings.Builder
		b.WriteString("[HELP] Commands:")
		for _, c := range chatCommands {
			b.WriteString("\n  " + strings.TrimSpace(c.name+" "+c.args) + " - " + c.help)
		}
		s.send(m, s.stamp(b.String()))
	default:
		s.send(m, s.stamp("[ERROR] Unknown command: "+sanitizeText(cmd)+" (try /help)"))
	}
	return false
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
	s.logf("PM ENCRYPTED", "%s -> %s", from.name, to)
	s.kick(kicked)
}

// clientConfig is what a client session needs. Addr keys the pin in the
// known-servers file; an empty KnownServers keeps no pins.
type clientConfig struct {
	Name         string
	Suite        string // auto (""), classic or modern
	Addr         string
	KnownServers string
	Fingerprint  string
	Insecure     bool
	Rand         io.Reader
	Record       *capture
	Keylog       *keylog
	Step         func(handshakeStep)
	Timeout      time.Duration // for the whole handshake; default 15s
}

// keyMismatchError is a server key that does not match its pin.
type keyMismatchError struct {
	Addr, Want, Got, Source string
}

func (e *keyMismatchError) Error() string {
	return fmt.Sprintf("server key for %s does not match %s: expected %s, got %s", e.Addr, e.Source, e.Want, e.Got)
}

// downgradeError is a server answering with a weaker suite than required.
type downgradeError struct {
	Addr, Want, Got, Why string
}

func (e *downgradeError) Error() string {
	return fmt.Sprintf("%s answered with the %s suite, but %s: refusing the downgrade", e.Addr, e.Got, e.Why)
}

// refusedError is the server's own refusal of the username (taken, invalid, full).
type refusedError struct{ Text string }

func (e *refusedError) Error() string {
	return "server refused: " + strings.TrimPrefix(e.Text, "ERROR: ")
}

// clientSession is a client's connection after the handshake.
type clientSession struct {
	conn    net.Conn
	br      *bufio.Reader
	rc      recordCipher
	Suite   string
	welcome string
	Dropped int // classic records that did not decrypt, skipped

	open func([]byte) ([]byte, error) // recordOpener(rc), for Recv only
	buf  []byte                       // Recv's frame buffer
	wmu  sync.Mutex
}

// clientHandshake runs the handshake the server's first frame asks for,
// checks the server key against its pin, then sends the username.
func clientHandshake(conn net.Conn, cfg clientConfig) (*clientSession, error) {
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Step == nil {
		cfg.Step = func(handshakeStep) {}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	conn = cfg.Record.wrapConn(conn, "client")
	conn.SetDeadline(time.Now().Add(cfg.Timeout))
	rw := frameRW{bufio.NewReaderSize(conn, clientReadBuffer), conn}
	first, err := readFrame(rw)
	if err != nil {
		conn.Close()
		return nil, handshakeError(err, "server hello")
	}
	var rc recordCipher
	var suite string
	var pin *knownServer
	check := func(pub *rsa.PublicKey, s string) (string, error) {
		note, p, err := cfg.checkServerKey(pub, s)
		pin = p
		return note, err
	}
	switch {
	case strings.HasPrefix(string(first), "ERROR:"):
		err = &refusedError{Text: sanitizeText(string(first))}
	case isPublicKeyPEM(first):
		suite = suiteClassic
		rc, err = cfg.classicHandshake(rw, first, check)
	case isModernHello(first):
		suite = suiteModern
		if cfg.Suite == suiteClassic {
			err = errors.New("server speaks the modern suite, and -suite classic was asked for")
			break
		}
		rc, err = clientHandshakeModern(rw, first, cfg.Rand, cfg.Keylog, func(pub *rsa.PublicKey) error {
			note, err := check(pub, suiteModern)
			if err == nil {
				cfg.Step(handshakeStep{Title: "Server identity", Results: []string{note}})
			}
			return err
		}, cfg.Step)
	default:
		err = errors.New("server's first frame is neither a classic public key nor a modern hello")
	}
	if err != nil {
		conn.Close()
		return nil, handshakeError(err, "handshake")
	}
	if pin != nil && cfg.KnownServers != "" {
		if err := addKnownServer(cfg.KnownServers, *pin); err != nil {
			conn.Close()
			return nil, fmt.Errorf("recording the server key: %v", err)
		}
	}

	cs := &clientSession{conn: conn, br: rw.Reader, rc: rc, Suite: suite}
	if err := cs.Send(cfg.Name); err != nil {
		conn.Close()
		return nil, handshakeError(err, "username")
	}
	welcome, err := cs.Recv()
	if err != nil {
		conn.Close()
		return nil, handshakeError(err, "welcome")
	}
	if strings.HasPrefix(welcome, "ERROR:") {
		conn.Close()
		return nil, &refusedError{Text: welcome}
	}
	cs.welcome = welcome
	conn.SetDeadline(time.Time{})
	return cs, nil
}

// checkServerKey applies -insecure, -fingerprint and the known-servers pin.
// It returns a note for the walk-through, and the pin to record once the
// handshake proves the server holds the key.
func (cfg clientConfig) checkServerKey(pub *rsa.PublicKey, suite string) (string, *knownServer, error) {
	fp := fingerprint(pub)
	switch {
	case cfg.Insecure:
		return "Server key " + fp + " NOT CHECKED (-insecure): anyone on the path could be answering", nil, nil
	case cfg.Fingerprint != "":
		if !sameFingerprint(fp, cfg.Fingerprint) {
			return "", nil, &keyMismatchError{Addr: cfg.Addr, Want: cfg.Fingerprint, Got: fp, Source: "-fingerprint"}
		}
		return "Server key " + fp + " matches -fingerprint", nil, nil
	case cfg.KnownServers == "":
		return "Server key " + fp + " (no known-servers file: not pinned)", nil, nil
	}
	known, ok, err := lookupKnownServer(cfg.KnownServers, cfg.Addr)
	if err != nil {
		return "", nil, err
	}
	if !ok {
		if cfg.Suite == suiteModern && suite == suiteClassic {
			return "", nil, &downgradeError{Addr: cfg.Addr, Want: suiteModern, Got: suite, Why: "-suite modern was asked for"}
		}
		return "Server key " + fp + " first seen now: pinned in " + cfg.KnownServers,
			&knownServer{addr: cfg.Addr, suite: suite, fingerprint: fp}, nil
	}
	if known.suite == suiteModern && suite == suiteClassic {
		return "", nil, &downgradeError{Addr: cfg.Addr, Want: suiteModern, Got: suite, Why: "it is pinned as modern in " + cfg.KnownServers}
	}
	if !sameFingerprint(fp, known.fingerprint) {
		return "", nil, &keyMismatchError{Addr: cfg.Addr, Want: known.fingerprint, Got: fp, Source: "the pin in " + cfg.KnownServers}
	}
	return "Server key " + fp + " matches the pin in " + cfg.KnownServers, nil, nil
}

// classicHandshake is the seed's handshake, client side, as five steps.
func (cfg clientConfig) classicHandshake(rw frameRW, first []byte, check func(*rsa.PublicKey, string) (string, error)) (recordCipher, error) {
	if cfg.Suite == suiteModern {
		return nil, &downgradeError{Addr: cfg.Addr, Want: suiteModern, Got: suiteClassic, Why: "-suite modern was asked for"}
	}
	pub, err := parsePublicKeyPEM(first)
	if err != nil {
		return nil, err
	}
	note, err := check(pub, suiteClassic)
	if err != nil {
		return nil, err
	}
	cfg.Step(handshakeStep{N: 1, Total: 5, Title: "Receiving server's RSA public key...",
		Results: []string{fmt.Sprintf("Received RSA-%d public key (%d bytes)", pub.N.BitLen(), len(first)), note}})

	key := make([]byte, aesKeySize)
	if _, err := io.ReadFull(cfg.Rand, key); err != nil {
		return nil, err
	}
	cfg.Step(handshakeStep{N: 2, Total: 5, Title: "Generating AES-256 symmetric key...",
		Results: []string{"Generated AES-256 key (32 random bytes)"}})

	blob, err := classicWrapKey(cfg.Rand, pub, key)
	if err != nil {
		return nil, err
	}
	cfg.Step(handshakeStep{N: 3, Total: 5, Title: "Encrypting AES key with server's RSA public key...",
		Results: []string{fmt.Sprintf("Encrypted AES key (%d bytes, RSA-OAEP)", len(blob))}})

	if err := writeFrame(rw, blob); err != nil {
		return nil, err
	}
	cfg.Keylog.logKey("CLASSIC", blob[:8], key)
	cfg.Step(handshakeStep{N: 4, Total: 5, Title: "Sending encrypted AES key to server...",
		Results: []string{"Sent encrypted key"}})

	rc, err := newClassicCipher(key, cfg.Rand)
	if err != nil {
		return nil, err
	}
	payload, err := readFrame(rw)
	if err != nil {
		return nil, err
	}
	ok, err := rc.open(payload)
	if err != nil || string(ok) != handshakeOKText {
		return nil, errors.New("server confirmation does not decrypt to HANDSHAKE_OK: it does not hold the key it sent")
	}
	cfg.Step(handshakeStep{N: 5, Total: 5, Title: "Receiving encrypted confirmation from server...",
		Results: []string{"Handshake confirmed: " + handshakeOKText}})
	return rc, nil
}

// Welcome is the server's welcome text.
func (c *clientSession) Welcome() string { return c.welcome }

// Send seals and sends one line.
func (c *clientSession) Send(text string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	payload, err := c.rc.seal([]byte(text))
	if err != nil {
		return err
	}
	return writeFrame(c.conn, payload)
}

// Recv returns the next text from the server with control characters
// removed. A classic record that does not decrypt is skipped and counted;
// in the modern suite it ends the session.
func (c *clientSession) Recv() (string, error) {
	raw, err := c.recvRaw()
	if err != nil {
		return "", err
	}
	return sanitizeForTerminal(string(raw)), nil
}

// recvRaw is Recv returning the text as it decrypted, uncleaned and valid
// only until the next call: for the bench, which parses and never prints.
func (c *clientSession) recvRaw() ([]byte, error) {
	if c.open == nil {
		c.open = recordOpener(c.rc)
	}
	for {
		payload, err := readFrameInto(c.br, maxFrameLen, c.buf)
		if err != nil {
			return nil, err
		}
		c.buf = keepBuffer(payload)
		raw, err := c.open(payload)
		if err != nil {
			if c.Suite == suiteClassic {
				c.Dropped++
				continue
			}
			return nil, err
		}
		return raw, nil
	}
}

// Close closes the connection.
func (c *clientSession) Close() error { return c.conn.Close() }
