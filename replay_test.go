// Tests of the replay engine, its classic decoder and its views (replay.go,
// replay_classic.go, view_text.go, view_json.go): golden outputs, bad input,
// wrong keys, flags and JSON events. The golden capture under
// testdata/replay/ comes from a real loopback session with a fixed server
// key, fixed random sources and a fake clock; "go test -run
// TestReplayGolden -update" records it again and rewrites the expected
// outputs (read the diff before accepting it). The helpers here that record
// chats and run replay serve the other capture and replay tests too.

package main

import (
	"bufio"
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "record testdata/replay/session.jsonl again and rewrite the replay golden files")

const replayTestdata = "testdata/replay"

// lockedRand is a deterministic random source safe for the server's
// concurrent writers.
type lockedRand struct {
	mu sync.Mutex
	r  *mathrand.ChaCha8
}

func newLockedRand(seed byte) *lockedRand {
	var s [32]byte
	s[0] = seed
	return &lockedRand{r: mathrand.NewChaCha8(s)}
}

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// fakeClock advances a fixed step at every reading.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

var replayEpoch = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// replayServerKey is the fixed server key of the golden capture.
func replayServerKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	path := filepath.Join(replayTestdata, "server.pem")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k := testRSAKey(t)
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(replayTestdata, 0o755); err != nil {
			t.Fatal(err)
		}
		data = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	k, err := parsePrivateKeyPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// chatRun is a recorded loopback chat.
type chatRun struct {
	capture, keylog string
	// addrs maps each real address in the capture to a stable one.
	addrs map[string]string
}

// recordChat runs a real server on loopback that records into dir and logs
// keys, lets script drive clients through connect, then closes everything.
func recordChat(t *testing.T, dir string, key *rsa.PrivateKey, seed byte, script func(connect func(name string) *clientSession)) chatRun {
	return recordSuiteChat(t, dir, suiteClassic, key, seed, script)
}

// recordSuiteChat is recordChat with the server speaking suite.
func recordSuiteChat(t *testing.T, dir, suite string, key *rsa.PrivateKey, seed byte, script func(connect func(name string) *clientSession)) chatRun {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	run := chatRun{
		capture: filepath.Join(dir, "session.jsonl"),
		keylog:  filepath.Join(dir, "session.keys"),
		addrs:   map[string]string{ln.Addr().String(): "127.0.0.1:5174"},
	}
	f, err := os.Create(run.capture)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: replayEpoch, step: 1500 * time.Microsecond}
	rec := newCapture(f, "server", ln.Addr().String(), clock.now)
	kl, err := openKeylog(run.keylog)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(serverConfig{
		Key:    key,
		Suite:  suite,
		Rand:   newLockedRand(seed),
		Now:    func() time.Time { return replayEpoch },
		Record: rec,
		Keylog: kl,
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var clients []*clientSession
	connect := func(name string) *clientSession {
		t.Helper()
		nc, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		run.addrs[nc.LocalAddr().String()] = fmt.Sprintf("127.0.0.1:%d", 51001+len(clients))
		cs, err := clientHandshake(nc, clientConfig{Name: name, Addr: ln.Addr().String(), Insecure: true, Rand: newLockedRand(seed + byte(len(clients)) + 1)})
		if err != nil {
			t.Fatalf("%s: handshake: %v", name, err)
		}
		clients = append(clients, cs)
		return cs
	}
	script(connect)
	for _, c := range clients {
		c.Close()
	}
	srv.Shutdown()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if err := rec.Close(); err != nil {
		t.Fatalf("capture: %v", err)
	}
	if err := kl.Close(); err != nil {
		t.Fatalf("keylog: %v", err)
	}
	return run
}

// expectRecv reads texts until one contains want.
func expectRecv(t *testing.T, cs *clientSession, want string) string {
	t.Helper()
	for i := 0; i < 20; i++ {
		text, err := cs.Recv()
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if strings.Contains(text, want) {
			return text
		}
	}
	t.Fatalf("no text containing %q", want)
	return ""
}

// Messages of the golden chat.
const (
	goldenHello = "Hello Bob! This message is encrypted!"
	goldenPM    = "psst: the exam key is in the capture"
)

// goldenChat is the scripted chat of the golden capture.
func goldenChat(t *testing.T) func(connect func(string) *clientSession) {
	return func(connect func(string) *clientSession) {
		alice := connect("alice")
		bob := connect("bob")
		expectRecv(t, alice, "bob joined")
		alice.Send(goldenHello)
		expectRecv(t, alice, "alice: "+goldenHello)
		expectRecv(t, bob, "alice: "+goldenHello)
		bob.Send("/pm alice " + goldenPM)
		expectRecv(t, alice, "[PM from bob] "+goldenPM)
		expectRecv(t, bob, "[PM to alice] "+goldenPM)
		alice.Send("/list")
		expectRecv(t, alice, "Online Users (2)")
		bob.Send("/quit")
		expectRecv(t, alice, "bob left")
		alice.Send("/quit")
		if _, err := alice.Recv(); err == nil {
			t.Fatal("alice: the server did not close after /quit")
		}
	}
}

// recordGolden records the golden capture into testdata/replay with stable
// addresses.
func recordGolden(t *testing.T) {
	recordGoldenSuite(t, suiteClassic, 7, "session")
}

// recordGoldenSuite records goldenChat with the server speaking suite into
// testdata/replay/NAME.jsonl and NAME.keys, with stable addresses.
func recordGoldenSuite(t *testing.T, suite string, seed byte, name string) {
	key := replayServerKey(t)
	dir := t.TempDir()
	run := recordSuiteChat(t, dir, suite, key, seed, goldenChat(t))
	for _, ext := range []string{".jsonl", ".keys"} {
		data, err := os.ReadFile(filepath.Join(dir, "session"+ext))
		if err != nil {
			t.Fatal(err)
		}
		for from, to := range run.addrs {
			data = bytes.ReplaceAll(data, []byte(from), []byte(to))
		}
		if err := os.WriteFile(filepath.Join(replayTestdata, name+ext), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runReplayTest runs "encchat replay args..." with COLUMNS set.
func runReplayTest(t *testing.T, columns int, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	t.Setenv("COLUMNS", strconv.Itoa(columns))
	var out, errb bytes.Buffer
	code = runReplay(args, &out, &errb)
	return out.String(), errb.String(), code
}

// checkGolden compares got with testdata/replay/name, or writes it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	checkGoldenFile(t, filepath.Join(replayTestdata, name), got)
}

// checkGoldenFile compares got with the file at path, or writes it with
// -update; a mismatch names the first line that differs.
func checkGoldenFile(t *testing.T, path, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got == string(want) {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs at line %d:\n got: %q\nwant: %q\n(run with -update to accept the new output after reading the diff)", filepath.Base(path), i+1, g, w)
		}
	}
}

// goldenFrame finds the number of the first frame whose plaintext has want.
func goldenFrame(t *testing.T, capturePath, keylogPath, want string) int {
	t.Helper()
	for _, f := range replayJSON(t, "-keylog", keylogPath, capturePath) {
		if f.Plaintext != nil && strings.Contains(*f.Plaintext, want) {
			return f.Index
		}
	}
	t.Fatalf("no frame decrypts to %q", want)
	return 0
}

// replayJSON runs replay -json and decodes its lines.
func replayJSON(t *testing.T, args ...string) []jsonFrame {
	t.Helper()
	return replayJSONExit(t, 0, args...)
}

// replayJSONExit is replayJSON for a run that exits with code; exit 1 is
// only accepted for a -key that decrypted nothing.
func replayJSONExit(t *testing.T, code int, args ...string) []jsonFrame {
	t.Helper()
	var out, errb bytes.Buffer
	if got := runReplay(append([]string{"-json"}, args...), &out, &errb); got != code || (code == 1 && !strings.Contains(errb.String(), errWrongKey.Error())) {
		t.Fatalf("replay -json %v: exit %d, want %d: %s", args, got, code, errb.String())
	}
	var frames []jsonFrame
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var f jsonFrame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("replay -json line %q: %v", sc.Text(), err)
		}
		switch f.Kind {
		case "capture", "open", "close", "end": // TestReplayJSONEvents checks these
		default:
			frames = append(frames, f)
		}
	}
	return frames
}

func TestReplayGolden(t *testing.T) {
	if *updateGolden {
		recordGolden(t)
	}
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	keys := filepath.Join(replayTestdata, "session.keys")
	rsaKey := filepath.Join(replayTestdata, "server.pem")
	helloFrame := goldenFrame(t, capturePath, keys, goldenHello)

	// Alice's session key, for -key: conn 1's keylog line.
	entries := readKeylogFile(t, keys)
	aliceKey := hex.EncodeToString(entries[0].Secret)

	cases := []struct {
		golden  string
		columns int
		args    []string
	}{
		{"sniffer.golden", 120, []string{capturePath}},
		{"peer.golden", 120, []string{"-view", "peer", "-keylog", keys, capturePath}},
		{"both.golden", 120, []string{"-keylog", keys, capturePath}},
		{"both-stacked.golden", 80, []string{"-rsa-key", rsaKey, capturePath}},
		{"key-one-session.golden", 80, []string{"-view", "peer", "-key", aliceKey, capturePath}},
		{"json.golden", 80, []string{"-json", "-keylog", keys, capturePath}},
		{"tamper-iv.golden", 80, []string{"-view", "peer", "-conn", "1", "-keylog", keys, "-tamper", fmt.Sprintf("%d:5", helloFrame), capturePath}},
		{"tamper-block.golden", 80, []string{"-view", "peer", "-conn", "1", "-keylog", keys, "-tamper", fmt.Sprintf("%d:%d", helloFrame, 128+3*8+1), capturePath}},
		{"tamper-padding.golden", 80, []string{"-view", "peer", "-conn", "1", "-keylog", keys, "-tamper", fmt.Sprintf("%d:%d", helloFrame, 128+16*8+15*8), capturePath}},
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

func readKeylogFile(t *testing.T, path string) keylogEntries {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := parseKeylog(f)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// goldenLines returns the golden capture's lines.
func goldenLines(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(replayTestdata, "session.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(data), "\n")
}

func writeCapture(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReplayBadInput(t *testing.T) {
	lines := goldenLines(t)
	head := strings.Join(lines[:16], "")
	var midFrame []string
	for _, l := range lines[:8] {
		midFrame = append(midFrame, l)
	}
	cases := []struct {
		name, content, stderr string
		stdout                []string // must appear
	}{
		{"bad base64", head + `{"t":0.5,"conn":1,"dir":"c2s","data":"###"}` + "\n" + strings.Join(lines[16:], ""),
			"encchat: capture.jsonl:17: bad base64\nencchat: hint: everything before that line was replayed\n",
			[]string{"#1 ", "HANDSHAKE_OK", "still open when the capture ends"}},
		{"cut mid-line", head + lines[16][:40],
			"encchat: capture.jsonl:17: the capture ends mid-line (bad JSON)\nencchat: hint: everything before that line was replayed\n",
			[]string{"Welcome alice!"}},
		{"unknown version", `{"encchat_capture":2,"started":"2026-11-26T09:00:00Z"}` + "\n",
			"encchat: capture.jsonl:1: unknown capture version 2 (this encchat reads version 1)\n", nil},
		{"not a capture", "hello\n",
			"encchat: capture.jsonl:1: not an encchat capture (the first line is not a capture header)\n", nil},
		{"unknown direction", head + `{"t":0.5,"conn":1,"dir":"up","data":""}` + "\n",
			"encchat: capture.jsonl:17: unknown direction \"up\"\nencchat: hint: everything before that line was replayed\n", nil},
		{"data after close", lines[0] + `{"t":0.1,"conn":1,"ev":"open"}` + "\n" + `{"t":0.2,"conn":1,"ev":"close"}` + "\n" + `{"t":0.3,"conn":1,"dir":"c2s","data":"AA=="}` + "\n",
			"encchat: capture.jsonl:4: data on connection 1 after its close\nencchat: hint: everything before that line was replayed\n", nil},
		{"frame cut mid-header", lines[0] + `{"t":0.1,"conn":1,"ev":"open"}` + "\n" +
			`{"t":0.2,"conn":1,"dir":"s2c","data":"` + base64.StdEncoding.EncodeToString([]byte("00000")) + `"}` + "\n" + `{"t":0.3,"conn":1,"ev":"close"}` + "\n",
			"", []string{"partial frame: the stream ends mid-header (5 of 10 header bytes)", "never delivered: the frame is incomplete"}},
		{"capture begun mid-connection", lines[0] + strings.Join(lines[9:16], ""), // conn 2's records without its open
			"", []string{"no open record, the capture began during this connection"}},
	}
	// A capture begun mid-frame: conn 1's first s2c chunk without its first 100 bytes.
	var ev struct {
		T    float64 `json:"t"`
		Conn int     `json:"conn"`
		Dir  string  `json:"dir"`
		Data []byte  `json:"data"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &ev); err != nil || ev.Dir != "s2c" {
		t.Fatalf("golden line 3 is not conn 1's first s2c chunk: %v", err)
	}
	ev.Data = ev.Data[100:]
	cut, _ := json.Marshal(ev)
	midFrame[2] = string(cut) + "\n"
	cases = append(cases, struct {
		name, content, stderr string
		stdout                []string
	}{"begun mid-frame", strings.Join(midFrame, ""), "", []string{
		"conn 1 server → client: 360 bytes skipped: the stream does not start at a frame boundary (capture begun mid-frame?)",
		"HANDSHAKE_OK", "Welcome alice!"}})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeCapture(t, "capture.jsonl", c.content)
			stdout, stderr, code := runReplayTest(t, 80, "-keylog", filepath.Join(replayTestdata, "session.keys"), path)
			if stderr = strings.ReplaceAll(stderr, path, "capture.jsonl"); stderr != c.stderr {
				t.Errorf("stderr %q, want %q", stderr, c.stderr)
			}
			if wantCode := map[bool]int{true: 0, false: 1}[c.stderr == ""]; code != wantCode {
				t.Errorf("exit %d, want %d", code, wantCode)
			}
			for _, s := range c.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
		})
	}
}

func TestReplayWrongKeys(t *testing.T) {
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	other := filepath.Join(t.TempDir(), "other.pem")
	k := testRSAKey(t)
	if k.Equal(replayServerKey(t)) {
		t.Skip("the shared test key is the golden server key")
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	os.WriteFile(other, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	wrongLog := writeCapture(t, "wrong.keys", "CLASSIC "+hex.EncodeToString(mustJSONFrames(t, capturePath)[1].sessionID())+" "+strings.Repeat("11", 32)+"\n")

	cases := []struct {
		name   string
		args   []string
		want   []string
		code   int
		stderr string
	}{
		{"wrong rsa key", []string{"-rsa-key", other}, []string{
			"is not this server's key", "no key fits this session: its records are shown as ciphertext", "0 records decrypted, 18 shown as ciphertext"}, 0, ""},
		{"wrong keylog key", []string{"-keylog", wrongLog}, []string{
			"conn 1: wrong key: keylog wrong.keys does not decrypt this session", "conn 2: no key fits this session"}, 0, ""},
		// A -key that opens nothing is the user's mistake: exit 1, after
		// the replay that shows it.
		{"wrong -key", []string{"-key", strings.Repeat("22", 32)}, []string{"conn 1: wrong key: -key does not decrypt this session"}, 1,
			"encchat: replay: -key decrypted no record: it is not the session key of any classic session shown\n" +
				"encchat: hint: -key takes the 64 hex digits after the session id on a CLASSIC line of a key log; a modern session needs its key log (-keylog)\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := runReplayTest(t, 80, append(c.args, capturePath)...)
			if code != c.code || stderr != c.stderr {
				t.Fatalf("exit %d, stderr %q; want exit %d, %q", code, stderr, c.code, c.stderr)
			}
			for _, s := range c.want {
				if !strings.Contains(stdout, s) {
					t.Errorf("output lacks %q", s)
				}
			}
			if strings.Contains(stdout, goldenHello) {
				t.Error("a wrong key decrypted the chat")
			}
			if n := strings.Count(stdout, "no key fits this session") + strings.Count(stdout, "wrong key:"); n != 2 {
				t.Errorf("%d key notes, want one per session", n)
			}
		})
	}
}

// sessionID of a key-transport frame in -json output.
func (f jsonFrame) sessionID() []byte {
	b, _ := hex.DecodeString(f.SessionID)
	return b
}

func mustJSONFrames(t *testing.T, capturePath string, args ...string) []jsonFrame {
	return replayJSON(t, append(args, capturePath)...)
}

func TestReplayFlags(t *testing.T) {
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-nope", capturePath}, 2, "encchat: replay: flag provided but not defined: -nope\nencchat: hint: run \"encchat replay -h\" for its flags\n"},
		{[]string{"-conn", "x", capturePath}, 2, "encchat: replay: invalid value \"x\" for flag -conn: parse error\nencchat: hint: run \"encchat replay -h\" for its flags\n"},
		{[]string{"-view", "side", capturePath}, 2, "encchat: replay: -view must be sniffer, peer or both, not \"side\"\n"},
		{[]string{"-key", "abcd", capturePath}, 2, "encchat: replay: -key must be 32 bytes in hex (64 digits) or base64 (44 characters)\n"},
		{[]string{"-tamper", "3", capturePath}, 2, "encchat: replay: -tamper wants FRAME:BIT (a frame number from 1, a bit number from 0), not \"3\"\n"},
		{[]string{"-speed", "-1", capturePath}, 2, "encchat: replay: -speed must be a positive factor\n"},
		{[]string{"-json", "-view", "peer", capturePath}, 2, "encchat: replay: -json and -view cannot be used together\n"},
		{[]string{"-pcap", "x.pcap", "-json", "-keylog", "k", capturePath}, 2, "encchat: replay: -pcap exports the wire bytes (and, to .pcapng with a key, the plaintext in comments); it cannot be used with -json\n"},
		{[]string{"-pcap", "x.pcap", "-keylog", "k", capturePath}, 2, "encchat: replay: -pcap x.pcap: a classic pcap has no packet comments for the plaintext\nencchat: hint: name it .pcapng to get each record's text in its packet comment\n"},
		{[]string{}, 2, "encchat: replay needs a capture file\nencchat: hint: encchat replay [-keylog FILE] [-view sniffer|peer|both] CAPTURE\n"},
		{[]string{capturePath, "more"}, 2, "encchat: replay: unexpected argument \"more\"\n"},
		{[]string{"/no/such/capture"}, 1, "encchat: open /no/such/capture: no such file or directory\n"},
		{[]string{"-keylog", "/no/such/keys", capturePath}, 1, "encchat: open /no/such/keys: no such file or directory\n"},
		{[]string{"-conn", "9", capturePath}, 1, "encchat: replay: -conn: the capture has no connection 9 (it has 2)\n"},
		{[]string{"-tamper", "99:1", capturePath}, 1, "encchat: replay: -tamper: there is no frame 99 (the capture has 22)\n"},
		{[]string{"-tamper", "6:1", "-conn", "1", capturePath}, 1, "encchat: replay: -tamper: frame 6 is on connection 2, not on -conn 1\n"},
		{[]string{"-h"}, 0, ""},
	}
	for _, c := range cases {
		stdout, stderr, code := runReplayTest(t, 80, c.args...)
		if code != c.code || stderr != c.stderr {
			t.Errorf("replay %q: exit %d, stderr %q; want exit %d, %q", c.args, code, stderr, c.code, c.stderr)
		}
		// An error about the flags comes before any output.
		if code != 0 && stdout != "" {
			t.Errorf("replay %q printed before failing:\n%s", c.args, stdout)
		}
	}
	// -view peer without a key still runs, and says which flags give one.
	stdout, stderr, code := runReplayTest(t, 80, "-view", "peer", capturePath)
	if code != 0 || !strings.Contains(stdout, "(no key: ciphertext only)") ||
		stderr != "encchat: hint: replay: -view peer shows what the endpoints read, which needs a key: give -keylog FILE, -key KEY or -rsa-key FILE\n" {
		t.Errorf("-view peer without a key: exit %d, stderr %q", code, stderr)
	}
	// Flags after the capture name work too.
	stdout, _, code = runReplayTest(t, 80, capturePath, "-view", "peer", "-keylog", filepath.Join(replayTestdata, "session.keys"))
	if code != 0 || !strings.Contains(stdout, goldenHello) {
		t.Errorf("flags after the capture: exit %d", code)
	}
	// A bad keylog line is named.
	bad := writeCapture(t, "bad.keys", "# keys\nCLASSIC 00 11\n")
	_, stderr, code = runReplayTest(t, 80, "-keylog", bad, capturePath)
	if code != 1 || stderr != "encchat: "+bad+":2: CLASSIC session id is 1 bytes, want 8\n" {
		t.Errorf("bad keylog: exit %d, %q", code, stderr)
	}
}

// TestReplaySpeed: -speed sleeps the recorded gaps, scaled, from the first
// event shown: with -conn N, playback starts at connection N.
func TestReplaySpeed(t *testing.T) {
	_, evs := readEvents(t, strings.Join(goldenLines(t), ""))
	for _, conn := range []int{0, 2} {
		f, err := os.Open(filepath.Join(replayTestdata, "session.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var slept time.Duration
		naps := 0
		opts := &replayOptions{name: "x", view: "sniffer", conn: conn, speed: 0.5, keys: &replayKeys{}, sleep: func(d time.Duration) {
			slept += d
			naps++
		}}
		err = replayCapture(f, opts, newTextOutput(io.Discard, opts))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		first, last := -1.0, 0.0
		for _, ev := range evs {
			if conn == 0 || ev.Conn == conn {
				if first < 0 {
					first = ev.T
				}
				last = ev.T
			}
		}
		want := time.Duration((last - first) / 0.5 * float64(time.Second))
		if d := slept - want; d < -time.Millisecond || d > time.Millisecond || naps < 5 {
			t.Errorf("-conn %d: slept %v in %d naps, want %v (events from %.4fs to %.4fs, speed 0.5)", conn, slept, naps, want, first, last)
		}
	}
}

func TestReplayConnFilter(t *testing.T) {
	stdout, _, code := runReplayTest(t, 80, "-conn", "2", "-view", "peer", "-keylog", filepath.Join(replayTestdata, "session.keys"), filepath.Join(replayTestdata, "session.jsonl"))
	if code != 0 || strings.Contains(stdout, "conn 1 ") || !strings.Contains(stdout, "conn 2 ") || !strings.Contains(stdout, "#6 ") {
		t.Errorf("-conn 2 output:\n%s", stdout)
	}
	// Frame numbers stay those of the whole capture.
	if strings.Contains(stdout, "#1 ") {
		t.Error("-conn renumbered the frames")
	}
}

// TestReplayJSONEvents: -json opens with the capture's header, brackets
// each connection's frames with its open and close (addresses, times,
// counts), ends with the totals, and names the frame bytes "payload", since
// they are a public key as often as a ciphertext.
func TestReplayJSONEvents(t *testing.T) {
	keys := filepath.Join(replayTestdata, "session.keys")
	stdout, stderr, code := runReplayTest(t, 80, "-json", "-keylog", keys, filepath.Join(replayTestdata, "session.jsonl"))
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, `"ciphertext"`) {
		t.Error(`-json still has a "ciphertext" field`)
	}
	type line struct {
		Kind, Capture, Keys, Client, Server, Payload string
		Conn, Index, Frames, Conns                   int
		T, Duration                                  float64
		Closed                                       *bool
		FramesC2S                                    int `json:"frames_c2s"`
		FramesS2C                                    int `json:"frames_s2c"`
	}
	var lines []line
	for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		lines = append(lines, x)
	}
	if h := lines[0]; h.Kind != "capture" || h.Capture != "session.jsonl" || h.Keys != "keylog "+keys+" (2 sessions)" {
		t.Errorf("first line %+v, want the capture's header", h)
	}
	if e := lines[len(lines)-1]; e.Kind != "end" || e.Conns != 2 || e.Frames != 22 {
		t.Errorf("last line %+v, want the totals", e)
	}
	opened := map[int]line{}
	frames := map[int]int{}
	for _, l := range lines[1 : len(lines)-1] {
		switch l.Kind {
		case "open":
			if !strings.HasPrefix(l.Client, "127.0.0.1:") || l.Server != "127.0.0.1:5174" {
				t.Errorf("open %+v lacks the addresses", l)
			}
			opened[l.Conn] = l
		case "close":
			o, ok := opened[l.Conn]
			if !ok || l.Closed == nil || !*l.Closed || l.Client != o.Client || l.T < o.T || math.Abs(l.Duration-(l.T-o.T)) > 1e-6 ||
				l.FramesC2S+l.FramesS2C != frames[l.Conn] {
				t.Errorf("close %+v after open %+v and %d frames", l, o, frames[l.Conn])
			}
			delete(opened, l.Conn)
		case "note":
		default:
			if _, ok := opened[l.Conn]; !ok || l.Index == 0 || l.Payload == "" {
				t.Errorf("frame %+v outside its connection's open and close, or without its payload", l)
			}
			frames[l.Conn]++
			if l.Index == 1 {
				pem, _ := base64.StdEncoding.DecodeString(l.Payload)
				if !strings.HasPrefix(string(pem), "-----BEGIN PUBLIC KEY-----") {
					t.Errorf("frame 1's payload is %q, want the server's PEM key", pem)
				}
			}
		}
	}
	if len(opened) != 0 || len(frames) != 2 {
		t.Errorf("connections never closed: %v; frames per connection %v", opened, frames)
	}
}
