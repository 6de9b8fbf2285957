// The handshake of each suite as a table of steps, described once: the
// client's walk-through takes its titles from here, replay's decoders their
// words for each frame (what a sniffer sees, what the peer does, what a
// flipped bit does), and the lesson page its step names and the work each
// side does off the wire. The frame kinds replay tells apart are here too.

package main

// frameKind is what replay's decoder made of a frame.
type frameKind uint8

const (
	kindNone         frameKind = iota // no frame: a step's work stays on one side
	kindOpaque                        // no suite recognises it
	kindPartial                       // the stream ends inside it
	kindPublicKey                     // classic: the server's RSA public key, PEM
	kindKeyTransport                  // classic: the session key under RSA-OAEP
	kindSealed                        // a record of either suite
	kindServerHello                   // modern handshake messages, in clear
	kindClientHello
	kindServerVerify
	kindServerFinished
	kindClientFinished
	kindHandshake // modern: a frame where another handshake message should be
)

// frameKindNames are the kinds as replay -json and the lesson page write them.
var frameKindNames = [...]string{
	kindNone:           "none",
	kindOpaque:         "opaque",
	kindPartial:        "partial",
	kindPublicKey:      "public-key",
	kindKeyTransport:   "key-transport",
	kindSealed:         "sealed",
	kindServerHello:    "server-hello",
	kindClientHello:    "client-hello",
	kindServerVerify:   "server-verify",
	kindServerFinished: "server-finished",
	kindClientFinished: "client-finished",
	kindHandshake:      "handshake",
}

func (k frameKind) String() string {
	if int(k) < len(frameKindNames) {
		return frameKindNames[k]
	}
	return "unknown"
}

// party is who acts in a step.
type party uint8

const (
	partyClient party = iota
	partyServer
)

func (p party) String() string {
	if p == partyServer {
		return "server"
	}
	return "client"
}

// sends is the direction of the frames p sends.
func (p party) sends() wireDir {
	if p == partyServer {
		return wireS2C
	}
	return wireC2S
}

// protocolStep is one step of a handshake: a frame one side sends, or work
// one side does without sending anything (Kind is kindNone). A field is
// empty where its reader has nothing to say or works the words out itself
// from the frame (a fingerprint, a length, which field a bit fell in).
type protocolStep struct {
	By   party
	Kind frameKind // the frame the step sends; a sealed step is known only by its place

	// The client's walk-through.
	Title string // "" when the walk-through does not show the step

	// Replay.
	Sniffer string // replay's name for the frame
	Reveals string // what else the frame tells a sniffer
	Peer    string // what the peer does with it
	Flipped string // what the peer does once a bit of it is flipped

	// The lesson page.
	Name  string // beside the step's frame
	Label string // over its arrow, or in the box of one side's work
	Work  string // one side's work, drawn across the diagram
	Band  string // drawn after the step: the channel is now secure
}

// protocolSteps is a suite's handshake in order.
type protocolSteps []protocolStep

// classicSteps is the seed's handshake, numbered as its README's chart:
// classicSteps[i] is chart Step i+1, and Step 8 is followed by the server's
// answer. The walk-through's titles are the ones the seed's client prints,
// [1/5] to [5/5] on chart Steps 1, 2, 3, 4 and 6 (see chartStep).
var classicSteps = protocolSteps{
	// Step 1; the walk-through's [1/5].
	{By: partyServer, Kind: kindPublicKey,
		Title:   "Receiving server's RSA public key...",
		Sniffer: "server public key (PEM): readable by anyone",
		Flipped: "a client that pinned the real key refuses it; one that did not sends its session key to a key nobody holds",
		Name:    "Step 1 · Server RSA Public Key",
		Label:   "Step 1 · RSA public key"},
	// Step 2; [2/5].
	{By: partyClient,
		Title: "Generating AES-256 symmetric key..."},
	// Step 3; [3/5]. The lesson draws Steps 2 and 3 in one box.
	{By: partyClient,
		Title: "Encrypting AES key with server's RSA public key...",
		Label: "2–3",
		Work:  "Steps 2–3, client: generates a random AES-256 key and encrypts it with the server's RSA public key (RSA-OAEP). Nothing goes on the wire."},
	// Step 4; [4/5].
	{By: partyClient, Kind: kindKeyTransport,
		Title:   "Sending encrypted AES key to server...",
		Sniffer: "key-transport blob: the session key under RSA-OAEP, 256 B",
		Peer:    "the server decrypts the session key from it (no key for it here)",
		Flipped: "RSA-OAEP rejects it: the server cannot recover a key and drops the client",
		Name:    "Step 4 · Encrypted AES Key",
		Label:   "Step 4 · encrypted AES key"},
	// Step 5.
	{By: partyServer,
		Label: "5",
		Work:  "Step 5, server: decrypts the AES key with its RSA private key. Only the holder of that key can."},
	// Step 6; [5/5], whose result line is the check of Step 7. A sealed
	// record, like every frame from here on.
	{By: partyServer, Kind: kindSealed,
		Title: "Receiving encrypted confirmation from server...",
		Name:  "Step 6 · Encrypted Confirmation",
		Label: "Step 6 · confirmation"},
	// Step 7.
	{By: partyClient,
		Label: "7",
		Work:  "Step 7, client: the confirmation decrypts to HANDSHAKE_OK, so the server holds the key the client encrypted to."},
	// Step 8.
	{By: partyClient, Kind: kindSealed,
		Name:  "Step 8 · Encrypted Username",
		Label: "Step 8 · username",
		Band:  "SECURE CHANNEL ESTABLISHED: every frame from here on is a sealed record (AES-256-CBC)"},
	// The server's answer: the welcome, or an "ERROR:" refusal.
	{By: partyServer, Kind: kindSealed,
		Name:  "Welcome",
		Label: "welcome"},
}

// modernSteps is the modern handshake: five messages, then the records.
var modernSteps = protocolSteps{
	{By: partyServer, Kind: kindServerHello,
		Title:   "Receiving server hello...",
		Sniffer: "ServerHello: ephemeral key shares and the server's RSA key, in clear",
		Peer:    "the client checks it against its pin, -fingerprint or -insecure",
		Flipped: "the transcript changes, so the server's signature over it no longer verifies: the client closes before it sends anything",
		Name:    "ServerHello · X25519 share, ML-KEM-768 key, RSA public key",
		Label:   "ServerHello"},
	{By: partyClient,
		Title: "Generating ephemeral key shares...",
		Label: "shares",
		Work:  "Client: checks the server key against its pin, makes a fresh X25519 share and encapsulates a secret to the ML-KEM-768 key. Nothing goes on the wire."},
	{By: partyClient, Kind: kindClientHello,
		Title:   "Sending client hello...",
		Sniffer: "ClientHello: the client's ephemeral key shares, in clear",
		Peer:    "both sides derive the session keys from the key shares (no key for it here)",
		Flipped: "the server derives other keys from it, so the client's Finished no longer verifies: the server closes before the username",
		Name:    "ClientHello · X25519 share, ML-KEM-768 ciphertext",
		Label:   "ClientHello"},
	{By: partyServer,
		Label: "keys",
		Work:  "Server: combines the X25519 and ML-KEM-768 secrets, derives the session keys (HKDF over the transcript) and signs the transcript with its RSA key."},
	{By: partyServer, Kind: kindServerVerify,
		Title:   "Verifying the server's signature over the transcript...",
		Sniffer: "ServerVerify: RSA-PSS-SHA256 signature over the transcript",
		Reveals: "anyone can check it with the key in the ServerHello: it proves who the server is and hides nothing",
		Peer:    "the client checks it with the server's key: only the holder of the private key could make it",
		Flipped: "the signature no longer verifies: the client closes before it sends anything",
		Name:    "ServerVerify · RSA-PSS signature over the transcript",
		Label:   "ServerVerify"},
	{By: partyServer, Kind: kindServerFinished,
		Title:   "Exchanging Finished messages...",
		Sniffer: "ServerFinished: HMAC-SHA256 over the transcript",
		Reveals: "keyed by a secret from the key exchange: a sniffer can neither check nor forge it",
		Peer:    "the client checks it: the server derived the same keys from the same transcript",
		Flipped: "the MAC no longer matches: the client closes before its Finished",
		Name:    "ServerFinished · proves the server derived the same keys",
		Label:   "ServerFinished"},
	{By: partyClient,
		Label: "check",
		Work:  "Client: checks the signature against the pinned key and the server's Finished, so nobody in the middle changed a byte."},
	{By: partyClient, Kind: kindClientFinished,
		Sniffer: "ClientFinished: HMAC-SHA256 over the transcript",
		Reveals: "keyed by a secret from the key exchange: a sniffer can neither check nor forge it",
		Peer:    "the server checks it: the client derived the same keys from the same transcript; records follow",
		Flipped: "the MAC no longer matches: the server closes, and the client's username is never answered",
		Name:    "ClientFinished · proves the client derived the same keys",
		Label:   "ClientFinished",
		Band:    "SECURE CHANNEL ESTABLISHED: every frame from here on is an AES-256-GCM record"},
	{By: partyClient, Kind: kindSealed,
		Name:  "Username",
		Label: "username"},
	{By: partyServer, Kind: kindSealed,
		Name:  "Welcome",
		Label: "welcome"},
}

// title is the title of line [n/5] (n from 1) of the client's walk-through.
func (s protocolSteps) title(n int) string {
	if i := s.walkIndex(n); i >= 0 {
		return s[i].Title
	}
	return ""
}

// chartStep is the step of the seed's chart (Steps 1–8, classicSteps in
// order) that line [n/5] of the classic walk-through shows: the seed's
// client prints five lines for the chart's eight steps, and they are
// Steps 1, 2, 3, 4 and 6 (the check of Step 7 is [5/5]'s result). 0 when
// the walk-through has no line n.
func (s protocolSteps) chartStep(n int) int {
	return s.walkIndex(n) + 1
}

// walkIndex is the index in s of walk-through line n, or -1.
func (s protocolSteps) walkIndex(n int) int {
	for i, st := range s {
		if st.Title == "" {
			continue
		}
		if n--; n == 0 {
			return i
		}
	}
	return -1
}

// sent returns the step that sends frames of kind k; a sealed step is known
// only by its place, so kindSealed has none.
func (s protocolSteps) sent(k frameKind) *protocolStep {
	for i := range s {
		if s[i].Kind == k && k != kindSealed {
			return &s[i]
		}
	}
	return nil
}

// next finds which step a frame sent in direction d, of kind k, is, once
// the steps before s[from] are done, and returns its index, or -1 when it
// is none. A handshake is named only from its first step. A sealed step is
// known only by its place: it is the next step that sends a frame. A step
// in clear is known by its kind too, so the naming goes on past a message
// the capture lacks.
func (s protocolSteps) next(from int, d wireDir, k frameKind) int {
	for i := from; i < len(s); i++ {
		if s[i].Kind == kindNone {
			continue
		}
		if s[i].By.sends() == d && (s[i].Kind == k || s[i].Kind == kindSealed) {
			return i
		}
		break
	}
	if from > 0 && k != kindSealed {
		for i := from; i < len(s); i++ {
			if s[i].Kind == k && s[i].By.sends() == d {
				return i
			}
		}
	}
	return -1
}

// stepFinder follows one connection's frames through its suite's
// handshake: it names the step each frame is, in order, until the first
// frame that is none (see next).
type stepFinder struct {
	next int // where the next frame's step is looked for; -1: past the handshake
}

// find returns the step a frame sent in direction d, of kind k, is, in the
// table of suite, or nil.
func (sf *stepFinder) find(suite string, d wireDir, k frameKind) *protocolStep {
	steps := stepsOf(suite)
	if steps == nil || sf.next < 0 {
		return nil
	}
	i := steps.next(sf.next, d, k)
	if i < 0 {
		sf.next = -1
		return nil
	}
	sf.next = i + 1
	return &steps[i]
}

// workBefore is the work done off the wire right before step i.
func (s protocolSteps) workBefore(from, i int) protocolSteps {
	j := i
	for j > from && s[j-1].Kind == kindNone {
		j--
	}
	return s[j:i]
}

// stepsOf is a suite's table.
func stepsOf(suite string) protocolSteps {
	switch suite {
	case suiteClassic:
		return classicSteps
	case suiteModern:
		return modernSteps
	}
	return nil
}

// handshakeStep is one step of the client's handshake walk-through.
type handshakeStep struct {
	N, Total int
	Title    string
	Results  []string
}
