// Tests of the command line (main.go): help and version, the forms of
// -fingerprint, addresses and their default port, the server's limits,
// hints for a port in use, a peer that is not an encchat server, a name
// that does not resolve and a mistyped subcommand, -rsa-key default, and
// forget.

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCLI runs encchat with args in process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := runCLI(t, "help", "server")
	if code != 0 || !strings.HasPrefix(out, "Usage: encchat server [flags]\n\nRun a chat server") ||
		!strings.Contains(out, "-max-clients") || strings.Contains(out, "encchat client  [") {
		t.Errorf("help server: exit %d, stdout:\n%s", code, out)
	}
	code, out, _ = runCLI(t, "replay", "-h")
	if code != 0 || !strings.HasPrefix(out, "Usage: encchat replay [flags] CAPTURE\n\nShow a capture") || !strings.Contains(out, "-rsa-key") {
		t.Errorf("replay -h: exit %d, stdout:\n%s", code, out)
	}
	code, out, _ = runCLI(t, "help", "forget")
	if code != 0 || !strings.Contains(out, "Usage: encchat forget [-known-servers FILE] ADDR") {
		t.Errorf("help forget: exit %d, stdout:\n%s", code, out)
	}
	for _, args := range [][]string{{"help", "frob"}, {"help", "server", "client"}, {"frob"}} {
		code, out, errs := runCLI(t, args...)
		if code != 2 || out != "" || !strings.HasPrefix(errs, "encchat: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and an error", args, code, out, errs)
		}
	}
	code, out, _ = runCLI(t, "help")
	if code != 0 || !strings.Contains(out, "encchat version") || !strings.Contains(out, "encchat forget") {
		t.Errorf("help: exit %d, stdout:\n%s", code, out)
	}
	code, out, _ = runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "encchat ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: exit %d, stdout %q", code, out)
	}
	code, _, errs := runCLI(t, "server", "-bogus")
	if code != 2 || errs != "encchat: server: flag provided but not defined: -bogus\nencchat: hint: run \"encchat server -h\" for its flags\n" {
		t.Errorf("server -bogus: exit %d, stderr %q", code, errs)
	}
}

func TestParseFingerprint(t *testing.T) {
	der, err := x509.MarshalPKIXPublicKey(&testRSAKey(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	bare := base64.RawStdEncoding.EncodeToString(sum[:])
	want := "SHA256:" + bare
	if fp := fingerprint(&testRSAKey(t).PublicKey); fp != want {
		t.Fatalf("fingerprint %s, want %s", fp, want)
	}
	for _, in := range []string{want, "sha256:" + bare, "Sha256:" + bare, bare, " " + want + " ", want + "=", bare + "="} {
		if got, err := parseFingerprint(in); err != nil || got != want {
			t.Errorf("parseFingerprint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "SHA256:", "SHA256:garbage", "SHA256:" + bare[:42], "SHA256:" + bare + "AAAA",
		"MD5:" + bare, "SHA256:" + strings.ReplaceAll(bare, bare[:1], "-"), "SHA256:" + bare[:40] + "!!!"} {
		if got, err := parseFingerprint(in); err == nil {
			t.Errorf("parseFingerprint(%q) = %q, want an error", in, got)
		} else if !strings.Contains(err.Error(), "want SHA256: and 43 base64 characters") {
			t.Errorf("parseFingerprint(%q): %v, want the expected form named", in, err)
		}
	}
}

func TestClientFingerprintForms(t *testing.T) {
	srv := startReplServer(t)
	want := fingerprint(&testRSAKey(t).PublicKey)
	bare := strings.TrimPrefix(want, "SHA256:")
	for _, fp := range []string{bare, "sha256:" + bare} {
		var out, errb syncBuffer
		code := runClientCommand(context.Background(), []string{"-connect", srv.addr, "-name", "bot", "-fingerprint", fp},
			strings.NewReader("/quit\n"), &out, &errb)
		if code != 0 || strings.Contains(errb.String(), "NASTY") || !strings.Contains(out.String(), want+" matches -fingerprint") {
			t.Errorf("-fingerprint %s: exit %d, stdout:\n%s\nstderr:\n%s", fp, code, out.String(), errb.String())
		}
	}
	code, _, errs := runCLI(t, "client", "-connect", srv.addr, "-name", "bot", "-fingerprint", "SHA256:garbage")
	if code != 2 || !strings.Contains(errs, `encchat: client: -fingerprint "SHA256:garbage" is not a key fingerprint: want SHA256: and 43 base64 characters`) {
		t.Errorf("-fingerprint SHA256:garbage: exit %d, stderr %q", code, errs)
	}
}

func TestWithDefaultPort(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":      "127.0.0.1:5174",
		"localhost":      "localhost:5174",
		"::1":            "[::1]:5174",
		"[::1]":          "[::1]:5174",
		"127.0.0.1:6000": "127.0.0.1:6000",
		":5174":          ":5174",
		"[::1]:0":        "[::1]:0",
		"5174":           "127.0.0.1:5174", // a bare port: this machine alone
		"0":              "127.0.0.1:0",
	} {
		if got, err := withDefaultPort(in); err != nil || got != want {
			t.Errorf("withDefaultPort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:http", "a:b:c", "99999"} {
		if got, err := withDefaultPort(in); err == nil {
			t.Errorf("withDefaultPort(%q) = %q, want an error", in, got)
		}
	}
}

func TestServerFlagHints(t *testing.T) {
	code, _, errs := runCLI(t, "server", "-listen", "127.0.0.1:99999")
	if code != 2 || !strings.Contains(errs, "the port must be a number from 0 to 65535") || strings.Contains(errs, "another server") {
		t.Errorf("-listen 127.0.0.1:99999: exit %d, stderr %q", code, errs)
	}
	for _, args := range [][]string{
		{"-rate", "-1"}, {"-rate", "NaN"}, {"-max-clients", "-1"}, {"-max-per-addr", "-1"},
		{"-queue", "0"}, {"-burst", "0"}, {"-handshake-timeout", "0s"},
	} {
		code, _, errs := runCLI(t, append([]string{"server"}, args...)...)
		if code != 2 || !strings.Contains(errs, "encchat: server: "+args[0]+" must be") {
			t.Errorf("server %q: exit %d, stderr %q; want 2 naming %s", args, code, errs, args[0])
		}
	}
	// A port in use, and only then, suggests another server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	code, _, errs = runCLI(t, "server", "-ephemeral", "-listen", ln.Addr().String())
	if code != 1 || !strings.Contains(errs, "address already in use") || !strings.Contains(errs, "is another server running?") {
		t.Errorf("port in use: exit %d, stderr %q", code, errs)
	}
}

// TestClientNotAChatServer: a client pointed at a server of another
// protocol says so, quickly.
func TestClientNotAChatServer(t *testing.T) {
	serve := func(greeting string) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			conn.Write([]byte(greeting))
			conn.SetReadDeadline(time.Now().Add(replWait))
			conn.Read(make([]byte, 1)) // until the client hangs up
		}()
		t.Cleanup(func() { ln.Close(); <-done })
		return ln.Addr().String()
	}

	// An SSH server speaks first.
	addr := serve("SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n")
	code, _, errs := runCLI(t, "client", "-connect", addr, "-name", "bot", "-insecure")
	for _, want := range []string{"frame header is not ten ASCII digits", `SSH-2.0-OpenSSH_9.6p1 Debian-4`, "hint: is this an encchat server?"} {
		if code != 1 || !strings.Contains(errs, want) {
			t.Errorf("SSH server: exit %d, stderr lacks %q:\n%s", code, want, errs)
		}
	}

	// An HTTP server waits for the client: the client gives up after the
	// hello timeout, not the whole handshake's.
	addr = serve("")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = clientHandshake(conn, clientConfig{Name: "bot", Addr: addr, Insecure: true, HelloTimeout: 200 * time.Millisecond})
	var notChat *notChatServerError
	if !errors.As(err, &notChat) || !strings.Contains(err.Error(), "it sent nothing in 200ms") {
		t.Errorf("silent server: %v, want notChatServerError", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the client waited %v", d)
	}
}

// TestReplayRSAKeyDefault: "-rsa-key default" is the key of a server
// started without -key, and a missing key file names where that key lives.
func TestReplayRSAKeyDefault(t *testing.T) {
	config := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", config)
	t.Setenv("HOME", config)
	path, err := defaultServerKeyPath()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, config) {
		t.Skipf("the config dir is not under XDG_CONFIG_HOME here: %s", path)
	}
	capture := filepath.Join(replayTestdata, "session.jsonl")
	code, _, errs := runCLI(t, "replay", "-rsa-key", "server.pem", capture)
	if code != 1 || !strings.Contains(errs, "hint: a server started without -key keeps its key in "+path+": give that path, or -rsa-key default") {
		t.Errorf("-rsa-key server.pem: exit %d, stderr %q", code, errs)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(replayTestdata, "server.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "replay", "-rsa-key", "default", "-view", "peer", capture)
	if code != 0 || !strings.Contains(out, "recovered with") {
		t.Errorf("-rsa-key default: exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
}

// TestServerLogsSilentHangUp: a client that hangs up right after the
// server's first frame is named as one that refused the key, or (modern)
// one that cannot read a modern hello.
func TestServerLogsSilentHangUp(t *testing.T) {
	for _, suite := range []string{suiteClassic, suiteModern} {
		ts := startTestServer(t, serverConfig{Suite: suite})
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := readFrame(conn); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		ev := ts.logged(t, evRefused, "before the client sent a byte: the client refused the key")
		if suite == suiteModern && !strings.Contains(ev.Text, "cannot read a modern hello (the seed's client speaks only the classic suite") {
			t.Errorf("modern: %q does not name the seed's client", ev.Text)
		}
	}
}

// TestForget: "encchat forget ADDR" removes every pin of ADDR and keeps
// the rest of the file, comments included, private.
func TestForget(t *testing.T) {
	known := filepath.Join(t.TempDir(), "known_servers")
	fp := "SHA256:" + strings.Repeat("A", 43)
	content := "# pins\n127.0.0.1:5174 classic " + fp + "\n10.0.0.7:5174 modern " + fp + "\n127.0.0.1:5174 modern " + fp + "\n"
	if err := os.WriteFile(known, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if lines := knownServerLines(known, "127.0.0.1:5174"); len(lines) != 2 || lines[0] != 2 || lines[1] != 4 {
		t.Errorf("knownServerLines = %v, want [2 4]", lines)
	}
	code, out, errs := runCLI(t, "forget", "-known-servers", known, "127.0.0.1") // the default port
	if code != 0 || !strings.Contains(out, "forgot the key of 127.0.0.1:5174 (2 lines removed)") {
		t.Fatalf("forget: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	data, err := os.ReadFile(known)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# pins\n10.0.0.7:5174 modern " + fp + "\n"; string(data) != want {
		t.Errorf("after forget the file reads %q, want %q", data, want)
	}
	if fi, err := os.Stat(known); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after forget: %v %v, want 0600", fi.Mode(), err)
	}
	code, out, _ = runCLI(t, "forget", "-known-servers", known, "127.0.0.1:5174")
	if code != 0 || !strings.Contains(out, "nothing to forget") {
		t.Errorf("forget again: exit %d, stdout %q", code, out)
	}
	code, out, _ = runCLI(t, "forget", "-known-servers", known+".missing", "127.0.0.1:5174")
	if code != 0 || !strings.Contains(out, "nothing pinned") {
		t.Errorf("forget, no file: exit %d, stdout %q", code, out)
	}
	for _, args := range [][]string{{"forget"}, {"forget", "a:1", "b:2"}, {"forget", "127.0.0.1:99999"}} {
		if code, _, errs := runCLI(t, args...); code != 2 || errs == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2", args, code, errs)
		}
	}
}

// cliServer is "encchat server" run in process by a test.
type cliServer struct {
	addr   string
	cancel context.CancelFunc
	done   chan int
	code   int
	ended  bool
}

// startCLIServer runs "encchat server ARGS" until stop or the test's end,
// and reads the address from its banner.
func startCLIServer(t *testing.T, args ...string) *cliServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &cliServer{cancel: cancel, done: make(chan int, 1)}
	pr, pw := io.Pipe()
	go func() {
		s.done <- run(ctx, append([]string{"server", "-no-color"}, args...), strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	for s.addr == "" && lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "Server: "); ok {
			s.addr = a
		}
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() { s.stop() })
	if s.addr == "" {
		t.Fatalf("encchat server %q ended (exit %d) without its banner", args, s.stop())
	}
	return s
}

// stop interrupts the server, as Ctrl-C does, and returns its exit code.
func (s *cliServer) stop() int {
	if !s.ended {
		s.cancel()
		s.code, s.ended = <-s.done, true
	}
	return s.code
}

// TestBarePort: "-listen 5174" and "-connect 5174" are port 5174 of this
// machine (127.0.0.1), where the server listens by default, not a host
// named 5174.
func TestBarePort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close() // the port the server is to take
	srv := startCLIServer(t, "-ephemeral", "-listen", port)
	if srv.addr != "127.0.0.1:"+port {
		t.Fatalf("-listen %s: the server listens on %s, want 127.0.0.1:%s", port, srv.addr, port)
	}
	var out, errb syncBuffer
	code := runClientCommand(context.Background(), []string{"-connect", port, "-name", "bot", "-insecure"}, strings.NewReader("/quit\n"), &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "Connecting to server at 127.0.0.1:"+port+"...") {
		t.Errorf("-connect %s: exit %d, stdout:\n%s\nstderr:\n%s", port, code, out.String(), errb.String())
	}
	if code := srv.stop(); code != 0 {
		t.Errorf("server: exit %d", code)
	}
}

// TestConnectHints: a name that does not resolve is not "is the server
// running?"; a closed port is.
func TestConnectHints(t *testing.T) {
	code, _, errs := runCLI(t, "client", "-connect", "no-such-host.invalid:5174", "-name", "bot", "-insecure")
	if code != 1 || !strings.Contains(errs, "encchat: hint: no such host: check the name in -connect HOST:PORT") || strings.Contains(errs, "server running") {
		t.Errorf("unknown host: exit %d, stderr:\n%s", code, errs)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	code, _, errs = runCLI(t, "client", "-connect", closed, "-name", "bot", "-insecure")
	if code != 1 || !strings.Contains(errs, "connection refused") || !strings.Contains(errs, "encchat: hint: is the server running?") {
		t.Errorf("closed port: exit %d, stderr:\n%s", code, errs)
	}
	code, _, errs = runCLI(t, "server", "-ephemeral", "-listen", "no-such-host.invalid:0")
	if code != 1 || !strings.Contains(errs, "this machine has no such address") {
		t.Errorf("server -listen on an unknown host: exit %d, stderr:\n%s", code, errs)
	}
}

// TestDidYouMean: a mistyped subcommand gets the one it is closest to;
// a word that is none of them gets the list.
func TestDidYouMean(t *testing.T) {
	for typed, want := range map[string]string{"clinet": "client", "sever": "server", "Server": "server", "replya": "replay",
		"verison": "version", "tpa": "tap", "bnech": "bench"} {
		code, _, errs := runCLI(t, typed)
		if code != 2 || !strings.Contains(errs, "encchat: unknown subcommand \""+typed+"\"\nencchat: hint: did you mean \"encchat "+want+"\"?\n") {
			t.Errorf("%s: exit %d, stderr %q, want a hint naming %s", typed, code, errs, want)
		}
	}
	for _, typed := range []string{"xyz", "ab", "chat"} {
		code, _, errs := runCLI(t, typed)
		if code != 2 || strings.Contains(errs, "did you mean") || !strings.Contains(errs, `run "encchat help" for the list of subcommands`) {
			t.Errorf("%s: exit %d, stderr %q, want the list", typed, code, errs)
		}
	}
	if code, _, errs := runCLI(t, "help", "clinet"); code != 2 || !strings.Contains(errs, `did you mean "encchat client"?`) {
		t.Errorf("help clinet: exit %d, stderr %q", code, errs)
	}
}

// TestVersionAndHelpFlags: --version and -version are "version"; "help -h"
// and "help --help" print the usage.
func TestVersionAndHelpFlags(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		code, out, errs := runCLI(t, args...)
		if code != 0 || !strings.HasPrefix(out, "encchat ") || errs != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	for _, args := range [][]string{{"help", "-h"}, {"help", "--help"}, {"help", "-help"}} {
		code, out, errs := runCLI(t, args...)
		if code != 0 || out != usage || errs != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}

// TestDroppedRecordLog: the server's log says once that a record did not
// decrypt ("record record does not decrypt" said it twice).
func TestDroppedRecordLog(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	conn, _ := rawClassic(t, ts.addr, "mallory")
	writeFrame(conn, []byte("AAAA"))
	ev := ts.logged(t, evDropped, "(1 so far)")
	if ev.Text != "mallory: record does not decrypt, dropped (1 so far)" {
		t.Errorf("log: %q", ev.Text)
	}
}

// TestSecuredLineCentred: the walk-through's last line is centred in 70
// columns as the seed's titles are (11 spaces for the classic line).
func TestSecuredLineCentred(t *testing.T) {
	srv := startReplServer(t)
	code, out, errs := runReplClient(t, replOptions(srv.addr, "bot"), strings.NewReader("/quit\n"))
	const cipher = "All communication will be encrypted with AES-256"
	want := "\n" + strings.Repeat(" ", 11) + cipher + strings.Repeat(" ", 11) + "\n"
	if code != 0 || !strings.Contains(out, want) || center70(cipher) != want[1:len(want)-1] {
		t.Errorf("exit %d, stdout lacks %q:\n%s\nstderr:\n%s", code, want, out, errs)
	}
}

// TestFingerprintMismatchHint: the hint after a -fingerprint mismatch says
// where an encchat server prints its fingerprint, and that the seed's
// server prints none.
func TestFingerprintMismatchHint(t *testing.T) {
	srv := startReplServer(t)
	o := replOptions(srv.addr, "bot")
	o.insecure, o.fingerprint = false, "SHA256:"+strings.Repeat("A", 43)
	code, _, errs := runReplClient(t, o, strings.NewReader("never sent\n"))
	if code != 1 || !strings.Contains(errs, "encchat: hint: "+fingerprintSourceHint+"\n") || !strings.Contains(fingerprintSourceHint, "seed's Python server prints none") {
		t.Errorf("exit %d, stderr:\n%s", code, errs)
	}
}
