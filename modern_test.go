// Tests of the modern suite's records and keys (modern.go): every bit flip
// refused, replayed, reordered, dropped and reflected records, sequence
// exhaustion, record limits, fresh keys per session, and a capture that the
// server's private key cannot open.

package main

import (
	"bufio"
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"testing"
	"time"
)

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
