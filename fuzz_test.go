// Fuzz targets for the parsers of what a peer or a capture sends: frames,
// classic records, names, /pm and key logs, frame reassembly and capture
// lines, the modern handshake messages, both modern handshakes and modern
// records. Each checks invariants, not only the absence of a panic. Seed
// corpora live in testdata/fuzz/.

package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("0000000005hello"))
	f.Add([]byte("9999999999"))
	f.Add([]byte("0000065536"))
	f.Add([]byte("00000000"))
	f.Add([]byte("0000000003ab"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		payload, err := readFrame(r)
		consumed := len(in) - r.Len()
		if err != nil {
			if payload != nil {
				t.Fatal("payload returned with an error")
			}
			// Never reads past what the header allows.
			if consumed > headerLen+maxFrameLen {
				t.Fatalf("consumed %d bytes", consumed)
			}
			return
		}
		if len(payload) > maxFrameLen || consumed != headerLen+len(payload) {
			t.Fatalf("payload %d bytes, consumed %d", len(payload), consumed)
		}
		// Parse then format returns the same bytes.
		if got := appendFrame(nil, payload); !bytes.Equal(got, in[:consumed]) {
			t.Fatalf("round trip %q != %q", got, in[:consumed])
		}
	})
}

func FuzzFrameRoundTrip(f *testing.F) {
	f.Add([]byte(""), []byte("x"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a) > maxFrameLen || len(b) > maxFrameLen {
			return
		}
		var buf bytes.Buffer
		writeFrame(&buf, a)
		writeFrame(&buf, b)
		for _, want := range [][]byte{a, b} {
			got, err := readFrame(&buf)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("got %q, %v; want %q", got, err, want)
			}
		}
		if _, err := readFrame(&buf); err != io.EOF {
			t.Fatalf("after the frames: %v, want io.EOF", err)
		}
	})
}

func FuzzClassicOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, aesKeySize)
	c, err := newClassicCipher(key, nil)
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ := c.seal([]byte("hello"))
	f.Add(sealed, []byte("hello"))
	f.Add([]byte("!!!!"), []byte(""))
	f.Add([]byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), []byte("\xff"))
	f.Fuzz(func(t *testing.T, payload, text []byte) {
		// Anything at all: one error, or valid UTF-8.
		out, err := c.open(payload)
		if err != nil && err != errOpen {
			t.Fatalf("error %v is not errOpen", err)
		}
		if err == nil && !utf8.Valid(out) {
			t.Fatalf("open returned invalid UTF-8 %q", out)
		}
		// open(seal(x)) == x for UTF-8 text; errOpen otherwise.
		s, err := c.seal(text)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != sealedLen(len(text)) {
			t.Fatalf("sealed %d bytes, sealedLen says %d", len(s), sealedLen(len(text)))
		}
		got, err := c.open(s)
		if utf8.Valid(text) {
			if err != nil || !bytes.Equal(got, text) {
				t.Fatalf("open(seal(%q)) = %q, %v", text, got, err)
			}
		} else if err != errOpen {
			t.Fatalf("non-UTF-8 text opened: %v", err)
		}
	})
}

func FuzzSanitize(f *testing.F) {
	f.Add("clear\x1b[2J\r\n\u202eevil\u0085")
	f.Add("plain text")
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		for name, clean := range map[string]func(string) string{
			"sanitizeText": sanitizeText, "sanitizeForTerminal": sanitizeForTerminal,
		} {
			out := clean(s)
			for _, r := range out {
				if (isControl(r) && r != '\n') || r == utf8.RuneError {
					t.Fatalf("%s(%q) kept %U", name, s, r)
				}
				if r == '\n' && name == "sanitizeText" {
					t.Fatalf("sanitizeText(%q) kept a newline", s)
				}
			}
			if clean(out) != out {
				t.Fatalf("%s is not idempotent on %q", name, s)
			}
			if len(out) > len(s) {
				t.Fatalf("%s grew %q", name, s)
			}
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"alice", "", "system", "a b", "Zoë", "x\x1b", strings.Repeat("n", 33)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if validateName(name) != nil {
			return
		}
		// An accepted name is printable as is and cannot pose as the server.
		if sanitizeText(name) != name || strings.ContainsAny(name, " []:/") {
			t.Fatalf("accepted %q", name)
		}
		if n := utf8.RuneCountInString(name); n < 1 || n > maxNameLen {
			t.Fatalf("accepted %q of %d runes", name, n)
		}
		if strings.EqualFold(name, "system") || strings.EqualFold(name, "server") {
			t.Fatalf("accepted reserved %q", name)
		}
	})
}

func FuzzParsePM(f *testing.F) {
	f.Add("bob hello there")
	f.Add("  bob   spaced  ")
	f.Add("bob")
	f.Add("")
	f.Fuzz(func(t *testing.T, args string) {
		to, text, ok := parsePM(args)
		if !ok {
			return
		}
		if to == "" || strings.ContainsAny(to, " ") || text == "" {
			t.Fatalf("parsePM(%q) = %q, %q", args, to, text)
		}
		if sanitizeText(text) != text || strings.TrimSpace(text) != text {
			t.Fatalf("text %q not clean", text)
		}
		// Formatting the command again parses to the same parts.
		to2, text2, ok2 := parsePM(to + " " + text)
		if !ok2 || to2 != to || text2 != text {
			t.Fatalf("round trip of %q: %q %q", args, to2, text2)
		}
	})
}

func FuzzParseKeylog(f *testing.F) {
	f.Add("# comment\nCLASSIC 0011223344556677 " + strings.Repeat("ab", 32) + "\n")
	f.Add("MODERN " + strings.Repeat("01", 32) + " " + strings.Repeat("cd", 32))
	f.Add("CLASSIC zz 00\n")
	f.Add("lower 00 00\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		entries, err := parseKeylog(strings.NewReader(in))
		lines := strings.Count(in, "\n") + 1
		if err != nil {
			var le *lineError
			if errors.As(err, &le) && (le.Line < 1 || le.Line > lines+1) {
				t.Fatalf("error names line %d of %d: %v", le.Line, lines, err)
			}
		}
		// Formatting the entries as a key log and parsing again gives them back.
		var b strings.Builder
		for _, e := range entries {
			fmt.Fprintf(&b, "%s %x %x\n", e.Label, e.ID, e.Secret)
		}
		again, err := parseKeylog(strings.NewReader(b.String()))
		if err != nil || len(again) != len(entries) {
			t.Fatalf("round trip: %d entries, %v; want %d", len(again), err, len(entries))
		}
		for i := range entries {
			if again[i].Label != entries[i].Label || !bytes.Equal(again[i].ID, entries[i].ID) || !bytes.Equal(again[i].Secret, entries[i].Secret) {
				t.Fatalf("entry %d changed in the round trip", i)
			}
		}
	})
}

// FuzzReassemble checks that the reassembler accounts for every byte, does
// not depend on where chunks are cut, and returns well-formed frames intact.
func FuzzReassemble(f *testing.F) {
	f.Add([]byte("0000000005hello0000000000"), uint64(1))
	f.Add([]byte("lo0000000003abc000"), uint64(7))
	f.Add([]byte("0000099999x0000000001y"), uint64(3))
	f.Add(frames("-----BEGIN PUBLIC KEY-----", "AAAA", "12345678901"), uint64(42))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		rng := mathrand.New(mathrand.NewPCG(seed, 1))
		var cuts []int
		for i := 1; i < len(stream); i++ {
			if rng.IntN(4) == 0 {
				cuts = append(cuts, i)
			}
		}
		whole, chunked := reassemble(stream, nil), reassemble(stream, cuts)
		if a, b := strings.Join(whole.events, "\n"), strings.Join(chunked.events, "\n"); a != b {
			t.Fatalf("chunking changed the result:\nwhole:\n%s\nchunked %v:\n%s", a, cuts, b)
		}
		if whole.consumed != len(stream) {
			t.Fatalf("accounted for %d of %d bytes", whole.consumed, len(stream))
		}
		// The same bytes as payloads of well-formed frames come back whole.
		payloads := bytes.Split(stream, []byte{0xff})
		var enc []byte
		for _, p := range payloads {
			enc = appendFrame(enc, p)
		}
		l := reassemble(enc, cuts)
		if len(l.frames) != len(payloads) || len(l.events) != len(payloads) {
			t.Fatalf("%d payloads became %v", len(payloads), l.events)
		}
		for i := range payloads {
			if !bytes.Equal(l.frames[i], payloads[i]) {
				t.Fatalf("frame %d: %q, want %q", i, l.frames[i], payloads[i])
			}
		}
	})
}

// captureLog reads a capture and describes every event and the error.
func captureLog(data []byte) string {
	cr, err := newCaptureReader(bytes.NewReader(data))
	if err != nil {
		return "header: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%+v\n", cr.Header)
	lastLine := 1
	for {
		var ev captureEvent
		err := cr.next(&ev)
		if err != nil {
			b.WriteString("end: " + err.Error())
			return b.String()
		}
		if ev.Line <= lastLine {
			panic(fmt.Sprintf("line %d after line %d", ev.Line, lastLine))
		}
		lastLine = ev.Line
		fmt.Fprintf(&b, "%d %v %d %s %v %q %q %x\n", ev.Line, ev.T, ev.Conn, ev.Kind, ev.Dir, ev.Client, ev.Server, ev.Data)
	}
}

// FuzzCaptureParse checks the capture reader: a bad line is named and never
// panics, and replay and pcap export survive any capture.
func FuzzCaptureParse(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join(replayTestdata, "session.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	lines := bytes.SplitAfter(golden, []byte("\n"))
	f.Add(bytes.Join(lines[:6], nil))
	hdr := string(lines[0])
	for _, s := range []string{
		`{"t":0.5,"conn":1,"dir":"c2s","data":"MDAwMDAwMDAwMw=="}`,
		`{"t":1e-3,"conn":1,"dir":"s2c","data":"AA=="}`,
		`{"t":0.1,"conn":2,"ev":"open","client":"[::1]:5","server":"x\u00e9"}`,
		`{"T":0.1,"Conn":2,"EV":"close"}`,
		`{"t":0.1,"conn":1.0,"ev":"close"}`,
		`{"t":-1,"conn":1,"ev":"close"}`,
		`{"t":0.1,"conn":1,"dir":"c2s","data":"!!"}`,
		`{"t":0.1,"conn":1,"dir":"c2s","data":null}`,
		`{"t":0.1,"conn":1,"ev":"open","extra":{"x":[1]}}`,
		`{"t":0.1,"conn":1,"dir":"c2s","data":"MDAwMDAwMDAw` + "\n",
	} {
		f.Add([]byte(hdr + s + "\n"))
	}
	f.Add([]byte(`{"encchat_capture":2}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if log := captureLog(data); !strings.Contains(log, "end: EOF") && !strings.Contains(log, "end: line ") && !strings.HasPrefix(log, "header: line ") {
			t.Fatalf("an error that names no line:\n%s", log)
		}
		opts := &replayOptions{name: "fuzz", view: "both", width: 120, keys: &replayKeys{key: make([]byte, 32)}, tamper: tamperSpec{frame: 3, bit: 130, set: true}}
		replayCapture(bytes.NewReader(data), opts, newTextOutput(io.Discard, opts))
		opts.json = true
		replayCapture(bytes.NewReader(data), opts, newJSONOutput(io.Discard, opts))
		exportPcap(bytes.NewReader(data), io.Discard, 0, false, nil)
	})
}

// modernSampleMessages are real handshake payloads for the fuzz seeds.
var modernSampleMessages = sync.OnceValue(func() map[msgType][]byte {
	dk, _ := modernTestKEM()
	spki, _ := x509.MarshalPKIXPublicKey(&modernFuzzKey().PublicKey)
	r := bytes.Repeat([]byte{7}, 32)
	return map[msgType][]byte{
		typeServerHello:    (&serverHelloMsg{random: r, x25519: r, mlkemEK: dk, spki: spki}).marshal(),
		typeClientHello:    (&clientHelloMsg{random: r, x25519: r, mlkemCT: make([]byte, mlkemCTLen)}).marshal(),
		typeServerVerify:   (&serverVerifyMsg{signature: make([]byte, rsaSigLen)}).marshal(),
		typeServerFinished: (&finishedMsg{typ: typeServerFinished, verifyData: r}).marshal(),
		typeClientFinished: (&finishedMsg{typ: typeClientFinished, verifyData: r}).marshal(),
	}
})

var modernFuzzKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		panic(err)
	}
	return k
})

func FuzzParseServerHello(f *testing.F) {
	f.Add(modernSampleMessages()[typeServerHello])
	f.Add([]byte(modernMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseServerHello(b)
		if err != nil {
			return
		}
		if out := m.marshal(); !bytes.Equal(out, b) {
			t.Fatalf("parse then marshal changed the message")
		}
	})
}

func FuzzParseClientHello(f *testing.F) {
	f.Add(modernSampleMessages()[typeClientHello])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseClientHello(b)
		if err != nil {
			return
		}
		if out := m.marshal(); !bytes.Equal(out, b) {
			t.Fatalf("parse then marshal changed the message")
		}
		if r, ok := modernClientRandom(b); !ok || !bytes.Equal(r, b[1:33]) {
			t.Fatalf("modernClientRandom disagrees with the parser")
		}
	})
}

func FuzzParseServerVerify(f *testing.F) {
	f.Add(modernSampleMessages()[typeServerVerify])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseServerVerify(b)
		if err != nil {
			return
		}
		if out := m.marshal(); !bytes.Equal(out, b) {
			t.Fatalf("parse then marshal changed the message")
		}
	})
}

func FuzzParseFinished(f *testing.F) {
	f.Add(modernSampleMessages()[typeServerFinished])
	f.Add(modernSampleMessages()[typeClientFinished])
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, typ := range []msgType{typeServerFinished, typeClientFinished} {
			m, err := parseFinished(b, typ)
			if err != nil {
				continue
			}
			if out := m.marshal(); !bytes.Equal(out, b) {
				t.Fatalf("parse then marshal changed the message")
			}
		}
	})
}

// FuzzClientHandshake feeds a fuzzed first frame and server stream to the
// client: it must fail cleanly, never panic, never finish.
func FuzzClientHandshake(f *testing.F) {
	f.Add(modernSampleMessages()[typeServerHello], appendFrame(nil, modernSampleMessages()[typeServerVerify]))
	f.Add([]byte(modernMagic), []byte("0000000033"))
	f.Fuzz(func(t *testing.T, first, stream []byte) {
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(stream), io.Discard}
		if _, err := clientHandshakeModern(rw, first, &handshakeConfig{CheckKey: modernAcceptAnyKey}); err == nil {
			t.Fatalf("handshake finished against a fuzzed server")
		}
	})
}

// FuzzServerHandshake feeds a fuzzed client stream to the server.
func FuzzServerHandshake(f *testing.F) {
	f.Add(appendFrame(nil, modernSampleMessages()[typeClientHello]))
	f.Add(append(appendFrame(nil, modernSampleMessages()[typeClientHello]), appendFrame(nil, modernSampleMessages()[typeClientFinished])...))
	f.Add([]byte("0000099999"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(stream), io.Discard}
		if _, err := serverHandshakeModern(rw, &handshakeConfig{Key: modernFuzzKey()}); err == nil {
			t.Fatalf("handshake finished against a fuzzed client")
		}
	})
}

// FuzzModernOpen opens fuzzed payloads as record seq under a fixed key.
// Whatever opens must be exactly what sealing the text gives (the fuzzer
// cannot forge a tag); everything else is the one error with no text.
func FuzzModernOpen(f *testing.F) {
	key, iv := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 12)
	se, _ := newHalfConn(key, iv)
	for _, s := range []string{"", "hi", "hello, modern world"} {
		p, _ := se.encrypt([]byte(s))
		f.Add(p, uint8(se.seq-1))
	}
	f.Fuzz(func(t *testing.T, payload []byte, seq uint8) {
		op, _ := newHalfConn(key, iv)
		op.seq = uint64(seq)
		text, err := op.decrypt(payload)
		if err != nil {
			if text != nil || err != alertBadRecordMAC {
				t.Fatalf("failed open returned %q, %v", text, err)
			}
			if _, err2 := op.decrypt(payload); err2 != err {
				t.Fatalf("direction recovered after a failure")
			}
			return
		}
		ad := appendFrameHeader(nil, len(payload))
		if again := op.sealAt(uint64(seq), ad, text); !bytes.Equal(again, payload) {
			t.Fatalf("opened a payload that sealing does not produce")
		}
	})
}
