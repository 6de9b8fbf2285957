// The replay command: its flags, the keys it loads and the output it
// chooses, then the engine (replay.go).

//go:build !js

package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// runReplay is "encchat replay".
func runReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	keylogPath := fs.String("keylog", "", "decrypt with the session keys in this key log `file`")
	rsaPath := fs.String("rsa-key", "", "recover classic session keys from the recorded RSA-OAEP blobs with this server private key `file` (\"default\": the key of a server started without -key)")
	keyText := fs.String("key", "", "one classic session `key`: 32 bytes, hex or base64")
	view := fs.String("view", "", "`view`: sniffer, peer or both (default: both with a key, else sniffer)")
	conn := fs.Int("conn", 0, "show only connection `N`")
	speed := fs.Float64("speed", 0, "play with the recorded timing scaled by `X` (default: instant)")
	tamperText := fs.String("tamper", "", "flip bit BIT of frame FRAME before decrypting (`FRAME:BIT`; bit 0 is the low bit of the first byte; classic records count from the IV, modern records from the first ciphertext byte)")
	pcapPath := fs.String("pcap", "", "write the TCP connections to a pcap `file` for Wireshark or tshark, instead of replaying (a name ending .pcapng writes pcapng; with a key, each record's plaintext goes in its packet comment)")
	jsonOut := fs.Bool("json", false, "print one JSON object per frame")
	htmlPath := fs.String("html", "", "write a lesson page to `file`")
	projector := fs.Bool("projector", false, "with -html: the page on a larger type scale, for a projector")
	sendAddr := fs.String("send", "", "the replay attack: send the recorded client bytes of -conn N (or of every connection, in order) to the live server at `address` (loopback only); a summary counts what the server accepted and refused; exit 0 if it accepted every connection sent, 1 if it refused one, 2 if not all could be tried")

	// Flags may follow the capture name too.
	var names []string
	rest := args
	for {
		if code := parseFlags(fs, rest, stdout, stderr); code >= 0 {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	switch {
	case len(names) == 0:
		errorf(stderr, "replay needs a capture file")
		hintf(stderr, "encchat replay [-keylog FILE] [-view sniffer|peer|both] CAPTURE")
		return 2
	case len(names) > 1:
		errorf(stderr, "replay: unexpected argument %q", names[1])
		return 2
	}
	if isKeylogFile(names[0]) {
		errorf(stderr, "replay: %s is a key log, not a capture", names[0])
		hintf(stderr, "give it with -keylog, and the capture it decrypts as the argument: encchat replay -keylog %s CAPTURE", names[0])
		return 2
	}
	if *projector && *htmlPath == "" {
		errorf(stderr, "replay: -projector sets the lesson page's type scale; it needs -html OUT")
		return 2
	}
	if *htmlPath != "" {
		var clash []string
		for _, n := range []string{"json", "pcap", "speed"} {
			if set[n] {
				clash = append(clash, "-"+n)
			}
		}
		if len(clash) > 0 {
			errorf(stderr, "replay: -html writes a page; it cannot be used with %s", strings.Join(clash, ", "))
			return 2
		}
	}
	if *sendAddr != "" {
		var clash []string
		for _, n := range []string{"json", "view", "speed", "tamper", "keylog", "rsa-key", "key", "pcap", "html"} {
			if set[n] {
				clash = append(clash, "-"+n)
			}
		}
		if len(clash) > 0 {
			errorf(stderr, "replay: -send sends the recorded bytes with no key; it cannot be used with %s", strings.Join(clash, ", "))
			return 2
		}
		return runReplaySend(names[0], *sendAddr, *conn, stdout, stderr)
	}
	opts := &replayOptions{name: filepath.Base(names[0]), view: *view, json: *jsonOut, conn: *conn, speed: *speed, projector: *projector}
	if opts.view != "" && opts.view != "sniffer" && opts.view != "peer" && opts.view != "both" {
		errorf(stderr, "replay: -view must be sniffer, peer or both, not %q", opts.view)
		return 2
	}
	if *conn < 0 {
		errorf(stderr, "replay: -conn must be a connection number (1, 2, …)")
		return 2
	}
	if *speed < 0 || math.IsNaN(*speed) || math.IsInf(*speed, 0) {
		errorf(stderr, "replay: -speed must be a positive factor")
		return 2
	}
	if *tamperText != "" {
		t, err := parseTamper(*tamperText)
		if err != nil {
			errorf(stderr, "replay: -tamper %v", err)
			return 2
		}
		opts.tamper = t
	}
	if *jsonOut && set["view"] {
		errorf(stderr, "replay: -json and -view cannot be used together")
		return 2
	}
	if *pcapPath != "" {
		var clash []string
		for _, n := range []string{"json", "view", "speed", "tamper"} {
			if set[n] {
				clash = append(clash, "-"+n)
			}
		}
		if len(clash) > 0 {
			errorf(stderr, "replay: -pcap exports the wire bytes (and, to .pcapng with a key, the plaintext in comments); it cannot be used with %s", strings.Join(clash, ", "))
			return 2
		}
		if !isPcapngName(*pcapPath) && (set["keylog"] || set["rsa-key"] || set["key"]) {
			errorf(stderr, "replay: -pcap %s: a classic pcap has no packet comments for the plaintext", *pcapPath)
			hintf(stderr, "name it .pcapng to get each record's text in its packet comment")
			return 2
		}
	}

	keys := &replayKeys{}
	if *keyText != "" {
		k, err := parseSessionKey(*keyText)
		if err != nil {
			errorf(stderr, "replay: -key %v", err)
			return 2
		}
		keys.key = k
	}
	if *keylogPath != "" {
		f, err := os.Open(*keylogPath)
		if err != nil {
			errorf(stderr, "%v", err)
			return 1
		}
		entries, err := parseKeylog(f)
		f.Close()
		var le *lineError
		if errors.As(err, &le) {
			errorf(stderr, "%s", le.in(*keylogPath))
			return 1
		} else if err != nil {
			errorf(stderr, "%s: %v", *keylogPath, err)
			return 1
		}
		keys.keylog, keys.keylogName, keys.keylogPath = entries, filepath.Base(*keylogPath), *keylogPath
	}
	if *rsaPath != "" {
		*rsaPath = resolveKeyPath(*rsaPath)
		data, err := os.ReadFile(*rsaPath)
		if err != nil {
			errorf(stderr, "%v", err)
			keyFileHint(stderr, *rsaPath, err)
			return 1
		}
		priv, err := parsePrivateKeyPEM(data)
		if err != nil {
			errorf(stderr, "%s: %v", *rsaPath, err)
			return 1
		}
		keys.rsa, keys.rsaName, keys.rsaPath, keys.rsaFP = priv, filepath.Base(*rsaPath), *rsaPath, fingerprint(&priv.PublicKey)
	}
	if *pcapPath != "" {
		return replayToPcap(names[0], *pcapPath, *conn, keys, stdout, stderr)
	}
	opts.keys = keys
	if opts.view == "" {
		opts.view = "sniffer"
		if keys.given() {
			opts.view = "both"
		}
	}
	if opts.view == "peer" && !keys.given() {
		hintf(stderr, "replay: -view peer shows what the endpoints read, which needs a key: give -keylog FILE, -key KEY or -rsa-key FILE")
	}
	if err := checkSelection(names[0], opts); err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	opts.width, opts.color = terminalLayout(stdout)
	if *htmlPath != "" {
		return replayToHTML(names[0], *htmlPath, opts, stdout, stderr)
	}

	f, err := os.Open(names[0])
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	defer f.Close()
	var out replayOutput
	if opts.json {
		out = newJSONOutput(stdout, opts)
	} else {
		out = newTextOutput(stdout, opts)
	}
	if err := replayCapture(f, opts, out); err != nil {
		var le *lineError
		if errors.As(err, &le) {
			errorf(stderr, "%s", le.in(names[0]))
			if le.Line > 1 {
				hintf(stderr, "everything before that line was replayed")
			}
		} else {
			errorf(stderr, "%v", err)
			if err == errWrongKey {
				hintf(stderr, "-key takes the 64 hex digits after the session id on a CLASSIC line of a key log; a modern session needs its key log (-keylog)")
			}
		}
		return 1
	}
	return 0
}

// parseTamper parses FRAME:BIT.
func parseTamper(s string) (tamperSpec, error) {
	fr, bit, ok := strings.Cut(s, ":")
	f, err1 := strconv.Atoi(fr)
	b, err2 := strconv.Atoi(bit)
	if !ok || err1 != nil || err2 != nil || f < 1 || b < 0 {
		return tamperSpec{}, fmt.Errorf("wants FRAME:BIT (a frame number from 1, a bit number from 0), not %q", s)
	}
	return tamperSpec{frame: f, bit: b, set: true}, nil
}

// parseSessionKey reads a 32-byte classic session key in hex or base64.
func parseSessionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if k, err := hex.DecodeString(s); err == nil && len(k) == aesKeySize {
		return k, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == aesKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("must be %d bytes in hex (64 digits) or base64 (44 characters)", aesKeySize)
}

// isKeylogFile reports whether the file at path reads as a key log (its
// first line that is not blank is a key log's comment or a
// "LABEL <session id hex> <secret hex>" line): a user who names it where the
// capture goes meant -keylog.
func isKeylogFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var head [512]byte
	n, _ := io.ReadFull(f, head[:])
	for _, line := range strings.Split(string(head[:n]), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "# encchat key log") {
			return true
		}
		fs := strings.Fields(line)
		if len(fs) != 3 || !validKeylogLabel(fs[0]) {
			return false
		}
		_, err1 := hex.DecodeString(fs[1])
		_, err2 := hex.DecodeString(fs[2])
		return err1 == nil && err2 == nil
	}
	return false
}
