// Wycheproof test vectors against the primitives of both suites: RSA-OAEP
// and AES-CBC (classic), AES-GCM, X25519, HKDF and RSA-PSS (modern).

package main

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

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

type wpModernCase struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Result  string   `json:"result"`
	// aes_gcm
	Key, IV, AAD, Msg, CT, Tag string
	// x25519
	Public, Private, Shared string
	// hkdf
	IKM, Salt, Info, OKM string
	Size                 int
	// rsa-pss
	Sig string
}

type wpModernGroup struct {
	KeySize      int            `json:"keySize"`
	IVSize       int            `json:"ivSize"`
	TagSize      int            `json:"tagSize"`
	SLen         int            `json:"sLen"`
	SHA          string         `json:"sha"`
	MGFSha       string         `json:"mgfSha"`
	PublicKeyDer string         `json:"publicKeyDer"`
	Tests        []wpModernCase `json:"tests"`
}

func loadWycheproofModern(t *testing.T, name string) []wpModernGroup {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(wycheproofDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		TestGroups []wpModernGroup `json:"testGroups"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f.TestGroups
}

// TestWycheproofAESGCM runs the 256-bit key, 96-bit IV, 128-bit tag groups
// through halfConn.sealAt and openAt: the IV is the record IV and the
// sequence number 0, so the nonce is the vector's IV.
func TestWycheproofAESGCM(t *testing.T) {
	var valid, invalid int
	for _, g := range loadWycheproofModern(t, "aes_gcm_test.json") {
		if g.KeySize != 256 || g.IVSize != 96 || g.TagSize != 128 {
			continue
		}
		for _, tc := range g.Tests {
			hc, err := newHalfConn(unhex(t, tc.Key), unhex(t, tc.IV))
			if err != nil {
				t.Fatalf("tcId %d: %v", tc.TcID, err)
			}
			aad, msg := unhex(t, tc.AAD), unhex(t, tc.Msg)
			sealed := append(unhex(t, tc.CT), unhex(t, tc.Tag)...)
			got, err := hc.openAt(0, aad, sealed)
			switch tc.Result {
			case "valid":
				valid++
				if err != nil || !bytes.Equal(got, msg) {
					t.Errorf("tcId %d (%s): open = %x, %v", tc.TcID, tc.Comment, got, err)
				}
				if s := hc.sealAt(0, aad, msg); !bytes.Equal(s, sealed) {
					t.Errorf("tcId %d (%s): seal = %x, want %x", tc.TcID, tc.Comment, s, sealed)
				}
			case "invalid":
				invalid++
				if err != alertBadRecordMAC || got != nil {
					t.Errorf("tcId %d (%s) %v: open = %x, %v; want %v", tc.TcID, tc.Comment, tc.Flags, got, err, alertBadRecordMAC)
				}
			}
		}
	}
	if valid != 39 || invalid != 27 {
		t.Errorf("ran %d valid and %d invalid cases, want 39 and 27", valid, invalid)
	}
}

// TestWycheproofX25519 runs every case through newX25519Key's key type and
// x25519Agree. Cases whose shared secret is all zeros must be refused.
func TestWycheproofX25519(t *testing.T) {
	var zeroRefused, acceptableOK int
	for _, g := range loadWycheproofModern(t, "x25519_test.json") {
		for _, tc := range g.Tests {
			priv, err := ecdh.X25519().NewPrivateKey(unhex(t, tc.Private))
			if err != nil {
				t.Fatalf("tcId %d: %v", tc.TcID, err)
			}
			want := unhex(t, tc.Shared)
			got, err := x25519Agree(priv, unhex(t, tc.Public))
			zero := bytes.Equal(want, make([]byte, 32))
			switch {
			case zero:
				if err == nil {
					t.Errorf("tcId %d (%s): all-zero shared secret accepted", tc.TcID, tc.Comment)
				} else if !errors.Is(err, alertIllegalParameter) {
					t.Errorf("tcId %d: error %v", tc.TcID, err)
				}
				zeroRefused++
			case tc.Result == "valid":
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("tcId %d (%s): %x, %v; want %x", tc.TcID, tc.Comment, got, err, want)
				}
			default: // acceptable: either outcome, but a result must be right
				if err == nil {
					if !bytes.Equal(got, want) {
						t.Errorf("tcId %d (%s): %x, want %x", tc.TcID, tc.Comment, got, want)
					}
					acceptableOK++
				}
			}
		}
	}
	if zeroRefused != 31 {
		t.Errorf("%d all-zero cases refused, want 31", zeroRefused)
	}
	t.Logf("%d all-zero shared secrets refused; %d acceptable cases computed", zeroRefused, acceptableOK)
}

// TestWycheproofHKDF runs the vectors through hkdfExtract and hkdfExpand,
// the functions expandLabel uses.
func TestWycheproofHKDF(t *testing.T) {
	var n int
	for _, g := range loadWycheproofModern(t, "hkdf_sha256_test.json") {
		for _, tc := range g.Tests {
			n++
			prk, err := hkdfExtract(unhex(t, tc.IKM), unhex(t, tc.Salt))
			if err == nil {
				var okm []byte
				okm, err = hkdfExpand(prk, unhex(t, tc.Info), tc.Size)
				if tc.Result == "valid" && (err != nil || !bytes.Equal(okm, unhex(t, tc.OKM))) {
					t.Errorf("tcId %d (%s): %x, %v", tc.TcID, tc.Comment, okm, err)
				}
			}
			if tc.Result == "invalid" && err == nil {
				t.Errorf("tcId %d (%s): size %d accepted", tc.TcID, tc.Comment, tc.Size)
			}
		}
	}
	if n != 86 {
		t.Errorf("ran %d cases, want 86", n)
	}
}

// TestWycheproofRSAPSS runs the vectors through modernVerify, the client's
// check of the ServerVerify signature, with keys parsed by parsePublicKeyDER.
func TestWycheproofRSAPSS(t *testing.T) {
	var valid, invalid int
	for _, g := range loadWycheproofModern(t, "rsa_pss_2048_sha256_mgf1_32_test.json") {
		if g.SHA != "SHA-256" || g.MGFSha != "SHA-256" || g.SLen != pssSaltLen {
			t.Fatalf("unexpected group parameters %s/%s/%d", g.SHA, g.MGFSha, g.SLen)
		}
		pub, err := parsePublicKeyDER(unhex(t, g.PublicKeyDer))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range g.Tests {
			err := modernVerify(pub, unhex(t, tc.Msg), unhex(t, tc.Sig))
			switch tc.Result {
			case "valid":
				valid++
				if err != nil {
					t.Errorf("tcId %d (%s): %v", tc.TcID, tc.Comment, err)
				}
			case "invalid":
				invalid++
				if err != alertBadSignature {
					t.Errorf("tcId %d (%s) %v: %v, want %v", tc.TcID, tc.Comment, tc.Flags, err, alertBadSignature)
				}
			}
		}
	}
	if valid != 63 || invalid != 45 {
		t.Errorf("ran %d valid and %d invalid, want 63 and 45", valid, invalid)
	}
	// And modernSign's signatures verify through the same function.
	priv := modernTestKey(t)
	sig, err := modernSign(rand.Reader, priv, []byte("transcript"))
	if err != nil || modernVerify(&priv.PublicKey, []byte("transcript"), sig) != nil {
		t.Errorf("modernSign/modernVerify round trip: %v", err)
	}
}
