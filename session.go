// The client session: the handshake the server's first frame asks for, the
// check of the server key against its pin, the username, then sending and
// receiving texts.
//
// Nothing here prints: the handshake reports its steps through a callback
// and the session returns data and errors; repl.go renders them.

package main

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// clientReadBuffer is a client's read buffer: one per process, large
// enough that a burst of chat arrives in few reads.
const clientReadBuffer = 16 << 10

// clientConfig is what a client session needs. Addr keys the pin in the
// known-servers file, or in Pins; with neither, no pins are kept.
type clientConfig struct {
	Name         string
	Suite        string // auto (""), classic or modern
	Addr         string
	KnownServers string
	Pins         pinStore // pins kept elsewhere than in a file (the browser's storage)
	Fingerprint  string
	Insecure     bool
	Rand         io.Reader
	Record       *capture
	Keylog       *keylog
	Step         func(handshakeStep)
	Timeout      time.Duration // for the whole handshake; default 15s
	HelloTimeout time.Duration // for the server's first frame, when shorter than Timeout (the client UI uses helloTimeout)

	peer net.Addr // the address the connection reached, which also keys the pin
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

	buf []byte // Recv's frame buffer
	wmu sync.Mutex
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
	cfg.peer = conn.RemoteAddr()
	conn = cfg.Record.wrapConn(conn, "client")
	conn.SetDeadline(time.Now().Add(cfg.Timeout))
	rw := frameRW{bufio.NewReaderSize(conn, clientReadBuffer), conn}
	first, err := readServerHello(conn, rw, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	var suite string
	var handshake func(io.ReadWriter, []byte, *handshakeConfig) (recordCipher, error)
	switch {
	case strings.HasPrefix(string(first), "ERROR:"):
		err = &refusedError{Text: sanitizeText(string(first))}
	case isPublicKeyPEM(first):
		suite, handshake = suiteClassic, classicClientHandshake
		if cfg.Suite == suiteModern {
			err = &downgradeError{Addr: cfg.Addr, Want: suiteModern, Got: suiteClassic, Why: "-suite modern was asked for"}
		}
	case isModernHello(first):
		suite, handshake = suiteModern, clientHandshakeModern
		if cfg.Suite == suiteClassic {
			err = errors.New("server speaks the modern suite, and -suite classic was asked for")
		}
	default:
		err = &notChatServerError{Addr: cfg.Addr, Why: "its first frame is neither a classic public key nor a modern hello"}
	}
	var rc recordCipher
	var seen *knownServer
	if err == nil {
		rc, err = handshake(rw, first, &handshakeConfig{
			Rand: cfg.Rand, Keylog: cfg.Keylog, Step: cfg.Step,
			CheckKey: func(pub *rsa.PublicKey) (note string, err error) {
				note, seen, err = cfg.checkServerKey(pub, suite)
				return note, err
			},
		})
	}
	if err != nil {
		conn.Close()
		return nil, handshakeError(err, "handshake")
	}
	if seen != nil {
		if err := cfg.recordServerKey(*seen); err != nil {
			conn.Close()
			return nil, err
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

// helloTimeout is how long the interactive client waits for the server's
// first frame. Both suites' servers send it at once; a server of another
// protocol that waits for the client to speak first (HTTP) is named after
// this long. The bench and the tap keep the whole handshake's timeout: a
// loaded server may accept late.
const helloTimeout = 5 * time.Second

// notChatServerError is a peer that does not speak the protocol at all:
// an HTTP or SSH server, say.
type notChatServerError struct {
	Addr, Why string
}

func (e *notChatServerError) Error() string {
	return fmt.Sprintf("%s does not answer like an encchat server: %s", e.Addr, e.Why)
}

// readServerHello reads the server's first frame, telling a peer of
// another protocol from a chat server that failed.
func readServerHello(conn net.Conn, rw frameRW, cfg clientConfig) ([]byte, error) {
	wait := cfg.HelloTimeout
	if wait > 0 && wait < cfg.Timeout {
		conn.SetReadDeadline(time.Now().Add(wait))
		defer conn.SetReadDeadline(time.Now().Add(cfg.Timeout - wait))
	} else {
		wait = 0
	}
	head, _ := rw.Reader.Peek(headerLen)
	start := string(head)
	first, err := readFrame(rw)
	var ne net.Error
	switch {
	case err == nil:
		return first, nil
	case errors.Is(err, errFrameHeader), errors.Is(err, errFrameTooLong):
		rest, _ := rw.Reader.Peek(rw.Reader.Buffered())
		why := err.Error()
		if b := startOfReply(start + string(rest)); b != "" {
			why = fmt.Sprintf("%s; it sent %q", why, b)
		}
		return nil, &notChatServerError{Addr: cfg.Addr, Why: why}
	case wait > 0 && errors.As(err, &ne) && ne.Timeout():
		return nil, &notChatServerError{Addr: cfg.Addr, Why: fmt.Sprintf("it sent nothing in %v (an encchat server sends its key at once; an HTTP server waits for the client)", wait)}
	}
	return nil, handshakeError(err, "server hello")
}

// startOfReply is the printable start of what a peer of another protocol
// sent, to name it ("SSH-2.0-OpenSSH_9.6", "HTTP/1.1 400 Bad Request").
func startOfReply(b string) string {
	line, _, _ := strings.Cut(b, "\n")
	line = sanitizeText(strings.TrimRight(line, "\r"))
	if len(line) > 40 {
		line = line[:40]
	}
	return line
}

// checkServerKey applies -insecure, -fingerprint and the known-servers pin,
// before the client sends anything. -fingerprint is checked in addition to
// the pin, never instead of it: an address pinned as modern refuses
// classic either way. The pin is found under the address as typed, in any
// spelling, and under the address the connection reached (pinAddrs). It
// returns a note for the walk-through, and the key as seen, for
// recordServerKey once the handshake proves the server holds it (nil: no
// known-servers file, or -insecure).
func (cfg clientConfig) checkServerKey(pub *rsa.PublicKey, suite string) (string, *knownServer, error) {
	fp := fingerprint(pub)
	if cfg.Insecure {
		return "Server key " + fp + " NOT CHECKED (-insecure): anyone on the path could be answering", nil, nil
	}
	if cfg.Fingerprint != "" && !sameFingerprint(fp, cfg.Fingerprint) {
		return "", nil, &keyMismatchError{Addr: cfg.Addr, Want: cfg.Fingerprint, Got: fp, Source: "-fingerprint"}
	}
	pins := cfg.pins()
	if pins == nil {
		if cfg.Fingerprint != "" {
			return "Server key " + fp + " matches -fingerprint", nil, nil
		}
		return "Server key " + fp + " (no known-servers file: not pinned)", nil, nil
	}
	addrs, err := pinAddrs(cfg.Addr, cfg.peer)
	if err != nil {
		return "", nil, err
	}
	seen := knownServer{addr: strings.Join(addrs, ","), suite: suite, fingerprint: fp}
	have, err := pins.lookup(addrs)
	if err != nil {
		return "", nil, err
	}
	note, _, err := cfg.comparePin(seen, have)
	if err != nil {
		return "", nil, err
	}
	return note, &seen, nil
}

// recordServerKey writes what the handshake proved to known_servers: a
// first contact's pin, a classic pin upgraded to modern, or a pin that
// learns another spelling of the server's address. The file is read again
// under its lock, and a different pin that appeared since the check
// (another client's first contact) refuses this session.
func (cfg clientConfig) recordServerKey(seen knownServer) error {
	err := cfg.pins().update(seen.addrs(), func(have []knownServerLine) (*knownServer, error) {
		_, write, err := cfg.comparePin(seen, have)
		return write, err
	})
	var mismatch *keyMismatchError
	var downgrade *downgradeError
	if err != nil && !errors.As(err, &mismatch) && !errors.As(err, &downgrade) {
		err = fmt.Errorf("recording the server key: %w", err)
	}
	return err
}

// pins is where the client keeps its pins: Pins, else the known-servers
// file; nil: nowhere.
func (cfg clientConfig) pins() pinStore {
	if cfg.Pins != nil {
		return cfg.Pins
	}
	if cfg.KnownServers != "" {
		return knownServersFile(cfg.KnownServers)
	}
	return nil
}

// comparePin compares the key and suite seen now with the pins that name
// the server (none: a first contact). It returns the walk-through's note,
// and the server's one pin to write (nil: nothing), or the refusal: a
// classic answer where a pin says modern, or another key than a pin's
// (unless -fingerprint checked it). A refusal names the pin by the address
// it has in the file, which is what "encchat forget" takes.
func (cfg clientConfig) comparePin(seen knownServer, have []knownServerLine) (note string, write *knownServer, err error) {
	file := cfg.pins().where()
	if len(have) == 0 {
		switch {
		case cfg.Suite == suiteModern && seen.suite == suiteClassic:
			return "", nil, &downgradeError{Addr: cfg.Addr, Want: suiteModern, Got: seen.suite, Why: "-suite modern was asked for"}
		case cfg.Fingerprint != "":
			return "Server key " + seen.fingerprint + " matches -fingerprint: pinned in " + file, &seen, nil
		}
		return "Server key " + seen.fingerprint + " first seen now: pinned in " + file, &seen, nil
	}
	upgrade := false
	for _, h := range have {
		switch {
		case h.suite == suiteModern && seen.suite == suiteClassic:
			return "", nil, &downgradeError{Addr: h.as, Want: suiteModern, Got: seen.suite, Why: "it is pinned as modern in " + file}
		case !sameFingerprint(seen.fingerprint, h.fingerprint) && cfg.Fingerprint != "":
			return "Server key " + seen.fingerprint + " matches -fingerprint (the pin in " + file + " names another key, and is left as it is)", nil, nil
		case !sameFingerprint(seen.fingerprint, h.fingerprint):
			return "", nil, &keyMismatchError{Addr: h.as, Want: h.fingerprint, Got: seen.fingerprint, Source: "the pin in " + file}
		case h.suite == suiteClassic && seen.suite == suiteModern:
			upgrade = true
		}
	}
	// One server, one pin: every address it is known by, on one line.
	merged := knownServer{suite: seen.suite, fingerprint: have[0].fingerprint}
	var all []string
	for _, h := range have {
		all = append(all, h.addrs()...)
	}
	for _, a := range append(all, seen.addrs()...) {
		if merged.addr == "" {
			merged.addr = a
		} else if merged.named([]string{a}) == "" {
			merged.addr += "," + a
		}
	}
	if len(have) > 1 || merged != have[0].knownServer {
		write = &merged
	}
	matches := "Server key " + seen.fingerprint + " matches "
	if cfg.Fingerprint != "" {
		matches += "-fingerprint and "
	}
	if upgrade {
		return matches + "the pin in " + file + " (classic): it becomes modern, so a classic answer from " + cfg.Addr + " will be refused", write, nil
	}
	return matches + "the pin in " + file, write, nil
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

// recvRaw is Recv returning the text as it decrypted, uncleaned: for the
// bench, which parses and never prints.
func (c *clientSession) recvRaw() ([]byte, error) {
	for {
		payload, err := readFrameInto(c.br, maxFrameLen, c.buf)
		if err != nil {
			return nil, err
		}
		c.buf = keepBuffer(payload)
		raw, err := c.rc.open(payload)
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
