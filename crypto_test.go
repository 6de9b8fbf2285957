package main

import (
	"bytes"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// testRSAKey returns one RSA-2048 key shared by every test in the binary:
// generating keys is the slowest thing the tests would otherwise do.
func testRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	testKeyOnce.Do(func() {
		testKey, testKeyErr = rsa.GenerateKey(rand.Reader, rsaBits)
	})
	if testKeyErr != nil {
		t.Fatalf("generating test RSA key: %v", testKeyErr)
	}
	return testKey
}

var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
	testKeyErr  error
)

// ---- Wycheproof -------------------------------------------------------------

// wycheproofDir finds the vectors: ENCCHAT_WYCHEPROOF_DIR, testdata/wycheproof,
// or the shared copy beside the repository.
func wycheproofDir(t *testing.T) string {
	t.Helper()
	candidates := []string{
		os.Getenv("ENCCHAT_WYCHEPROOF_DIR"),
		filepath.Join("testdata", "wycheproof"),
		filepath.Join("..", "shared", "testdata", "wycheproof"),
	}
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "rsa_oaep_2048_sha1_mgf1sha1_test.json")); err == nil {
			return dir
		}
	}
	if os.Getenv("ENCCHAT_REQUIRE_TOOLS") == "1" {
		t.Fatalf("wycheproof vectors not found in %q", candidates)
	}
	t.Skipf("wycheproof vectors not found in %q (set ENCCHAT_WYCHEPROOF_DIR)", candidates)
	return ""
}

type wycheproofCase struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Key     string   `json:"key"`
	IV      string   `json:"iv"`
	Msg     string   `json:"msg"`
	CT      string   `json:"ct"`
	Label   string   `json:"label"`
	Result  string   `json:"result"`
}

type wycheproofGroup struct {
	KeySize         int              `json:"keySize"`
	IVSize          int              `json:"ivSize"`
	SHA             string           `json:"sha"`
	MGFSHA          string           `json:"mgfSha"`
	PrivateKeyPkcs8 string           `json:"privateKeyPkcs8"`
	Tests           []wycheproofCase `json:"tests"`
}

type wycheproofFile struct {
	Algorithm     string            `json:"algorithm"`
	NumberOfTests int               `json:"numberOfTests"`
	TestGroups    []wycheproofGroup `json:"testGroups"`
}

func loadWycheproof(t *testing.T, name string) wycheproofFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(wycheproofDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	var f wycheproofFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestWycheproofOAEP runs RSA-OAEP (SHA-1, MGF1-SHA-1) vectors through
// oaepDecrypt and classicUnwrapKey. Every failure must be the one error
// errKeyTransport: distinct errors would be Manger's oracle.
func TestWycheproofOAEP(t *testing.T) {
	f := loadWycheproof(t, "rsa_oaep_2048_sha1_mgf1sha1_test.json")
	var valid, invalid, unwrapped int
	for _, g := range f.TestGroups {
		if g.KeySize != 2048 || g.SHA != "SHA-1" || g.MGFSHA != "SHA-1" {
			t.Fatalf("unexpected group: keySize %d sha %s mgfSha %s", g.KeySize, g.SHA, g.MGFSHA)
		}
		k, err := x509.ParsePKCS8PrivateKey(unhex(t, g.PrivateKeyPkcs8))
		if err != nil {
			t.Fatalf("group key: %v", err)
		}
		priv := k.(*rsa.PrivateKey)
		for _, tc := range g.Tests {
			t.Run(fmt.Sprintf("tcId%d", tc.TcID), func(t *testing.T) {
				ct, msg, label := unhex(t, tc.CT), unhex(t, tc.Msg), unhex(t, tc.Label)
				got, err := oaepDecrypt(priv, ct, label)
				switch tc.Result {
				case "valid":
					valid++
					if err != nil {
						t.Fatalf("%s: oaepDecrypt: %v", tc.Comment, err)
					}
					if !bytes.Equal(got, msg) {
						t.Fatalf("%s: got %x, want %x", tc.Comment, got, msg)
					}
				case "invalid":
					invalid++
					if err != errKeyTransport || got != nil {
						t.Fatalf("%s %v: got (%x, %v), want (nil, errKeyTransport)", tc.Comment, tc.Flags, got, err)
					}
				default:
					t.Logf("%s: result %q: got err %v", tc.Comment, tc.Result, err)
				}

				// The classic handshake: empty label, and only a 32-byte
				// plaintext is an AES key. Everything else is errKeyTransport.
				key, err := classicUnwrapKey(priv, ct)
				if tc.Result == "valid" && len(label) == 0 && len(msg) == aesKeySize {
					unwrapped++
					if err != nil || !bytes.Equal(key, msg) {
						t.Fatalf("classicUnwrapKey: got (%x, %v), want %x", key, err, msg)
					}
				} else if tc.Result != "acceptable" {
					if err != errKeyTransport || key != nil {
						t.Fatalf("classicUnwrapKey: got (%x, %v), want (nil, errKeyTransport)", key, err)
					}
				}
			})
		}
	}
	t.Logf("%d valid, %d invalid, %d unwrapped as AES-256 keys", valid, invalid, unwrapped)
	if valid+invalid != f.NumberOfTests || unwrapped == 0 {
		t.Errorf("ran %d valid + %d invalid of %d cases, %d unwrapped", valid, invalid, f.NumberOfTests, unwrapped)
	}
}

// TestWycheproofAESCBC runs the AES-256 CBC/PKCS#5 vectors through
// classicCipher.open, building the record as base64(iv || ct).
func TestWycheproofAESCBC(t *testing.T) {
	f := loadWycheproof(t, "aes_cbc_pkcs5_test.json")
	var valid, invalid, nonUTF8 int
	for _, g := range f.TestGroups {
		if g.KeySize != 256 {
			continue
		}
		if g.IVSize != 128 {
			t.Fatalf("ivSize %d", g.IVSize)
		}
		for _, tc := range g.Tests {
			t.Run(fmt.Sprintf("tcId%d", tc.TcID), func(t *testing.T) {
				c, err := newClassicCipher(unhex(t, tc.Key), nil)
				if err != nil {
					t.Fatal(err)
				}
				record := base64.StdEncoding.AppendEncode(nil, append(unhex(t, tc.IV), unhex(t, tc.CT)...))
				msg := unhex(t, tc.Msg)
				got, err := c.open(record)
				blocks, berr := c.decryptBlocks(record)
				var unpadded []byte
				unpadOK := false
				if berr == nil {
					unpadded, unpadOK = pkcs7Unpad(blocks)
				}
				switch tc.Result {
				case "valid":
					valid++
					if !unpadOK || !bytes.Equal(unpadded, msg) {
						t.Fatalf("%s: decryptBlocks+pkcs7Unpad = (%x, %v, %v), want %x", tc.Comment, unpadded, unpadOK, berr, msg)
					}
					// open also demands UTF-8 text, and most Wycheproof
					// messages are random bytes: those must be errOpen, and
					// the block layer above is what checks them.
					if utf8.Valid(msg) {
						if err != nil || !bytes.Equal(got, msg) {
							t.Fatalf("%s: open = (%x, %v), want %x", tc.Comment, got, err, msg)
						}
					} else {
						nonUTF8++
						if err != errOpen || got != nil {
							t.Fatalf("%s: open of non-UTF-8 text = (%x, %v), want errOpen", tc.Comment, got, err)
						}
					}
				case "invalid":
					invalid++
					if err != errOpen || got != nil {
						t.Fatalf("%s %v: open = (%x, %v), want (nil, errOpen)", tc.Comment, tc.Flags, got, err)
					}
					if unpadOK {
						t.Fatalf("%s %v: pkcs7Unpad accepted %x", tc.Comment, tc.Flags, blocks)
					}
				default:
					t.Logf("%s: result %q: open err %v", tc.Comment, tc.Result, err)
				}
			})
		}
	}
	t.Logf("256-bit groups: %d valid (%d not UTF-8), %d invalid", valid, nonUTF8, invalid)
	if valid != 24 || invalid != 48 {
		t.Errorf("ran %d valid and %d invalid, want 24 and 48", valid, invalid)
	}
}

// ---- classic record layer ---------------------------------------------------

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

// ---- keys, PEM and fingerprints ---------------------------------------------

var pemLine = regexp.MustCompile(`^[A-Za-z0-9+/=]{1,64}$`)

func TestClassicPublicKeyPEM(t *testing.T) {
	priv := testRSAKey(t)
	p, err := marshalPublicKeyPEM(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 450 {
		t.Errorf("PEM is %d bytes, want 450 (pycryptodome's export_key)", len(p))
	}
	if bytes.HasSuffix(p, []byte("\n")) {
		t.Errorf("PEM ends with a newline")
	}
	if !isPublicKeyPEM(p) {
		t.Errorf("isPublicKeyPEM(own PEM) = false")
	}
	lines := strings.Split(string(p), "\n")
	if lines[0] != "-----BEGIN PUBLIC KEY-----" || lines[len(lines)-1] != "-----END PUBLIC KEY-----" {
		t.Errorf("PEM armour: %q … %q", lines[0], lines[len(lines)-1])
	}
	body := lines[1 : len(lines)-1]
	for i, l := range body {
		if !pemLine.MatchString(l) || (i < len(body)-1 && len(l) != 64) {
			t.Errorf("PEM line %d is %d columns: %q", i+1, len(l), l)
		}
	}

	pub, err := parsePublicKeyPEM(p)
	if err != nil || !pub.Equal(&priv.PublicKey) {
		t.Fatalf("parse(marshal) = %v, %v", pub, err)
	}
	if pub, err := parsePublicKeyPEM(append(bytes.Clone(p), '\n')); err != nil || !pub.Equal(&priv.PublicKey) {
		t.Errorf("trailing newline refused: %v", err)
	}
	for name, data := range map[string][]byte{
		"trailing junk":  append(bytes.Clone(p), []byte("\njunk")...),
		"second block":   append(append(bytes.Clone(p), '\n'), p...),
		"empty":          nil,
		"truncated":      p[:200],
		"private key":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, priv)}),
		"RSA-1024":       pemOf(t, rsa1024(t)),
		"ECDSA P-256":    pemOf(t, ecdsaKey(t)),
		"garbage inside": []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
	} {
		if pub, err := parsePublicKeyPEM(data); err == nil {
			t.Errorf("%s: accepted (%v)", name, pub)
		}
	}
	if isPublicKeyPEM([]byte(handshakeOKText)) {
		t.Errorf("isPublicKeyPEM(HANDSHAKE_OK) = true")
	}
}

func mustPKCS8(t *testing.T, k any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemOf(t *testing.T, pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func rsa1024(t *testing.T) *rsa.PublicKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

func ecdsaKey(t *testing.T) *ecdsa.PublicKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

func TestClassicFingerprint(t *testing.T) {
	priv := testRSAKey(t)
	fp := fingerprint(&priv.PublicKey)
	if !regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q is not SHA256:<43 base64 chars, no padding>", fp)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	sum := sha256.Sum256(der)
	if want := "SHA256:" + strings.TrimRight(base64.StdEncoding.EncodeToString(sum[:]), "="); fp != want {
		t.Errorf("fingerprint %q, want %q", fp, want)
	}
	if !sameFingerprint(fp, fp+"=") {
		t.Errorf("sameFingerprint refuses the padded form")
	}
	if sameFingerprint(fp, fingerprint(rsa1024(t))) {
		t.Errorf("sameFingerprint matched different keys")
	}
}

func TestClassicLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "server.pem")
	k1, created, err := loadOrCreateKey(path, rand.Reader)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if k1.N.BitLen() != rsaBits {
		t.Errorf("created RSA-%d", k1.N.BitLen())
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("key file is not PKCS#8 PEM: %.40q", data)
	}
	k2, created, err := loadOrCreateKey(path, rand.Reader)
	if err != nil || created {
		t.Fatalf("reload: created=%v err=%v", created, err)
	}
	if !k1.Equal(k2) {
		t.Errorf("reload gave a different key")
	}

	// A PKCS#1 file (pycryptodome's export_key) loads too; junk and small
	// keys do not, and an unreadable file is not silently replaced.
	pkcs1 := filepath.Join(dir, "pkcs1.pem")
	os.WriteFile(pkcs1, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testRSAKey(t))}), 0o600)
	if k, _, err := loadOrCreateKey(pkcs1, rand.Reader); err != nil || !k.Equal(testRSAKey(t)) {
		t.Errorf("PKCS#1 key: %v", err)
	}
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a key"), 0o600)
	if _, _, err := loadOrCreateKey(junk, rand.Reader); err == nil {
		t.Errorf("junk key file accepted")
	}
	if d, _ := os.ReadFile(junk); string(d) != "not a key" {
		t.Errorf("junk key file was overwritten")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := parsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, ec)})); err == nil {
		t.Errorf("ECDSA private key accepted")
	}
}

func TestClassicKnownServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "encchat", "known_servers")
	if _, ok, err := lookupKnownServer(path, "127.0.0.1:5174"); ok || err != nil {
		t.Fatalf("missing file: ok=%v err=%v", ok, err)
	}
	a := knownServer{addr: "127.0.0.1:5174", suite: suiteClassic, fingerprint: "SHA256:aaaa"}
	b := knownServer{addr: "10.0.0.2:5174", suite: suiteModern, fingerprint: "SHA256:bbbb"}
	for _, k := range []knownServer{a, b} {
		if err := addKnownServer(path, k); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []knownServer{a, b} {
		got, ok, err := lookupKnownServer(path, want.addr)
		if err != nil || !ok || got != want {
			t.Errorf("lookup %s = %+v ok=%v err=%v", want.addr, got, ok, err)
		}
	}
	if _, ok, _ := lookupKnownServer(path, "127.0.0.1:5175"); ok {
		t.Errorf("lookup of an unknown address succeeded")
	}
	data, _ := os.ReadFile(path)
	if want := "127.0.0.1:5174 classic SHA256:aaaa\n10.0.0.2:5174 modern SHA256:bbbb\n"; string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}

	// Comments and blank lines are skipped; a malformed line is an error
	// with its line number, not a silent miss.
	os.WriteFile(path, []byte("# pins\n\n"+string(data)+"broken line\n"), 0o600)
	if got, ok, err := lookupKnownServer(path, b.addr); !ok || err != nil || got != b {
		t.Errorf("with comments: %+v ok=%v err=%v", got, ok, err)
	}
	if _, _, err := lookupKnownServer(path, "nowhere:1"); err == nil || !strings.Contains(err.Error(), ":5:") {
		t.Errorf("malformed line: err=%v, want one naming line 5", err)
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
