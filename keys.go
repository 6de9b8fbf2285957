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
	"os"
	"path/filepath"
	"runtime"
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

// knownServer is one line of the known-servers file.
type knownServer struct {
	addr, suite, fingerprint string
}

// knownServerLine is a pin with where it is in the file (1-based).
type knownServerLine struct {
	knownServer
	line int
}

// parseKnownServers reads every pin of a known-servers file. Comments and
// blank lines are skipped; any other line that is not "address suite
// fingerprint" with a suite of classic or modern is an error naming the
// file and the line, so that a typo never passes for a weaker pin.
func parseKnownServers(path string, data []byte) ([]knownServerLine, error) {
	var pins []knownServerLine
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want \"address suite fingerprint\"", path, i+1)
		}
		if f[1] != suiteClassic && f[1] != suiteModern {
			return nil, fmt.Errorf("%s:%d: unknown suite %q: want %s or %s", path, i+1, f[1], suiteClassic, suiteModern)
		}
		pins = append(pins, knownServerLine{knownServer{addr: f[0], suite: f[1], fingerprint: f[2]}, i + 1})
	}
	return pins, nil
}

// findKnownServer returns addr's first pin.
func findKnownServer(pins []knownServerLine, addr string) (knownServerLine, bool) {
	for _, p := range pins {
		if p.addr == addr {
			return p, true
		}
	}
	return knownServerLine{}, false
}

// lookupKnownServer returns the pin recorded for addr, if any. A missing
// file is an empty one.
func lookupKnownServer(path, addr string) (knownServer, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return knownServer{}, false, nil
	}
	if err != nil {
		return knownServer{}, false, err
	}
	pins, err := parseKnownServers(path, data)
	if err != nil {
		return knownServer{}, false, err
	}
	p, ok := findKnownServer(pins, addr)
	return p.knownServer, ok, nil
}

// updateKnownServer changes addr's pin in the known-servers file. Under
// the file's lock it reads the file again, and decide says, from addr's
// pin as it is now (ok false: none), what to write: a pin to append, or to
// put in place of the current line; nil writes nothing, and an error
// (a different pin that appeared meanwhile) writes nothing and is returned.
// The rest of the file, its comments and its mode are kept; the new file
// replaces the old one by a rename, so a reader sees one or the other.
func updateKnownServer(path, addr string, decide func(have knownServer, ok bool) (*knownServer, error)) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
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
	have, ok := findKnownServer(pins, addr)
	k, err := decide(have.knownServer, ok)
	if err != nil || k == nil {
		return err
	}
	line := fmt.Sprintf("%s %s %s\n", k.addr, k.suite, k.fingerprint)
	lines := strings.SplitAfter(string(data), "\n")
	if ok {
		lines[have.line-1] = line
	} else {
		if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
			lines[len(lines)-1] += "\n"
		}
		lines = append(lines, line)
	}
	return replaceFile(path, strings.Join(lines, ""), mode)
}

// pinStore keeps a client's pins: the known-servers file, or the
// browser's storage (browser_pins.go).
type pinStore interface {
	lookup(addr string) (knownServer, bool, error)
	update(addr string, decide func(have knownServer, ok bool) (*knownServer, error)) error
	where() string // as the walk-through names it: "pinned in " + where()
}

// knownServersFile is the known-servers file as a pinStore.
type knownServersFile string

func (f knownServersFile) lookup(addr string) (knownServer, bool, error) {
	return lookupKnownServer(string(f), addr)
}

func (f knownServersFile) update(addr string, decide func(have knownServer, ok bool) (*knownServer, error)) error {
	return updateKnownServer(string(f), addr, decide)
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
// padding. It returns the form the banner prints, or an error naming it.
func parseFingerprint(s string) (string, error) {
	b64 := strings.TrimSpace(s)
	if len(b64) > len("SHA256:") && strings.EqualFold(b64[:len("SHA256:")], "SHA256:") {
		b64 = b64[len("SHA256:"):]
	}
	sum, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
	if err != nil || len(sum) != sha256.Size {
		return "", fmt.Errorf("%q is not a key fingerprint: want SHA256: and 43 base64 characters, as the server's banner prints it (\"Key: RSA-2048 SHA256:...\")", s)
	}
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum), nil
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
		if f := strings.Fields(line); len(f) > 0 && f[0] == addr {
			lines = append(lines, i+1)
		}
	}
	return lines
}

// forgetKnownServer removes addr's pins from the known-servers file, as
// OpenSSH's "ssh-keygen -R" does, and returns how many lines it removed.
// The file is rewritten under its lock, mode 0600, through a temporary
// file and a rename.
func forgetKnownServer(path, addr string) (int, error) {
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
		if f := strings.Fields(line); len(f) > 0 && f[0] == addr {
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
