// Replay of modern-suite captures. The golden capture
// testdata/replay/modern.jsonl comes from a real loopback session (the
// golden chat, the server speaking the modern suite, fixed random sources
// and clock); "go test -run TestReplayModernGolden -update" records it
// again. ML-KEM-768 encapsulation draws its own randomness, so a new
// recording differs in every sealed byte: read the diff of the texts.

package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The golden modern capture and its keylog.
var (
	modernCapture = filepath.Join(replayTestdata, "modern.jsonl")
	modernKeylog  = filepath.Join(replayTestdata, "modern.keys")
)

func TestReplayModernGolden(t *testing.T) {
	if *updateGolden {
		recordGoldenSuite(t, suiteModern, 7, "modern")
	}
	rsaKey := filepath.Join(replayTestdata, "server.pem")
	helloFrame := goldenFrame(t, modernCapture, modernKeylog, goldenHello)
	cases := []struct {
		golden  string
		columns int
		args    []string
	}{
		{"modern-sniffer.golden", 120, []string{modernCapture}},
		{"modern-both.golden", 120, []string{"-keylog", modernKeylog, modernCapture}},
		{"modern-json.golden", 80, []string{"-json", "-keylog", modernKeylog, modernCapture}},
		{"modern-rsa-key.golden", 80, []string{"-rsa-key", rsaKey, modernCapture}},
		{"modern-tamper.golden", 80, []string{"-view", "peer", "-conn", "1", "-keylog", modernKeylog, "-tamper", fmt.Sprintf("%d:5", helloFrame), modernCapture}},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			stdout, stderr, code := runReplayTest(t, c.columns, c.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			checkGolden(t, c.golden, stdout)
		})
	}
}

// modernKeyNotes are the notes that say why a modern session's records
// stay ciphertext; each session gets at most one per key source.
var modernKeyNotes = []string{"forward secrecy", "-key is a classic session key", "wrong key:", "no key fits this session", "does not fit:"}

func TestReplayModernPropertyRandomChats(t *testing.T) {
	rsaPath := filepath.Join(replayTestdata, "server.pem")
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			rc := recordRandomChat(t, suiteModern, seed)
			run := rc.run
			keys := readKeylogFile(t, run.keylog)
			if len(keys) != len(rc.names) {
				t.Fatalf("%d keylog lines for %d sessions", len(keys), len(rc.names))
			}
			for _, k := range keys {
				if k.Label != modernKeylogLabel {
					t.Fatalf("keylog line %d is %s, want %s", k.Line, k.Label, modernKeylogLabel)
				}
			}
			rc.checkHidden(t, keys)
			all := map[int]bool{1: true, 2: true, 3: true}

			// The keylog opens every record of both directions, in order:
			// c2s record 0 is the name, s2c record 0 the welcome.
			frames := replayJSON(t, "-keylog", run.keylog, run.capture)
			rc.checkRecovered(t, "-keylog", frames, all)
			first := map[string]bool{}
			for _, f := range frames {
				if f.Kind != "sealed" {
					continue
				}
				if f.Plaintext == nil || f.Key != "keylog session.keys" {
					t.Errorf("frame %d (conn %d %s) not decrypted by the keylog: %+v", f.Index, f.Conn, f.Dir, f)
					continue
				}
				k := fmt.Sprintf("%d %s", f.Conn, f.Dir)
				if f.Dir == "s2c" && !first[k] && !strings.Contains(*f.Plaintext, "Welcome "+rc.names[f.Conn-1]+"!") {
					t.Errorf("conn %d: s2c record 0 is %q, not the welcome", f.Conn, *f.Plaintext)
				}
				first[k] = true
				if *f.TextMin != f.Length-16 || *f.TextMax != f.Length-16 || len(*f.Plaintext) != f.Length-16 {
					t.Errorf("frame %d: text %d B, text_min %d, text_max %d, for a %d-byte record", f.Index, len(*f.Plaintext), *f.TextMin, *f.TextMax, f.Length)
				}
			}
			if len(frames) == 0 || len(first) != 2*len(rc.names) {
				t.Errorf("%d directions carried records, want %d", len(first), 2*len(rc.names))
			}

			// The server's private key and each session's secret given as
			// -key open nothing, and say so once per session.
			cases := [][]string{{"-rsa-key", rsaPath}}
			for _, k := range keys {
				cases = append(cases, []string{"-key", hex.EncodeToString(k.Secret)})
			}
			for _, args := range cases {
				code := 0
				if args[0] == "-key" {
					code = 1 // a -key that opens nothing is an error
				}
				frames := replayJSONExit(t, code, append(args, run.capture)...)
				notes := map[int]int{}
				for _, f := range frames {
					if f.Plaintext != nil {
						t.Errorf("%s decrypted frame %d", args[0], f.Index)
					}
					for _, n := range f.Notes {
						notes[f.Conn]++
						if args[0] == "-rsa-key" && !strings.Contains(n, "cannot decrypt it (forward secrecy)") ||
							args[0] == "-key" && !strings.Contains(n, "-key is a classic session key") {
							t.Errorf("%s: note %q", args[0], n)
						}
					}
				}
				for i := range rc.names {
					if notes[i+1] != 1 {
						t.Errorf("%s: conn %d has %d notes, want 1", args[0], i+1, notes[i+1])
					}
				}
			}
		})
	}
}

func TestReplayModernKeySources(t *testing.T) {
	other := filepath.Join(t.TempDir(), "other.pem")
	k := testRSAKey(t)
	if k.Equal(replayServerKey(t)) {
		t.Skip("the shared test key is the golden server key")
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	os.WriteFile(other, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	frames := mustJSONFrames(t, modernCapture)
	var randoms []string
	for _, f := range frames {
		if f.Kind == "client-hello" {
			randoms = append(randoms, f.SessionID)
		}
	}
	if len(randoms) != 2 {
		t.Fatalf("%d ClientHellos in the golden capture", len(randoms))
	}
	wrong := writeCapture(t, "wrong.keys", "MODERN "+randoms[0]+" "+strings.Repeat("11", 32)+"\n")
	short := writeCapture(t, "short.keys", "MODERN "+randoms[0]+" "+strings.Repeat("11", 16)+"\nMODERN "+randoms[1]+" "+strings.Repeat("22", 32)+"\n")

	cases := []struct {
		name  string
		args  []string
		want  []string
		notes int
	}{
		{"none", nil, []string{"keys: none", "── 2 connections, 26 frames"}, 0},
		{"server key", []string{"-rsa-key", filepath.Join(replayTestdata, "server.pem")}, []string{
			"conn 1: a modern session: the server's private key server.pem only signs its handshake",
			"conn 2: a modern session", "so server.pem cannot decrypt it (forward secrecy)", "0 records decrypted, 16 shown as ciphertext"}, 2},
		{"other rsa key", []string{"-rsa-key", other}, []string{
			"conn 1: the -rsa-key other.pem", "is not this server's key", "even the server's own key cannot decrypt a modern session (forward secrecy)"}, 2},
		{"classic -key", []string{"-key", strings.Repeat("22", 32)}, []string{
			"conn 1: -key is a classic session key: it does not fit a modern session, whose records open only with its MODERN keylog line", "conn 2: -key"}, 2},
		{"wrong keylog secret", []string{"-keylog", wrong}, []string{
			"conn 1: wrong key: the MODERN line of keylog wrong.keys for this session does not decrypt it: its records are shown as ciphertext",
			"conn 2: no key fits this session: keylog wrong.keys has no MODERN line for client random " + randoms[1][:16] + "…: its records are shown as ciphertext"}, 2},
		{"short keylog secret", []string{"-keylog", short}, []string{
			"conn 1: the keylog short.keys line for this session does not fit: modern traffic secret is 16 bytes, want 32",
			"conn 2: wrong key:"}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := runReplayTest(t, 200, append(c.args, modernCapture)...)
			if c.args != nil && c.args[0] == "-key" {
				// A -key that opens nothing is an error, after the replay.
				if code != 1 || !strings.HasPrefix(stderr, "encchat: "+errWrongKey.Error()+"\n") {
					t.Fatalf("exit %d: %s", code, stderr)
				}
			} else if code != 0 || stderr != "" {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, s := range c.want {
				if !strings.Contains(stdout, s) {
					t.Errorf("output lacks %q", s)
				}
			}
			if strings.Contains(stdout, goldenHello) || strings.Contains(stdout, "│ key: ") {
				t.Error("a key that does not fit decrypted the chat")
			}
			if n := strings.Count(stdout, "   note: "); n != c.notes {
				t.Errorf("%d notes, want %d:\n%s", n, c.notes, stdout)
			}
		})
	}
}

func TestReplayModernTamper(t *testing.T) {
	helloFrame := goldenFrame(t, modernCapture, modernKeylog, goldenHello)
	clean := mustJSONFrames(t, modernCapture, "-keylog", modernKeylog)
	sameElsewhere := func(t *testing.T, frames []jsonFrame, tampered int) {
		t.Helper()
		if len(frames) != len(clean) {
			t.Fatalf("%d frames, want %d", len(frames), len(clean))
		}
		for i, f := range frames {
			want := clean[i]
			if f.Index == tampered {
				if len(f.Tamper) == 0 {
					t.Errorf("frame %d: -tamper says nothing", f.Index)
				}
				f.Tamper = nil
			}
			if f.Kind == "sealed" && f.Plaintext == nil {
				t.Errorf("frame %d no longer decrypts after tampering with frame %d", f.Index, tampered)
			}
			if g, w := mustMarshal(t, f), mustMarshal(t, want); g != w {
				t.Errorf("frame %d changed:\n got %s\nwant %s", f.Index, g, w)
			}
		}
	}
	rejected := "authentication failed: modern: bad record MAC — nothing from this frame reaches the user"

	// A bit of the ciphertext, and a bit of the tag.
	hello := clean[helloFrame-1]
	for _, c := range []struct {
		bit   int
		where string
	}{
		{5, "byte 0 of the ciphertext, mask 0x20"},
		{8 * (hello.Length - 16), "byte 0 of the GCM tag, mask 0x01"},
		{8*hello.Length - 1, "byte 15 of the GCM tag, mask 0x80"},
	} {
		frames := mustJSONFrames(t, modernCapture, "-keylog", modernKeylog, "-tamper", fmt.Sprintf("%d:%d", helloFrame, c.bit))
		got := strings.Join(frames[helloFrame-1].Tamper, "\n")
		if !strings.Contains(got, c.where) || !strings.Contains(got, rejected) {
			t.Errorf("bit %d: -tamper says %q", c.bit, got)
		}
		sameElsewhere(t, frames, helloFrame)
	}

	// Each handshake message: the check that fails, and the records go on.
	for _, c := range []struct {
		frame, bit int
		want       string
	}{
		{1, 8, "byte 1 of the frame, byte 1 of the magic, mask 0x01\nthe magic no longer names the modern suite"},
		{1, 8 * 16, "byte 16 of the frame, byte 0 of the server random, mask 0x01\nthe transcript changes, so the server's signature over it no longer verifies"},
		{1, 8 * 1264, "byte 1264 of the frame, byte 0 of the RSA key length, mask 0x01\nthe key length no longer matches the message"},
		{1, 8*1560 - 1, "byte 1559 of the frame, byte 293 of the RSA public key, mask 0x80\nthe RSA key is another one now"},
		{2, 8, "byte 1 of the frame, byte 0 of the client random (the keylog's session id), mask 0x01\nthe server derives other keys"},
		{2, 8 * 100, "byte 100 of the frame, byte 35 of the ML-KEM-768 ciphertext, mask 0x01\nthe server derives other keys"},
		{3, 8, "byte 1 of the frame, byte 0 of the signature, mask 0x01\nthe signature no longer verifies (checked here)"},
		{3, 1, "byte 0 of the frame, byte 0 of the type, mask 0x02\nit is no longer a ServerVerify: the client refuses an unexpected message and closes"},
		{4, 8, "byte 1 of the frame, byte 0 of the MAC, mask 0x01\nthe MAC no longer matches: the client closes"},
		{5, 8 * 32, "byte 32 of the frame, byte 31 of the MAC, mask 0x01\nthe MAC no longer matches: the server closes"},
		{5, 0, "byte 0 of the frame, byte 0 of the type, mask 0x01\nit is no longer a ClientFinished: the server refuses an unexpected message and closes"},
	} {
		frames := mustJSONFrames(t, modernCapture, "-keylog", modernKeylog, "-tamper", fmt.Sprintf("%d:%d", c.frame, c.bit))
		if got := strings.Join(frames[c.frame-1].Tamper, "\n"); !strings.Contains(got, c.want) {
			t.Errorf("frame %d (%s) bit %d: -tamper says %q, want %q", c.frame, frames[c.frame-1].Kind, c.bit, got, c.want)
		}
		sameElsewhere(t, frames, c.frame)
	}

	// Past the end, and without a key.
	stdout, _, code := runReplayTest(t, 80, "-view", "peer", "-keylog", modernKeylog, "-tamper", fmt.Sprintf("%d:%d", helloFrame, 8*hello.Length), modernCapture)
	if code != 0 || !strings.Contains(stdout, "is past the end of this frame") || strings.Contains(stdout, "authentication failed") {
		t.Errorf("tamper past the end: exit %d\n%s", code, stdout)
	}
	stdout, _, code = runReplayTest(t, 80, "-tamper", fmt.Sprintf("%d:5", helloFrame), modernCapture)
	if code != 0 || !strings.Contains(stdout, "no key for this session: the receiver's check cannot be run here") {
		t.Errorf("tamper without a key: exit %d\n%s", code, stdout)
	}
}

// TestReplayModernMissedServerHello: a capture without the ServerHello is
// still recognised from the ClientHello, and its keylog line still opens it.
func TestReplayModernMissedServerHello(t *testing.T) {
	lines := strings.SplitAfter(string(mustRead(t, modernCapture)), "\n")
	for i, l := range lines {
		if strings.Contains(l, `"conn":1,"dir":"s2c"`) {
			lines = append(lines[:i], lines[i+1:]...)
			break
		}
	}
	path := writeCapture(t, "no-hello.jsonl", strings.Join(lines, ""))
	frames := mustJSONFrames(t, path, "-keylog", modernKeylog)
	kinds := map[string]int{}
	for _, f := range frames {
		kinds[f.Kind]++
		if f.Kind == "sealed" && f.Plaintext == nil {
			t.Errorf("frame %d (conn %d) not decrypted", f.Index, f.Conn)
		}
	}
	if kinds["server-hello"] != 1 || kinds["client-hello"] != 2 || kinds["server-verify"] != 2 || kinds["sealed"] != 16 {
		t.Errorf("frame kinds %v", kinds)
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReplayModernCapture: a modern session is recognised, its handshake
// named, and -rsa-key says plainly that the server key cannot decrypt it.
func TestReplayModernCapture(t *testing.T) {
	key := replayServerKey(t)
	const secret = "modern secret: forward secrecy holds"
	run := recordSuiteChat(t, t.TempDir(), suiteModern, key, 3, func(connect func(string) *clientSession) {
		c := connect("mo")
		if c.Suite != suiteModern {
			t.Fatalf("client negotiated %q", c.Suite)
		}
		c.Send(secret)
		expectRecv(t, c, secret)
	})
	stdout, stderr, code := runReplayTest(t, 80, "-rsa-key", filepath.Join(replayTestdata, "server.pem"), run.capture)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "ServerHello: ephemeral key shares") || !strings.Contains(stdout, "cannot decrypt it (forward secrecy)") {
		t.Errorf("replay of a modern capture:\n%s", stdout)
	}
	if strings.Count(stdout, "forward secrecy") != 1 {
		t.Error("the forward secrecy note is not said once per session")
	}
	if strings.Contains(stdout, secret) {
		t.Error("the server key decrypted a modern session")
	}
}

// TestReplayModernUnexpectedMessage: a frame where a handshake message
// should be is named as the peer's refusal, not decoded as a record.
func TestReplayModernUnexpectedMessage(t *testing.T) {
	lines := strings.SplitAfter(string(mustRead(t, modernCapture)), "\n")
	var conn1 []string
	for _, l := range lines[1:] {
		if strings.Contains(l, `"conn":1,`) && !strings.Contains(l, `"ev":"close"`) {
			conn1 = append(conn1, l)
		}
	}
	for _, c := range []struct {
		payload string
		want    string
	}{
		{"ZZZZZ", "the peer refuses it and closes: modern: unexpected message: got unknown message 0x5a while waiting for ServerVerify"},
		{"\x03abc", "the peer refuses it and closes: modern: error decoding message: ServerVerify: 4 bytes"},
	} {
		frame := base64.StdEncoding.EncodeToString(appendFrame(nil, []byte(c.payload)))
		capture := lines[0] + strings.Join(conn1[:3], "") + `{"t":0.02,"conn":1,"dir":"s2c","data":"` + frame + `"}` + "\n" + `{"t":0.03,"conn":1,"ev":"close"}` + "\n"
		path := writeCapture(t, "unexpected.jsonl", capture)
		stdout, stderr, code := runReplayTest(t, 200, "-view", "peer", "-keylog", modernKeylog, path)
		if code != 0 || stderr != "" || !strings.Contains(stdout, c.want) {
			t.Errorf("%q: exit %d, stderr %q, output:\n%s", c.payload, code, stderr, stdout)
		}
		frames := mustJSONFrames(t, path, "-keylog", modernKeylog)
		if last := frames[len(frames)-1]; last.Kind != "handshake" || last.Plaintext != nil {
			t.Errorf("%q: frame shown as %+v", c.payload, last)
		}
	}
}
