// Tests of the classic suite (classic.go): seal and open, the pinned
// record layout, the server writer's sealer, which must write the same
// bytes as appendSealedFrame, and the server's 256-byte key blob.

package main

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	mathrand "math/rand/v2"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestClassicSealOpen(t *testing.T) {
	key := make([]byte, aesKeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	c, err := newClassicCipher(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, maxTextLen} {
		text := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
		sealed, err := c.seal(text)
		if err != nil {
			t.Fatalf("seal %d bytes: %v", n, err)
		}
		if len(sealed) != sealedLen(n) {
			t.Errorf("seal %d bytes: len %d, sealedLen %d", n, len(sealed), sealedLen(n))
		}
		raw, err := base64.StdEncoding.DecodeString(string(sealed))
		if err != nil {
			t.Fatalf("seal %d bytes: not standard base64: %v", n, err)
		}
		if want := cbcIVSize + (n/16+1)*16; len(raw) != want {
			t.Errorf("seal %d bytes: %d raw bytes, want IV + %d", n, len(raw), want-cbcIVSize)
		}
		got, err := c.open(sealed)
		if err != nil || !bytes.Equal(got, text) {
			t.Errorf("open(seal(%d bytes)) = (%q, %v)", n, got, err)
		}
		again, _ := c.seal(text)
		if bytes.Equal(again, sealed) || bytes.Equal(again[:22], sealed[:22]) {
			t.Errorf("seal %d bytes twice gave the same IV", n)
		}
	}

	// Multi-byte UTF-8 survives; a wrong key, bit flips in the padding,
	// bad lengths and bad base64 all give errOpen and nothing else.
	text := []byte("héllo ✓ wörld")
	sealed, _ := c.seal(text)
	if got, err := c.open(sealed); err != nil || !bytes.Equal(got, text) {
		t.Fatalf("open UTF-8 = (%q, %v)", got, err)
	}
	other, _ := newClassicCipher(bytes.Repeat([]byte{1}, aesKeySize), nil)
	raw, _ := base64.StdEncoding.DecodeString(string(sealed))
	lastByteFlipped := append([]byte(nil), raw...)
	lastByteFlipped[len(raw)-17] ^= 0x01 // previous block's last byte → pad byte
	bad := map[string][]byte{
		"empty":            nil,
		"not base64":       []byte("!!!!" + string(sealed[4:])),
		"IV only":          base64.StdEncoding.AppendEncode(nil, raw[:16]),
		"not block-sized":  base64.StdEncoding.AppendEncode(nil, raw[:len(raw)-1]),
		"pad byte flipped": base64.StdEncoding.AppendEncode(nil, lastByteFlipped),
	}
	for name, p := range bad {
		if got, err := c.open(p); err != errOpen || got != nil {
			t.Errorf("open %s = (%q, %v), want errOpen", name, got, err)
		}
	}
	// A wrong key almost always breaks the padding; in the rare case it
	// does not, the text is garbage, so accept either but never the text.
	if got, err := other.open(sealed); err == nil && bytes.Equal(got, text) {
		t.Errorf("wrong key opened the record")
	} else if err != nil && err != errOpen {
		t.Errorf("wrong key: %v, want errOpen", err)
	}
	if _, err := newClassicCipher(key[:16], nil); err == nil {
		t.Errorf("newClassicCipher accepted a 16-byte key")
	}
}

// TestClassicSealFixedIV pins the record layout (IV first, then CBC blocks
// of PKCS#7-padded text, standard base64), so a change fails here and not
// only in the interop tests.
func TestClassicSealFixedIV(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, aesKeySize)
	iv := bytes.Repeat([]byte{0x24}, cbcIVSize)
	c, err := newClassicCipher(key, bytes.NewReader(iv))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := c.seal([]byte("twelve bytes"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(string(sealed))
	if !bytes.Equal(raw[:16], iv) || len(raw) != 32 {
		t.Fatalf("record %x: want IV %x then one block", raw, iv)
	}
	// Decrypt independently of classicCipher.
	blocks, err := c.decryptBlocks(sealed)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("twelve bytes"), 4, 4, 4, 4)
	if !bytes.Equal(blocks, want) {
		t.Fatalf("padded plaintext %x, want %x", blocks, want)
	}
}

// sealedLen is the base64 length of a classic record holding n bytes of text.
func sealedLen(n int) int {
	padded := (n/aes.BlockSize + 1) * aes.BlockSize
	return base64.StdEncoding.EncodedLen(cbcIVSize + padded)
}

// TestClassicFrameSealer checks that a classic member's writer writes the
// same bytes as appendSealedFrame, record after record, and that each frame
// opens to its text.
func TestClassicFrameSealer(t *testing.T) {
	key := bytes.Repeat([]byte{3}, aesKeySize)
	var seed [32]byte
	plain, err := newClassicCipher(key, mathrand.NewChaCha8(seed))
	if err != nil {
		t.Fatal(err)
	}
	fast, _ := newClassicCipher(key, mathrand.NewChaCha8(seed))
	seal := frameSealer(fast)
	var want, got []byte
	texts := []string{"", "x", strings.Repeat("y", 15), strings.Repeat("z", 16), strings.Repeat("é", 600), "x", ""}
	for _, text := range texts {
		if want, err = appendSealedFrame(want, plain, text); err != nil {
			t.Fatal(err)
		}
		if got, err = seal(got, text); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the writer's frames differ from appendSealedFrame's:\n%q\n%q", got, want)
	}
	r := bytes.NewReader(got)
	for _, want := range texts {
		p, err := readFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != sealedLen(len(want)) {
			t.Errorf("%d-byte text: payload %d, want %d", len(want), len(p), sealedLen(len(want)))
		}
		if got, err := plain.open(p); err != nil || string(got) != want {
			t.Errorf("open = %.20q, %v; want %.20q", got, err, want)
		}
	}
}

// TestClassicKeyBlobSize: the server reads the client's RSA-OAEP blob with
// a 256-byte limit. A blob of 255 or 257 bytes (or none) closes the
// connection with nothing sent after the public key (no HANDSHAKE_OK), and
// the server's log says why; 256 bytes is a handshake.
func TestClassicKeyBlobSize(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	for _, tc := range []struct {
		n    int
		want string // in the server's log
	}{
		{0, "encrypted AES key is 0 bytes, want 256"},
		{255, "encrypted AES key is 255 bytes, want 256"},
		{257, "encrypted AES key: frame too long: over 256 bytes"},
		{maxFrameLen, "encrypted AES key: frame too long: over 256 bytes"},
	} {
		conn, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(conn)
		if first, err := readFrame(br); err != nil || !isPublicKeyPEM(first) {
			t.Fatalf("%d-byte blob: server's first frame: %v", tc.n, err)
		}
		blob := make([]byte, tc.n)
		rand.Read(blob)
		writeFrame(conn, blob)
		rest, err := io.ReadAll(br)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Errorf("%d-byte blob: the server kept the connection open", tc.n)
		case err != nil && !errors.Is(err, syscall.ECONNRESET):
			t.Errorf("%d-byte blob: %v", tc.n, err)
		case len(rest) != 0:
			t.Errorf("%d-byte blob: the server answered %d bytes, want none", tc.n, len(rest))
		}
		ts.logged(t, evRefused, conn.LocalAddr().String()+": handshake: "+tc.want)
		conn.Close()
	}
	conn, _ := rawClassic(t, ts.addr, "alice") // 256 bytes: the handshake completes
	conn.Close()
}
