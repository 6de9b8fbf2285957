// Tests of the modern suite's handshake (modern_handshake.go): message
// sizes, the server key check, the client's steps, a tampered byte anywhere,
// the signature over the transcript, handshake errors, bad client shares
// refused before any signature, and the bound on concurrent signatures. The helpers here
// run a handshake over loopback for the other modern tests too.

package main

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// modernTestKey is the shared test RSA key (helpers_test.go's testRSAKey).
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
		hs := &serverHandshakeState{t: newTranscript(frameRW{srv.br, sconn}), priv: priv, rand: rand.Reader, report: func(string) {}, limit: func(f func()) { f() }}
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

// TestModernBadShareGetsNoSignature sends a modern server ClientHellos
// with a bad share over loopback: X25519 shares that give an all-zero
// secret (zero, one and a point of order 8), and ML-KEM-768 ciphertexts one
// byte short and one byte long. The server checks the shares before it
// signs: it closes the connection having sent nothing after its
// ServerHello (no ServerVerify), and logs why.
func TestModernBadShareGetsNoSignature(t *testing.T) {
	ts := startTestServer(t, serverConfig{Suite: suiteModern})
	order8 := []byte{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00}
	one := make([]byte, 32)
	one[0] = 1
	for _, tc := range []struct {
		name       string
		x25519     []byte
		ctLen      int
		wantLogged string
	}{
		{"all-zero X25519 share", make([]byte, 32), mlkemCTLen, "illegal parameter: X25519 share gives an all-zero secret"},
		{"X25519 share 1", one, mlkemCTLen, "illegal parameter: X25519 share gives an all-zero secret"},
		{"X25519 share of order 8", order8, mlkemCTLen, "illegal parameter: X25519 share gives an all-zero secret"},
		{"ML-KEM-768 ciphertext 1087 bytes", nil, mlkemCTLen - 1, "error decoding message: ClientHello: 1152 bytes, want 1153"},
		{"ML-KEM-768 ciphertext 1089 bytes", nil, mlkemCTLen + 1, "error decoding message: ClientHello: 1154 bytes, want 1153"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(conn)
			first, err := readFrame(br)
			if err != nil {
				t.Fatal(err)
			}
			hello, err := parseServerHello(first)
			if err != nil {
				t.Fatal(err)
			}
			ek, err := mlkem.NewEncapsulationKey768(hello.mlkemEK)
			if err != nil {
				t.Fatal(err)
			}
			_, ct := ek.Encapsulate()
			ct = append(ct, 0x42)[:tc.ctLen]
			share := tc.x25519
			if share == nil {
				key, _ := ecdh.X25519().GenerateKey(rand.Reader)
				share = key.PublicKey().Bytes()
			}
			ch := &clientHelloMsg{random: make([]byte, modernRandomLen), x25519: share, mlkemCT: ct}
			if err := writeFrame(conn, ch.marshal()); err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatalf("reading to the close: %v (got %d bytes)", err, len(rest))
			}
			if len(rest) != 0 {
				t.Errorf("the server sent %d bytes after its ServerHello (%x...), want none: no ServerVerify", len(rest), rest[:min(len(rest), 11)])
			}
			ts.logged(t, evRefused, conn.LocalAddr().String()+": handshake: modern: "+tc.wantLogged)
		})
	}
}

// TestModernEstablishKeysChecksCiphertext: the server's key derivation
// refuses an ML-KEM-768 ciphertext of the wrong length with crypto/mlkem's
// own check, whatever parsed it.
func TestModernEstablishKeysChecksCiphertext(t *testing.T) {
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		t.Fatal(err)
	}
	ecdhKey, _ := ecdh.X25519().GenerateKey(rand.Reader)
	peer, _ := ecdh.X25519().GenerateKey(rand.Reader)
	for _, n := range []int{0, mlkemCTLen - 1, mlkemCTLen + 1} {
		hs := &serverHandshakeState{kemKey: dk, ecdhKey: ecdhKey, report: func(string) {},
			client: &clientHelloMsg{random: make([]byte, 32), x25519: peer.PublicKey().Bytes(), mlkemCT: make([]byte, n)}}
		if err := hs.establishKeys(); !errors.Is(err, alertIllegalParameter) {
			t.Errorf("%d-byte ciphertext: %v, want %v", n, err, alertIllegalParameter)
		}
	}
}

// TestModernSignaturesBounded: the modern server's RSA-PSS signatures run
// under the same bound as classic decryptions (one per core, server.go's
// withRSASlot). With every slot taken, a modern handshake waits before its
// ServerVerify; once a slot is free, it completes.
func TestModernSignaturesBounded(t *testing.T) {
	ts := startTestServer(t, serverConfig{Suite: suiteModern})
	for range cap(ts.rsaSlots) {
		ts.rsaSlots <- struct{}{}
	}
	conn, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan error, 1)
	go func() {
		cs, err := clientHandshake(conn, clientConfig{Name: "alice", Addr: ts.addr, Insecure: true, Timeout: 10 * time.Second})
		if err == nil {
			cs.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("handshake finished with every RSA slot taken: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	<-ts.rsaSlots
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("handshake after a slot was freed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handshake did not finish after a slot was freed")
	}
	for range cap(ts.rsaSlots) - 1 {
		<-ts.rsaSlots
	}
}
