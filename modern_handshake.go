// The modern suite's two handshake state machines, crypto/tls-shaped: a
// state struct per side whose handshake method runs named steps in order,
// each returning an error.

package main

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"hash"
	"io"
)

// transcript reads and writes handshake frames and hashes every byte of
// them, headers included.
type transcript struct {
	rw   io.ReadWriter
	hash hash.Hash
}

func newTranscript(rw io.ReadWriter) *transcript {
	return &transcript{rw: rw, hash: sha256.New()}
}

// writeMsg sends one handshake message as one frame with a single Write.
func (t *transcript) writeMsg(payload []byte) error {
	frame := appendFrame(make([]byte, 0, headerLen+len(payload)), payload)
	t.hash.Write(frame)
	_, err := t.rw.Write(frame)
	return err
}

// addReceived hashes a frame read by someone else (the client's first frame).
func (t *transcript) addReceived(payload []byte) {
	var h [headerLen]byte
	t.hash.Write(appendFrameHeader(h[:0], len(payload)))
	t.hash.Write(payload)
}

// readMsg reads one handshake frame, refusing a length over the largest
// handshake message before allocating.
func (t *transcript) readMsg(want msgType) ([]byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(t.rw, h[:]); err != nil {
		return nil, fmt.Errorf("modern: reading %v: %w", want, err)
	}
	n, err := parseFrameHeader(h[:])
	if err != nil {
		return nil, fmt.Errorf("modern: reading %v: %w", want, err)
	}
	if n > maxHandshakeMsgLen {
		return nil, decodeError(want, fmt.Sprintf("%d-byte frame, longer than any handshake message", n))
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(t.rw, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("modern: reading %v: %w", want, err)
	}
	t.hash.Write(h[:])
	t.hash.Write(payload)
	return payload, nil
}

func (t *transcript) sum() []byte { return t.hash.Sum(nil) }

// serverHandshakeState is the server's side of one modern handshake.
type serverHandshakeState struct {
	t         *transcript
	priv      *rsa.PrivateKey
	rand      io.Reader
	keylog    *keylog
	report    func(string)
	limit     func(func()) // runs the RSA signature: the server allows one per core at a time
	ecdhKey   *ecdh.PrivateKey
	kemKey    *mlkem.DecapsulationKey768
	hello     *serverHelloMsg
	client    *clientHelloMsg
	helloHash []byte // SHA-256(ServerHello frame, ClientHello frame)
	secrets   modernSecrets
}

// serverHandshakeModern runs the modern handshake from the server's first
// frame to both Finished messages, with the key cfg.Key. cfg.Log gets one
// line per step.
func serverHandshakeModern(rw io.ReadWriter, cfg *handshakeConfig) (recordCipher, error) {
	cfg = cfg.withDefaults()
	hs := &serverHandshakeState{t: newTranscript(rw), priv: cfg.Key, rand: cfg.Rand, keylog: cfg.Keylog, report: cfg.Log, limit: cfg.Limit}
	return hs.handshake()
}

func (hs *serverHandshakeState) handshake() (recordCipher, error) {
	if hs.priv == nil {
		return nil, fmt.Errorf("%w: no server key", alertInternalError)
	}
	if err := hs.sendServerHello(); err != nil {
		return nil, err
	}
	if err := hs.readClientHello(); err != nil {
		return nil, err
	}
	// The client's key shares are checked, and the keys derived, before
	// the server signs anything: a connection with a bad share costs no
	// RSA signature, and gets none.
	if err := hs.establishKeys(); err != nil {
		return nil, err
	}
	if err := hs.sendServerVerify(); err != nil {
		return nil, err
	}
	if err := hs.sendServerFinished(); err != nil {
		return nil, err
	}
	if err := hs.readClientFinished(); err != nil {
		return nil, err
	}
	return newModernCipher(hs.secrets.traffic, true)
}

func (hs *serverHandshakeState) sendServerHello() error {
	spki, err := x509.MarshalPKIXPublicKey(&hs.priv.PublicKey)
	if err != nil {
		return err
	}
	if len(spki) > maxSPKILen {
		return fmt.Errorf("%w: server public key is %d bytes of DER", alertInternalError, len(spki))
	}
	random := make([]byte, modernRandomLen)
	if _, err := io.ReadFull(hs.rand, random); err != nil {
		return err
	}
	if hs.ecdhKey, err = newX25519Key(hs.rand); err != nil {
		return err
	}
	seed := make([]byte, mlkem.SeedSize)
	if _, err := io.ReadFull(hs.rand, seed); err != nil {
		return err
	}
	if hs.kemKey, err = mlkem.NewDecapsulationKey768(seed); err != nil {
		return err
	}
	hs.hello = &serverHelloMsg{
		random:  random,
		x25519:  hs.ecdhKey.PublicKey().Bytes(),
		mlkemEK: hs.kemKey.EncapsulationKey().Bytes(),
		spki:    spki,
	}
	msg := hs.hello.marshal()
	if err := hs.t.writeMsg(msg); err != nil {
		return err
	}
	hs.report(fmt.Sprintf("Sent server hello (%d bytes): X25519 and ML-KEM-768 key shares, RSA-%d public key", len(msg), hs.priv.N.BitLen()))
	return nil
}

func (hs *serverHandshakeState) readClientHello() error {
	msg, err := hs.t.readMsg(typeClientHello)
	if err != nil {
		return err
	}
	if hs.client, err = parseClientHello(msg); err != nil {
		return err
	}
	hs.helloHash = hs.t.sum()
	hs.report(fmt.Sprintf("Received client hello (%d bytes): X25519 share, ML-KEM-768 ciphertext", len(msg)))
	return nil
}

// establishKeys checks the client's two shares with the standard
// library's own checks (crypto/mlkem refuses a ciphertext of the wrong
// length, crypto/ecdh an X25519 share that gives an all-zero secret), and
// derives the session's secrets from them; the transcript hash it needs is
// that of the two hellos only.
func (hs *serverHandshakeState) establishKeys() error {
	kemSecret, err := hs.kemKey.Decapsulate(hs.client.mlkemCT)
	if err != nil {
		return fmt.Errorf("%w: ML-KEM-768 ciphertext: %v", alertIllegalParameter, err)
	}
	ecdhSecret, err := x25519Agree(hs.ecdhKey, hs.client.x25519)
	if err != nil {
		return err
	}
	hs.ecdhKey, hs.kemKey = nil, nil // ephemeral: used once
	if hs.secrets, err = deriveModernSecrets(hybridSecret(kemSecret, ecdhSecret), hs.helloHash); err != nil {
		return err
	}
	hs.keylog.logKey(modernKeylogLabel, hs.client.random, hs.secrets.traffic)
	hs.report("Derived the hybrid secret (ML-KEM-768 + X25519) and AES-256-GCM keys, one per direction")
	return nil
}

func (hs *serverHandshakeState) sendServerVerify() error {
	var sig []byte
	var err error
	hs.limit(func() { sig, err = modernSign(hs.rand, hs.priv, signedContent(hs.helloHash)) })
	if err != nil {
		return err
	}
	if err := hs.t.writeMsg((&serverVerifyMsg{signature: sig}).marshal()); err != nil {
		return err
	}
	hs.report(fmt.Sprintf("Signed the transcript with RSA-PSS-SHA256 (%d-byte signature)", len(sig)))
	return nil
}

func (hs *serverHandshakeState) sendServerFinished() error {
	m := &finishedMsg{typ: typeServerFinished, verifyData: finishedMAC(hs.secrets.serverFinished, hs.t.sum())}
	if err := hs.t.writeMsg(m.marshal()); err != nil {
		return err
	}
	hs.report("Sent server Finished")
	return nil
}

func (hs *serverHandshakeState) readClientFinished() error {
	want := finishedMAC(hs.secrets.clientFinished, hs.t.sum())
	msg, err := hs.t.readMsg(typeClientFinished)
	if err != nil {
		return err
	}
	m, err := parseFinished(msg, typeClientFinished)
	if err != nil {
		return err
	}
	if !hmac.Equal(m.verifyData, want) {
		return alertBadFinished
	}
	hs.report("Verified client Finished: both sides derived the same keys from the same transcript")
	return nil
}

// clientHandshakeState is the client's side of one modern handshake.
type clientHandshakeState struct {
	t         *transcript
	rand      io.Reader
	keylog    *keylog
	check     func(*rsa.PublicKey) error
	report    func(handshakeStep)
	server    *serverHelloMsg
	serverKey *rsa.PublicKey
	hello     *clientHelloMsg
	ecdhKey   *ecdh.PrivateKey
	kemSecret []byte
	secrets   modernSecrets
}

const clientSteps = 5

// clientHandshakeModern continues after the client read the server's first
// frame (first is its payload). cfg.CheckKey is called with the server's
// long-term key before the client sends anything; its error aborts, and
// its note, if any, is a step of the walk-through of its own.
func clientHandshakeModern(rw io.ReadWriter, first []byte, cfg *handshakeConfig) (recordCipher, error) {
	cfg = cfg.withDefaults()
	var check func(*rsa.PublicKey) error
	if cfg.CheckKey != nil {
		check = func(pub *rsa.PublicKey) error {
			note, err := cfg.CheckKey(pub)
			if err == nil && note != "" {
				cfg.Step(handshakeStep{Title: "Server identity", Results: []string{note}})
			}
			return err
		}
	}
	hs := &clientHandshakeState{t: newTranscript(rw), rand: cfg.Rand, keylog: cfg.Keylog, check: check, report: cfg.Step}
	return hs.handshake(first)
}

func (hs *clientHandshakeState) handshake(first []byte) (recordCipher, error) {
	if err := hs.processServerHello(first); err != nil {
		return nil, err
	}
	if err := hs.checkServerKey(); err != nil {
		return nil, err
	}
	if err := hs.generateKeyShares(); err != nil {
		return nil, err
	}
	if err := hs.sendClientHello(); err != nil {
		return nil, err
	}
	// The X25519 agreement waits until the hello is out: it overlaps with
	// the server's signature.
	if err := hs.establishKeys(); err != nil {
		return nil, err
	}
	if err := hs.readServerVerify(); err != nil {
		return nil, err
	}
	if err := hs.readServerFinished(); err != nil {
		return nil, err
	}
	if err := hs.sendClientFinished(); err != nil {
		return nil, err
	}
	return newModernCipher(hs.secrets.traffic, false)
}

func (hs *clientHandshakeState) step(n int, title string, results ...string) {
	hs.report(handshakeStep{N: n, Total: clientSteps, Title: title, Results: results})
}

func (hs *clientHandshakeState) processServerHello(first []byte) error {
	hs.t.addReceived(first)
	m, err := parseServerHello(first)
	if err != nil {
		return err
	}
	if hs.serverKey, err = parsePublicKeyDER(m.spki); err != nil {
		return fmt.Errorf("%w: %v", alertIllegalParameter, err)
	}
	hs.server = m
	hs.step(1, modernSteps.title(1),
		fmt.Sprintf("Received server hello (%d bytes): X25519 and ML-KEM-768 key shares, RSA-%d public key", len(first), hs.serverKey.N.BitLen()))
	return nil
}

func (hs *clientHandshakeState) checkServerKey() error {
	if hs.check == nil {
		return fmt.Errorf("%w: no server key check", alertInternalError)
	}
	return hs.check(hs.serverKey)
}

func (hs *clientHandshakeState) generateKeyShares() error {
	ek, err := mlkem.NewEncapsulationKey768(hs.server.mlkemEK)
	if err != nil {
		return fmt.Errorf("%w: ML-KEM-768 encapsulation key: %v", alertIllegalParameter, err)
	}
	if hs.ecdhKey, err = newX25519Key(hs.rand); err != nil {
		return err
	}
	kemSecret, ct := ek.Encapsulate()
	random := make([]byte, modernRandomLen)
	if _, err := io.ReadFull(hs.rand, random); err != nil {
		return err
	}
	hs.hello = &clientHelloMsg{random: random, x25519: hs.ecdhKey.PublicKey().Bytes(), mlkemCT: ct}
	hs.kemSecret = kemSecret
	hs.step(2, modernSteps.title(2),
		"Generated an ephemeral X25519 key",
		fmt.Sprintf("Encapsulated a fresh ML-KEM-768 secret to the server's key (%d-byte ciphertext)", len(ct)))
	return nil
}

func (hs *clientHandshakeState) sendClientHello() error {
	return hs.t.writeMsg(hs.hello.marshal())
}

func (hs *clientHandshakeState) establishKeys() error {
	ecdhSecret, err := x25519Agree(hs.ecdhKey, hs.server.x25519)
	if err != nil {
		return err
	}
	if hs.secrets, err = deriveModernSecrets(hybridSecret(hs.kemSecret, ecdhSecret), hs.t.sum()); err != nil {
		return err
	}
	hs.ecdhKey, hs.kemSecret = nil, nil // ephemeral: used once
	hs.keylog.logKey(modernKeylogLabel, hs.hello.random, hs.secrets.traffic)
	hs.step(3, modernSteps.title(3),
		fmt.Sprintf("Sent client hello (%d bytes)", clientHelloLen),
		"Combined the X25519 and ML-KEM-768 secrets; derived AES-256-GCM keys, one per direction (HKDF-SHA256)")
	return nil
}

func (hs *clientHandshakeState) readServerVerify() error {
	content := signedContent(hs.t.sum())
	msg, err := hs.t.readMsg(typeServerVerify)
	if err != nil {
		return err
	}
	m, err := parseServerVerify(msg)
	if err != nil {
		return err
	}
	if err := modernVerify(hs.serverKey, content, m.signature); err != nil {
		return err
	}
	hs.step(4, modernSteps.title(4),
		fmt.Sprintf("RSA-PSS-SHA256 signature valid (%d bytes): the server holds the key it sent", len(m.signature)))
	return nil
}

func (hs *clientHandshakeState) readServerFinished() error {
	want := finishedMAC(hs.secrets.serverFinished, hs.t.sum())
	msg, err := hs.t.readMsg(typeServerFinished)
	if err != nil {
		return err
	}
	m, err := parseFinished(msg, typeServerFinished)
	if err != nil {
		return err
	}
	if !hmac.Equal(m.verifyData, want) {
		return alertBadFinished
	}
	return nil
}

func (hs *clientHandshakeState) sendClientFinished() error {
	m := &finishedMsg{typ: typeClientFinished, verifyData: finishedMAC(hs.secrets.clientFinished, hs.t.sum())}
	if err := hs.t.writeMsg(m.marshal()); err != nil {
		return err
	}
	hs.step(5, modernSteps.title(5),
		"Server Finished valid: the server derived the same keys from the same transcript",
		"Sent client Finished: records are now AES-256-GCM, numbered per direction")
	return nil
}
