// Suites, key files and fingerprints.
//
// The classic suite is the seed's: RSA-OAEP (SHA-1, MGF1-SHA-1, empty label)
// carries a 32-byte AES key, and every record is
// base64(IV || AES-256-CBC(PKCS#7(text))). It has no integrity and no forward
// secrecy; encchat keeps it byte for byte so the original peers interoperate,
// and shows what it lacks. The modern suite lives in modern.go.

package main

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
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
	"slices"
	"strings"
	"unicode/utf8"

	asmbase64 "github.com/segmentio/asm/base64"
)

// Classic suite constants, from the seed's protocol.
const (
	rsaBits         = 2048
	rsaBlobSize     = rsaBits / 8 // RSA-OAEP ciphertext of the AES key
	aesKeySize      = 32          // AES-256
	cbcIVSize       = aes.BlockSize
	handshakeOKText = "HANDSHAKE_OK"
)

// Suite names, as on the command line and in known_servers.
const (
	suiteClassic = "classic"
	suiteModern  = "modern"
)

var (
	// errOpen is the one error for every classic record that does not open:
	// bad base64, bad length, bad padding and bad UTF-8 look the same to the
	// caller, so nothing can be used as a padding oracle.
	errOpen = errors.New("record does not decrypt")

	// errKeyTransport is the one error for every RSA-OAEP blob that does not
	// decrypt to an AES-256 key (Manger's attack needs distinct errors).
	errKeyTransport = errors.New("key transport blob does not decrypt")
)

// recordCipher is one side's sealed channel after a handshake, in either
// suite. seal returns a frame payload; open takes one. Calls in each
// direction must be serialized (the modern suite counts records).
type recordCipher interface {
	seal(text []byte) ([]byte, error)
	open(payload []byte) ([]byte, error)
}

// classicCipher seals and opens classic records with one AES-256 key.
// It is safe for concurrent use: it keeps no state but the key schedule.
type classicCipher struct {
	block cipher.Block
	rand  io.Reader
}

func newClassicCipher(key []byte, random io.Reader) (*classicCipher, error) {
	if len(key) != aesKeySize {
		return nil, fmt.Errorf("classic key is %d bytes, want %d", len(key), aesKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if random == nil {
		random = rand.Reader
	}
	return &classicCipher{block: block, rand: random}, nil
}

// sealedLen is the base64 length of a classic record holding n bytes of text.
func sealedLen(n int) int {
	padded := (n/aes.BlockSize + 1) * aes.BlockSize
	return base64.StdEncoding.EncodedLen(cbcIVSize + padded)
}

// seal returns base64(IV || AES-256-CBC(PKCS#7(text))) with a fresh IV.
func (c *classicCipher) seal(text []byte) ([]byte, error) {
	return c.appendSeal(nil, text)
}

// appendSeal appends the sealed record for text to dst.
func (c *classicCipher) appendSeal(dst, text []byte) ([]byte, error) {
	raw, err := encryptCBC(c, nil, c.rand, nil, text)
	if err != nil {
		return dst, err
	}
	return appendRecordBase64(dst, raw), nil
}

// recordBase64 is the classic records' base64: the standard encoding, with
// AVX2 for the bulk of each record and encoding/base64 for the rest and for
// any input it does not take, so it accepts and rejects exactly what
// encoding/base64 does (FuzzRecordBase64 checks). Encoding and decoding were
// a quarter of the CPU of every delivery with encoding/base64 alone.
var recordBase64 = asmbase64.StdEncoding

// appendRecordBase64 appends the base64 of src to dst.
func appendRecordBase64(dst, src []byte) []byte {
	n := recordBase64.EncodedLen(len(src))
	dst = slices.Grow(dst, n)
	recordBase64.Encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+n]
}

// cbcMode is a CBC mode whose IV can be reset between records, the way
// crypto/tls reuses one per connection instead of building one per record.
type cbcMode interface {
	cipher.BlockMode
	SetIV(iv []byte)
}

// classicSealer seals a stream of records for one goroutine, reusing its
// CBC encrypter and buffer; the server's writers keep one each.
type classicSealer struct {
	c    *classicCipher
	mode cbcMode
	raw  []byte        // IV || ciphertext between encryption and encoding
	ivs  *bufio.Reader // c.rand read ivBatch bytes at a time
}

// ivBatch is how many random bytes a sealer reads at once: 16 IVs. Each
// byte is used once, and IVs only need to be unpredictable to whoever
// chooses the plaintext, which holding them in memory does not change;
// one read per record cost more than the AES-CBC encryption itself.
const ivBatch = 16 * cbcIVSize

func (c *classicCipher) sealer() *classicSealer { return &classicSealer{c: c} }

// appendFrame appends text's whole frame (header and sealed record) to dst
// without allocating once its buffer has grown.
func (s *classicSealer) appendFrame(dst []byte, text string) ([]byte, error) {
	if s.ivs == nil {
		s.ivs = bufio.NewReaderSize(s.c.rand, ivBatch)
	}
	raw, err := encryptCBC(s.c, &s.mode, s.ivs, s.raw, text)
	if err != nil {
		return dst, err
	}
	s.raw = raw
	start := len(dst)
	dst = append(dst, "0000000000"...)
	dst = appendRecordBase64(dst, raw)
	for i, n := start+headerLen-1, len(dst)-start-headerLen; i >= start; i-- {
		dst[i] = byte('0' + n%10)
		n /= 10
	}
	return dst, nil
}

// encryptCBC returns IV || AES-256-CBC(PKCS#7(text)) with a fresh IV from
// random, in scratch when it is large enough. A non-nil mode keeps the
// encrypter for the next call.
func encryptCBC[T ~string | ~[]byte](c *classicCipher, mode *cbcMode, random io.Reader, scratch []byte, text T) ([]byte, error) {
	padLen := aes.BlockSize - len(text)%aes.BlockSize
	n := cbcIVSize + len(text) + padLen
	if cap(scratch) < n {
		scratch = make([]byte, n)
	}
	raw := scratch[:n]
	iv := raw[:cbcIVSize]
	if _, err := io.ReadFull(random, iv); err != nil {
		return nil, err
	}
	body := raw[cbcIVSize:]
	copy(body, text)
	for i := len(text); i < len(body); i++ {
		body[i] = byte(padLen)
	}
	c.cbc(mode, iv, cipher.NewCBCEncrypter).CryptBlocks(body, body)
	return raw, nil
}

// cbc returns a CBC mode for iv: *mode with its IV reset when there is
// one, else a new one, kept in *mode when mode is not nil.
func (c *classicCipher) cbc(mode *cbcMode, iv []byte, newMode func(cipher.Block, []byte) cipher.BlockMode) cipher.BlockMode {
	if mode != nil && *mode != nil {
		(*mode).SetIV(iv)
		return *mode
	}
	m := newMode(c.block, iv)
	if mode != nil {
		*mode, _ = m.(cbcMode)
	}
	return m
}

// open reverses seal. Every failure is errOpen.
func (c *classicCipher) open(payload []byte) ([]byte, error) {
	return c.opener().open(payload)
}

// classicOpener opens a stream of records for one goroutine, reusing its
// CBC decrypter and buffer: what open returns is valid until its next call.
type classicOpener struct {
	c    *classicCipher
	mode cbcMode
	raw  []byte
}

func (c *classicCipher) opener() *classicOpener { return &classicOpener{c: c} }

// open reverses seal. Every failure is errOpen.
func (o *classicOpener) open(payload []byte) ([]byte, error) {
	padded, err := o.decryptBlocks(payload)
	if err != nil {
		return nil, err
	}
	text, ok := pkcs7Unpad(padded)
	if !ok || !utf8.Valid(text) {
		return nil, errOpen
	}
	return text, nil
}

// decryptBlocks decodes and CBC-decrypts a classic record without removing
// the padding: replay uses it to show what a flipped bit does to CBC.
func (c *classicCipher) decryptBlocks(payload []byte) ([]byte, error) {
	return c.opener().decryptBlocks(payload)
}

func (o *classicOpener) decryptBlocks(payload []byte) ([]byte, error) {
	n := recordBase64.DecodedLen(len(payload))
	if cap(o.raw) < n {
		o.raw = make([]byte, n)
	}
	raw := o.raw[:n]
	n, err := recordBase64.Decode(raw, payload)
	if err != nil {
		return nil, errOpen
	}
	raw = raw[:n]
	if len(raw) < cbcIVSize+aes.BlockSize || (len(raw)-cbcIVSize)%aes.BlockSize != 0 {
		return nil, errOpen
	}
	body := raw[cbcIVSize:]
	o.c.cbc(&o.mode, raw[:cbcIVSize], cipher.NewCBCDecrypter).CryptBlocks(body, body)
	return body, nil
}

// pkcs7Unpad checks and strips PKCS#7 padding in constant time with respect
// to the padding bytes.
func pkcs7Unpad(b []byte) ([]byte, bool) {
	if len(b) == 0 || len(b)%aes.BlockSize != 0 {
		return nil, false
	}
	padLen := int(b[len(b)-1])
	good := subtle.ConstantTimeLessOrEq(1, padLen) & subtle.ConstantTimeLessOrEq(padLen, aes.BlockSize)
	for i := 1; i <= aes.BlockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, padLen)
		same := subtle.ConstantTimeByteEq(b[len(b)-i], byte(padLen))
		// Where i is inside the padding, the byte must equal padLen.
		good &= subtle.ConstantTimeSelect(inPad, same, 1)
	}
	if good != 1 {
		return nil, false
	}
	return b[:len(b)-padLen], true
}

// classicWrapKey encrypts an AES key for the server: RSA-OAEP with SHA-1 and
// MGF1-SHA-1 and an empty label, pycryptodome's PKCS1_OAEP default.
func classicWrapKey(random io.Reader, pub *rsa.PublicKey, key []byte) ([]byte, error) {
	return rsa.EncryptOAEP(sha1.New(), random, pub, key, nil)
}

// classicUnwrapKey recovers the AES key from a client's RSA-OAEP blob.
// Every failure, including a key of the wrong size, is errKeyTransport.
func classicUnwrapKey(priv *rsa.PrivateKey, blob []byte) ([]byte, error) {
	key, err := oaepDecrypt(priv, blob, nil)
	if err != nil || len(key) != aesKeySize {
		return nil, errKeyTransport
	}
	return key, nil
}

// oaepDecrypt is RSA-OAEP-SHA1 decryption with an explicit label, so the
// Wycheproof vectors with labels run through the same code.
func oaepDecrypt(priv *rsa.PrivateKey, blob, label []byte) ([]byte, error) {
	out, err := rsa.DecryptOAEP(sha1.New(), nil, priv, blob, label)
	if err != nil {
		return nil, errKeyTransport
	}
	return out, nil
}

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
