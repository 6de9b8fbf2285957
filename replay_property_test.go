// The replay property test: random chats recorded over loopback, whose
// captures must hold no plaintext and no key in any encoding, and from
// which every key source (-keylog, -rsa-key, -key) recovers every message
// exactly.

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// randomText is a message that cannot appear in base64 or hex by chance.
func randomText(rng *mathrand.Rand) string {
	alphabet := []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?éü✓日本語")
	n := 12 + rng.IntN(300)
	r := make([]rune, n)
	for i := range r {
		r[i] = alphabet[rng.IntN(len(alphabet))]
	}
	r[0], r[n-1] = 'M', '!' // no leading or trailing space (the server trims)
	return string(r)
}

// randomChat is a recorded chat of random texts.
type randomChat struct {
	run   chatRun
	names []string            // the clients, in connection order
	sent  map[string][]string // per name, in order
}

// recordRandomChat records 1–3 clients sending 3–10 random texts to a
// server speaking suite; seed decides everything but the ciphertext.
func recordRandomChat(t *testing.T, suite string, seed uint64) randomChat {
	t.Helper()
	key := replayServerKey(t)
	rng := mathrand.New(mathrand.NewPCG(seed, 99))
	rc := randomChat{names: []string{"ann", "ben", "cat"}[:1+rng.IntN(3)], sent: map[string][]string{}}
	rc.run = recordSuiteChat(t, t.TempDir(), suite, key, byte(seed), func(connect func(string) *clientSession) {
		var cs []*clientSession
		for i, n := range rc.names {
			cs = append(cs, connect(n))
			for _, earlier := range cs[:i] {
				expectRecv(t, earlier, n+" joined")
			}
		}
		for i := 0; i < 3+rng.IntN(8); i++ {
			who := rng.IntN(len(rc.names))
			text := randomText(rng)
			rc.sent[rc.names[who]] = append(rc.sent[rc.names[who]], text)
			if err := cs[who].Send(text); err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				expectRecv(t, c, rc.names[who]+": "+text)
			}
		}
	})
	return rc
}

// checkHidden checks that the capture holds no plaintext and none of keys'
// secrets, in any encoding.
func (rc randomChat) checkHidden(t *testing.T, keys keylogEntries) {
	t.Helper()
	raw, err := os.ReadFile(rc.run.capture)
	if err != nil {
		t.Fatal(err)
	}
	_, evs := readEvents(t, string(raw))
	var wire []byte
	for _, ev := range evs {
		wire = append(wire, ev.Data...)
	}
	for _, texts := range rc.sent {
		for _, text := range texts {
			if bytes.Contains(raw, []byte(text)) || bytes.Contains(wire, []byte(text)) {
				t.Errorf("the capture holds the plaintext %q", text)
			}
		}
	}
	for _, k := range keys {
		for _, form := range [][]byte{k.Secret, []byte(hex.EncodeToString(k.Secret)), []byte(base64.StdEncoding.EncodeToString(k.Secret))} {
			if bytes.Contains(raw, form) || bytes.Contains(wire, form) {
				t.Errorf("the capture holds a session key")
			}
		}
	}
}

// checkRecovered checks that frames hold, for each connection in conns,
// its client → server texts exactly: its name, then what it sent.
func (rc randomChat) checkRecovered(t *testing.T, source string, frames []jsonFrame, conns map[int]bool) {
	t.Helper()
	got := map[int][]string{}
	for _, f := range frames {
		if f.Dir == "c2s" && f.Kind == "sealed" {
			if f.Plaintext == nil {
				got[f.Conn] = append(got[f.Conn], "<not decrypted>")
				continue
			}
			got[f.Conn] = append(got[f.Conn], *f.Plaintext)
		}
	}
	for i, n := range rc.names {
		if !conns[i+1] {
			continue
		}
		want := append([]string{n}, rc.sent[n]...)
		if strings.Join(got[i+1], "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%s: conn %d recovered %q, want %q", source, i+1, got[i+1], want)
		}
	}
}

func TestReplayPropertyRandomChats(t *testing.T) {
	rsaPath := filepath.Join(replayTestdata, "server.pem")
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			rc := recordRandomChat(t, suiteClassic, seed)
			run := rc.run
			keys := readKeylogFile(t, run.keylog)
			if len(keys) != len(rc.names) {
				t.Fatalf("%d keylog lines for %d sessions", len(keys), len(rc.names))
			}
			// The capture holds no plaintext and no key, in any encoding.
			rc.checkHidden(t, keys)

			// Every key source recovers every message exactly.
			all := map[int]bool{1: true, 2: true, 3: true}
			rc.checkRecovered(t, "-keylog", replayJSON(t, "-keylog", run.keylog, run.capture), all)
			rc.checkRecovered(t, "-rsa-key", replayJSON(t, "-rsa-key", rsaPath, run.capture), all)
			for i, k := range keys {
				frames := replayJSON(t, "-key", base64.StdEncoding.EncodeToString(k.Secret), run.capture)
				rc.checkRecovered(t, "-key", frames, map[int]bool{i + 1: true})
				for _, f := range frames {
					if f.Conn != i+1 && f.Plaintext != nil {
						t.Errorf("-key of conn %d decrypted a frame of conn %d", i+1, f.Conn)
					}
				}
			}
		})
	}
}
