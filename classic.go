// The classic suite: the seed's protocol, byte for byte.
//
// RSA-OAEP (SHA-1, MGF1-SHA-1, empty label) carries a 32-byte AES key, and
// every record is base64(IV || AES-256-CBC(PKCS#7(text))). It has no
// integrity and no forward secrecy; encchat keeps it so the seed's peers
// interoperate, and shows what it lacks.

package main

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	asmbase64 "github.com/segmentio/asm/base64"
	"io"
	"slices"
	"unicode/utf8"
)

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

// classicHandshake is the seed's handshake, server side: PEM key out,
// RSA-OAEP blob in, HANDSHAKE_OK out.
func (s *server) classicHandshake(rw frameRW) (recordCipher, error) {
	if err := writeFrame(rw, s.pemKey); err != nil {
		return nil, err
	}
	s.logf("HANDSHAKE", "Sent RSA public key (%d bytes)", len(s.pemKey))
	blob, err := readFrame(rw)
	if err != nil {
		return nil, err
	}
	s.logf("HANDSHAKE", "Received encrypted AES key (%d bytes)", len(blob))
	s.rsaSlots <- struct{}{}
	key, err := classicUnwrapKey(s.cfg.Key, blob)
	<-s.rsaSlots
	if err != nil {
		return nil, err
	}
	s.cfg.Keylog.logKey("CLASSIC", blob[:8], key)
	s.logf("HANDSHAKE", "Decrypted AES-256 key (%d bytes)", len(key))
	rc, err := newClassicCipher(key, s.cfg.Rand)
	if err != nil {
		return nil, err
	}
	ok, err := rc.seal([]byte(handshakeOKText))
	if err != nil {
		return nil, err
	}
	if err := writeFrame(rw, ok); err != nil {
		return nil, err
	}
	s.logf("HANDSHAKE", "Sent encrypted confirmation")
	return rc, nil
}

// classicHandshake is the seed's handshake, client side, as five steps.
func (cfg clientConfig) classicHandshake(rw frameRW, first []byte, check func(*rsa.PublicKey, string) (string, error)) (recordCipher, error) {
	if cfg.Suite == suiteModern {
		return nil, &downgradeError{Addr: cfg.Addr, Want: suiteModern, Got: suiteClassic, Why: "-suite modern was asked for"}
	}
	pub, err := parsePublicKeyPEM(first)
	if err != nil {
		return nil, err
	}
	note, err := check(pub, suiteClassic)
	if err != nil {
		return nil, err
	}
	cfg.Step(handshakeStep{N: 1, Total: 5, Title: "Receiving server's RSA public key...",
		Results: []string{fmt.Sprintf("Received RSA-%d public key (%d bytes)", pub.N.BitLen(), len(first)), note}})

	key := make([]byte, aesKeySize)
	if _, err := io.ReadFull(cfg.Rand, key); err != nil {
		return nil, err
	}
	cfg.Step(handshakeStep{N: 2, Total: 5, Title: "Generating AES-256 symmetric key...",
		Results: []string{"Generated AES-256 key (32 random bytes)"}})

	blob, err := classicWrapKey(cfg.Rand, pub, key)
	if err != nil {
		return nil, err
	}
	cfg.Step(handshakeStep{N: 3, Total: 5, Title: "Encrypting AES key with server's RSA public key...",
		Results: []string{fmt.Sprintf("Encrypted AES key (%d bytes, RSA-OAEP)", len(blob))}})

	if err := writeFrame(rw, blob); err != nil {
		return nil, err
	}
	cfg.Keylog.logKey("CLASSIC", blob[:8], key)
	cfg.Step(handshakeStep{N: 4, Total: 5, Title: "Sending encrypted AES key to server...",
		Results: []string{"Sent encrypted key"}})

	rc, err := newClassicCipher(key, cfg.Rand)
	if err != nil {
		return nil, err
	}
	payload, err := readFrame(rw)
	if err != nil {
		return nil, err
	}
	ok, err := rc.open(payload)
	if err != nil || string(ok) != handshakeOKText {
		return nil, errors.New("server confirmation does not decrypt to HANDSHAKE_OK: it does not hold the key it sent")
	}
	cfg.Step(handshakeStep{N: 5, Total: 5, Title: "Receiving encrypted confirmation from server...",
		Results: []string{"Handshake confirmed: " + handshakeOKText}})
	return rc, nil
}
