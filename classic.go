// The classic suite: the seed's protocol, byte for byte, to read beside
// the seed's server.py and client.py. The record seal and open (the seed's
// encrypt_message and decrypt_message), the RSA-OAEP key transport, then
// the handshake, server side and client side, with the protocol's steps
// numbered as in SPEC.md and the README.
//
// It has no integrity and no forward secrecy; encchat keeps it so the
// seed's peers interoperate, and shows what it lacks.

package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

// The seed's configuration.
const (
	rsaBits         = 2048
	rsaBlobSize     = rsaBits / 8 // RSA-OAEP ciphertext of the AES key
	aesKeySize      = 32          // AES-256
	cbcIVSize       = aes.BlockSize
	handshakeOKText = "HANDSHAKE_OK"
)

// classicCipher seals and opens classic records with one AES-256 key.
// It is safe for concurrent use: it keeps no state but the key schedule.
type classicCipher struct {
	block cipher.Block
	rand  io.Reader // where IVs come from: crypto/rand unless a test injects one
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

// seal is the seed's encrypt_message for one text: sealClassic with a
// sealer of its own, so calls may run concurrently.
func (c *classicCipher) seal(text []byte) ([]byte, error) {
	return sealClassic(&classicSealer{c: c}, nil, text)
}

// classicSealer seals a sequence of records with one classicCipher, as a
// member's writer does: it keeps one CBC encrypter and sets its IV for
// each record, as crypto/tls does, where cipher.NewCBCEncrypter copies the
// AES key schedule (about 500 bytes) every time, and it reuses one buffer
// for IV || ciphertext. Measured with bench -rsa-limit, 3 runs each:
// 0.87–1.07 million deliveries/s (median 1.05) with an encrypter per
// record, at the floor of 1 million; 1.54–1.61 million (median 1.56) with
// one kept. Not safe for concurrent use.
type classicSealer struct {
	c      *classicCipher
	enc    cbcMode // made for the first record
	record []byte  // IV || ciphertext, between encryption and base64
}

// cbcMode is a CBC encrypter or decrypter whose IV can be set again.
type cbcMode interface {
	cipher.BlockMode
	SetIV(iv []byte)
}

// sealClassic is the seed's encrypt_message, appending to dst:
// base64(IV || AES-256-CBC(PKCS#7(text))) with a fresh random IV. Both
// classicCipher.seal and a member's writer (which takes texts as strings
// and seals them straight into its write buffer) seal with it.
func sealClassic[T string | []byte](s *classicSealer, dst []byte, text T) ([]byte, error) {
	// PKCS#7, the seed's pad(data, 16): n bytes of value n, n from 1 to
	// 16, so that the text fills whole blocks.
	n := aes.BlockSize - len(text)%aes.BlockSize
	record := slices.Grow(s.record[:0], cbcIVSize+len(text)+n)[:cbcIVSize]
	iv := record[:cbcIVSize]
	if _, err := io.ReadFull(s.c.rand, iv); err != nil {
		return dst, err
	}
	record = append(record, text...)
	for range n {
		record = append(record, byte(n))
	}
	s.encrypter(iv).CryptBlocks(record[cbcIVSize:], record[cbcIVSize:])
	s.record = record
	return base64.StdEncoding.AppendEncode(dst, record), nil
}

// encrypter is AES-256-CBC from iv: one encrypter made at the first
// record, its IV set again for each one after (classicSealer says why).
func (s *classicSealer) encrypter(iv []byte) cipher.BlockMode {
	if s.enc == nil {
		s.enc = cipher.NewCBCEncrypter(s.c.block, iv).(cbcMode)
	} else {
		s.enc.SetIV(iv)
	}
	return s.enc
}

// classicSealedLen is the length of the payload sealClassic makes of n
// bytes of text, so a frame's header can be written before it.
func classicSealedLen(n int) int {
	return base64.StdEncoding.EncodedLen(cbcIVSize + (n/aes.BlockSize+1)*aes.BlockSize)
}

// open is the seed's decrypt_message. Bad base64, a bad length, bad
// padding and bad UTF-8 are all errOpen, so nothing is a padding oracle.
func (c *classicCipher) open(payload []byte) ([]byte, error) {
	padded, err := c.decryptBlocks(payload)
	if err != nil {
		return nil, err
	}
	text, ok := pkcs7Unpad(padded)
	if !ok || !utf8.Valid(text) {
		return nil, errOpen
	}
	return text, nil
}

// decryptBlocks is open without removing the padding: replay uses it to
// show what a flipped bit does to CBC.
func (c *classicCipher) decryptBlocks(payload []byte) ([]byte, error) {
	raw, err := base64.StdEncoding.AppendDecode(nil, payload)
	if err != nil {
		return nil, errOpen
	}
	if len(raw) < cbcIVSize+aes.BlockSize || (len(raw)-cbcIVSize)%aes.BlockSize != 0 {
		return nil, errOpen
	}
	iv, ciphertext := raw[:cbcIVSize], raw[cbcIVSize:]
	cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(ciphertext, ciphertext)
	return ciphertext, nil
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

// classicServerHandshake is the seed's handshake, server side, with the
// key cfg.Key: the chart's Steps 1, 5 and 6 (steps.go's classicSteps), with
// Step 4 received. Step 8 (the username, and the welcome after it) is the
// same in both suites: server.go does it.
func classicServerHandshake(rw io.ReadWriter, cfg *handshakeConfig) (recordCipher, error) {
	cfg = cfg.withDefaults()
	if cfg.Key == nil {
		return nil, errors.New("no server key")
	}

	// Step 1: send the public key, as PEM.
	pemKey, err := marshalPublicKeyPEM(&cfg.Key.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := writeFrame(rw, pemKey); err != nil {
		return nil, err
	}
	cfg.Log(fmt.Sprintf("Sent RSA public key (%d bytes)", len(pemKey)))

	// Step 4: receive the AES key under RSA-OAEP. The blob is exactly 256
	// bytes (one RSA-2048 block); anything else ends here.
	blob, err := readFrameLimit(rw, rsaBlobSize)
	if err != nil {
		return nil, fmt.Errorf("encrypted AES key: %w", err)
	}
	if len(blob) != rsaBlobSize {
		return nil, fmt.Errorf("encrypted AES key is %d bytes, want %d", len(blob), rsaBlobSize)
	}
	cfg.Log(fmt.Sprintf("Received encrypted AES key (%d bytes)", len(blob)))
	// Step 5: decrypt it with the private key.
	var key []byte
	cfg.Limit(func() { key, err = classicUnwrapKey(cfg.Key, blob) })
	if err != nil {
		return nil, err
	}
	cfg.Keylog.logKey(keylogClassic, blob[:8], key)
	cfg.Log(fmt.Sprintf("Decrypted AES-256 key (%d bytes)", len(key)))

	// Step 6: prove it, with HANDSHAKE_OK sealed under that key.
	rc, err := newClassicCipher(key, cfg.Rand)
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
	cfg.Log("Sent encrypted confirmation")
	return rc, nil
}

// classicClientHandshake is the seed's handshake, client side, from the
// server's first frame (Step 1, its PEM key): the chart's Steps 1 to 7,
// numbered in these comments as the seed's chart numbers them. It reports
// the walk-through the seed's client.py prints, [1/5] to [5/5], titled
// from classicSteps in steps.go, which says the chart step of each line
// (chartStep: Steps 1, 2, 3, 4 and 6). Step 8 (the username, and the
// welcome after it) is the same in both suites: session.go does it.
func classicClientHandshake(rw io.ReadWriter, first []byte, cfg *handshakeConfig) (recordCipher, error) {
	cfg = cfg.withDefaults()

	// Step 1: the server's public key, then its check against the pin ([1/5]).
	pub, err := parsePublicKeyPEM(first)
	if err != nil {
		return nil, err
	}
	cfg.Step(handshakeStep{N: 1, Total: 5, Title: classicSteps.title(1),
		Results: []string{fmt.Sprintf("Received RSA-%d public key (%d bytes)", pub.N.BitLen(), len(first))}})
	if cfg.CheckKey == nil {
		return nil, errors.New("no server key check")
	}
	note, err := cfg.CheckKey(pub)
	if err != nil {
		return nil, err
	}
	cfg.Step(handshakeStep{Title: "Server identity", Results: []string{note}})

	// Step 2: a fresh AES-256 key ([2/5]).
	key := make([]byte, aesKeySize)
	if _, err := io.ReadFull(cfg.Rand, key); err != nil {
		return nil, err
	}
	cfg.Step(handshakeStep{N: 2, Total: 5, Title: classicSteps.title(2),
		Results: []string{"Generated AES-256 key (32 random bytes)"}})

	// Step 3: the key encrypted with the server's key, RSA-OAEP ([3/5]).
	blob, err := classicWrapKey(cfg.Rand, pub, key)
	if err != nil {
		return nil, err
	}
	cfg.Step(handshakeStep{N: 3, Total: 5, Title: classicSteps.title(3),
		Results: []string{fmt.Sprintf("Encrypted AES key (%d bytes, RSA-OAEP)", len(blob))}})

	// Step 4: the encrypted key, to the server ([4/5]).
	if err := writeFrame(rw, blob); err != nil {
		return nil, err
	}
	cfg.Keylog.logKey(keylogClassic, blob[:8], key)
	cfg.Step(handshakeStep{N: 4, Total: 5, Title: classicSteps.title(4),
		Results: []string{"Sent encrypted key"}})

	// Steps 6 and 7: the confirmation, and its check: HANDSHAKE_OK proves
	// the server holds the RSA key ([5/5]).
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
	cfg.Step(handshakeStep{N: 5, Total: 5, Title: classicSteps.title(5),
		Results: []string{"Handshake confirmed: " + handshakeOKText}})
	return rc, nil
}
