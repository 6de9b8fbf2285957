// Replay's decoder for the classic suite: names the public key, the key
// transport blob and the sealed records (in the words of classicSteps), and
// opens them with a session key from a keylog, -key, or recovered with the
// server's RSA key (-rsa-key).

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type classicReplaySuite struct{}

func (classicReplaySuite) name() string { return suiteClassic }

func (classicReplaySuite) claims(dir wireDir, first []byte) bool {
	switch {
	case dir == wireS2C && isPublicKeyPEM(first):
		return true
	case dir == wireC2S && len(first) == rsaBlobSize && !isBase64Text(first):
		return true
	}
	// A capture begun mid-session: sealed records without a handshake.
	return isBase64Text(first) && classicRecordLen(len(first))
}

func (classicReplaySuite) newSession(keys *replayKeys, conn int) replaySession {
	return &classicSession{keys: keys, conn: conn}
}

// isBase64Text reports whether p is standard padded base64.
func isBase64Text(p []byte) bool {
	if len(p) == 0 || len(p)%4 != 0 {
		return false
	}
	for i, c := range p {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
		case c == '=' && i >= len(p)-2:
		default:
			return false
		}
	}
	return true
}

// classicRecordLen reports whether a base64 text of n bytes could hold an
// IV and at least one whole block.
func classicRecordLen(n int) bool {
	raw := n / 4 * 3
	for _, pad := range []int{0, 1, 2} {
		if r := raw - pad; r >= cbcIVSize+16 && (r-cbcIVSize)%16 == 0 {
			return true
		}
	}
	return false
}

// classicKeyState is how far a classic session's key search got.
type classicKeyState uint8

const (
	keyUndecided classicKeyState = iota // no sealed record seen yet
	keyFound
	keyNone  // no key was given for this session
	keyWrong // keys were given, none opens its records
)

// classicSession follows one classic connection: the PEM key, the RSA-OAEP
// blob, then sealed records.
type classicSession struct {
	keys   *replayKeys
	conn   int
	frames [2]int
	blob   bool   // the key-transport blob was seen
	id     []byte // the session id: the blob's first bytes
	cands  []keyCandidate
	rc     *classicCipher
	source string // which key rc holds
	state  classicKeyState
	raw    []byte // scratch: a decoded record
}

// keyCandidate is a key that may open a session, and where it came from.
type keyCandidate struct {
	key    []byte
	source string
}

func (s *classicSession) decode(f *replayFrame) {
	first := s.frames[f.Dir] == 0
	s.frames[f.Dir]++
	switch {
	case f.Dir == wireS2C && first && isPublicKeyPEM(f.Payload):
		s.publicKey(f)
	case f.Dir == wireC2S && first && len(f.Payload) == rsaBlobSize && !isBase64Text(f.Payload):
		s.keyTransport(f)
	default:
		raw, ok := s.decodeRecord(f.Payload)
		if !ok {
			opaqueFrame(f)
			return
		}
		s.sealed(f, raw)
	}
}

// decodeRecord decodes a sealed record's base64 into s.raw, and checks it
// holds an IV and whole blocks.
func (s *classicSession) decodeRecord(p []byte) ([]byte, bool) {
	need := base64.StdEncoding.DecodedLen(len(p))
	if cap(s.raw) < need {
		s.raw = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(s.raw[:need], p)
	if err != nil || n < cbcIVSize+16 || (n-cbcIVSize)%16 != 0 {
		return nil, false
	}
	return s.raw[:n], true
}

func (s *classicSession) note(f *replayFrame, format string, args ...any) {
	f.Notes = append(f.Notes, fmt.Sprintf("conn %d: ", s.conn)+fmt.Sprintf(format, args...))
}

func (s *classicSession) publicKey(f *replayFrame) {
	f.Kind = kindPublicKey
	st := classicSteps.sent(f.Kind)
	f.What = st.Sniffer
	f.Preview = pemPreview(f.Payload)
	pub, err := parsePublicKeyPEM(f.Payload)
	if err != nil {
		f.Details = []string{"it does not parse: " + err.Error()}
		f.Peer = []string{"the client refuses it: " + err.Error()}
	} else {
		fp := fingerprint(pub)
		f.Meta.Fingerprint = fp
		f.Details = []string{fmt.Sprintf("RSA-%d, fingerprint %s", pub.N.BitLen(), fp)}
		f.Peer = []string{"server key " + fp}
		if s.keys.rsa != nil && !pub.Equal(&s.keys.rsa.PublicKey) {
			s.note(f, "the -rsa-key %s (%s) is not this server's key (%s): it cannot recover this session", s.keys.rsaName, s.keys.rsaFP, fp)
		}
	}
	if f.Tamper < 0 {
		return
	}
	t, ok := flipBit(f, f.Payload, frameByte)
	if !ok {
		return
	}
	tpub, err := parsePublicKeyPEM(t)
	switch {
	case err != nil:
		f.Tampered = append(f.Tampered, "the client cannot parse the key any more: "+err.Error())
	case pub != nil && tpub.Equal(pub):
		f.Tampered = append(f.Tampered, "the key still parses to the same key (the bit fell outside it)")
	default:
		f.Tampered = append(f.Tampered, "it now parses as another key, "+fingerprint(tpub)+": "+st.Flipped)
	}
}

func (s *classicSession) keyTransport(f *replayFrame) {
	s.blob = true
	id := f.Payload[:classicKeylogID]
	s.id = bytes.Clone(id)
	f.Kind = kindKeyTransport
	st := classicSteps.sent(f.Kind)
	f.What = st.Sniffer
	f.Meta.SessionID = hex.EncodeToString(id)
	f.Details = []string{"session id " + f.Meta.SessionID + " (its first 8 bytes: a keylog names the session by them)"}
	f.Preview = hexPreview(f.Payload, 24)
	if k, ok := s.keys.lookup(keylogClassic, id); ok {
		s.cands = append(s.cands, keyCandidate{k, "keylog " + s.keys.keylogName})
	}
	if s.keys.rsa != nil {
		if k, err := classicUnwrapKey(s.keys.rsa, f.Payload); err == nil {
			s.cands = append(s.cands, keyCandidate{k, "recovered with " + s.keys.rsaName})
			s.note(f, "session key recovered from the RSA-OAEP blob with the server's private key %s: RSA key transport has no forward secrecy, so whoever records today and steals the key later reads everything", s.keys.rsaName)
		} else {
			s.note(f, "the -rsa-key %s does not decrypt this blob: it is not this server's key", s.keys.rsaName)
		}
	}
	if s.keys.key != nil {
		s.cands = append(s.cands, keyCandidate{s.keys.key, "-key"})
	}
	switch {
	case len(s.cands) > 0 && s.cands[0].source != "-key":
		f.Peer = []string{"session key " + hex.EncodeToString(s.cands[0].key[:8]) + "… (" + s.cands[0].source + ")"}
	case len(s.cands) > 0:
		f.Peer = []string{"session key: unknown here; -key is tried on the records"}
	default:
		f.Peer = []string{st.Peer}
	}
	if f.Tamper < 0 {
		return
	}
	t, ok := flipBit(f, f.Payload, frameByte)
	if !ok {
		return
	}
	if s.keys.rsa == nil {
		f.Tampered = append(f.Tampered, "only the server's private key shows what it decrypts to (give -rsa-key)")
		return
	}
	if _, err := classicUnwrapKey(s.keys.rsa, t); err != nil {
		f.Tampered = append(f.Tampered, st.Flipped)
	} else {
		f.Tampered = append(f.Tampered, "RSA-OAEP still accepts it")
	}
}

func (s *classicSession) sealed(f *replayFrame, raw []byte) {
	ct := len(raw) - cbcIVSize
	f.Kind = kindSealed
	f.What = "sealed record: AES-256-CBC, base64"
	f.Meta.IV = hex.EncodeToString(raw[:cbcIVSize])
	f.Meta.CipherLen, f.Meta.TextMin, f.Meta.TextMax, f.Meta.HasRange = ct, ct-16, ct-1, true
	d := append(make([]byte, 0, 96), "IV "...)
	d = append(d, f.Meta.IV...)
	d = append(d, " · ciphertext "...)
	d = strconv.AppendInt(d, int64(ct), 10)
	d = append(d, " B → text "...)
	d = strconv.AppendInt(d, int64(ct-16), 10)
	d = append(d, "–"...)
	d = strconv.AppendInt(d, int64(ct-1), 10)
	d = append(d, " B"...)
	f.Details = []string{string(d)}
	f.Preview = truncateBytes(f.Payload, 64)
	if s.state == keyUndecided {
		s.chooseKey(f)
	}
	if s.rc != nil {
		text, err := s.rc.open(f.Payload)
		if err == nil {
			f.Text, f.HasText, f.Key = text, true, s.source
		} else {
			f.Problem = "does not decrypt with " + s.source + ": " + err.Error()
		}
	}
	if f.Tamper >= 0 {
		s.tamper(f, raw)
	}
}

// chooseKey finds the key that opens the session's first record.
func (s *classicSession) chooseKey(f *replayFrame) {
	cands := s.cands
	if s.keys.live && s.blob {
		// A live server logs the key after it reads the blob: look again.
		if k, ok := s.keys.lookup(keylogClassic, s.id); ok {
			cands = append([]keyCandidate{{k, "keylog " + s.keys.keylogName}}, cands...)
		}
	}
	if !s.blob {
		// The capture began after the handshake: try every key given.
		if s.keys.key != nil {
			cands = append(cands, keyCandidate{s.keys.key, "-key"})
		}
		for i, e := range s.keys.keylog {
			if e.Label == keylogClassic && i < 1024 {
				cands = append(cands, keyCandidate{e.Secret, fmt.Sprintf("keylog %s line %d (found by trial)", s.keys.keylogName, e.Line)})
			}
		}
	}
	for _, c := range cands {
		rc, err := newClassicCipher(c.key, nil)
		if err != nil {
			continue
		}
		if _, err := rc.open(f.Payload); err == nil {
			s.rc, s.source, s.state = rc, c.source, keyFound
			return
		}
	}
	if len(cands) == 0 {
		s.state = keyNone
		if s.keys.given() {
			s.note(f, "no key fits this session: its records are shown as ciphertext")
		}
		return
	}
	s.state = keyWrong
	var names []string
	for _, c := range cands {
		names = append(names, c.source)
	}
	s.note(f, "wrong key: %s does not decrypt this session: its records are shown as ciphertext", strings.Join(names, ", "))
}

// tamper shows what flipping f.Tamper does to a CBC record: the block it
// falls in decrypts to garbage and the same bit flips in the next block's
// text (or, in the IV, in the first block), or the padding breaks.
func (s *classicSession) tamper(f *replayFrame, raw []byte) {
	t, ok := flipBit(f, raw, func(i int) string {
		if i < cbcIVSize {
			return fmt.Sprintf("byte %d of the IV", i)
		}
		return fmt.Sprintf("byte %d of ciphertext block %d", (i-cbcIVSize)%16, (i-cbcIVSize)/16+1)
	})
	if !ok {
		return
	}
	if s.rc == nil {
		f.Tampered = append(f.Tampered, "no key for this session: the effect cannot be shown")
		return
	}
	orig, err1 := s.rc.decryptBlocks(f.Payload)
	mod, err2 := s.rc.decryptBlocks([]byte(base64.StdEncoding.EncodeToString(t)))
	if err1 != nil || err2 != nil {
		f.Tampered = append(f.Tampered, "the record does not decrypt")
		return
	}
	for b := 0; b+16 <= len(orig); b += 16 {
		o, m := orig[b:b+16], mod[b:b+16]
		if bytes.Equal(o, m) {
			continue
		}
		changed, bits, at, bit := 0, 0, 0, 0
		for i := range o {
			if x := o[i] ^ m[i]; x != 0 {
				changed++
				for k := 0; k < 8; k++ {
					if x&(1<<k) != 0 {
						bits++
						at, bit = i, k
					}
				}
			}
		}
		if bits == 1 {
			f.Tampered = append(f.Tampered, fmt.Sprintf("text block %d: bit %d of byte %d flipped, %s → %s: the attacker chose this change",
				b/16+1, bit, at, byteLabel(o[at]), byteLabel(m[at])))
		} else {
			f.Tampered = append(f.Tampered, fmt.Sprintf("text block %d: garbled (%d of 16 bytes changed)", b/16+1, changed))
		}
	}
	text, ok := pkcs7Unpad(mod)
	switch {
	case !ok:
		f.Tampered = append(f.Tampered, "padding error: the receiver rejects the record (and must not say why: a distinct padding error is a padding oracle)")
	case !utf8.Valid(text):
		f.Tampered = append(f.Tampered, "the padding still checks, but the text is not UTF-8: the receiver rejects it")
	default:
		f.Tampered = append(f.Tampered, "the receiver accepts it: "+strconv.Quote(string(text))+" — CBC has no integrity, nothing detects the change")
	}
}

// flipBit returns a copy of p with f.Tamper flipped (bit 0 is the least
// significant bit of byte 0) and says where in f.Tampered; where names the
// byte. It says so and returns false when the bit is past the end.
func flipBit(f *replayFrame, p []byte, where func(byteIdx int) string) ([]byte, bool) {
	if f.Tamper >= len(p)*8 {
		f.Tampered = append(f.Tampered, fmt.Sprintf("-tamper: bit %d is past the end of this frame (%d bits)", f.Tamper, len(p)*8))
		return nil, false
	}
	t := bytes.Clone(p)
	i := f.Tamper / 8
	t[i] ^= 1 << (f.Tamper % 8)
	f.Tampered = append(f.Tampered, fmt.Sprintf("-tamper: bit %d flipped: %s, mask 0x%02x", f.Tamper, where(i), 1<<(f.Tamper%8)))
	return t, true
}

// frameByte names a byte of a frame's payload for flipBit.
func frameByte(i int) string { return fmt.Sprintf("byte %d of the frame", i) }

func byteLabel(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return fmt.Sprintf("0x%02x %q", b, rune(b))
	}
	return fmt.Sprintf("0x%02x", b)
}

func truncateBytes(p []byte, n int) string {
	if len(p) <= n {
		return string(p)
	}
	return string(p[:n]) + "…"
}

// pemPreview joins the first lines of a PEM block.
func pemPreview(p []byte) string {
	lines := strings.SplitN(string(p), "\n", 3)
	if len(lines) > 2 {
		lines = lines[:2]
	}
	return truncateRunes(strings.Join(lines, " "), 64)
}
