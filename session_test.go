// Tests of the client session (session.go): the server key pinned on first
// use and checked after, -fingerprint and -insecure, a downgrade from a
// pinned modern server refused (with -fingerprint too, through a relay), a
// classic pin upgraded by a modern session, and two first contacts at once.

package main

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPinning(t *testing.T) {
	dir := t.TempDir()
	known := filepath.Join(dir, "known_servers")
	ts := startTestServer(t, serverConfig{})
	var notes []string
	step := func(s handshakeStep) { notes = append(notes, s.Results...) }

	// First use: pinned.
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "a", KnownServers: known, Step: step}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(known)
	fp := fingerprint(&testRSAKey(t).PublicKey)
	if want := ts.addr + " classic " + fp + "\n"; string(data) != want {
		t.Fatalf("known_servers = %q, want %q", data, want)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "first seen now") {
		t.Errorf("notes: %q", notes)
	}
	// Second use: matches, nothing appended.
	notes = nil
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "b", KnownServers: known, Step: step}); err != nil {
		t.Fatal(err)
	}
	if d, _ := os.ReadFile(known); string(d) != string(data) || !strings.Contains(strings.Join(notes, "\n"), "matches the pin") {
		t.Errorf("second use: file %q, notes %q", d, notes)
	}

	// The same address with another key: refused before the name is sent.
	other, err := newServer(serverConfig{Key: otherRSAKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	ts.Shutdown()
	ln, err := net.Listen("tcp", ts.addr)
	if err != nil {
		t.Skipf("cannot reuse %s: %v", ts.addr, err)
	}
	go other.Serve(ln)
	defer other.Shutdown()
	_, err = dialTest(t, ts.addr, clientConfig{Name: "c", KnownServers: known})
	var km *keyMismatchError
	if !errors.As(err, &km) || km.Want != fp {
		t.Fatalf("changed key: err = %v", err)
	}
	// -fingerprint pins out of band; -insecure skips the check.
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "d", Fingerprint: fp}); !errors.As(err, &km) {
		t.Fatalf("-fingerprint mismatch: %v", err)
	}
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "e", Fingerprint: fingerprint(&otherRSAKey(t).PublicKey)}); err != nil {
		t.Fatalf("-fingerprint match: %v", err)
	}
	notes = nil
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "f", Insecure: true, Step: step}); err != nil || !strings.Contains(strings.Join(notes, "\n"), "NOT CHECKED") {
		t.Fatalf("-insecure: %v %q", err, notes)
	}
}

func TestDowngradeRefused(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	known := filepath.Join(t.TempDir(), "known_servers")
	fp := fingerprint(&testRSAKey(t).PublicKey)
	os.WriteFile(known, []byte(ts.addr+" modern "+fp+"\n"), 0o600)
	_, err := dialTest(t, ts.addr, clientConfig{Name: "a", KnownServers: known})
	var de *downgradeError
	if !errors.As(err, &de) {
		t.Fatalf("pinned modern, classic answer: %v", err)
	}
	_, err = dialTest(t, ts.addr, clientConfig{Name: "a", Suite: suiteModern, Insecure: true})
	if !errors.As(err, &de) {
		t.Fatalf("-suite modern against classic: %v", err)
	}
}

var (
	otherKeyOnce sync.Once
	otherKey     *rsa.PrivateKey
)

// otherRSAKey is a second server key, for key-change tests.
func otherRSAKey(t testing.TB) *rsa.PrivateKey {
	otherKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			panic(err)
		}
		otherKey = k
	})
	return otherKey
}

// relay is a plain TCP relay on a loopback port, as a proxy on the path
// would be: it forwards bytes both ways, to whichever upstream is set when
// a client connects. It stops with the test.
type relay struct {
	addr     string
	upstream atomic.Value // string
}

func startRelay(t *testing.T, upstream string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{addr: ln.Addr().String()}
	r.upstream.Store(upstream)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				up, err := net.DialTimeout("tcp", r.upstream.Load().(string), 5*time.Second)
				if err != nil {
					return
				}
				defer up.Close()
				up.SetDeadline(time.Now().Add(10 * time.Second))
				done := make(chan struct{})
				go func() { io.Copy(up, c); up.Close(); close(done) }()
				io.Copy(c, up)
				c.Close()
				<-done
			}()
		}
	}()
	return r
}

// dialAs connects to addr and runs the client handshake with its pins
// kept under the name pinAddr.
func dialAs(t *testing.T, addr, pinAddr string, cfg clientConfig) (*clientSession, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = pinAddr
	cs, err := clientHandshake(conn, cfg)
	if err == nil {
		t.Cleanup(func() { cs.Close() })
	}
	return cs, err
}

// TestFingerprintKeepsModernPin is the downgrade through a proxy: the
// client's known_servers pins the relay's address as modern, and it is run
// with -fingerprint of the right key. A classic server holding that same
// key (the default key file serves both suites) answers through the relay:
// the client refuses classic before sending its username, and the pin is
// left as it was. With the modern server behind the relay, it connects.
func TestFingerprintKeepsModernPin(t *testing.T) {
	classic := startTestServer(t, serverConfig{})
	modern := startTestServer(t, serverConfig{Suite: suiteModern})
	proxy := startRelay(t, classic.addr)
	fp := fingerprint(&testRSAKey(t).PublicKey)
	known := filepath.Join(t.TempDir(), "known_servers")
	pins := proxy.addr + " modern " + fp + "\n"
	os.WriteFile(known, []byte(pins), 0o600)

	_, err := dialTest(t, proxy.addr, clientConfig{Name: "alice", KnownServers: known, Fingerprint: fp})
	var de *downgradeError
	if !errors.As(err, &de) || de.Got != suiteClassic || !strings.Contains(de.Why, "pinned as modern in "+known) {
		t.Fatalf("-fingerprint with a modern pin, classic answer: err = %v, want the downgrade refused", err)
	}
	// The client hung up after the server's key: no name reached the server.
	classic.logged(t, evRefused, "before the client sent a byte")
	if data, _ := os.ReadFile(known); string(data) != pins {
		t.Errorf("known_servers changed to %q", data)
	}

	proxy.upstream.Store(modern.addr)
	var notes []string
	cs, err := dialTest(t, proxy.addr, clientConfig{Name: "alice", KnownServers: known, Fingerprint: fp,
		Step: func(s handshakeStep) { notes = append(notes, s.Results...) }})
	if err != nil {
		t.Fatalf("modern answer: %v", err)
	}
	if cs.Suite != suiteModern || !strings.Contains(strings.Join(notes, "\n"), "matches -fingerprint and the pin in "+known) {
		t.Errorf("modern answer: suite %s, notes %q", cs.Suite, notes)
	}
}

// TestClassicPinUpgraded: a client first meets a server in classic, and
// pins it as classic; once the same key answers in the modern suite, the
// pin's line says modern (the rest of the file, its comments and its mode
// kept), and a classic answer is refused from then on.
func TestClassicPinUpgraded(t *testing.T) {
	classic := startTestServer(t, serverConfig{})
	modern := startTestServer(t, serverConfig{Suite: suiteModern})
	proxy := startRelay(t, classic.addr)
	fp := fingerprint(&testRSAKey(t).PublicKey)
	known := filepath.Join(t.TempDir(), "known_servers")
	before := "# the class's servers\n10.0.0.7:5174 classic " + fp + "\n"
	os.WriteFile(known, []byte(before), 0o600)
	os.Chmod(known, 0o640)

	if _, err := dialTest(t, proxy.addr, clientConfig{Name: "alice", KnownServers: known}); err != nil {
		t.Fatalf("first contact, classic: %v", err)
	}
	pinned := before + proxy.addr + " classic " + fp + "\n"
	if data, _ := os.ReadFile(known); string(data) != pinned {
		t.Fatalf("after the classic session known_servers = %q, want %q", data, pinned)
	}

	proxy.upstream.Store(modern.addr)
	var notes []string
	if _, err := dialTest(t, proxy.addr, clientConfig{Name: "bob", KnownServers: known,
		Step: func(s handshakeStep) { notes = append(notes, s.Results...) }}); err != nil {
		t.Fatalf("modern session: %v", err)
	}
	upgraded := before + proxy.addr + " modern " + fp + "\n"
	if data, _ := os.ReadFile(known); string(data) != upgraded {
		t.Errorf("after the modern session known_servers = %q, want %q", data, upgraded)
	}
	if fi, err := os.Stat(known); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after the upgrade: %v %v, want 0640 as before", fi.Mode(), err)
	}
	if n := strings.Join(notes, "\n"); !strings.Contains(n, "it becomes modern") {
		t.Errorf("walk-through notes %q do not say the pin becomes modern", n)
	}

	proxy.upstream.Store(classic.addr)
	_, err := dialTest(t, proxy.addr, clientConfig{Name: "carol", KnownServers: known})
	var de *downgradeError
	if !errors.As(err, &de) {
		t.Fatalf("classic after the upgrade: err = %v, want the downgrade refused", err)
	}
}

// TestConcurrentFirstContacts: two clients meet "the same" server for the
// first time at once, and get two different keys (one of them from an
// impostor). Both pass the check of an empty file before either writes;
// the writes are checked again under the file's lock, so exactly one key
// is pinned and the other client gets the key-changed refusal before it
// sends its username.
func TestConcurrentFirstContacts(t *testing.T) {
	servers := []*testServer{
		startTestServer(t, serverConfig{Key: testRSAKey(t)}),
		startTestServer(t, serverConfig{Key: otherRSAKey(t)}),
	}
	known := filepath.Join(t.TempDir(), "known_servers")
	const pinAddr = "chat.example:5174"

	var checked sync.WaitGroup // both clients past the check before either writes
	checked.Add(len(servers))
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, ts := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := func(s handshakeStep) {
				if s.Title == "Server identity" {
					checked.Done()
					checked.Wait()
				}
			}
			_, errs[i] = dialAs(t, ts.addr, pinAddr, clientConfig{Name: "alice", KnownServers: known, Step: step})
		}()
	}
	wg.Wait()

	winner, loser := 0, 1
	if errs[0] != nil {
		winner, loser = 1, 0
	}
	if errs[winner] != nil {
		t.Fatalf("both refused: %v; %v", errs[0], errs[1])
	}
	var km *keyMismatchError
	wantFP := fingerprint(&servers[winner].cfg.Key.PublicKey)
	if !errors.As(errs[loser], &km) || km.Want != wantFP || km.Got != fingerprint(&servers[loser].cfg.Key.PublicKey) {
		t.Fatalf("the second first contact: err = %v, want the key-changed refusal naming the pinned key", errs[loser])
	}
	// The pin names the server as typed and as reached (CheckHostIP).
	if data, _ := os.ReadFile(known); string(data) != pinAddr+","+servers[winner].addr+" classic "+wantFP+"\n" {
		t.Errorf("known_servers = %q, want the one winning pin", data)
	}
	// The loser hung up after the handshake, before its username.
	servers[loser].logged(t, evRefused, "closed during username")
}
