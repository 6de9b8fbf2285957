// What both suites share: the record-cipher interface a handshake returns,
// the suite names, the sizes of the seed's keys, and the errors every
// decryption failure collapses into. The classic suite is in classic.go,
// the modern one in modern.go.

package main

import (
	"crypto/aes"
	"errors"
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
