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
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return knownServer{}, false, fmt.Errorf("%s:%d: want \"address suite fingerprint\"", path, i+1)
		}
		if f[0] == addr {
			return knownServer{addr: f[0], suite: f[1], fingerprint: f[2]}, true, nil
		}
	}
	return knownServer{}, false, nil
}

// addKnownServer appends a pin to the known-servers file, unless an
// identical one is there already (two clients pinning at once).
func addKnownServer(path string, k knownServer) error {
	if have, ok, err := lookupKnownServer(path, k.addr); err == nil && ok && have == k {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s %s %s\n", k.addr, k.suite, k.fingerprint)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
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
// The file is rewritten through a temporary file and a rename.
func forgetKnownServer(path, addr string) (int, error) {
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
	tmp, err := os.CreateTemp(filepath.Dir(path), ".known_servers-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(strings.Join(keep, "")); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	return removed, os.Rename(tmp.Name(), path)
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
