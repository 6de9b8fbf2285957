// Replay's decoder for the modern suite: the five handshake messages in
// clear (in the words of modernSteps), then AES-256-GCM records numbered per
// direction, opened only with the session's own traffic secret from a keylog.

package main

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
)

// modernReplaySuite decodes modern connections: five handshake messages in
// clear, then AES-256-GCM records numbered per direction. Only the
// session's own traffic secret (its MODERN keylog line) opens the records;
// the server's RSA key only signed the handshake.
type modernReplaySuite struct{}

func (modernReplaySuite) name() string { return suiteModern }

func (modernReplaySuite) claims(dir wireDir, first []byte) bool {
	if dir == wireS2C {
		return isModernHello(first)
	}
	// A capture that missed the ServerHello, or holds it cut short.
	return modernMessage(first) == typeClientHello
}

// modernMessage is the handshake message a frame's payload holds, or 0 when
// it holds none. Records can look like typed messages by chance: replay only
// asks during a direction's handshake.
func modernMessage(payload []byte) msgType {
	if isModernHello(payload) {
		return typeServerHello
	}
	if len(payload) == 0 {
		return 0
	}
	switch t := msgType(payload[0]); {
	case t == typeClientHello && len(payload) == clientHelloLen,
		t == typeServerVerify && len(payload) == serverVerifyLen,
		(t == typeServerFinished || t == typeClientFinished) && len(payload) == finishedMsgLen:
		return t
	}
	return 0
}

// messageKinds are the frame kinds of the handshake messages.
var messageKinds = map[msgType]frameKind{
	typeServerHello:    kindServerHello,
	typeClientHello:    kindClientHello,
	typeServerVerify:   kindServerVerify,
	typeServerFinished: kindServerFinished,
	typeClientFinished: kindClientFinished,
}

func (modernReplaySuite) newSession(keys *replayKeys, conn int) replaySession {
	return &modernSession{keys: keys, conn: conn, transcript: sha256.New()}
}

// modernHandshakeOrder is the handshake messages of one direction, in order.
func modernHandshakeOrder(d wireDir) []msgType {
	if d == wireC2S {
		return []msgType{typeClientHello, typeClientFinished}
	}
	return []msgType{typeServerHello, typeServerVerify, typeServerFinished}
}

// modernSession follows one modern connection. Each direction is in its
// handshake until its last handshake message, then carries records whose
// sequence numbers count from 0.
type modernSession struct {
	keys       *replayKeys
	conn       int
	hs         [2]int    // handshake messages seen per direction
	seq        [2]uint64 // the next record's sequence number per direction
	serverKey  *rsa.PublicKey
	random     []byte           // the client random: the keylog's session id
	transcript hash.Hash        // SHA-256 of the ServerHello and ClientHello frames
	hellos     int              // hellos hashed into transcript
	logged     [2]*modernCipher // openers from the keylog line, not yet tried
	open       [2]*modernCipher // openers that opened the first record
	source     string
	state      classicKeyState
	rsaNoted   bool
}

func (s *modernSession) decode(f *replayFrame) {
	order := modernHandshakeOrder(f.Dir)
	if s.hs[f.Dir] < len(order) {
		got := modernMessage(f.Payload)
		for i := s.hs[f.Dir]; i < len(order); i++ {
			if got == order[i] {
				s.hs[f.Dir] = i + 1
				s.handshakeMessage(f, order[i])
				return
			}
		}
		s.unexpected(f, order[s.hs[f.Dir]], got)
		return
	}
	s.record(f)
}

func (s *modernSession) note(f *replayFrame, format string, args ...any) {
	f.Notes = append(f.Notes, fmt.Sprintf("conn %d: ", s.conn)+fmt.Sprintf(format, args...))
}

// noteRSA says once per session why -rsa-key cannot open it.
func (s *modernSession) noteRSA(f *replayFrame) {
	if s.rsaNoted || s.keys.rsa == nil {
		return
	}
	s.rsaNoted = true
	if s.serverKey != nil && !s.serverKey.Equal(&s.keys.rsa.PublicKey) {
		s.note(f, "the -rsa-key %s (%s) is not this server's key (%s); and even the server's own key cannot decrypt a modern session (forward secrecy)",
			s.keys.rsaName, s.keys.rsaFP, fingerprint(s.serverKey))
		return
	}
	s.note(f, "a modern session: the server's private key %s only signs its handshake; the session keys come from an ephemeral X25519+ML-KEM-768 exchange, so %s cannot decrypt it (forward secrecy)",
		s.keys.rsaName, s.keys.rsaName)
}

// hashHello adds a hello frame, header included, to the transcript.
func (s *modernSession) hashHello(payload []byte) {
	var h [headerLen]byte
	s.transcript.Write(appendFrameHeader(h[:0], len(payload)))
	s.transcript.Write(payload)
	s.hellos++
}

// handshakeMessage fills f from t's step in modernSteps, and adds what only
// the frame tells: the keys in it, its length, whether its signature holds.
func (s *modernSession) handshakeMessage(f *replayFrame, t msgType) {
	p := f.Payload
	f.Kind = messageKinds[t]
	st := modernSteps.sent(f.Kind)
	f.What = st.Sniffer
	f.Preview = hexPreview(p, 24)
	if st.Reveals != "" {
		f.Details = []string{st.Reveals}
	}
	f.Peer = []string{st.Peer}
	where := frameByte
	var check func(msg []byte) bool // the check a sniffer can run too: the signature
	switch t {
	case typeServerHello:
		f.Preview = modernMagic + " " + hexPreview(p[len(modernMagic):], 20)
		s.hashHello(p)
		m, err := parseServerHello(p)
		var pub *rsa.PublicKey
		if err == nil {
			pub, err = parsePublicKeyDER(m.spki)
		}
		if err != nil {
			f.Details = []string{"it does not parse: " + err.Error()}
			f.Peer = []string{"the client refuses it: " + err.Error()}
		} else {
			s.serverKey = pub
			fp := fingerprint(pub)
			f.Meta.Fingerprint = fp
			f.Details = []string{
				fmt.Sprintf("RSA-%d, fingerprint %s: readable by anyone; this key only signs, it encrypts nothing", pub.N.BitLen(), fp),
				fmt.Sprintf("server random %s… · X25519 share %d B · ML-KEM-768 encapsulation key %d B: fresh for this session", hex.EncodeToString(m.random[:8]), len(m.x25519), len(m.mlkemEK)),
			}
			f.Peer = []string{"server key " + fp + ": " + st.Peer}
		}
		s.noteRSA(f)
		where = serverHelloField
	case typeClientHello:
		s.hashHello(p)
		s.random, _ = modernClientRandom(p)
		f.Meta.SessionID = hex.EncodeToString(s.random)
		f.Details = []string{
			"client random " + f.Meta.SessionID + " (the session id of its MODERN keylog line)",
			fmt.Sprintf("X25519 share %d B · ML-KEM-768 ciphertext %d B: only the server's ephemeral ML-KEM key opens it", x25519ShareLen, mlkemCTLen),
		}
		if secret, ok := s.keys.lookup(modernKeylogLabel, s.random); ok {
			c2s, s2c, err := newModernReplayOpeners(secret)
			if err != nil {
				s.note(f, "the keylog %s line for this session does not fit: %v", s.keys.keylogName, err)
			} else {
				s.logged[wireC2S], _ = c2s.(*modernCipher)
				s.logged[wireS2C], _ = s2c.(*modernCipher)
				f.Peer = []string{"traffic secret " + hex.EncodeToString(secret[:8]) + "… (keylog " + s.keys.keylogName + ")"}
			}
		}
		where = clientHelloField
	case typeServerVerify:
		f.What += fmt.Sprintf(", %d B", len(p)-1)
		if s.serverKey != nil && s.hellos == 2 {
			content := signedContent(s.transcript.Sum(nil))
			check = func(msg []byte) bool { return modernVerify(s.serverKey, content, msg[1:]) == nil }
			if check(p) {
				f.Details = append(f.Details, "checked here: valid for the ServerHello's key and these two hellos")
			} else {
				f.Details = append(f.Details, "checked here: it does NOT verify: the client refuses the server")
			}
		}
		where = typedField("the signature", rsaSigLen)
	case typeServerFinished, typeClientFinished:
		f.What += fmt.Sprintf(", %d B", len(p)-1)
		where = typedField("the MAC", finishedLen)
	}
	if f.Tamper < 0 {
		return
	}
	tp, ok := flipBit(f, p, where)
	switch {
	case !ok:
	case t == typeServerHello && f.Tamper < 8*len(modernMagic):
		f.Tampered = append(f.Tampered, "the magic no longer names the modern suite: the client does not recognise the server's first frame and closes")
	case t == typeServerHello && f.Tamper < 8*(serverHelloFixedLen-2):
		f.Tampered = append(f.Tampered, st.Flipped)
	case t == typeServerHello && f.Tamper < 8*serverHelloFixedLen:
		f.Tampered = append(f.Tampered, "the key length no longer matches the message: the client cannot parse the hello and closes")
	case t == typeServerHello:
		f.Tampered = append(f.Tampered, "the RSA key is another one now (or none): a client that pinned the real key refuses it, and the signature no longer verifies either way; the client closes before it sends anything")
	case t != typeServerHello && f.Tamper < 8:
		receiver := "server"
		if f.Dir == wireS2C {
			receiver = "client"
		}
		f.Tampered = append(f.Tampered, fmt.Sprintf("it is no longer a %v: the %s refuses an unexpected message and closes", t, receiver))
	case check != nil && check(tp):
		f.Tampered = append(f.Tampered, "the signature still verifies")
	case check != nil:
		f.Tampered = append(f.Tampered, "the signature no longer verifies (checked here): the client closes before it sends anything")
	default:
		f.Tampered = append(f.Tampered, st.Flipped)
	}
}

// typedField names the bytes of a message that is a type byte and one field.
func typedField(name string, n int) func(int) string {
	return func(i int) string {
		return modernField(i, []modernFieldSpan{{"the type", 1}, {name, n}})
	}
}

// serverHelloField names the field a ServerHello byte belongs to.
func serverHelloField(i int) string {
	return modernField(i, []modernFieldSpan{
		{"the magic", len(modernMagic)},
		{"the server random", modernRandomLen},
		{"the X25519 share", x25519ShareLen},
		{"the ML-KEM-768 encapsulation key", mlkemEKLen},
		{"the RSA key length", 2},
		{"the RSA public key", maxSPKILen},
	})
}

// clientHelloField names the field a ClientHello byte belongs to.
func clientHelloField(i int) string {
	return modernField(i, []modernFieldSpan{
		{"the type", 1},
		{"the client random (the keylog's session id)", modernRandomLen},
		{"the X25519 share", x25519ShareLen},
		{"the ML-KEM-768 ciphertext", mlkemCTLen},
	})
}

type modernFieldSpan struct {
	name string
	n    int
}

func modernField(i int, spans []modernFieldSpan) string {
	at := i
	for _, sp := range spans {
		if at < sp.n {
			return fmt.Sprintf("byte %d of the frame, byte %d of %s", i, at, sp.name)
		}
		at -= sp.n
	}
	return frameByte(i)
}

// unexpected shows a frame that arrives where a handshake message should.
func (s *modernSession) unexpected(f *replayFrame, want, got msgType) {
	f.Kind = kindHandshake
	f.What = "unexpected handshake frame: " + want.String() + " should come here"
	if got != 0 {
		f.Details = []string{"it reads as a " + got.String()}
	}
	f.Preview = hexPreview(f.Payload, 24)
	err := unexpectedMessageError(want, modernFrameType(f.Payload))
	if modernFrameType(f.Payload) == want {
		err = decodeError(want, fmt.Sprintf("%d bytes", len(f.Payload)))
	}
	f.Peer = []string{"the peer refuses it and closes: " + err.Error()}
	if f.Tamper >= 0 {
		if _, ok := flipBit(f, f.Payload, frameByte); ok {
			f.Tampered = append(f.Tampered, "the frame is refused either way")
		}
	}
}

// modernFrameType is the type byte of a handshake frame, for messages.
func modernFrameType(p []byte) msgType {
	switch {
	case isModernHello(p):
		return typeServerHello
	case len(p) == 0:
		return 0
	}
	return msgType(p[0])
}

func (s *modernSession) record(f *replayFrame) {
	seq := s.seq[f.Dir]
	s.seq[f.Dir]++
	n := len(f.Payload)
	f.Kind = kindSealed
	f.What = "sealed record: AES-256-GCM"
	f.Preview = hexPreview(f.Payload, 32)
	d := append(make([]byte, 0, 112), "seq "...)
	d = strconv.AppendUint(d, seq, 10)
	d = append(d, ' ')
	d = append(d, f.Dir.String()...)
	if n < gcmTagLen {
		d = append(d, " · "...)
		d = strconv.AppendInt(d, int64(n), 10)
		d = append(d, " B: shorter than the 16-byte tag, the receiver rejects it"...)
	} else {
		ct := n - gcmTagLen
		f.Meta.CipherLen, f.Meta.TextMin, f.Meta.TextMax, f.Meta.HasRange = ct, ct, ct, true
		d = append(d, " · ciphertext "...)
		d = strconv.AppendInt(d, int64(ct), 10)
		d = append(d, " B + tag 16 B → text exactly "...)
		d = strconv.AppendInt(d, int64(ct), 10)
		d = append(d, " B (GCM does not pad)"...)
	}
	f.Details = []string{string(d)}
	if s.state == keyUndecided {
		s.chooseKey(f, seq)
	}
	if oc := s.open[f.Dir]; oc != nil {
		text, err := oc.open(f.Payload)
		if err == nil {
			f.Text, f.HasText, f.Key = text, true, s.source
		} else {
			f.Problem = "does not decrypt with " + s.source + ": " + err.Error()
		}
	}
	if f.Tamper >= 0 {
		s.tamper(f, seq)
	}
}

// chooseKey decides, at the session's first record, whether its keylog
// line opens it, and says once why a session stays ciphertext.
func (s *modernSession) chooseKey(f *replayFrame, seq uint64) {
	s.noteRSA(f)
	if s.keys.key != nil {
		s.note(f, "-key is a classic session key: it does not fit a modern session, whose records open only with its MODERN keylog line")
	}
	if s.keys.live && s.logged[f.Dir] == nil && s.random != nil {
		// A live server logs the secret after it reads the ClientHello: look again.
		if secret, ok := s.keys.lookup(modernKeylogLabel, s.random); ok {
			if c2s, s2c, err := newModernReplayOpeners(secret); err == nil {
				s.logged[wireC2S], _ = c2s.(*modernCipher)
				s.logged[wireS2C], _ = s2c.(*modernCipher)
			}
		}
	}
	if oc := s.logged[f.Dir]; oc != nil {
		if _, err := oc.openRecord(seq, f.Payload); err == nil {
			s.open, s.source, s.state = s.logged, "keylog "+s.keys.keylogName, keyFound
			return
		}
		s.state = keyWrong
		s.note(f, "wrong key: the MODERN line of keylog %s for this session does not decrypt it: its records are shown as ciphertext", s.keys.keylogName)
		return
	}
	s.state = keyNone
	if s.keys.keylogName == "" {
		return
	}
	if s.random == nil {
		s.note(f, "no key fits this session: its ClientHello, whose client random names it in a keylog, is not in the capture: its records are shown as ciphertext")
		return
	}
	s.note(f, "no key fits this session: keylog %s has no MODERN line for client random %s…: its records are shown as ciphertext", s.keys.keylogName, hex.EncodeToString(s.random[:8]))
}

// tamper shows GCM rejecting the record with f.Tamper flipped. It opens
// the changed copy as the frame's own sequence number without touching the
// opener, so the rest of the replay goes on with the untouched frame.
func (s *modernSession) tamper(f *replayFrame, seq uint64) {
	ct := len(f.Payload) - gcmTagLen
	t, ok := flipBit(f, f.Payload, func(i int) string {
		if i < ct {
			return fmt.Sprintf("byte %d of the ciphertext", i)
		}
		return fmt.Sprintf("byte %d of the GCM tag", i-ct)
	})
	if !ok {
		return
	}
	oc := s.open[f.Dir]
	if oc == nil || !f.HasText {
		f.Tampered = append(f.Tampered, "no key for this session: the receiver's check cannot be run here (give -keylog); GCM rejects any flipped bit")
		return
	}
	if _, err := oc.openRecord(seq, t); err != nil {
		f.Tampered = append(f.Tampered,
			"authentication failed: "+err.Error()+" — nothing from this frame reaches the user",
			"the receiver closes the connection; this replay goes on with the untouched frame")
		return
	}
	f.Tampered = append(f.Tampered, "GCM still accepts it")
}
