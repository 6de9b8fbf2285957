// Tests of the tap's active attacker (tap -mitm, mitm.go), in both suites:
// a client that does not check the server key is intercepted, a pinned
// client refuses, and the capture records both legs.

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// mitmKey is the attacker's RSA key, one per test binary.
var mitmKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, rsaBits) })

// mitmTap is a running runMITMTap with its report lines collected.
type mitmTap struct {
	addr  string
	mu    sync.Mutex
	lines []string
	stop  func() // ends the tap and waits for it; safe to call twice
}

func startMITMTap(t *testing.T, upstream string, rec *capture) *mitmTap {
	t.Helper()
	key, err := mitmKey()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mt := &mitmTap{addr: ln.Addr().String()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runMITMTap(ctx, ln, upstream, key, rec, func(s string) {
			mt.mu.Lock()
			mt.lines = append(mt.lines, s)
			mt.mu.Unlock()
		})
	}()
	var once sync.Once
	mt.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("runMITMTap: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("runMITMTap did not return after its context ended")
			}
		})
	}
	t.Cleanup(mt.stop)
	return mt
}

// waitLine waits for a report line containing sub.
func (mt *mitmTap) waitLine(t *testing.T, sub string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l, ok := mt.find(sub); ok {
			return l
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no tap line containing %q; lines:\n%s", sub, strings.Join(mt.all(), "\n"))
	return ""
}

func (mt *mitmTap) find(sub string) (string, bool) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	for _, l := range mt.lines {
		if strings.Contains(l, sub) {
			return l, true
		}
	}
	return "", false
}

func (mt *mitmTap) all() []string {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	return append([]string(nil), mt.lines...)
}

func TestMITMInsecureClientIsIntercepted(t *testing.T) {
	for _, suite := range []string{suiteClassic, suiteModern} {
		t.Run(suite, func(t *testing.T) {
			ts := startTestServer(t, serverConfig{Suite: suite})
			mt := startMITMTap(t, ts.addr, nil)

			alice, err := dialTest(t, mt.addr, clientConfig{Name: "alice", Insecure: true})
			if err != nil {
				t.Fatalf("insecure client through the tap: %v", err)
			}
			if alice.Suite != suite {
				t.Errorf("client negotiated %q, want %q", alice.Suite, suite)
			}
			if !strings.Contains(alice.Welcome(), "Welcome alice!") {
				t.Errorf("welcome %q", alice.Welcome())
			}
			if err := alice.Send("the password is swordfish"); err != nil {
				t.Fatal(err)
			}
			// The server relays the line back through the tap: the chat works...
			expect(t, alice, "alice: the password is swordfish")
			// ...and the tap read both directions in the clear.
			mt.waitLine(t, "[MITM] username: alice")
			mt.waitLine(t, "[MITM] alice: the password is swordfish")
			mt.waitLine(t, "[MITM] server → alice: ")
			mt.waitLine(t, "intercepting ("+suite+" suite)")
			// The real server saw a normal client.
			ts.logged(t, evJoin, "alice joined")
		})
	}
}

func TestMITMPinnedClientRefuses(t *testing.T) {
	for _, suite := range []string{suiteClassic, suiteModern} {
		for _, how := range []string{"fingerprint", "known-servers"} {
			t.Run(suite+"/"+how, func(t *testing.T) {
				ts := startTestServer(t, serverConfig{Suite: suite})
				mt := startMITMTap(t, ts.addr, nil)
				real := fingerprint(&ts.cfg.Key.PublicKey)
				cfg := clientConfig{Name: "bob"}
				if how == "fingerprint" {
					cfg.Fingerprint = real
				} else {
					// The pin was made on an earlier, direct visit; the
					// attacker now sits on the same address.
					cfg.KnownServers = filepath.Join(t.TempDir(), "known_servers")
					line := mt.addr + " " + suite + " " + real + "\n"
					if err := os.WriteFile(cfg.KnownServers, []byte(line), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				_, err := dialTest(t, mt.addr, cfg)
				var mismatch *keyMismatchError
				if !errors.As(err, &mismatch) {
					t.Fatalf("pinned client through the tap: %v, want a key mismatch", err)
				}
				key, _ := mitmKey()
				if mismatch.Got != fingerprint(&key.PublicKey) || !sameFingerprint(mismatch.Want, real) {
					t.Errorf("mismatch names %s (want the tap's key) and %s (want the pin)", mismatch.Got, mismatch.Want)
				}
				if !strings.Contains(err.Error(), "does not match") {
					t.Errorf("error %q does not name the fingerprint mismatch", err)
				}
				mt.waitLine(t, "refused the tap's key")
				// Nothing was read: the client closed before sending its name.
				time.Sleep(50 * time.Millisecond)
				for _, l := range mt.all() {
					if strings.HasPrefix(l, "[MITM]") || strings.Contains(l, "intercepting") {
						t.Errorf("tap line %q after the client refused", l)
					}
				}
				ts.mu.Lock()
				for _, ev := range ts.log {
					if ev.Kind == evJoin {
						t.Errorf("server log: %v", ev)
					}
				}
				ts.mu.Unlock()
			})
		}
	}
}

// TestMITMRecordsBothLegs records an interception: the capture holds two
// connections (client ↔ tap and tap ↔ server), and neither leg carries the
// text in the clear.
func TestMITMRecordsBothLegs(t *testing.T) {
	for _, suite := range []string{suiteClassic, suiteModern} {
		t.Run(suite, func(t *testing.T) {
			ts := startTestServer(t, serverConfig{Suite: suite})
			path := filepath.Join(t.TempDir(), "mitm.jsonl")
			rec, err := openCapture(path, "tap", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			mt := startMITMTap(t, ts.addr, rec)
			alice, err := dialTest(t, mt.addr, clientConfig{Name: "alice", Insecure: true})
			if err != nil {
				t.Fatal(err)
			}
			alice.Send("swordfish")
			expect(t, alice, "alice: swordfish")
			alice.Close()
			mt.waitLine(t, "connection closed")
			mt.stop()
			if err := rec.Close(); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			opens := 0
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var ev struct {
					Ev   string `json:"ev"`
					Data []byte `json:"data"`
				}
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					t.Fatalf("capture line %q: %v", sc.Text(), err)
				}
				if ev.Ev == "open" {
					opens++
				}
				if bytes.Contains(ev.Data, []byte("swordfish")) {
					t.Errorf("a recorded leg carries the text in the clear")
				}
			}
			if opens != 2 {
				t.Errorf("capture has %d connections, want 2 (client leg and server leg)", opens)
			}
		})
	}
}
