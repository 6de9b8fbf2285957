// Benchmarks of replay over synthetic captures (replay.go and its
// decoders, pcap_read.go): classic and modern captures, and a pcapng, each
// decrypted and rendered; MB/s of capture and the peak heap, which must
// not grow with the capture's size.

package main

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// sampleHeapPeak samples the heap in use every 50 ms until the returned
// function is called, which stops the sampling and returns the largest
// value seen.
func sampleHeapPeak() (peak func() uint64) {
	var highest uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				highest = max(highest, ms.HeapInuse)
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-sampled
		return highest
	}
}

// benchCapture streams a synthetic classic capture of about size bytes: a
// block of sessions (PEM key, blob, sealed chat texts of 20–400 bytes, in
// chunks of one frame, two frames, or a frame split in two) recorded once
// and repeated under new connection numbers, so the reader itself holds
// only one block.
type benchCapture struct {
	lines [][]byte // per line: the part after `"conn":N`
	conns []int    // per line: the connection's index in the block
	block int      // connections per block
	size  int
	sent  int
	round int
	line  int
	buf   []byte
}

// benchKey is the session key of every benchmark connection (-key).
var benchKey = bytes.Repeat([]byte{0x42}, 32)

func newBenchCapture(b *testing.B, size int) *benchCapture {
	b.Helper()
	rc, err := newClassicCipher(benchKey, newLockedRand(1))
	if err != nil {
		b.Fatal(err)
	}
	pemKey, err := marshalPublicKeyPEM(&replayServerKey(b).PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	rng := mathrand.New(mathrand.NewPCG(5, 6))
	bc := &benchCapture{size: size, block: 20}
	add := func(conn int, rest string) {
		bc.lines = append(bc.lines, []byte(rest))
		bc.conns = append(bc.conns, conn)
	}
	chunk := func(conn int, dir wireDir, data []byte) {
		add(conn, `,"dir":"`+dir.String()+`","data":"`+base64.StdEncoding.EncodeToString(data)+`"}`)
	}
	for conn := 0; conn < bc.block; conn++ {
		add(conn, `,"ev":"open","client":"127.0.0.1:`+strconv.Itoa(50000+conn)+`","server":"127.0.0.1:5174"}`)
		chunk(conn, wireS2C, appendFrame(nil, pemKey))
		blob := make([]byte, rsaBlobSize)
		for i := range blob {
			blob[i] = byte(rng.Uint32())
		}
		chunk(conn, wireC2S, appendFrame(nil, blob))
		var pending []byte
		for i := 0; i < 400; i++ {
			text := make([]byte, 20+rng.IntN(380))
			for j := range text {
				text[j] = "abcdefghijklmnopqrstuvwxyz     "[rng.IntN(31)]
			}
			rec, err := rc.seal(text)
			if err != nil {
				b.Fatal(err)
			}
			frame := appendFrame(nil, rec)
			dir := wireDir(i % 2)
			switch rng.IntN(3) {
			case 0: // one frame
				chunk(conn, dir, frame)
			case 1: // split in two
				cut := 1 + rng.IntN(len(frame)-1)
				chunk(conn, dir, frame[:cut])
				chunk(conn, dir, frame[cut:])
			case 2: // two frames of the same direction in one chunk
				if pending == nil {
					pending = frame
					continue
				}
				chunk(conn, wireC2S, append(pending, frame...))
				pending = nil
			}
		}
		add(conn, `,"ev":"close"}`)
	}
	return bc
}

func (bc *benchCapture) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(bc.buf) == 0 {
			switch {
			case bc.sent == 0 && bc.round == 0 && bc.line == 0 && bc.buf == nil:
				bc.buf = []byte(`{"encchat_capture":1,"started":"2026-11-26T09:00:00Z","recorder":"tap","addr":"127.0.0.1:5174"}` + "\n")
			case bc.sent >= bc.size && bc.line == 0:
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			default:
				i := bc.line
				conn := bc.round*bc.block + bc.conns[i] + 1
				t := float64(bc.round) + float64(i)*0.0001
				bc.buf = append(bc.buf[:0], `{"t":`...)
				bc.buf = strconv.AppendFloat(bc.buf, t, 'f', 4, 64)
				bc.buf = append(bc.buf, `,"conn":`...)
				bc.buf = strconv.AppendInt(bc.buf, int64(conn), 10)
				bc.buf = append(bc.buf, bc.lines[i]...)
				bc.buf = append(bc.buf, '\n')
				if bc.line++; bc.line == len(bc.lines) {
					bc.line = 0
					bc.round++
				}
			}
		}
		c := copy(p[n:], bc.buf)
		n += c
		bc.sent += c
		bc.buf = bc.buf[c:]
	}
	return n, nil
}

// BenchmarkReplay replays a synthetic capture with a key, decrypting every
// record and rendering the both view to a discarded writer. It reports
// MB/s of capture and the peak heap while replaying, which must not grow
// with the size of the capture.
func BenchmarkReplay(b *testing.B) {
	for _, size := range []int{10 << 20, 100 << 20} {
		for _, view := range []string{"both", "json"} {
			b.Run(fmt.Sprintf("%s/%dMB", view, size>>20), func(b *testing.B) {
				template := newBenchCapture(b, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				peak := sampleHeapPeak()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					bc := *template
					bc.buf = nil
					opts := &replayOptions{name: "bench", view: view, width: 120, keys: &replayKeys{key: benchKey}}
					var out replayOutput = newTextOutput(io.Discard, opts)
					if view == "json" {
						opts.json = true
						out = newJSONOutput(io.Discard, opts)
					}
					if err := replayCapture(&bc, opts, out); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MB")
			})
		}
	}
}

// newModernBenchCapture is newBenchCapture for the modern suite: a block of
// sessions (the five handshake messages with random key shares and the
// golden server key, then 400 sealed texts of 20–400 bytes in chunks of one
// frame or a frame split in two) repeated under new connection numbers,
// and the keylog that opens them.
func newModernBenchCapture(b *testing.B, size int) (*benchCapture, keylogEntries) {
	b.Helper()
	spki, err := x509.MarshalPKIXPublicKey(&replayServerKey(b).PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	rng := mathrand.New(mathrand.NewPCG(5, 6))
	rnd := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return p
	}
	bc := &benchCapture{size: size, block: 20}
	var keys keylogEntries
	add := func(conn int, rest string) {
		bc.lines = append(bc.lines, []byte(rest))
		bc.conns = append(bc.conns, conn)
	}
	chunk := func(conn int, dir wireDir, data []byte) {
		add(conn, `,"dir":"`+dir.String()+`","data":"`+base64.StdEncoding.EncodeToString(data)+`"}`)
	}
	for conn := 0; conn < bc.block; conn++ {
		secret, random := rnd(32), rnd(32)
		keys = append(keys, keylogEntry{Label: modernKeylogLabel, ID: random, Secret: secret})
		add(conn, `,"ev":"open","client":"127.0.0.1:`+strconv.Itoa(50000+conn)+`","server":"127.0.0.1:5174"}`)
		chunk(conn, wireS2C, appendFrame(nil, (&serverHelloMsg{random: rnd(32), x25519: rnd(32), mlkemEK: rnd(mlkemEKLen), spki: spki}).marshal()))
		chunk(conn, wireC2S, appendFrame(nil, (&clientHelloMsg{random: random, x25519: rnd(32), mlkemCT: rnd(mlkemCTLen)}).marshal()))
		chunk(conn, wireS2C, appendFrame(nil, (&serverVerifyMsg{signature: rnd(rsaSigLen)}).marshal()))
		chunk(conn, wireS2C, appendFrame(nil, (&finishedMsg{typ: typeServerFinished, verifyData: rnd(finishedLen)}).marshal()))
		chunk(conn, wireC2S, appendFrame(nil, (&finishedMsg{typ: typeClientFinished, verifyData: rnd(finishedLen)}).marshal()))
		var sealers [2]*modernCipher
		if sealers[wireC2S], err = newModernCipher(secret, false); err != nil {
			b.Fatal(err)
		}
		if sealers[wireS2C], err = newModernCipher(secret, true); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 400; i++ {
			text := make([]byte, 20+rng.IntN(380))
			for j := range text {
				text[j] = "abcdefghijklmnopqrstuvwxyz     "[rng.IntN(31)]
			}
			dir := wireDir(i % 2)
			rec, err := sealers[dir].seal(text)
			if err != nil {
				b.Fatal(err)
			}
			frame := appendFrame(nil, rec)
			if rng.IntN(2) == 0 {
				chunk(conn, dir, frame)
				continue
			}
			cut := 1 + rng.IntN(len(frame)-1)
			chunk(conn, dir, frame[:cut])
			chunk(conn, dir, frame[cut:])
		}
		add(conn, `,"ev":"close"}`)
	}
	return bc, keys
}

// BenchmarkReplayModern is BenchmarkReplay on a modern capture opened by
// its keylog: every record is decrypted and shown.
func BenchmarkReplayModern(b *testing.B) {
	const size = 10 << 20
	for _, view := range []string{"both", "json"} {
		b.Run(fmt.Sprintf("%s/%dMB", view, size>>20), func(b *testing.B) {
			template, keys := newModernBenchCapture(b, size)
			b.SetBytes(size)
			b.ReportAllocs()
			var stats replayStats
			for i := 0; i < b.N; i++ {
				bc := *template
				bc.buf = nil
				opts := &replayOptions{name: "bench", view: view, width: 120, keys: &replayKeys{keylog: keys, keylogName: "bench.keys"}}
				var out replayOutput = newTextOutput(io.Discard, opts)
				if view == "json" {
					opts.json = true
					out = newJSONOutput(io.Discard, opts)
				}
				tally := &statsOutput{replayOutput: out}
				if err := replayCapture(&bc, opts, tally); err != nil {
					b.Fatal(err)
				}
				stats = tally.stats
			}
			if stats.undecrypted != 0 || stats.decrypted == 0 {
				b.Fatalf("%d records decrypted, %d not", stats.decrypted, stats.undecrypted)
			}
		})
	}
}

// statsOutput keeps the replay's final counts.
type statsOutput struct {
	replayOutput
	stats replayStats
}

func (o *statsOutput) end(s replayStats) {
	o.stats = s
	o.replayOutput.end(s)
}

// BenchmarkReplayPcap replays, decrypted, a pcapng made from replay's
// benchmark capture (-pcap), from a file; MB/s count the pcap's bytes.
func BenchmarkReplayPcap(b *testing.B) {
	for _, size := range []int{10 << 20, 100 << 20} {
		b.Run(fmt.Sprintf("%dMB", size>>20), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "bench.pcapng")
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			bw := bufio.NewWriterSize(f, 1<<20)
			if _, err := exportPcap(newBenchCapture(b, size), bw, 0, true, nil); err != nil {
				b.Fatal(err)
			}
			if err := errors.Join(bw.Flush(), f.Close()); err != nil {
				b.Fatal(err)
			}
			st, _ := os.Stat(path)
			b.SetBytes(st.Size())
			peak := sampleHeapPeak()
			b.ResetTimer()
			var stats replayStats
			for i := 0; i < b.N; i++ {
				in, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				opts := &replayOptions{name: "bench", view: "both", width: 120, keys: &replayKeys{key: benchKey}}
				tally := &statsOutput{replayOutput: newTextOutput(io.Discard, opts)}
				err = replayCapture(in, opts, tally)
				in.Close()
				if err != nil {
					b.Fatal(err)
				}
				stats = tally.stats
			}
			b.StopTimer()
			heap := peak()
			if stats.undecrypted != 0 || stats.decrypted == 0 {
				b.Fatalf("%d records decrypted, %d not", stats.decrypted, stats.undecrypted)
			}
			b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MB")
		})
	}
}
