// What both suites share: the record-cipher interface a handshake returns,
// the configuration every handshake takes, the suite names, the errors
// every decryption failure collapses into, and the plain names of a
// handshake's timeouts and early closes (handshakeError). The classic
// suite is in classic.go, the modern one in modern.go and
// modern_handshake.go.

package main

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
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

// handshakeConfig is what a handshake needs, in either suite. Both suites'
// handshakes have the same shape, so a server or client picks one in one
// place:
//
//	server: func(rw io.ReadWriter, cfg *handshakeConfig) (recordCipher, error)
//	client: func(rw io.ReadWriter, first []byte, cfg *handshakeConfig) (recordCipher, error)
//
// where first is the server's first frame, which the client read to choose.
type handshakeConfig struct {
	Rand   io.Reader // nil: crypto/rand
	Keylog *keylog   // nil: no key log

	// The server's side.
	Key   *rsa.PrivateKey
	Log   func(string) // one line per step
	Limit func(func()) // runs the RSA decryption (classic) or signature (modern): the server allows one per core at a time

	// The client's side.
	CheckKey func(*rsa.PublicKey) (note string, err error) // the server key against its pin; an error aborts before the client sends anything
	Step     func(handshakeStep)                           // the walk-through
}

// withDefaults returns a copy of cfg (which may be nil) with every nil
// field but Key, Keylog and CheckKey filled in.
func (cfg *handshakeConfig) withDefaults() *handshakeConfig {
	var c handshakeConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Log == nil {
		c.Log = func(string) {}
	}
	if c.Limit == nil {
		c.Limit = func(f func()) { f() }
	}
	if c.Step == nil {
		c.Step = func(handshakeStep) {}
	}
	return &c
}

// handshakeError names timeouts and early closes plainly.
func handshakeError(err error, during string) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("handshake timeout during %s", during)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("closed during %s", during)
	}
	return fmt.Errorf("%s: %w", during, err)
}
