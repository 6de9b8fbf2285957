// Tests of keys.go: PEM public keys as the seed sends them, fingerprints,
// the server's key file, and the known-servers file that pins keys.

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var pemLine = regexp.MustCompile(`^[A-Za-z0-9+/=]{1,64}$`)

func TestClassicPublicKeyPEM(t *testing.T) {
	priv := testRSAKey(t)
	p, err := marshalPublicKeyPEM(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 450 {
		t.Errorf("PEM is %d bytes, want 450 (pycryptodome's export_key)", len(p))
	}
	if bytes.HasSuffix(p, []byte("\n")) {
		t.Errorf("PEM ends with a newline")
	}
	if !isPublicKeyPEM(p) {
		t.Errorf("isPublicKeyPEM(own PEM) = false")
	}
	lines := strings.Split(string(p), "\n")
	if lines[0] != "-----BEGIN PUBLIC KEY-----" || lines[len(lines)-1] != "-----END PUBLIC KEY-----" {
		t.Errorf("PEM armour: %q … %q", lines[0], lines[len(lines)-1])
	}
	body := lines[1 : len(lines)-1]
	for i, l := range body {
		if !pemLine.MatchString(l) || (i < len(body)-1 && len(l) != 64) {
			t.Errorf("PEM line %d is %d columns: %q", i+1, len(l), l)
		}
	}

	pub, err := parsePublicKeyPEM(p)
	if err != nil || !pub.Equal(&priv.PublicKey) {
		t.Fatalf("parse(marshal) = %v, %v", pub, err)
	}
	if pub, err := parsePublicKeyPEM(append(bytes.Clone(p), '\n')); err != nil || !pub.Equal(&priv.PublicKey) {
		t.Errorf("trailing newline refused: %v", err)
	}
	for name, data := range map[string][]byte{
		"trailing junk":  append(bytes.Clone(p), []byte("\njunk")...),
		"second block":   append(append(bytes.Clone(p), '\n'), p...),
		"empty":          nil,
		"truncated":      p[:200],
		"private key":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, priv)}),
		"RSA-1024":       pemOf(t, rsa1024(t)),
		"ECDSA P-256":    pemOf(t, ecdsaKey(t)),
		"garbage inside": []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
	} {
		if pub, err := parsePublicKeyPEM(data); err == nil {
			t.Errorf("%s: accepted (%v)", name, pub)
		}
	}
	if isPublicKeyPEM([]byte(handshakeOKText)) {
		t.Errorf("isPublicKeyPEM(HANDSHAKE_OK) = true")
	}
}

func mustPKCS8(t *testing.T, k any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemOf(t *testing.T, pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func rsa1024(t *testing.T) *rsa.PublicKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

func ecdsaKey(t *testing.T) *ecdsa.PublicKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

func TestClassicFingerprint(t *testing.T) {
	priv := testRSAKey(t)
	fp := fingerprint(&priv.PublicKey)
	if !regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q is not SHA256:<43 base64 chars, no padding>", fp)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	sum := sha256.Sum256(der)
	if want := "SHA256:" + strings.TrimRight(base64.StdEncoding.EncodeToString(sum[:]), "="); fp != want {
		t.Errorf("fingerprint %q, want %q", fp, want)
	}
	if !sameFingerprint(fp, fp+"=") {
		t.Errorf("sameFingerprint refuses the padded form")
	}
	if sameFingerprint(fp, fingerprint(rsa1024(t))) {
		t.Errorf("sameFingerprint matched different keys")
	}
}

func TestClassicLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "server.pem")
	k1, created, err := loadOrCreateKey(path, rand.Reader)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if k1.N.BitLen() != rsaBits {
		t.Errorf("created RSA-%d", k1.N.BitLen())
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("key file is not PKCS#8 PEM: %.40q", data)
	}
	k2, created, err := loadOrCreateKey(path, rand.Reader)
	if err != nil || created {
		t.Fatalf("reload: created=%v err=%v", created, err)
	}
	if !k1.Equal(k2) {
		t.Errorf("reload gave a different key")
	}

	// A PKCS#1 file (pycryptodome's export_key) loads too; junk and small
	// keys do not, and an unreadable file is not silently replaced.
	pkcs1 := filepath.Join(dir, "pkcs1.pem")
	os.WriteFile(pkcs1, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testRSAKey(t))}), 0o600)
	if k, _, err := loadOrCreateKey(pkcs1, rand.Reader); err != nil || !k.Equal(testRSAKey(t)) {
		t.Errorf("PKCS#1 key: %v", err)
	}
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a key"), 0o600)
	if _, _, err := loadOrCreateKey(junk, rand.Reader); err == nil {
		t.Errorf("junk key file accepted")
	}
	if d, _ := os.ReadFile(junk); string(d) != "not a key" {
		t.Errorf("junk key file was overwritten")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := parsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, ec)})); err == nil {
		t.Errorf("ECDSA private key accepted")
	}
}

func TestClassicKnownServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "encchat", "known_servers")
	if _, ok, err := lookupKnownServer(path, "127.0.0.1:5174"); ok || err != nil {
		t.Fatalf("missing file: ok=%v err=%v", ok, err)
	}
	fpA, fpB := "SHA256:"+strings.Repeat("a", 43), "SHA256:"+strings.Repeat("b", 43)
	a := knownServer{addr: "127.0.0.1:5174", suite: suiteClassic, fingerprint: fpA}
	b := knownServer{addr: "10.0.0.2:5174", suite: suiteModern, fingerprint: fpB}
	for _, k := range []knownServer{a, b} {
		if err := updateKnownServer(path, k.addrs(), func([]knownServerLine) (*knownServer, error) { return &k, nil }); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []knownServer{a, b} {
		got, ok, err := lookupKnownServer(path, want.addr)
		if err != nil || !ok || got != want {
			t.Errorf("lookup %s = %+v ok=%v err=%v", want.addr, got, ok, err)
		}
	}
	if _, ok, _ := lookupKnownServer(path, "127.0.0.1:5175"); ok {
		t.Errorf("lookup of an unknown address succeeded")
	}
	data, _ := os.ReadFile(path)
	if want := "127.0.0.1:5174 classic " + fpA + "\n10.0.0.2:5174 modern " + fpB + "\n"; string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}

	// Comments and blank lines are skipped; a malformed line anywhere is an
	// error with its file and line number, not a silent miss.
	os.WriteFile(path, []byte("# pins\n\n"+string(data)), 0o600)
	if got, ok, err := lookupKnownServer(path, b.addr); !ok || err != nil || got != b {
		t.Errorf("with comments: %+v ok=%v err=%v", got, ok, err)
	}
	os.WriteFile(path, []byte("# pins\n\n"+string(data)+"broken line\n"), 0o600)
	for _, addr := range []string{b.addr, "nowhere:1"} {
		if _, _, err := lookupKnownServer(path, addr); err == nil || !strings.Contains(err.Error(), path+":5:") {
			t.Errorf("malformed line, looking up %s: err=%v, want one naming line 5", addr, err)
		}
	}
}

// TestKnownServersUnknownSuite: a suite other than the two known ones
// ("Modern", a typo) is an error naming the file and the line, not a pin
// that quietly fails to protect, in a lookup and in the write after a
// handshake.
func TestKnownServersUnknownSuite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_servers")
	fp := fingerprint(&testRSAKey(t).PublicKey)
	content := "# pins\n10.0.0.7:5174 classic " + fp + "\n127.0.0.1:5174 Modern " + fp + "\n"
	os.WriteFile(path, []byte(content), 0o600)
	want := path + `:3: unknown suite "Modern": want classic or modern`
	if _, _, err := lookupKnownServer(path, "127.0.0.1:5174"); err == nil || err.Error() != want {
		t.Errorf("lookup: err = %v, want %q", err, want)
	}
	err := updateKnownServer(path, []string{"10.0.0.7:5174"}, func([]knownServerLine) (*knownServer, error) {
		t.Errorf("decide called on a file that does not parse")
		return nil, nil
	})
	if err == nil || err.Error() != want {
		t.Errorf("update: err = %v, want %q", err, want)
	}
	if data, _ := os.ReadFile(path); string(data) != content {
		t.Errorf("the file changed: %q", data)
	}
}

// TestKnownServersLockedWrites: eight first contacts with eight different
// keys write at once; under the file's lock exactly one pin is written and
// every other write is refused as a changed key.
func TestKnownServersLockedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_servers")
	cfg := clientConfig{KnownServers: path}
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fp := fmt.Sprintf("SHA256:%043d", i)
			errs[i] = cfg.recordServerKey(knownServer{addr: "127.0.0.1:5174", suite: suiteClassic, fingerprint: fp})
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		var km *keyMismatchError
		switch {
		case err == nil && won < 0:
			won = i
		case err == nil:
			t.Errorf("writers %d and %d both pinned a key", won, i)
		case !errors.As(err, &km):
			t.Errorf("writer %d: %v, want a keyMismatchError", i, err)
		}
	}
	data, _ := os.ReadFile(path)
	if want := fmt.Sprintf("127.0.0.1:5174 classic SHA256:%043d\n", won); string(data) != want {
		t.Errorf("known_servers = %q, want %q", data, want)
	}
}

// TestKeyModeWarning: a server key file that group or others may read is
// reported with its mode and the chmod that fixes it; 0600 and 0400 are not.
func TestKeyModeWarning(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		want string // "" for no warning
	}{
		{0o600, ""},
		{0o400, ""},
		{0o640, "is readable by group (mode 0640)"},
		{0o644, "is readable by group and others (mode 0644)"},
		{0o606, "is readable and writable by others (mode 0606)"},
	} {
		path := filepath.Join(dir, fmt.Sprintf("key %04o.pem", uint32(tc.mode)))
		if err := os.WriteFile(path, []byte("key"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, tc.mode)
		w, err := checkKeyMode(path)
		switch {
		case err != nil:
			t.Errorf("%04o: %v", uint32(tc.mode), err)
		case tc.want == "" && w != nil:
			t.Errorf("%04o: warned %q", uint32(tc.mode), w)
		case tc.want == "":
		case w == nil:
			t.Errorf("%04o: no warning", uint32(tc.mode))
		case !strings.Contains(w.String(), "the server key "+path+" "+tc.want+": anyone who can read it"):
			t.Errorf("%04o: warning %q, want %q", uint32(tc.mode), w, tc.want)
		case w.Fix() != "chmod 600 '"+path+"'":
			t.Errorf("%04o: fix %q", uint32(tc.mode), w.Fix())
		}
	}
	if _, err := checkKeyMode(filepath.Join(dir, "missing.pem")); err == nil {
		t.Errorf("missing file: no error")
	}
}

// TestServerWarnsOfOpenKey runs "encchat server -key FILE" with a 0644 key
// file: it starts (a warning, not a refusal), and its stderr names the
// file, the mode and the chmod that fixes it; the file is left as it is.
// With a 0600 key it says nothing of the kind.
func TestServerWarnsOfOpenKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, testRSAKey(t))})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the server stops as soon as it has started
	for _, mode := range []os.FileMode{0o644, 0o600} {
		os.Chmod(path, mode)
		var out, errb bytes.Buffer
		code := runServer(ctx, []string{"-listen", "127.0.0.1:0", "-key", path}, &out, &errb)
		if code != 0 || !strings.Contains(out.String(), "Key file: "+path+"\n") {
			t.Fatalf("mode %04o: exit %d, stdout:\n%s\nstderr:\n%s", uint32(mode), code, &out, &errb)
		}
		stderr := errb.String()
		want := "encchat: warning: the server key " + path + " is readable by group and others (mode 0644): anyone who can read it can pose as this server and decrypt every recorded classic session\n" +
			"encchat: hint: to keep it private to its owner: chmod 600 " + path + "\n"
		if mode == 0o644 && stderr != want {
			t.Errorf("0644 key: stderr\n%q\nwant\n%q", stderr, want)
		}
		if mode == 0o600 && strings.Contains(stderr, "warning") {
			t.Errorf("0600 key: stderr %q", stderr)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("the key file's mode changed to %v (%v)", fi.Mode(), err)
		}
	}
}

// TestPinSpellingsAreOneServer: with 127.0.0.1:PORT pinned modern, every
// other spelling of that address (a name for it, another case, a port
// with leading zeros) reaches the same classic server and
// is refused as a downgrade, not met as a first contact; a pin made under
// "localhost" holds for 127.0.0.1 the same way. The file is not changed.
func TestPinSpellingsAreOneServer(t *testing.T) {
	ts := startTestServer(t, serverConfig{}) // classic
	_, port, _ := net.SplitHostPort(ts.addr)
	fp := fingerprint(&testRSAKey(t).PublicKey)
	for _, pinned := range []string{"127.0.0.1:" + port, "localhost:" + port} {
		known := filepath.Join(t.TempDir(), "known_servers")
		content := pinned + " modern " + fp + "\n"
		if err := os.WriteFile(known, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, spelling := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port,
			"127.0.0.1:0" + port, "LocalHost:00" + port} {
			_, err := dialTest(t, spelling, clientConfig{Name: "mallory", KnownServers: known})
			var dg *downgradeError
			if !errors.As(err, &dg) || dg.Addr != pinned {
				t.Errorf("pinned %s, reached as %s: err = %v, want the downgrade refused, naming %s", pinned, spelling, err, pinned)
			}
		}
		if data, _ := os.ReadFile(known); string(data) != content {
			t.Errorf("pinned %s: the file became %q", pinned, data)
		}
	}
}

// TestPinOneLinePerServer: a modern server met as "localhost" and then as
// 127.0.0.1 keeps one line, and the first spelling's pin is what the
// second finds.
func TestPinOneLinePerServer(t *testing.T) {
	ts := startTestServer(t, serverConfig{Suite: suiteModern})
	_, port, _ := net.SplitHostPort(ts.addr)
	known := filepath.Join(t.TempDir(), "known_servers")
	var notes []string
	step := func(s handshakeStep) { notes = append(notes, s.Results...) }
	for i, spelling := range []string{"localhost:" + port, "127.0.0.1:" + port, "LOCALHOST:0" + port} {
		notes = nil
		if _, err := dialTest(t, spelling, clientConfig{Name: fmt.Sprint("user", i), KnownServers: known, Step: step}); err != nil {
			t.Fatalf("%s: %v", spelling, err)
		}
		first := spelling == "localhost:"+port
		if got := strings.Join(notes, "\n"); strings.Contains(got, "first seen") != first {
			t.Errorf("%s: notes %q (first contact: %v)", spelling, got, first)
		}
	}
	data, _ := os.ReadFile(known)
	if want := "localhost:" + port + " modern " + fingerprint(&testRSAKey(t).PublicKey) + "\n"; string(data) != want {
		t.Errorf("known_servers = %q, want %q", data, want)
	}
}

// TestCanonicalAddr: the spellings of one address are one canonical
// address; loopback addresses are one host; an address that is not
// HOST:PORT is an error.
func TestCanonicalAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5174": "127.0.0.1:5174", "127.0.0.1:05174": "127.0.0.1:5174", "LocalHost.:5174": "localhost:5174",
		"[::FFFF:127.0.0.1]:5174": "127.0.0.1:5174", "[2001:DB8::0:1]:5174": "[2001:db8::1]:5174",
		"Chat.Example.:5174": "chat.example:5174", "host_1:1": "host_1:1",
	} {
		if got, err := canonicalAddr(in); got != want || err != nil {
			t.Errorf("canonicalAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "5174", "host", "host:", "host:65536", "host:-1", "host:+1", "a b:1", "a..b:1", ":1", "-a:1", "SHA256:x", "\ufeffhost:1"} {
		if got, err := canonicalAddr(bad); err == nil {
			t.Errorf("canonicalAddr(%q) = %q, want an error", bad, got)
		}
	}
	if a, b := pinKey("127.0.0.1:1"), pinKey("[::1]:1"); a != b || a != pinKey("localhost:1") || a == pinKey("localhost:2") {
		t.Errorf("pinKey: 127.0.0.1 %q, ::1 %q, want one host", a, b)
	}
	if pinKey("127.0.0.1:1") == pinKey("10.0.0.1:1") {
		t.Errorf("pinKey folds a non-loopback address")
	}
	// A name reaching an address: the pin names both (CheckHostIP).
	peer := &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 5174}
	if got, err := pinAddrs("Chat.Example:5174", peer); err != nil || strings.Join(got, ",") != "chat.example:5174,10.0.0.5:5174" {
		t.Errorf("pinAddrs = %q, %v", got, err)
	}
	if got, _ := pinAddrs("10.0.0.5:05174", peer); len(got) != 1 {
		t.Errorf("pinAddrs of the reached address itself = %q, want one", got)
	}
}

// TestPinFoundByReachedAddress: a pin recorded under a name and the
// address it reached is found through another name for that address, and
// another key there is refused, naming the pin as the file spells it.
func TestPinFoundByReachedAddress(t *testing.T) {
	known := filepath.Join(t.TempDir(), "known_servers")
	fp := fingerprint(&testRSAKey(t).PublicKey)
	other := fingerprint(&otherRSAKey(t).PublicKey)
	os.WriteFile(known, []byte("chat.example:5174,10.0.0.5:5174 modern "+fp+"\n"), 0o600)
	cfg := clientConfig{Addr: "teacher.lan:5174", KnownServers: known, peer: &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 5174}}
	_, _, err := cfg.checkServerKey(&otherRSAKey(t).PublicKey, suiteModern)
	var km *keyMismatchError
	if !errors.As(err, &km) || km.Addr != "10.0.0.5:5174" || km.Got != other {
		t.Fatalf("another key at the reached address: %v", err)
	}
	note, seen, err := cfg.checkServerKey(&testRSAKey(t).PublicKey, suiteModern)
	if err != nil || !strings.Contains(note, "matches the pin") {
		t.Fatalf("the pinned key: %q, %v", note, err)
	}
	if err := cfg.recordServerKey(*seen); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(known)
	if want := "chat.example:5174,10.0.0.5:5174,teacher.lan:5174 modern " + fp + "\n"; string(data) != want {
		t.Errorf("known_servers = %q, want the new name on the server's one line %q", data, want)
	}
}

// TestKnownServersAsNotepadWrites: a byte order mark and CRLF line ends
// are read as the pins they are; a line whose address or fingerprint is
// not one is an error naming the file and the line.
func TestKnownServersAsNotepadWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_servers")
	fp := fingerprint(&testRSAKey(t).PublicKey)
	os.WriteFile(path, []byte("\ufeff127.0.0.1:5174 modern "+fp+"\r\n# pins\r\n10.0.0.7:5174 classic "+fp+"\r\n"), 0o600)
	for addr, suite := range map[string]string{"127.0.0.1:5174": suiteModern, "localhost:5174": suiteModern, "10.0.0.7:5174": suiteClassic} {
		if got, ok, err := lookupKnownServer(path, addr); !ok || err != nil || got.suite != suite || got.fingerprint != fp {
			t.Errorf("lookup %s: %+v ok=%v err=%v, want %s", addr, got, ok, err, suite)
		}
	}
	if lines := knownServerLines(path, "LOCALHOST:5174"); len(lines) != 1 || lines[0] != 1 {
		t.Errorf("knownServerLines = %v, want [1]", lines)
	}
	for _, bad := range []struct{ line, want string }{
		{"host classic " + fp, `bad address: "host" is not HOST:PORT`},
		{"127.0.0.1:5174,nowhere classic " + fp, `bad address: "nowhere" is not HOST:PORT`},
		{"127.0.0.1:99999 classic " + fp, "the port must be a number"},
		{fp + " classic 127.0.0.1:5174", "bad address"},
		{"127.0.0.1:5174 classic SHA256:short", "is not a key fingerprint"},
	} {
		os.WriteFile(path, []byte("# pins\n"+bad.line+"\n"), 0o600)
		_, _, err := lookupKnownServer(path, "10.9.9.9:1")
		if err == nil || !strings.HasPrefix(err.Error(), path+":2: ") || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("line %q: err = %v, want %s:2: ... %s", bad.line, err, path, bad.want)
		}
	}
}

// TestKnownServersThroughALink: a known_servers that is a symbolic link
// stays a link; the pin is written to the file it names, by a rename in
// that file's directory; forget does the same.
func TestKnownServersThroughALink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "dotfiles", "known_servers")
	os.MkdirAll(filepath.Dir(target), 0o700)
	fp := fingerprint(&testRSAKey(t).PublicKey)
	os.WriteFile(target, []byte("# mine\n10.0.0.7:5174 classic "+fp+"\n"), 0o640)
	link := filepath.Join(dir, "config", "known_servers")
	os.MkdirAll(filepath.Dir(link), 0o700)
	if err := os.Symlink("../dotfiles/known_servers", link); err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, serverConfig{})
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "a", KnownServers: link}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("known_servers is no longer a link: %v %v", st.Mode(), err)
	}
	data, _ := os.ReadFile(target)
	if want := "# mine\n10.0.0.7:5174 classic " + fp + "\n" + ts.addr + " classic " + fp + "\n"; string(data) != want {
		t.Errorf("the link's target = %q, want %q", data, want)
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o640 {
		t.Errorf("the target's mode became %v", st.Mode().Perm())
	}
	if n, err := forgetKnownServer(link, "10.0.0.7:5174"); n != 1 || err != nil {
		t.Fatalf("forget through the link: %d, %v", n, err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("forget replaced the link: %v %v", st.Mode(), err)
	}
	if data, _ := os.ReadFile(target); strings.Contains(string(data), "10.0.0.7") {
		t.Errorf("forget left the pin in the target: %q", data)
	}
}

// FuzzCanonicalAddr: a canonical address is its own canonical form, so a
// pin written once is found again by the same spelling; and a pin line
// parses to canonical addresses or to an error naming its line.
func FuzzCanonicalAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5174", "LOCALHOST.:05174", "[::ffff:7f00:1]:1", "[fe80::1%eth0]:5174", "a,b:1", "\ufeffx:1", "host_1.:0"} {
		f.Add(s)
	}
	fp := "SHA256:" + strings.Repeat("A", 43)
	f.Fuzz(func(t *testing.T, s string) {
		if c, err := canonicalAddr(s); err == nil {
			if again, err := canonicalAddr(c); again != c || err != nil {
				t.Fatalf("canonicalAddr(%q) = %q, then %q, %v", s, c, again, err)
			}
			if pinKey(pinKey(c)) != pinKey(c) {
				t.Fatalf("pinKey(%q) is not stable", c)
			}
		}
		pins, err := parseKnownServers("k", []byte(s+" modern "+fp+"\n"))
		if err != nil {
			if !regexp.MustCompile(`^k:\d+: `).MatchString(err.Error()) {
				t.Fatalf("error %q names no line", err)
			}
			return
		}
		for _, p := range pins {
			for _, a := range p.addrs() {
				if c, err := canonicalAddr(a); c != a || err != nil {
					t.Fatalf("line %q gave the address %q, not canonical (%q, %v)", s, a, c, err)
				}
			}
		}
	})
}

// lookupKnownServer returns the first pin that names addr, if any: the
// tests' look at one pin, through what the client reads (lookupKnownServers).
func lookupKnownServer(path, addr string) (knownServer, bool, error) {
	c, err := canonicalAddr(addr)
	if err != nil {
		return knownServer{}, false, err
	}
	have, err := lookupKnownServers(path, []string{c})
	if err != nil || len(have) == 0 {
		return knownServer{}, false, err
	}
	return have[0].knownServer, true, nil
}
