// The modern suite: its messages, primitives, key schedule and records.
//
// A hybrid ephemeral key exchange (X25519 + ML-KEM-768), the server's
// RSA-PSS signature over the transcript, Finished both ways, then
// AES-256-GCM records whose nonces count records per direction. The server
// speaks first, as in the classic suite, so a client learns the suite from
// the first frame. Each handshake message is one frame in the usual 10-digit
// framing:
//
//	server → client  ServerHello     magic, random, X25519 share, ML-KEM-768 encapsulation key, RSA key
//	client → server  ClientHello     random, X25519 share, ML-KEM-768 ciphertext
//	server → client  ServerVerify    RSA-PSS-SHA256 signature over the transcript hash
//	server → client  ServerFinished  HMAC-SHA256 over the transcript hash
//	client → server  ClientFinished  HMAC-SHA256 over the transcript hash
//
// The transcript hash is SHA-256 over every handshake frame, headers
// included. The two handshake state machines are in modern_handshake.go; the
// key schedule and sizes are in the README.

package main

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// Wire constants of the modern suite. Every length is checked against
// these before anything is allocated.
const (
	modernMagic     = "ENCCHAT-MODERN/1" // starts the ServerHello; a classic first frame starts "-----BEGIN"
	modernRandomLen = 32
	x25519ShareLen  = 32
	mlkemEKLen      = mlkem.EncapsulationKeySize768 // 1184
	mlkemCTLen      = mlkem.CiphertextSize768       // 1088
	maxSPKILen      = 550                           // RSA-2048 SPKI DER is 294 bytes with e = 65537
	rsaSigLen       = rsaBits / 8                   // RSA-PSS signature, 256
	finishedLen     = sha256.Size                   // HMAC-SHA256

	serverHelloFixedLen = len(modernMagic) + modernRandomLen + x25519ShareLen + mlkemEKLen + 2
	serverHelloMaxLen   = serverHelloFixedLen + maxSPKILen
	clientHelloLen      = 1 + modernRandomLen + x25519ShareLen + mlkemCTLen // 1153
	serverVerifyLen     = 1 + rsaSigLen                                     // 257
	finishedMsgLen      = 1 + finishedLen                                   // 33
	maxHandshakeMsgLen  = serverHelloMaxLen

	gcmKeyLen        = 32 // AES-256
	gcmNonceLen      = 12
	gcmTagLen        = 16
	maxModernTextLen = maxFrameLen - gcmTagLen

	pssSaltLen             = 32
	serverSignatureContext = "encchat modern, server signature"
	modernKeylogLabel      = "MODERN" // MODERN <client random hex> <traffic secret hex>
)

// msgType is a handshake message's first byte. The ServerHello has none:
// its magic marks it.
type msgType uint8

const (
	typeServerHello    msgType = 1
	typeClientHello    msgType = 2
	typeServerVerify   msgType = 3
	typeServerFinished msgType = 4
	typeClientFinished msgType = 5
)

func (t msgType) String() string {
	switch t {
	case typeServerHello:
		return "ServerHello"
	case typeClientHello:
		return "ClientHello"
	case typeServerVerify:
		return "ServerVerify"
	case typeServerFinished:
		return "ServerFinished"
	case typeClientFinished:
		return "ClientFinished"
	}
	return fmt.Sprintf("unknown message 0x%02x", uint8(t))
}

// alert is a modern-suite failure. Alerts are not sent on the wire: the
// side that fails closes the connection, and the peer fails in turn.
type alert uint8

const (
	alertUnexpectedMessage alert = iota + 1
	alertDecodeError
	alertIllegalParameter
	alertBadSignature
	alertBadFinished
	alertBadRecordMAC
	alertRecordOverflow
	alertSequenceExhausted
	alertInternalError
)

var alertText = map[alert]string{
	alertUnexpectedMessage: "unexpected message",
	alertDecodeError:       "error decoding message",
	alertIllegalParameter:  "illegal parameter",
	alertBadSignature:      "handshake signature invalid",
	alertBadFinished:       "finished message invalid",
	alertBadRecordMAC:      "bad record MAC",
	alertRecordOverflow:    "record overflow",
	alertSequenceExhausted: "record sequence number exhausted",
	alertInternalError:     "internal error",
}

func (a alert) Error() string {
	if s, ok := alertText[a]; ok {
		return "modern: " + s
	}
	return fmt.Sprintf("modern: alert(%d)", uint8(a))
}

// unexpectedMessageError is a handshake message of the wrong kind.
func unexpectedMessageError(want, got msgType) error {
	return fmt.Errorf("%w: got %v while waiting for %v", alertUnexpectedMessage, got, want)
}

// decodeError is a handshake message of the right kind and the wrong shape.
func decodeError(t msgType, why string) error {
	return fmt.Errorf("%w: %v: %s", alertDecodeError, t, why)
}

// serverHelloMsg is the server's first frame:
// magic(16) random(32) x25519(32) mlkem_ek(1184) spki_len(2) spki(spki_len).
type serverHelloMsg struct {
	random  []byte
	x25519  []byte
	mlkemEK []byte
	spki    []byte // the server's RSA public key, SubjectPublicKeyInfo DER
}

func (m *serverHelloMsg) marshal() []byte {
	b := make([]byte, 0, serverHelloFixedLen+len(m.spki))
	b = append(b, modernMagic...)
	b = append(b, m.random...)
	b = append(b, m.x25519...)
	b = append(b, m.mlkemEK...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.spki)))
	return append(b, m.spki...)
}

func parseServerHello(b []byte) (*serverHelloMsg, error) {
	if !isModernHello(b) {
		return nil, decodeError(typeServerHello, "no "+modernMagic+" magic")
	}
	if len(b) < serverHelloFixedLen || len(b) > serverHelloMaxLen {
		return nil, decodeError(typeServerHello, fmt.Sprintf("%d bytes", len(b)))
	}
	m := &serverHelloMsg{}
	rest := b[len(modernMagic):]
	m.random, rest = rest[:modernRandomLen], rest[modernRandomLen:]
	m.x25519, rest = rest[:x25519ShareLen], rest[x25519ShareLen:]
	m.mlkemEK, rest = rest[:mlkemEKLen], rest[mlkemEKLen:]
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if n == 0 || n != len(rest) {
		return nil, decodeError(typeServerHello, "RSA key length does not match the message")
	}
	m.spki = rest
	return m, nil
}

// isModernHello reports whether a first handshake frame is a modern ServerHello.
func isModernHello(frame []byte) bool {
	return bytes.HasPrefix(frame, []byte(modernMagic))
}

// clientHelloMsg is type(1) random(32) x25519(32) mlkem_ciphertext(1088).
type clientHelloMsg struct {
	random  []byte
	x25519  []byte
	mlkemCT []byte
}

func (m *clientHelloMsg) marshal() []byte {
	b := make([]byte, 0, clientHelloLen)
	b = append(b, byte(typeClientHello))
	b = append(b, m.random...)
	b = append(b, m.x25519...)
	return append(b, m.mlkemCT...)
}

func parseClientHello(b []byte) (*clientHelloMsg, error) {
	if err := checkMessage(b, typeClientHello, clientHelloLen); err != nil {
		return nil, err
	}
	rest := b[1:]
	m := &clientHelloMsg{}
	m.random, rest = rest[:modernRandomLen], rest[modernRandomLen:]
	m.x25519, rest = rest[:x25519ShareLen], rest[x25519ShareLen:]
	m.mlkemCT = rest
	return m, nil
}

// serverVerifyMsg is type(1) signature(256).
type serverVerifyMsg struct {
	signature []byte
}

func (m *serverVerifyMsg) marshal() []byte {
	return append([]byte{byte(typeServerVerify)}, m.signature...)
}

func parseServerVerify(b []byte) (*serverVerifyMsg, error) {
	if err := checkMessage(b, typeServerVerify, serverVerifyLen); err != nil {
		return nil, err
	}
	return &serverVerifyMsg{signature: b[1:]}, nil
}

// finishedMsg is type(1) verify_data(32); typ is ServerFinished or ClientFinished.
type finishedMsg struct {
	typ        msgType
	verifyData []byte
}

func (m *finishedMsg) marshal() []byte {
	return append([]byte{byte(m.typ)}, m.verifyData...)
}

func parseFinished(b []byte, typ msgType) (*finishedMsg, error) {
	if err := checkMessage(b, typ, finishedMsgLen); err != nil {
		return nil, err
	}
	return &finishedMsg{typ: typ, verifyData: b[1:]}, nil
}

// checkMessage checks a typed message's type byte and exact length.
func checkMessage(b []byte, want msgType, n int) error {
	if len(b) == 0 {
		return decodeError(want, "empty message")
	}
	if got := msgType(b[0]); got != want {
		return unexpectedMessageError(want, got)
	}
	if len(b) != n {
		return decodeError(want, fmt.Sprintf("%d bytes, want %d", len(b), n))
	}
	return nil
}

// modernClientRandom returns the client random of a ClientHello payload:
// the session id of the modern keylog line.
func modernClientRandom(frame []byte) ([]byte, bool) {
	m, err := parseClientHello(frame)
	if err != nil {
		return nil, false
	}
	return bytes.Clone(m.random), true
}

// newX25519Key makes an ephemeral X25519 key from 32 bytes of random.
func newX25519Key(random io.Reader) (*ecdh.PrivateKey, error) {
	var b [32]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return nil, err
	}
	return ecdh.X25519().NewPrivateKey(b[:])
}

// x25519Agree is X25519 with the peer's share. crypto/ecdh refuses an
// all-zero result (a low-order share), which would make the secret public.
func x25519Agree(priv *ecdh.PrivateKey, peerShare []byte) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(peerShare)
	if err != nil {
		return nil, fmt.Errorf("%w: X25519 share: %v", alertIllegalParameter, err)
	}
	secret, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: X25519 share gives an all-zero secret", alertIllegalParameter)
	}
	return secret, nil
}

// hybridSecret combines the two shared secrets as TLS's X25519MLKEM768
// does: the ML-KEM-768 secret, then the X25519 one. Breaking it takes
// breaking both.
func hybridSecret(mlkemSecret, x25519Secret []byte) []byte {
	return append(bytes.Clone(mlkemSecret), x25519Secret...)
}

func hkdfExtract(ikm, salt []byte) ([]byte, error) {
	return hkdf.Extract(sha256.New, ikm, salt)
}

func hkdfExpand(prk, info []byte, n int) ([]byte, error) {
	return hkdf.Expand(sha256.New, prk, string(info), n)
}

// expandLabel is HKDF-Expand with a TLS 1.3-style label:
// length(2) | len("encchat "+label)(1) | "encchat "+label | len(context)(1) | context.
func expandLabel(secret []byte, label string, context []byte, n int) ([]byte, error) {
	full := "encchat " + label
	info := binary.BigEndian.AppendUint16(nil, uint16(n))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	return hkdfExpand(secret, info, n)
}

// signedContent is what the server signs, in TLS 1.3's CertificateVerify
// shape: 64 spaces, a context string, a zero byte, the transcript hash.
func signedContent(transcriptHash []byte) []byte {
	b := bytes.Repeat([]byte{' '}, 64)
	b = append(b, serverSignatureContext...)
	b = append(b, 0)
	return append(b, transcriptHash...)
}

var pssOptions = &rsa.PSSOptions{SaltLength: pssSaltLen, Hash: crypto.SHA256}

// modernSign is RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
func modernSign(random io.Reader, priv *rsa.PrivateKey, msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	return rsa.SignPSS(random, priv, crypto.SHA256, digest[:], pssOptions)
}

// modernVerify checks a modernSign signature; every failure is alertBadSignature.
func modernVerify(pub *rsa.PublicKey, msg, sig []byte) error {
	digest := sha256.Sum256(msg)
	if rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, pssOptions) != nil {
		return alertBadSignature
	}
	return nil
}

// modernSecrets are one session's secrets. traffic is what the keylog
// records: both directions' record keys derive from it, and nothing else
// does. The finished keys come from a separate branch.
type modernSecrets struct {
	traffic        []byte
	serverFinished []byte
	clientFinished []byte
}

// deriveModernSecrets runs the key schedule:
//
//	prk             = HKDF-Extract(salt = none, ikm = mlkem_ss || x25519_ss)
//	traffic         = Expand-Label(prk, "traffic",    H(ServerHello, ClientHello), 32)
//	server_finished = Expand-Label(prk, "s finished", H(ServerHello, ClientHello), 32)
//	client_finished = Expand-Label(prk, "c finished", H(ServerHello, ClientHello), 32)
func deriveModernSecrets(shared, helloHash []byte) (modernSecrets, error) {
	var s modernSecrets
	prk, err := hkdfExtract(shared, nil)
	if err != nil {
		return s, err
	}
	if s.traffic, err = expandLabel(prk, "traffic", helloHash, sha256.Size); err != nil {
		return s, err
	}
	if s.serverFinished, err = expandLabel(prk, "s finished", helloHash, sha256.Size); err != nil {
		return s, err
	}
	s.clientFinished, err = expandLabel(prk, "c finished", helloHash, sha256.Size)
	return s, err
}

// Directions, as in the capture file.
const (
	dirC2S = "c2s"
	dirS2C = "s2c"
)

// newTrafficHalfConn derives one direction's AES-256-GCM key and IV from
// the traffic secret: Expand-Label(traffic, "c2s key", "", 32) and
// Expand-Label(traffic, "c2s iv", "", 12), and likewise for s2c.
func newTrafficHalfConn(traffic []byte, dir string) (*halfConn, error) {
	key, err := expandLabel(traffic, dir+" key", nil, gcmKeyLen)
	if err != nil {
		return nil, err
	}
	iv, err := expandLabel(traffic, dir+" iv", nil, gcmNonceLen)
	if err != nil {
		return nil, err
	}
	return newHalfConn(key, iv)
}

// finishedMAC is HMAC-SHA256(finished key, transcript hash).
func finishedMAC(key, transcriptHash []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(transcriptHash)
	return mac.Sum(nil)
}

// halfConn is one direction of a modern session: its AEAD, its IV, the
// number of the next record, and its first permanent error. encrypt and
// decrypt are the only places records are sealed and opened; once err is
// set the direction stays broken.
type halfConn struct {
	aead cipher.AEAD
	iv   [gcmNonceLen]byte
	seq  uint64
	err  error

	// Scratch space, so a record costs no allocation beyond its output.
	nonceBuf [gcmNonceLen]byte
	adBuf    [headerLen]byte
}

func newHalfConn(key, iv []byte) (*halfConn, error) {
	if len(key) != gcmKeyLen || len(iv) != gcmNonceLen {
		return nil, fmt.Errorf("%w: AES-256-GCM needs a %d-byte key and a %d-byte IV", alertInternalError, gcmKeyLen, gcmNonceLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	hc := &halfConn{aead: aead}
	copy(hc.iv[:], iv)
	return hc, nil
}

// nonce is the IV XOR the 64-bit big-endian sequence number, as in TLS 1.3.
func (hc *halfConn) nonce(seq uint64) [gcmNonceLen]byte {
	n := hc.iv
	for i := 0; i < 8; i++ {
		n[gcmNonceLen-1-i] ^= byte(seq >> (8 * i))
	}
	return n
}

// encrypt seals the next record. The last sequence number is never used.
func (hc *halfConn) encrypt(text []byte) ([]byte, error) {
	if hc.err != nil {
		return nil, hc.err
	}
	if len(text) > maxModernTextLen {
		hc.err = alertRecordOverflow
		return nil, hc.err
	}
	if hc.seq == math.MaxUint64 {
		hc.err = alertSequenceExhausted
		return nil, hc.err
	}
	out := hc.sealAt(hc.seq, appendFrameHeader(hc.adBuf[:0], len(text)+gcmTagLen), text)
	hc.seq++
	return out, nil
}

// decrypt opens the next record. Every failure is alertBadRecordMAC, and
// it is permanent: a record that does not open ends the direction, so a
// replayed, reordered, dropped or reflected record ends it too.
func (hc *halfConn) decrypt(payload []byte) ([]byte, error) {
	if hc.err != nil {
		return nil, hc.err
	}
	if hc.seq == math.MaxUint64 {
		hc.err = alertSequenceExhausted
		return nil, hc.err
	}
	text, err := hc.openAt(hc.seq, appendFrameHeader(hc.adBuf[:0], len(payload)), payload)
	if err == nil && !utf8.Valid(text) {
		// Only a peer holding the key can send this; it gets the same error.
		text, err = nil, alertBadRecordMAC
	}
	if err != nil {
		hc.err = err
		return nil, err
	}
	hc.seq++
	return text, nil
}

// sealAt is AES-256-GCM sealing of record seq with additional data ad.
func (hc *halfConn) sealAt(seq uint64, ad, text []byte) []byte {
	hc.nonceBuf = hc.nonce(seq)
	return hc.aead.Seal(make([]byte, 0, len(text)+gcmTagLen), hc.nonceBuf[:], text, ad)
}

// openAt opens record seq with additional data ad without changing the
// direction's sequence number or error. Every failure is alertBadRecordMAC.
func (hc *halfConn) openAt(seq uint64, ad, payload []byte) ([]byte, error) {
	if len(payload) < gcmTagLen || len(payload) > maxFrameLen {
		return nil, alertBadRecordMAC
	}
	hc.nonceBuf = hc.nonce(seq)
	text, err := hc.aead.Open(nil, hc.nonceBuf[:], payload, ad)
	if err != nil {
		return nil, alertBadRecordMAC
	}
	return text, nil
}

// modernCipher is a modern session's recordCipher: out seals, in opens.
// The two directions share nothing, so seal and open may run concurrently;
// calls in one direction must be serialized.
type modernCipher struct {
	in, out *halfConn
}

var errNoDirection = fmt.Errorf("%w: this cipher has no key for that direction", alertInternalError)

func (c *modernCipher) seal(text []byte) ([]byte, error) {
	if c.out == nil {
		return nil, errNoDirection
	}
	return c.out.encrypt(text)
}

func (c *modernCipher) open(payload []byte) ([]byte, error) {
	if c.in == nil {
		return nil, errNoDirection
	}
	return c.in.decrypt(payload)
}

// openRecord opens payload as the direction's record number seq (0 is the
// first record after the handshake) without touching the cipher's state:
// replay uses it to show a tampered frame failing without ending the view.
func (c *modernCipher) openRecord(seq uint64, payload []byte) ([]byte, error) {
	if c.in == nil {
		return nil, errNoDirection
	}
	return c.in.openAt(seq, appendFrameHeader(c.in.adBuf[:0], len(payload)), payload)
}

// newModernReplayOpeners builds openers for both directions of a recorded
// session from the secret of its keylog line (MODERN <client random> <secret>).
// Each opens its direction's records in order, like the live peer.
func newModernReplayOpeners(secret []byte) (c2s, s2c recordCipher, err error) {
	if len(secret) != sha256.Size {
		return nil, nil, fmt.Errorf("modern traffic secret is %d bytes, want %d", len(secret), sha256.Size)
	}
	in, err := newTrafficHalfConn(secret, dirC2S)
	if err != nil {
		return nil, nil, err
	}
	out, err := newTrafficHalfConn(secret, dirS2C)
	if err != nil {
		return nil, nil, err
	}
	return &modernCipher{in: in}, &modernCipher{in: out}, nil
}

// newModernCipher is one side's record layer; isServer picks which
// direction seals.
func newModernCipher(traffic []byte, isServer bool) (*modernCipher, error) {
	c2s, err := newTrafficHalfConn(traffic, dirC2S)
	if err != nil {
		return nil, err
	}
	s2c, err := newTrafficHalfConn(traffic, dirS2C)
	if err != nil {
		return nil, err
	}
	if isServer {
		return &modernCipher{in: c2s, out: s2c}, nil
	}
	return &modernCipher{in: s2c, out: c2s}, nil
}
