// Tests of the client session (session.go): the server key pinned on first
// use and checked after, -fingerprint and -insecure, and a downgrade from a
// pinned modern server refused.

package main

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
