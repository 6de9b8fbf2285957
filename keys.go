// Keys: the server's key file, PEM public keys as the seed sends them,
// OpenSSH-style fingerprints, and the known-servers file that pins them.

package main

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// marshalPublicKeyPEM encodes pub the way pycryptodome's export_key does:
// SubjectPublicKeyInfo, 64-column base64, no trailing newline.
func marshalPublicKeyPEM(pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return bytes.TrimSuffix(out, []byte("\n")), nil
}

// isPublicKeyPEM reports whether a first handshake frame is a classic PEM block.
func isPublicKeyPEM(frame []byte) bool {
	return bytes.HasPrefix(frame, []byte("-----BEGIN PUBLIC KEY-----"))
}

// parsePublicKeyPEM reads the server's key from the first classic frame.
// It accepts a trailing newline and nothing else after the block.
func parsePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("server key is not a PEM public key")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("server key has trailing data")
	}
	return parsePublicKeyDER(block.Bytes)
}

// parsePublicKeyDER parses a SubjectPublicKeyInfo and insists on RSA-2048.
func parsePublicKeyDER(der []byte) (*rsa.PublicKey, error) {
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("server key: %v", err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("server key is not RSA")
	}
	if pub.N.BitLen() != rsaBits {
		return nil, fmt.Errorf("server key is RSA-%d, want RSA-%d", pub.N.BitLen(), rsaBits)
	}
	return pub, nil
}

// fingerprint is the OpenSSH-style SHA256 fingerprint of a public key's
// SubjectPublicKeyInfo DER.
func fingerprint(pub *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "SHA256:?"
	}
	sum := sha256.Sum256(der)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// sameFingerprint compares fingerprints, tolerating base64 padding.
func sameFingerprint(a, b string) bool {
	a, b = strings.TrimRight(a, "="), strings.TrimRight(b, "=")
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// configDir is encchat's directory under the user's config dir.
func configDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "encchat"), nil
}

// loadOrCreateKey reads an RSA-2048 PKCS#8 PEM private key from path, or
// creates one (mode 0600) when the file does not exist.
func loadOrCreateKey(path string, random io.Reader) (key *rsa.PrivateKey, created bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := parsePrivateKeyPEM(data)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %v", path, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	key, err = rsa.GenerateKey(random, rsaBits)
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, false, err
	}
	return key, true, f.Close()
}

// keyModeWarning is a server key file that group or others may read or
// write: anyone who can read it can pose as the server and decrypt every
// recorded classic session. OpenSSH refuses such a key; the server warns
// (see the README's Decisions).
type keyModeWarning struct {
	Path string
	Mode os.FileMode // the permission bits
}

func (w *keyModeWarning) String() string {
	var who, what []string
	if w.Mode&0o070 != 0 {
		who = append(who, "group")
	}
	if w.Mode&0o007 != 0 {
		who = append(who, "others")
	}
	if w.Mode&0o044 != 0 {
		what = append(what, "readable")
	}
	if w.Mode&0o022 != 0 {
		what = append(what, "writable")
	}
	return fmt.Sprintf("the server key %s is %s by %s (mode %04o): anyone who can read it can pose as this server and decrypt every recorded classic session",
		w.Path, strings.Join(what, " and "), strings.Join(who, " and "), uint32(w.Mode))
}

// Fix is the command that keeps the key to its owner.
func (w *keyModeWarning) Fix() string {
	path := w.Path
	if strings.ContainsAny(path, " \t'\"$`\\!*?;&|<>()[]{}#~") {
		path = "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
	}
	return "chmod 600 " + path
}

// checkKeyMode returns a warning when group or others may read or write
// the key file at path (nil when only its owner may). Windows has no such
// permission bits: nothing is checked there.
func checkKeyMode(path string) (*keyModeWarning, error) {
	if runtime.GOOS == "windows" {
		return nil, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return &keyModeWarning{Path: path, Mode: perm}, nil
	}
	return nil, nil
}

// parsePrivateKeyPEM reads an RSA-2048 private key (PKCS#8, or PKCS#1 as
// pycryptodome's export_key writes it).
func parsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, err
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("key is not RSA")
	}
	if rk.N.BitLen() != rsaBits {
		return nil, fmt.Errorf("key is RSA-%d, want RSA-%d", rk.N.BitLen(), rsaBits)
	}
	return rk, nil
}

// knownServer is one line of the known-servers file: the server's
// addresses (one HOST:PORT, or several joined by commas, as OpenSSH's
// known_hosts writes "host,ip"), its suite and its key's fingerprint.
type knownServer struct {
	addr, suite, fingerprint string
}

// addrs returns the line's addresses.
func (k knownServer) addrs() []string { return strings.Split(k.addr, ",") }

// named returns the first of k's addresses that names the same server as
// one of addrs, or "" when none does.
func (k knownServer) named(addrs []string) string {
	for _, a := range k.addrs() {
		for _, b := range addrs {
			if pinKey(a) == pinKey(b) {
				return a
			}
		}
	}
	return ""
}

// knownServerLine is a pin with where it is in the file (1-based) and,
// after a lookup, the address by which the lookup found it.
type knownServerLine struct {
	knownServer
	line int
	as   string
}

// canonicalAddr spells a HOST:PORT address one way, so that the spellings
// of one address are one pin: the host in lower case without a trailing
// dot, an IP address in its shortest form (an IPv4-mapped IPv6 address as
// IPv4), the port without leading zeros. Anything else is an error.
func canonicalAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not HOST:PORT", addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", fmt.Errorf("%q: the port must be a number from 0 to 65535, not %q", addr, port)
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	} else if !isHostName(host) {
		return "", fmt.Errorf("%q: %q is neither an IP address nor a host name", addr, host)
	}
	return net.JoinHostPort(host, strconv.FormatUint(n, 10)), nil
}

// isHostName reports whether s can be a DNS name: letters, digits, '-',
// '_' and dots between non-empty labels.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// pinKey is what two canonical addresses share when they name one server:
// the address itself, except that "localhost" and every loopback address
// (127.0.0.0/8, ::1) are this machine, one host whatever the spelling.
func pinKey(canon string) string {
	host, port, err := net.SplitHostPort(canon)
	if err != nil {
		return canon
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return net.JoinHostPort("localhost", port)
	}
	return canon
}

// pinAddrs are the addresses a connection's pin is found under: the
// address as typed, in canonical spelling, then the address the
// connection reached when that is another server's spelling (OpenSSH's
// CheckHostIP). A new pin names both, so that a later client finds it
// by either, and a name that now leads to another key is refused.
func pinAddrs(typed string, peer net.Addr) ([]string, error) {
	addr, err := canonicalAddr(typed)
	if err != nil {
		return nil, err
	}
	addrs := []string{addr}
	if tcp, ok := peer.(*net.TCPAddr); ok {
		if reached, err := canonicalAddr(tcp.String()); err == nil && pinKey(reached) != pinKey(addr) {
			addrs = append(addrs, reached)
		}
	}
	return addrs, nil
}

// parseKnownServers reads every pin of a known-servers file. Comments and
// blank lines are skipped, as are a UTF-8 byte order mark and CRLF line
// ends (Notepad writes both); any other line that is not "address suite
// fingerprint", with addresses that are HOST:PORT, a suite of classic or
// modern and a SHA256 fingerprint, is an error naming the file and the
// line, so that a typo never passes for a weaker pin.
func parseKnownServers(path string, data []byte) ([]knownServerLine, error) {
	var pins []knownServerLine
	text := strings.TrimPrefix(string(data), "\uFEFF")
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want \"address suite fingerprint\"", path, i+1)
		}
		var addrs []string
		for _, a := range strings.Split(f[0], ",") {
			c, err := canonicalAddr(a)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: bad address: %v: want HOST:PORT, or several joined by commas", path, i+1, err)
			}
			addrs = append(addrs, c)
		}
		if f[1] != suiteClassic && f[1] != suiteModern {
			return nil, fmt.Errorf("%s:%d: unknown suite %q: want %s or %s", path, i+1, f[1], suiteClassic, suiteModern)
		}
		if _, err := parseFingerprint(f[2]); err != nil || !strings.HasPrefix(f[2], "SHA256:") {
			return nil, fmt.Errorf("%s:%d: %q is not a key fingerprint: want SHA256: and 43 base64 characters", path, i+1, f[2])
		}
		k := knownServer{addr: strings.Join(addrs, ","), suite: f[1], fingerprint: f[2]}
		pins = append(pins, knownServerLine{knownServer: k, line: i + 1})
	}
	return pins, nil
}

// findKnownServers returns the pins that name one of addrs, each once,
// in the file's order.
func findKnownServers(pins []knownServerLine, addrs []string) []knownServerLine {
	var found []knownServerLine
	for _, p := range pins {
		if as := p.named(addrs); as != "" {
			p.as = as
			found = append(found, p)
		}
	}
	return found
}

// lookupKnownServers returns the pins recorded for addrs. A missing file
// is an empty one.
func lookupKnownServers(path string, addrs []string) ([]knownServerLine, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pins, err := parseKnownServers(path, data)
	if err != nil {
		return nil, err
	}
	return findKnownServers(pins, addrs), nil
}

// updateKnownServer changes the pin of the server at addrs in the
// known-servers file. Under the file's lock it reads the file again, and
// decide says, from the pins that name the server now (none: a first
// contact), what its one pin is to be: it replaces the first of them, and
// the others go (one server, one pin); with none, it is appended. nil
// writes nothing, and an error (a different pin that appeared meanwhile)
// writes nothing and is returned. The rest of the file, its comments and
// its mode are kept; the new file replaces the old one by a rename in its
// own directory, so a reader sees one or the other, and a known-servers
// file that is a symbolic link stays one: the file it names is replaced.
func updateKnownServer(path string, addrs []string, decide func(have []knownServerLine) (*knownServer, error)) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	path, err := followLinks(path)
	if err != nil {
		return err
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return fmt.Errorf("locking %s: %v", path, err)
	}
	defer unlock()

	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	pins, err := parseKnownServers(path, data)
	if err != nil {
		return err
	}
	have := findKnownServers(pins, addrs)
	k, err := decide(have)
	if err != nil || k == nil {
		return err
	}
	line := fmt.Sprintf("%s %s %s\n", k.addr, k.suite, k.fingerprint)
	lines := strings.SplitAfter(string(data), "\n")
	if len(have) == 0 {
		if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
			lines[len(lines)-1] += "\n"
		}
		lines = append(lines, line)
	} else {
		for _, h := range have[1:] {
			lines[h.line-1] = ""
		}
		lines[have[0].line-1] = line
	}
	return replaceFile(path, strings.Join(lines, ""), mode)
}

// followLinks follows path's symbolic links to the file they name (which
// may not exist yet), so that a rewrite replaces that file in its own
// directory and leaves the links as they are.
func followLinks(path string) (string, error) {
	for range 40 {
		st, err := os.Lstat(path)
		if err != nil || st.Mode()&os.ModeSymlink == 0 {
			return path, nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// pinStore keeps a client's pins: the known-servers file, or the
// browser's storage (browser_pins.go).
type pinStore interface {
	lookup(addrs []string) ([]knownServerLine, error)
	update(addrs []string, decide func(have []knownServerLine) (*knownServer, error)) error
	where() string // as the walk-through names it: "pinned in " + where()
}

// knownServersFile is the known-servers file as a pinStore.
type knownServersFile string

func (f knownServersFile) lookup(addrs []string) ([]knownServerLine, error) {
	return lookupKnownServers(string(f), addrs)
}

func (f knownServersFile) update(addrs []string, decide func(have []knownServerLine) (*knownServer, error)) error {
	return updateKnownServer(string(f), addrs, decide)
}

func (f knownServersFile) where() string { return string(f) }

// replaceFile writes content to path through a temporary file in the same
// directory and a rename.
func replaceFile(path, content string, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// parseFingerprint reads a fingerprint as people paste it: with or without
// the "SHA256:" prefix, in any case of the prefix, with or without base64
// padding. It returns the form encchat's banner prints, or an error
// naming it.
func parseFingerprint(s string) (string, error) {
	b64 := strings.TrimSpace(s)
	if len(b64) > len("SHA256:") && strings.EqualFold(b64[:len("SHA256:")], "SHA256:") {
		b64 = b64[len("SHA256:"):]
	}
	sum, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
	if err != nil || len(sum) != sha256.Size {
		return "", fmt.Errorf("%q is not a key fingerprint: want SHA256: and 43 base64 characters, as an encchat server's banner prints it (\"Key: RSA-2048 SHA256:...\")", s)
	}
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum), nil
}

// namesAddr reports whether a line of the known-servers file is a pin
// that names addr (in any spelling). It reads the line leniently, for
// forget and for the "Offending key" lines: a broken line names nothing.
func namesAddr(line, addr string) bool {
	f := strings.Fields(line)
	if len(f) == 0 || strings.HasPrefix(f[0], "#") {
		return false
	}
	want, err := canonicalAddr(addr)
	if err != nil {
		return false
	}
	for _, a := range strings.Split(strings.TrimPrefix(f[0], "\uFEFF"), ",") {
		if c, err := canonicalAddr(a); err == nil && pinKey(c) == pinKey(want) {
			return true
		}
	}
	return false
}

// knownServerLines returns the line numbers of addr's pins in the
// known-servers file.
func knownServerLines(path, addr string) []int {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var lines []int
	for i, line := range strings.Split(string(data), "\n") {
		if namesAddr(line, addr) {
			lines = append(lines, i+1)
		}
	}
	return lines
}

// forgetKnownServer removes addr's pins, in any spelling, from the
// known-servers file, as OpenSSH's "ssh-keygen -R" does, and returns how
// many lines it removed. The file (the one a symbolic link names) is
// rewritten under its lock, mode 0600, through a temporary file in its
// directory and a rename.
func forgetKnownServer(path, addr string) (int, error) {
	path, err := followLinks(path)
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return 0, fmt.Errorf("locking %s: %v", path, err)
	}
	defer unlock()
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var keep []string
	removed := 0
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if namesAddr(line, addr) {
			removed++
			continue
		}
		keep = append(keep, line)
	}
	if removed == 0 {
		return 0, nil
	}
	return removed, replaceFile(path, strings.Join(keep, ""), 0o600)
}

// defaultKeyName is what "-rsa-key default" says: the key a server started
// without -key uses.
const defaultKeyName = "default"

// defaultServerKeyPath is where a server started without -key keeps its key.
func defaultServerKeyPath() (string, error) {
	dir, err := configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "server.pem"), nil
}

// resolveKeyPath turns "default" into the default key's path; any other
// name is a file name ("./default" names a file called default).
func resolveKeyPath(name string) string {
	if name != defaultKeyName {
		return name
	}
	if path, err := defaultServerKeyPath(); err == nil {
		return path
	}
	return name
}
