package main

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// ---- Helpers -------------------------------------------------------------------

// modernTestKey is the shared test RSA key (crypto_test.go's testRSAKey).
func modernTestKey(t testing.TB) *rsa.PrivateKey { return testRSAKey(t) }

func modernAcceptAnyKey(*rsa.PublicKey) (string, error) { return "", nil }

// modernLoopback returns a connected pair of TCP connections on 127.0.0.1.
func modernLoopback(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		client.Close()
		t.Fatal(r.err)
	}
	return client, r.c
}

// modernEnd is one side of a modern session in a test.
type modernEnd struct {
	conn net.Conn
	br   *bufio.Reader
	rc   recordCipher
	err  error
}

func (e *modernEnd) send(text string) error {
	payload, err := e.rc.seal([]byte(text))
	if err != nil {
		return err
	}
	return writeFrame(e.conn, payload)
}

func (e *modernEnd) recv() (string, error) {
	payload, err := readFrame(e.br)
	if err != nil {
		return "", err
	}
	text, err := e.rc.open(payload)
	if err != nil {
		if text != nil {
			return "", fmt.Errorf("open returned %q with its error", text)
		}
		return "", err
	}
	return string(text), nil
}

// modernOpts varies runModernHandshake.
type modernOpts struct {
	wrapClient func(net.Conn) net.Conn // sits on the client's socket: an on-path attacker
	check      func(*rsa.PublicKey) (string, error)
	deadline   time.Duration
	server     *serverHandshakeState // filled in after the handshake, for white-box tests
}

// runModernHandshake runs both entry points over the given conns, concurrently,
// and returns both ends. A side that fails closes its connection, as
// session.go does.
func runModernHandshake(t testing.TB, cconn, sconn net.Conn, o *modernOpts) (cli, srv *modernEnd) {
	t.Helper()
	priv := modernTestKey(t)
	if o == nil {
		o = &modernOpts{}
	}
	if o.check == nil {
		o.check = modernAcceptAnyKey
	}
	if o.deadline == 0 {
		o.deadline = 10 * time.Second
	}
	if o.wrapClient != nil {
		cconn = o.wrapClient(cconn)
	}
	cconn.SetDeadline(time.Now().Add(o.deadline))
	sconn.SetDeadline(time.Now().Add(o.deadline))
	cli = &modernEnd{conn: cconn, br: bufio.NewReader(cconn)}
	srv = &modernEnd{conn: sconn, br: bufio.NewReader(sconn)}

	done := make(chan struct{})
	go func() {
		defer close(done)
		hs := &serverHandshakeState{t: newTranscript(frameRW{srv.br, sconn}), priv: priv, rand: rand.Reader, report: func(string) {}}
		srv.rc, srv.err = hs.handshake()
		o.server = hs
		if srv.err != nil {
			sconn.Close()
		}
	}()
	first, err := readFrame(cli.br)
	if err == nil && !isModernHello(first) {
		err = errors.New("first frame is not a modern hello")
	}
	if err == nil {
		cli.rc, err = clientHandshakeModern(frameRW{cli.br, cconn}, first, &handshakeConfig{CheckKey: o.check})
	}
	if err != nil {
		cli.err = err
		cconn.Close()
	}
	<-done
	return cli, srv
}

// newModernSession is a handshake over a fresh modernLoopback connection.
func newModernSession(t testing.TB) (cli, srv *modernEnd) {
	t.Helper()
	c, s := modernLoopback(t)
	t.Cleanup(func() { c.Close(); s.Close() })
	cli, srv = runModernHandshake(t, c, s, nil)
	if cli.err != nil || srv.err != nil {
		t.Fatalf("handshake: client %v, server %v", cli.err, srv.err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	s.SetDeadline(time.Now().Add(10 * time.Second))
	return cli, srv
}

// ---- Handshake -------------------------------------------------------------------

func TestModernHandshakeAndRecords(t *testing.T) {
	cli, srv := newModernSession(t)
	for _, text := range []string{"alice", "", "hello, modern world", string(bytes.Repeat([]byte("é"), 2000))} {
		if err := cli.send(text); err != nil {
			t.Fatal(err)
		}
		got, err := srv.recv()
		if err != nil || got != text {
			t.Fatalf("server got %q, %v; want %q", got, err, text)
		}
		if err := srv.send("re: " + text); err != nil {
			t.Fatal(err)
		}
		got, err = cli.recv()
		if err != nil || got != "re: "+text {
			t.Fatalf("client got %q, %v", got, err)
		}
	}
}

func TestModernMessageSizes(t *testing.T) {
	c, s := modernLoopback(t)
	defer c.Close()
	defer s.Close()
	var c2s, s2c [][]byte
	rec := func(nc net.Conn) net.Conn { return &modernFrameTap{Conn: nc, c2s: &c2s, s2c: &s2c} }
	cli, srv := runModernHandshake(t, c, s, &modernOpts{wrapClient: rec})
	if cli.err != nil || srv.err != nil {
		t.Fatalf("handshake: client %v, server %v", cli.err, srv.err)
	}
	// The README's table: payload sizes, each frame adds 10 header bytes.
	want := map[string][]int{"s2c": {1560, 257, 33}, "c2s": {1153, 33}}
	got := map[string][]int{}
	for _, f := range s2c {
		got["s2c"] = append(got["s2c"], len(f))
	}
	for _, f := range c2s {
		got["c2s"] = append(got["c2s"], len(f))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("handshake payload sizes %v, want %v", got, want)
	}
	names := []msgType{modernMessage(s2c[0]), modernMessage(c2s[0]), modernMessage(s2c[1]), modernMessage(s2c[2]), modernMessage(c2s[1])}
	if fmt.Sprint(names) != "[ServerHello ClientHello ServerVerify ServerFinished ClientFinished]" {
		t.Errorf("message names %v", names)
	}
	if r, ok := modernClientRandom(c2s[0]); !ok || len(r) != modernRandomLen {
		t.Errorf("modernClientRandom(ClientHello) = %x, %v", r, ok)
	}
	if _, ok := modernClientRandom(s2c[0]); ok {
		t.Errorf("modernClientRandom accepted a ServerHello")
	}
	if isPublicKeyPEM(s2c[0]) || !isModernHello(s2c[0]) {
		t.Errorf("the first frame must tell the suites apart")
	}
}

// modernFrameTap records whole frames as the client writes and reads them.
// It assumes each Write is one frame (writeFrame and writeMsg make sure).
type modernFrameTap struct {
	net.Conn
	c2s, s2c *[][]byte
	mu       sync.Mutex
	in       []byte
}

func (f *modernFrameTap) Write(p []byte) (int, error) {
	f.mu.Lock()
	*f.c2s = append(*f.c2s, bytes.Clone(p[headerLen:]))
	f.mu.Unlock()
	return f.Conn.Write(p)
}

func (f *modernFrameTap) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	f.mu.Lock()
	f.in = append(f.in, p[:n]...)
	for len(f.in) >= headerLen {
		size, herr := parseFrameHeader(f.in[:headerLen])
		if herr != nil || len(f.in) < headerLen+size {
			break
		}
		*f.s2c = append(*f.s2c, bytes.Clone(f.in[headerLen:headerLen+size]))
		f.in = f.in[headerLen+size:]
	}
	f.mu.Unlock()
	return n, err
}

func TestModernServerKeyCheck(t *testing.T) {
	c, s := modernLoopback(t)
	defer c.Close()
	defer s.Close()
	var seen *rsa.PublicKey
	refused := errors.New("pinned key does not match")
	var wrote int
	count := func(nc net.Conn) net.Conn { return &modernCountWrites{Conn: nc, n: &wrote} }
	cli, srv := runModernHandshake(t, c, s, &modernOpts{wrapClient: count, check: func(pub *rsa.PublicKey) (string, error) {
		seen = pub
		return "", refused
	}})
	if !errors.Is(cli.err, refused) {
		t.Errorf("client error %v, want the check's error", cli.err)
	}
	if srv.err == nil {
		t.Errorf("server finished a handshake the client refused")
	}
	if seen == nil || !seen.Equal(&modernTestKey(t).PublicKey) {
		t.Errorf("check got %v, want the server's key", seen)
	}
	if wrote != 0 {
		t.Errorf("client wrote %d bytes before refusing the key, want 0", wrote)
	}
}

type modernCountWrites struct {
	net.Conn
	n *int
}

func (c *modernCountWrites) Write(p []byte) (int, error) {
	*c.n += len(p)
	return c.Conn.Write(p)
}

func TestModernClientSteps(t *testing.T) {
	c, s := modernLoopback(t)
	defer c.Close()
	defer s.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	done := make(chan error, 1)
	var lines []string
	go func() {
		_, err := serverHandshakeModern(s, &handshakeConfig{Key: modernTestKey(t), Log: func(l string) { lines = append(lines, l) }})
		done <- err
	}()
	br := bufio.NewReader(c)
	first, err := readFrame(br)
	if err != nil {
		t.Fatal(err)
	}
	var steps []handshakeStep
	_, err = clientHandshakeModern(frameRW{br, c}, first, &handshakeConfig{CheckKey: modernAcceptAnyKey, Step: func(st handshakeStep) { steps = append(steps, st) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(steps) != clientSteps {
		t.Fatalf("%d steps, want %d: %+v", len(steps), clientSteps, steps)
	}
	for i, st := range steps {
		if st.N != i+1 || st.Total != clientSteps || st.Title == "" || len(st.Results) == 0 {
			t.Errorf("step %d: %+v", i+1, st)
		}
	}
	if len(lines) < 5 {
		t.Errorf("server reported %d lines: %q", len(lines), lines)
	}
}

// modernFlipConn flips one bit of the byte at offset at of one direction of the
// client's stream, as an on-path attacker would.
type modernFlipConn struct {
	net.Conn
	dir  string // dirC2S: a byte the client writes; dirS2C: a byte it reads
	at   int
	mask byte
	n    int
}

func (f *modernFlipConn) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	if f.dir == dirS2C && f.at >= f.n && f.at < f.n+n {
		p[f.at-f.n] ^= f.mask
	}
	if f.dir == dirS2C {
		f.n += n
	}
	return n, err
}

func (f *modernFlipConn) Write(p []byte) (int, error) {
	if f.dir == dirC2S {
		if f.at >= f.n && f.at < f.n+len(p) {
			p = bytes.Clone(p)
			p[f.at-f.n] ^= f.mask
		}
		f.n += len(p)
	}
	return f.Conn.Write(p)
}

// Handshake bytes per direction, headers included.
const (
	s2cHandshakeBytes = headerLen + 1560 + headerLen + serverVerifyLen + headerLen + finishedMsgLen // 1880
	c2sHandshakeBytes = headerLen + clientHelloLen + headerLen + finishedMsgLen                     // 1206
)

// TestModernTamperEveryHandshakeByte changes every byte of every handshake
// message, headers included, one trial per byte (bit offset%8 is flipped),
// and checks that neither side gets a working session: the server never
// opens the username, the client never opens the welcome.
func TestModernTamperEveryHandshakeByte(t *testing.T) {
	type trial struct {
		dir string
		at  int
	}
	var trials []trial
	step := 1
	if testing.Short() {
		step = 7 // a dense sample: every 7th byte
	}
	for at := 0; at < s2cHandshakeBytes; at += step {
		trials = append(trials, trial{dirS2C, at})
	}
	for at := 0; at < c2sHandshakeBytes; at += step {
		trials = append(trials, trial{dirC2S, at})
	}
	// Control: the same harness without a flip completes.
	if srvOK, cliOK, _, _, _ := modernTamperTrial(t, "", 0); !srvOK || !cliOK {
		t.Fatalf("untampered session failed: server %v, client %v", srvOK, cliOK)
	}

	var mu sync.Mutex
	var failures []string
	work := make(chan trial)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tr := range work {
				srvOK, cliOK, srvErr, cliErr, hsErr := modernTamperTrial(t, tr.dir, tr.at)
				var why string
				switch {
				case srvOK || cliOK:
					why = fmt.Sprintf("server ok=%v (%v), client ok=%v (%v)", srvOK, srvErr, cliOK, cliErr)
				case hsErr == nil:
					why = "the receiving side finished its handshake"
				}
				if why != "" {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s byte %d: %s", tr.dir, tr.at, why))
					mu.Unlock()
				}
			}
		}()
	}
	for _, tr := range trials {
		work <- tr
	}
	close(work)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if len(failures) == 0 {
		t.Logf("%d single-byte changes, each refused by both sides", len(trials))
	}
}

// modernTamperTrial runs one handshake with one flipped bit, then the username
// and welcome exchange. It reports whether each side got through, and the
// handshake error of the side that received the changed byte (each side
// checks every byte it receives before its handshake returns).
func modernTamperTrial(t *testing.T, dir string, at int) (srvOK, cliOK bool, srvErr, cliErr, hsErr error) {
	c, s := modernLoopback(t)
	defer c.Close()
	defer s.Close()
	wrap := func(nc net.Conn) net.Conn { return &modernFlipConn{Conn: nc, dir: dir, at: at, mask: 1 << (at % 8)} }
	cli, srv := runModernHandshake(t, c, s, &modernOpts{wrapClient: wrap, deadline: 3 * time.Second})
	hsErr = cli.err
	if dir == dirC2S {
		hsErr = srv.err
	}
	if cli.err == nil {
		cli.err = cli.send("alice")
	}
	if srv.err == nil {
		var name string
		name, srv.err = srv.recv()
		if srv.err == nil && name != "alice" {
			srv.err = fmt.Errorf("server opened %q", name)
		}
		if srv.err == nil {
			srv.err = srv.send("welcome alice")
		}
	}
	if srv.err != nil {
		srv.conn.Close()
	}
	if cli.err == nil {
		var w string
		w, cli.err = cli.recv()
		if cli.err == nil && w != "welcome alice" {
			cli.err = fmt.Errorf("client opened %q", w)
		}
	}
	return srv.err == nil, cli.err == nil, srv.err, cli.err, hsErr
}

// TestModernSignatureBindsTranscript plays an attacker that holds a real
// server signature from another session and the real server's public key,
// but not its private key. It sends the real key with its own key shares
// (so it can compute every other message, Finished included), or replays
// the real ServerHello whole; the client must refuse the signature.
func TestModernSignatureBindsTranscript(t *testing.T) {
	c, s := modernLoopback(t)
	defer c.Close()
	defer s.Close()
	var c2s, s2c [][]byte
	cli, srv := runModernHandshake(t, c, s, &modernOpts{wrapClient: func(nc net.Conn) net.Conn { return &modernFrameTap{Conn: nc, c2s: &c2s, s2c: &s2c} }})
	if cli.err != nil || srv.err != nil {
		t.Fatalf("handshake: %v / %v", cli.err, srv.err)
	}
	realHello, err := parseServerHello(s2c[0])
	if err != nil {
		t.Fatal(err)
	}
	oldSig := s2c[1][1:]
	pinned := func(pub *rsa.PublicKey) (string, error) {
		if !pub.Equal(&modernTestKey(t).PublicKey) {
			return "", errors.New("not the pinned key")
		}
		return "", nil
	}

	ownShares := func() (*serverHelloMsg, *ecdh.PrivateKey, *mlkem.DecapsulationKey768) {
		x, _ := newX25519Key(rand.Reader)
		k, _ := mlkem.GenerateKey768()
		r := make([]byte, 32)
		rand.Read(r)
		return &serverHelloMsg{random: r, x25519: x.PublicKey().Bytes(), mlkemEK: k.EncapsulationKey().Bytes(), spki: realHello.spki}, x, k
	}
	for _, tc := range []string{"own shares", "replayed hello"} {
		t.Run(tc, func(t *testing.T) {
			c, s := modernLoopback(t)
			defer c.Close()
			defer s.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			s.SetDeadline(time.Now().Add(10 * time.Second))
			hello, x, k := ownShares()
			if tc == "replayed hello" {
				hello, x, k = realHello, nil, nil
			}
			done := make(chan error, 1)
			go func() { // the attacker's server
				tr := newTranscript(s)
				if err := tr.writeMsg(hello.marshal()); err != nil {
					done <- err
					return
				}
				msg, err := tr.readMsg(typeClientHello)
				if err != nil {
					done <- err
					return
				}
				ch, err := parseClientHello(msg)
				if err != nil {
					done <- err
					return
				}
				fin := make([]byte, finishedLen)
				if x != nil {
					kem, _ := k.Decapsulate(ch.mlkemCT)
					ecd, _ := x25519Agree(x, ch.x25519)
					sec, _ := deriveModernSecrets(hybridSecret(kem, ecd), tr.sum())
					tr.writeMsg((&serverVerifyMsg{signature: oldSig}).marshal())
					fin = finishedMAC(sec.serverFinished, tr.sum())
				} else {
					tr.writeMsg((&serverVerifyMsg{signature: oldSig}).marshal())
				}
				done <- tr.writeMsg((&finishedMsg{typ: typeServerFinished, verifyData: fin}).marshal())
			}()
			br := bufio.NewReader(c)
			first, err := readFrame(br)
			if err != nil {
				t.Fatal(err)
			}
			_, err = clientHandshakeModern(frameRW{br, c}, first, &handshakeConfig{CheckKey: pinned})
			if !errors.Is(err, alertBadSignature) {
				t.Errorf("client accepted an old signature: %v, want %v", err, alertBadSignature)
			}
			c.Close()
			<-done
		})
	}
}

func TestModernHandshakeErrors(t *testing.T) {
	priv := modernTestKey(t)
	// A well-formed ServerHello whose X25519 share is the all-zero point.
	spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	dk, _ := modernTestKEM()
	zero := &serverHelloMsg{random: make([]byte, 32), x25519: make([]byte, 32), mlkemEK: dk, spki: spki}
	_, err := clientHandshakeModern(&bytes.Buffer{}, zero.marshal(), &handshakeConfig{CheckKey: modernAcceptAnyKey})
	if !errors.Is(err, alertIllegalParameter) {
		t.Errorf("all-zero X25519 share: %v, want %v", err, alertIllegalParameter)
	}

	// A classic client's first message (an RSA-OAEP blob) is not a ClientHello.
	var out bytes.Buffer
	in := bytes.NewBuffer(appendFrame(nil, bytes.Repeat([]byte{0x5a}, rsaBlobSize)))
	_, err = serverHandshakeModern(struct {
		io.Reader
		io.Writer
	}{in, &out}, &handshakeConfig{Key: priv})
	if !errors.Is(err, alertUnexpectedMessage) {
		t.Errorf("classic blob: %v, want %v", err, alertUnexpectedMessage)
	}
	if want := "modern: unexpected message: got unknown message 0x5a while waiting for ClientHello"; err == nil || err.Error() != want {
		t.Errorf("error text %q, want %q", err, want)
	}

	// A frame longer than any handshake message is refused before allocation.
	in = bytes.NewBufferString(fmt.Sprintf("%010d", maxHandshakeMsgLen+1))
	_, err = serverHandshakeModern(struct {
		io.Reader
		io.Writer
	}{in, io.Discard}, &handshakeConfig{Key: priv})
	if !errors.Is(err, alertDecodeError) {
		t.Errorf("oversized frame: %v, want %v", err, alertDecodeError)
	}

	for _, a := range []alert{alertBadRecordMAC, alertBadSignature} {
		if s := a.Error(); s != map[alert]string{alertBadRecordMAC: "modern: bad record MAC", alertBadSignature: "modern: handshake signature invalid"}[a] {
			t.Errorf("alert text %q", s)
		}
	}
}

// modernTestKEM returns a fresh ML-KEM-768 encapsulation key's bytes.
func modernTestKEM() ([]byte, error) {
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		return nil, err
	}
	return dk.EncapsulationKey().Bytes(), nil
}

// ---- Records ----------------------------------------------------------------------

// TestModernRecordBitFlips flips every bit of one record frame, header
// included, each in its own session: the server must refuse the frame and
// return no text.
func TestModernRecordBitFlips(t *testing.T) {
	const text = "hello, modern world"
	frameLen := headerLen + len(text) + gcmTagLen
	bits := frameLen * 8
	var mu sync.Mutex
	var failures []string
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bit := range work {
				if err := modernBitFlipTrial(t, text, bit); err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("bit %d: %v", bit, err))
					mu.Unlock()
				}
			}
		}()
	}
	for bit := 0; bit < bits; bit++ {
		work <- bit
	}
	close(work)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if len(failures) == 0 {
		t.Logf("%d single-bit flips of a %d-byte record frame, each refused", bits, frameLen)
	}
}

func modernBitFlipTrial(t *testing.T, text string, bit int) error {
	c, s := modernLoopback(t)
	defer c.Close()
	defer s.Close()
	cli, srv := runModernHandshake(t, c, s, nil)
	if cli.err != nil || srv.err != nil {
		return fmt.Errorf("handshake: %v / %v", cli.err, srv.err)
	}
	payload, err := cli.rc.seal([]byte(text))
	if err != nil {
		return err
	}
	frame := appendFrame(nil, payload)
	frame[bit/8] ^= 1 << (bit % 8)
	if _, err := c.Write(frame); err != nil {
		return err
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := srv.recv()
	if err == nil {
		return fmt.Errorf("server opened %q", got)
	}
	if got != "" {
		return fmt.Errorf("server returned %q with %v", got, err)
	}
	return nil
}

// modernFrameRelay sits between a client and a server on modernLoopback and forwards
// frames; after the handshake, scenario decides what each record becomes.
type modernFrameRelay struct {
	scenario func(dir string, i int, frame []byte) (forward, reflect [][]byte)
	wmu      [2]sync.Mutex // writes to client (0) and server (1)
	wg       sync.WaitGroup
}

// modernRelayedSession connects a client and a server through a modernFrameRelay.
func modernRelayedSession(t *testing.T, scenario func(dir string, i int, frame []byte) (forward, reflect [][]byte)) (cli, srv *modernEnd) {
	cc, rc := modernLoopback(t) // client ↔ relay
	rs, sc := modernLoopback(t) // relay ↔ server
	r := &modernFrameRelay{scenario: scenario}
	conns := [2]net.Conn{rc, rs}
	t.Cleanup(func() {
		for _, c := range []net.Conn{cc, rc, rs, sc} {
			c.Close()
		}
		r.wg.Wait()
	})
	pump := func(from, to int, dir string, handshakeFrames int) {
		defer r.wg.Done()
		br := bufio.NewReader(conns[from])
		for n := 0; ; n++ {
			f, err := readFrame(br)
			if err != nil {
				conns[to].Close()
				return
			}
			fwd, refl := [][]byte{f}, [][]byte(nil)
			if n >= handshakeFrames {
				fwd, refl = r.scenario(dir, n-handshakeFrames, f)
			}
			r.write(conns, to, fwd)
			r.write(conns, from, refl)
		}
	}
	r.wg.Add(2)
	go pump(0, 1, dirC2S, 2)
	go pump(1, 0, dirS2C, 3)
	cli, srv = runModernHandshake(t, cc, sc, nil)
	if cli.err != nil || srv.err != nil {
		t.Fatalf("handshake through the relay: client %v, server %v", cli.err, srv.err)
	}
	cc.SetDeadline(time.Now().Add(5 * time.Second))
	sc.SetDeadline(time.Now().Add(5 * time.Second))
	return cli, srv
}

func (r *modernFrameRelay) write(conns [2]net.Conn, to int, frames [][]byte) {
	r.wmu[to].Lock()
	defer r.wmu[to].Unlock()
	for _, f := range frames {
		writeFrame(conns[to], f)
	}
}

func TestModernRecordReplayReorderDropReflect(t *testing.T) {
	var held []byte
	cases := []struct {
		name     string
		scenario func(dir string, i int, f []byte) (fwd, refl [][]byte)
		// deliveredFirst is how many client records the server opens before the attack bites.
		deliveredFirst int
		reflected      bool
	}{
		{"replay", func(dir string, i int, f []byte) ([][]byte, [][]byte) {
			if i == 0 {
				return [][]byte{f, f}, nil
			}
			return [][]byte{f}, nil
		}, 1, false},
		{"reorder", func(dir string, i int, f []byte) ([][]byte, [][]byte) {
			if i == 0 {
				held = f
				return nil, nil
			}
			if i == 1 {
				return [][]byte{f, held}, nil
			}
			return [][]byte{f}, nil
		}, 0, false},
		{"drop", func(dir string, i int, f []byte) ([][]byte, [][]byte) {
			if i == 0 {
				return nil, nil
			}
			return [][]byte{f}, nil
		}, 0, false},
		{"reflect", func(dir string, i int, f []byte) ([][]byte, [][]byte) {
			if dir == dirC2S && i == 0 {
				return nil, [][]byte{f}
			}
			return [][]byte{f}, nil
		}, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv := modernRelayedSession(t, tc.scenario)
			for _, m := range []string{"one", "two", "three"} {
				if err := cli.send(m); err != nil {
					t.Fatal(err)
				}
			}
			if tc.reflected {
				got, err := cli.recv()
				if err == nil {
					t.Fatalf("client opened its own reflected record: %q", got)
				}
				if !errors.Is(err, alertBadRecordMAC) {
					t.Errorf("reflected record: %v", err)
				}
				return
			}
			for i := 0; i < tc.deliveredFirst; i++ {
				if got, err := srv.recv(); err != nil {
					t.Fatalf("record %d: %v", i, err)
				} else if got != []string{"one", "two", "three"}[i] {
					t.Fatalf("record %d: %q", i, got)
				}
			}
			got, err := srv.recv()
			if err == nil {
				t.Fatalf("server opened %q after a %s", got, tc.name)
			}
			if !errors.Is(err, alertBadRecordMAC) {
				t.Errorf("error %v, want %v", err, alertBadRecordMAC)
			}
			// The direction stays broken: the genuine records after the
			// attack do not open either (after a replay, the next one is
			// exactly the record the server was waiting for).
			if got, err := srv.recv(); err == nil {
				t.Errorf("server opened %q after a failed record", got)
			}
		})
	}
	t.Run("reflect s2c", func(t *testing.T) {
		cli, srv := modernRelayedSession(t, func(dir string, i int, f []byte) ([][]byte, [][]byte) {
			if dir == dirS2C {
				return nil, [][]byte{f}
			}
			return [][]byte{f}, nil
		})
		_ = cli
		if err := srv.send("welcome"); err != nil {
			t.Fatal(err)
		}
		if got, err := srv.recv(); err == nil {
			t.Fatalf("server opened its own reflected record: %q", got)
		}
	})
}

func TestModernSequenceExhaustion(t *testing.T) {
	cli, srv := newModernSession(t)
	out := cli.rc.(*modernCipher).out
	out.seq = math.MaxUint64 - 1
	srv.rc.(*modernCipher).in.seq = math.MaxUint64 - 1
	if err := cli.send("last"); err != nil {
		t.Fatalf("record 2^64-2: %v", err)
	}
	if got, err := srv.recv(); err != nil || got != "last" {
		t.Fatalf("record 2^64-2 opened as %q, %v", got, err)
	}
	if _, err := cli.rc.seal([]byte("one too many")); !errors.Is(err, alertSequenceExhausted) {
		t.Errorf("seal at 2^64-1: %v, want %v", err, alertSequenceExhausted)
	}
	if _, err := srv.rc.open(make([]byte, 32)); !errors.Is(err, alertSequenceExhausted) {
		t.Errorf("open at 2^64-1: %v, want %v", err, alertSequenceExhausted)
	}
	if _, err := cli.rc.seal([]byte("x")); err == nil {
		t.Errorf("sealing direction recovered after exhaustion")
	}
}

func TestModernRecordLimits(t *testing.T) {
	hc, err := newHalfConn(make([]byte, 32), make([]byte, 12))
	if err != nil {
		t.Fatal(err)
	}
	// n-1, n, n+1 around the largest text a frame can carry.
	for _, n := range []int{maxModernTextLen - 1, maxModernTextLen} {
		p, err := hc.encrypt(make([]byte, n))
		if err != nil || len(p) != n+gcmTagLen || len(p) > maxFrameLen {
			t.Fatalf("text of %d bytes: payload %d, %v", n, len(p), err)
		}
	}
	if _, err := hc.encrypt(make([]byte, maxModernTextLen+1)); !errors.Is(err, alertRecordOverflow) {
		t.Errorf("text of %d bytes: %v, want %v", maxModernTextLen+1, err, alertRecordOverflow)
	}
	// Every short or empty payload is the same error.
	op, _ := newHalfConn(make([]byte, 32), make([]byte, 12))
	for _, n := range []int{0, 1, gcmTagLen - 1} {
		op.err = nil
		if _, err := op.decrypt(make([]byte, n)); err != alertBadRecordMAC {
			t.Errorf("payload of %d bytes: %v", n, err)
		}
	}
	// Invalid UTF-8 under a valid tag is the same error too.
	se, _ := newHalfConn(make([]byte, 32), make([]byte, 12))
	op2, _ := newHalfConn(make([]byte, 32), make([]byte, 12))
	p, _ := se.encrypt([]byte{0xff, 0xfe})
	if _, err := op2.decrypt(p); err != alertBadRecordMAC {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

func TestModernSessionsNeverShareKeys(t *testing.T) {
	const n = 6
	var clis, srvs []*modernEnd
	for i := 0; i < n; i++ {
		c, s := newModernSession(t)
		clis, srvs = append(clis, c), append(srvs, s)
	}
	for i := 0; i < n; i++ {
		c2s, err := clis[i].rc.seal([]byte("from client"))
		if err != nil {
			t.Fatal(err)
		}
		s2c, err := srvs[i].rc.seal([]byte("from server"))
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < n; j++ {
			_, errS := srvs[j].rc.(*modernCipher).openRecord(0, c2s)
			_, errC := clis[j].rc.(*modernCipher).openRecord(0, s2c)
			if (i == j) != (errS == nil) || (i == j) != (errC == nil) {
				t.Errorf("session %d's records vs session %d's keys: c2s %v, s2c %v", i, j, errS, errC)
			}
		}
		// Each direction has its own key: a record does not open as the other direction's.
		if _, err := clis[i].rc.(*modernCipher).openRecord(0, c2s); err == nil {
			t.Errorf("session %d: c2s record opens with the s2c key", i)
		}
	}
}

// TestModernCaptureWithServerKey records a session's bytes and shows the
// server's private key is no help: no frame is an RSA ciphertext, and the
// text is only recoverable with the session's traffic secret, which comes
// from ephemeral shares that never leave the handshake.
func TestModernCaptureWithServerKey(t *testing.T) {
	priv := modernTestKey(t)
	c, s := modernLoopback(t)
	defer c.Close()
	defer s.Close()
	var c2s, s2c [][]byte
	o := &modernOpts{wrapClient: func(nc net.Conn) net.Conn { return &modernFrameTap{Conn: nc, c2s: &c2s, s2c: &s2c} }}
	cli, srv := runModernHandshake(t, c, s, o)
	if cli.err != nil || srv.err != nil {
		t.Fatalf("handshake: %v / %v", cli.err, srv.err)
	}
	const secret = "the exam answers are 42"
	if err := cli.send(secret); err != nil {
		t.Fatal(err)
	}
	if got, err := srv.recv(); err != nil || got != secret {
		t.Fatalf("server got %q, %v", got, err)
	}
	if err := srv.send("noted: " + secret); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.recv(); err != nil {
		t.Fatal(err)
	}

	all := append(append([][]byte{}, c2s...), s2c...)
	for i, f := range all {
		if bytes.Contains(f, []byte("exam answers")) {
			t.Errorf("frame %d carries the plaintext", i)
		}
		if _, err := classicUnwrapKey(priv, f); err == nil {
			t.Errorf("frame %d RSA-OAEP-decrypts with the server key", i)
		}
		if _, err := rsa.DecryptPKCS1v15(nil, priv, f); err == nil {
			t.Errorf("frame %d RSA-PKCS1-decrypts with the server key", i)
		}
	}
	// The server key's only role in the capture: its signature verifies.
	h := sha256.New()
	for _, f := range [][]byte{s2c[0], c2s[0]} {
		h.Write(appendFrame(nil, f))
	}
	if err := modernVerify(&priv.PublicKey, signedContent(h.Sum(nil)), s2c[1][1:]); err != nil {
		t.Errorf("the ServerVerify signature does not verify from the capture: %v", err)
	}
	// With the keylog's traffic secret, the same capture decrypts.
	c2sOpen, s2cOpen, err := newModernReplayOpeners(o.server.secrets.traffic)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c2sOpen.open(c2s[2]); err != nil || string(got) != secret {
		t.Errorf("keylog opener: %q, %v", got, err)
	}
	if got, err := s2cOpen.open(s2c[3]); err != nil || string(got) != "noted: "+secret {
		t.Errorf("keylog opener s2c: %q, %v", got, err)
	}
	// A key schedule fed with everything the server key holder has (the
	// public transcript and the RSA private key itself) opens nothing.
	guess, _ := deriveModernSecrets(append(priv.D.Bytes(), priv.Primes[0].Bytes()...), h.Sum(nil))
	g, _, _ := newModernReplayOpeners(guess.traffic)
	if _, err := g.open(c2s[2]); err == nil {
		t.Errorf("a key derived from the server key opened the record")
	}
	if _, err := c2sOpen.open(c2s[2]); err == nil {
		t.Errorf("the replay opener accepted a record twice")
	}
}

// ---- Wycheproof ----------------------------------------------------------------

type wpModernCase struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Result  string   `json:"result"`
	// aes_gcm
	Key, IV, AAD, Msg, CT, Tag string
	// x25519
	Public, Private, Shared string
	// hkdf
	IKM, Salt, Info, OKM string
	Size                 int
	// rsa-pss
	Sig string
}

type wpModernGroup struct {
	KeySize      int            `json:"keySize"`
	IVSize       int            `json:"ivSize"`
	TagSize      int            `json:"tagSize"`
	SLen         int            `json:"sLen"`
	SHA          string         `json:"sha"`
	MGFSha       string         `json:"mgfSha"`
	PublicKeyDer string         `json:"publicKeyDer"`
	Tests        []wpModernCase `json:"tests"`
}

func loadWycheproofModern(t *testing.T, name string) []wpModernGroup {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(wycheproofDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		TestGroups []wpModernGroup `json:"testGroups"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f.TestGroups
}

// TestWycheproofAESGCM runs the 256-bit key, 96-bit IV, 128-bit tag groups
// through halfConn.sealAt and openAt: the IV is the record IV and the
// sequence number 0, so the nonce is the vector's IV.
func TestWycheproofAESGCM(t *testing.T) {
	var valid, invalid int
	for _, g := range loadWycheproofModern(t, "aes_gcm_test.json") {
		if g.KeySize != 256 || g.IVSize != 96 || g.TagSize != 128 {
			continue
		}
		for _, tc := range g.Tests {
			hc, err := newHalfConn(unhex(t, tc.Key), unhex(t, tc.IV))
			if err != nil {
				t.Fatalf("tcId %d: %v", tc.TcID, err)
			}
			aad, msg := unhex(t, tc.AAD), unhex(t, tc.Msg)
			sealed := append(unhex(t, tc.CT), unhex(t, tc.Tag)...)
			got, err := hc.openAt(0, aad, sealed)
			switch tc.Result {
			case "valid":
				valid++
				if err != nil || !bytes.Equal(got, msg) {
					t.Errorf("tcId %d (%s): open = %x, %v", tc.TcID, tc.Comment, got, err)
				}
				if s := hc.sealAt(0, aad, msg); !bytes.Equal(s, sealed) {
					t.Errorf("tcId %d (%s): seal = %x, want %x", tc.TcID, tc.Comment, s, sealed)
				}
			case "invalid":
				invalid++
				if err != alertBadRecordMAC || got != nil {
					t.Errorf("tcId %d (%s) %v: open = %x, %v; want %v", tc.TcID, tc.Comment, tc.Flags, got, err, alertBadRecordMAC)
				}
			}
		}
	}
	if valid != 39 || invalid != 27 {
		t.Errorf("ran %d valid and %d invalid cases, want 39 and 27", valid, invalid)
	}
}

// TestWycheproofX25519 runs every case through newX25519Key's key type and
// x25519Agree. Cases whose shared secret is all zeros must be refused.
func TestWycheproofX25519(t *testing.T) {
	var zeroRefused, acceptableOK int
	for _, g := range loadWycheproofModern(t, "x25519_test.json") {
		for _, tc := range g.Tests {
			priv, err := ecdh.X25519().NewPrivateKey(unhex(t, tc.Private))
			if err != nil {
				t.Fatalf("tcId %d: %v", tc.TcID, err)
			}
			want := unhex(t, tc.Shared)
			got, err := x25519Agree(priv, unhex(t, tc.Public))
			zero := bytes.Equal(want, make([]byte, 32))
			switch {
			case zero:
				if err == nil {
					t.Errorf("tcId %d (%s): all-zero shared secret accepted", tc.TcID, tc.Comment)
				} else if !errors.Is(err, alertIllegalParameter) {
					t.Errorf("tcId %d: error %v", tc.TcID, err)
				}
				zeroRefused++
			case tc.Result == "valid":
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("tcId %d (%s): %x, %v; want %x", tc.TcID, tc.Comment, got, err, want)
				}
			default: // acceptable: either outcome, but a result must be right
				if err == nil {
					if !bytes.Equal(got, want) {
						t.Errorf("tcId %d (%s): %x, want %x", tc.TcID, tc.Comment, got, want)
					}
					acceptableOK++
				}
			}
		}
	}
	if zeroRefused != 31 {
		t.Errorf("%d all-zero cases refused, want 31", zeroRefused)
	}
	t.Logf("%d all-zero shared secrets refused; %d acceptable cases computed", zeroRefused, acceptableOK)
}

// TestWycheproofHKDF runs the vectors through hkdfExtract and hkdfExpand,
// the functions expandLabel uses.
func TestWycheproofHKDF(t *testing.T) {
	var n int
	for _, g := range loadWycheproofModern(t, "hkdf_sha256_test.json") {
		for _, tc := range g.Tests {
			n++
			prk, err := hkdfExtract(unhex(t, tc.IKM), unhex(t, tc.Salt))
			if err == nil {
				var okm []byte
				okm, err = hkdfExpand(prk, unhex(t, tc.Info), tc.Size)
				if tc.Result == "valid" && (err != nil || !bytes.Equal(okm, unhex(t, tc.OKM))) {
					t.Errorf("tcId %d (%s): %x, %v", tc.TcID, tc.Comment, okm, err)
				}
			}
			if tc.Result == "invalid" && err == nil {
				t.Errorf("tcId %d (%s): size %d accepted", tc.TcID, tc.Comment, tc.Size)
			}
		}
	}
	if n != 86 {
		t.Errorf("ran %d cases, want 86", n)
	}
}

// TestWycheproofRSAPSS runs the vectors through modernVerify, the client's
// check of the ServerVerify signature, with keys parsed by parsePublicKeyDER.
func TestWycheproofRSAPSS(t *testing.T) {
	var valid, invalid int
	for _, g := range loadWycheproofModern(t, "rsa_pss_2048_sha256_mgf1_32_test.json") {
		if g.SHA != "SHA-256" || g.MGFSha != "SHA-256" || g.SLen != pssSaltLen {
			t.Fatalf("unexpected group parameters %s/%s/%d", g.SHA, g.MGFSha, g.SLen)
		}
		pub, err := parsePublicKeyDER(unhex(t, g.PublicKeyDer))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range g.Tests {
			err := modernVerify(pub, unhex(t, tc.Msg), unhex(t, tc.Sig))
			switch tc.Result {
			case "valid":
				valid++
				if err != nil {
					t.Errorf("tcId %d (%s): %v", tc.TcID, tc.Comment, err)
				}
			case "invalid":
				invalid++
				if err != alertBadSignature {
					t.Errorf("tcId %d (%s) %v: %v, want %v", tc.TcID, tc.Comment, tc.Flags, err, alertBadSignature)
				}
			}
		}
	}
	if valid != 63 || invalid != 45 {
		t.Errorf("ran %d valid and %d invalid, want 63 and 45", valid, invalid)
	}
	// And modernSign's signatures verify through the same function.
	priv := modernTestKey(t)
	sig, err := modernSign(rand.Reader, priv, []byte("transcript"))
	if err != nil || modernVerify(&priv.PublicKey, []byte("transcript"), sig) != nil {
		t.Errorf("modernSign/modernVerify round trip: %v", err)
	}
}

// ---- Fuzz -----------------------------------------------------------------------

// modernSampleMessages are real handshake payloads for the fuzz seeds.
var modernSampleMessages = sync.OnceValue(func() map[msgType][]byte {
	dk, _ := modernTestKEM()
	spki, _ := x509.MarshalPKIXPublicKey(&modernFuzzKey().PublicKey)
	r := bytes.Repeat([]byte{7}, 32)
	return map[msgType][]byte{
		typeServerHello:    (&serverHelloMsg{random: r, x25519: r, mlkemEK: dk, spki: spki}).marshal(),
		typeClientHello:    (&clientHelloMsg{random: r, x25519: r, mlkemCT: make([]byte, mlkemCTLen)}).marshal(),
		typeServerVerify:   (&serverVerifyMsg{signature: make([]byte, rsaSigLen)}).marshal(),
		typeServerFinished: (&finishedMsg{typ: typeServerFinished, verifyData: r}).marshal(),
		typeClientFinished: (&finishedMsg{typ: typeClientFinished, verifyData: r}).marshal(),
	}
})

var modernFuzzKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		panic(err)
	}
	return k
})

func FuzzParseServerHello(f *testing.F) {
	f.Add(modernSampleMessages()[typeServerHello])
	f.Add([]byte(modernMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseServerHello(b)
		if err != nil {
			return
		}
		if out := m.marshal(); !bytes.Equal(out, b) {
			t.Fatalf("parse then marshal changed the message")
		}
	})
}

func FuzzParseClientHello(f *testing.F) {
	f.Add(modernSampleMessages()[typeClientHello])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseClientHello(b)
		if err != nil {
			return
		}
		if out := m.marshal(); !bytes.Equal(out, b) {
			t.Fatalf("parse then marshal changed the message")
		}
		if r, ok := modernClientRandom(b); !ok || !bytes.Equal(r, b[1:33]) {
			t.Fatalf("modernClientRandom disagrees with the parser")
		}
	})
}

func FuzzParseServerVerify(f *testing.F) {
	f.Add(modernSampleMessages()[typeServerVerify])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseServerVerify(b)
		if err != nil {
			return
		}
		if out := m.marshal(); !bytes.Equal(out, b) {
			t.Fatalf("parse then marshal changed the message")
		}
	})
}

func FuzzParseFinished(f *testing.F) {
	f.Add(modernSampleMessages()[typeServerFinished])
	f.Add(modernSampleMessages()[typeClientFinished])
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, typ := range []msgType{typeServerFinished, typeClientFinished} {
			m, err := parseFinished(b, typ)
			if err != nil {
				continue
			}
			if out := m.marshal(); !bytes.Equal(out, b) {
				t.Fatalf("parse then marshal changed the message")
			}
		}
	})
}

// FuzzClientHandshake feeds a fuzzed first frame and server stream to the
// client: it must fail cleanly, never panic, never finish.
func FuzzClientHandshake(f *testing.F) {
	f.Add(modernSampleMessages()[typeServerHello], appendFrame(nil, modernSampleMessages()[typeServerVerify]))
	f.Add([]byte(modernMagic), []byte("0000000033"))
	f.Fuzz(func(t *testing.T, first, stream []byte) {
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(stream), io.Discard}
		if _, err := clientHandshakeModern(rw, first, &handshakeConfig{CheckKey: modernAcceptAnyKey}); err == nil {
			t.Fatalf("handshake finished against a fuzzed server")
		}
	})
}

// FuzzServerHandshake feeds a fuzzed client stream to the server.
func FuzzServerHandshake(f *testing.F) {
	f.Add(appendFrame(nil, modernSampleMessages()[typeClientHello]))
	f.Add(append(appendFrame(nil, modernSampleMessages()[typeClientHello]), appendFrame(nil, modernSampleMessages()[typeClientFinished])...))
	f.Add([]byte("0000099999"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(stream), io.Discard}
		if _, err := serverHandshakeModern(rw, &handshakeConfig{Key: modernFuzzKey()}); err == nil {
			t.Fatalf("handshake finished against a fuzzed client")
		}
	})
}

// FuzzModernOpen opens fuzzed payloads as record seq under a fixed key.
// Whatever opens must be exactly what sealing the text gives (the fuzzer
// cannot forge a tag); everything else is the one error with no text.
func FuzzModernOpen(f *testing.F) {
	key, iv := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 12)
	se, _ := newHalfConn(key, iv)
	for _, s := range []string{"", "hi", "hello, modern world"} {
		p, _ := se.encrypt([]byte(s))
		f.Add(p, uint8(se.seq-1))
	}
	f.Fuzz(func(t *testing.T, payload []byte, seq uint8) {
		op, _ := newHalfConn(key, iv)
		op.seq = uint64(seq)
		text, err := op.decrypt(payload)
		if err != nil {
			if text != nil || err != alertBadRecordMAC {
				t.Fatalf("failed open returned %q, %v", text, err)
			}
			if _, err2 := op.decrypt(payload); err2 != err {
				t.Fatalf("direction recovered after a failure")
			}
			return
		}
		ad := recordHeader(len(payload))
		if again := op.sealAt(uint64(seq), ad[:], text); !bytes.Equal(again, payload) {
			t.Fatalf("opened a payload that sealing does not produce")
		}
	})
}

// ---- Benchmarks --------------------------------------------------------------------

// BenchmarkModernHandshake is BenchmarkClassicHandshake with the modern
// suite.
func BenchmarkModernHandshake(b *testing.B) {
	benchmarkHandshake(b, modernTestKey(b), suiteModern)
}

// BenchmarkModernSealOpen seals and opens one record per op.
// (BenchmarkSealOpen in bench_test.go can run the same as modern/64B and
// modern/4KiB through benchmarkModernSealOpen.)
func BenchmarkModernSealOpen(b *testing.B) {
	b.Run("64B", func(b *testing.B) { benchmarkModernSealOpen(b, 64) })
	b.Run("4KiB", func(b *testing.B) { benchmarkModernSealOpen(b, 4096) })
}

func benchmarkModernSealOpen(b *testing.B, n int) {
	key, iv := make([]byte, gcmKeyLen), make([]byte, gcmNonceLen)
	rand.Read(key)
	se, _ := newHalfConn(key, iv)
	op, _ := newHalfConn(key, iv)
	text := bytes.Repeat([]byte("a"), n)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		p, err := se.encrypt(text)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := op.decrypt(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshakeServerCost measures what one handshake costs the
// server, in each suite, with a client that does no cryptography: it
// replays a fixed key blob (classic), or sends fixed shares and a zero
// Finished (modern; the server does all of its work, then refuses the
// Finished). Handshakes per second that a server can take are 1/ns·op.
func BenchmarkHandshakeServerCost(b *testing.B) {
	priv := modernTestKey(b)
	b.Run("classic", func(b *testing.B) {
		blob, err := classicWrapKey(rand.Reader, &priv.PublicKey, make([]byte, aesKeySize))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			c, s := net.Pipe()
			done := make(chan error, 1)
			go func() {
				_, err := classicServerHandshake(s, &handshakeConfig{Key: priv})
				done <- err
			}()
			br := bufio.NewReader(c)
			readFrame(br)
			writeFrame(c, blob)
			readFrame(br)
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			c.Close()
			s.Close()
		}
	})
	b.Run("modern", func(b *testing.B) {
		x, _ := newX25519Key(rand.Reader)
		ct := make([]byte, mlkemCTLen)
		rand.Read(ct)
		hello := appendFrame(nil, (&clientHelloMsg{random: make([]byte, modernRandomLen), x25519: x.PublicKey().Bytes(), mlkemCT: ct}).marshal())
		fin := appendFrame(nil, (&finishedMsg{typ: typeClientFinished, verifyData: make([]byte, finishedLen)}).marshal())
		b.ReportAllocs()
		for b.Loop() {
			c, s := net.Pipe()
			done := make(chan error, 1)
			go func() {
				_, err := serverHandshakeModern(s, &handshakeConfig{Key: priv})
				done <- err
			}()
			br := bufio.NewReader(c)
			readFrame(br)
			c.Write(hello)
			readFrame(br)
			readFrame(br)
			c.Write(fin)
			if err := <-done; !errors.Is(err, alertBadFinished) {
				b.Fatalf("server: %v, want it to get as far as the Finished", err)
			}
			c.Close()
			s.Close()
		}
	})
}
