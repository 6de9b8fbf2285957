// The soak test: hundreds of clients joining, leaving and chatting for
// about a minute, checked for losses, goroutines and memory, with the
// capture replayed at the end (-short skips it).

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSoak runs hundreds of clients with joins and leaves while messages
// flow, at the server's default line rate, and checks that nothing is
// lost, duplicated or reordered, that goroutines return to the baseline,
// that memory is stable, and that the capture recorded meanwhile replays
// with the key log into exactly the messages sent. Each phase is bounded
// to a minute; -short skips it.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test skipped in -short mode")
	}
	const (
		stable   = 200 // connected for the whole run
		senders  = 20  // of the stable clients
		messages = 40  // per sender
		churners = 10  // join, talk, leave, again and again
	)
	const phase = 60 * time.Second
	start := time.Now()
	baseline := runtime.NumGoroutine()

	dir := t.TempDir()
	capPath, keyPath := filepath.Join(dir, "soak.jsonl"), filepath.Join(dir, "soak.keys")
	rec, err := openCapture(capPath, "server", "soak")
	if err != nil {
		t.Fatal(err)
	}
	kl, err := openKeylog(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	// The server's default line rate: each sender's 40 lines in a second
	// are twice its burst, so half of them wait for their tokens.
	// Why the server let stable clients go, should any go early.
	var leavesMu sync.Mutex
	var leaves []string
	logLeave := func(ev serverEvent) {
		if ev.Kind == evLeave && strings.HasPrefix(ev.Text, "u") {
			leavesMu.Lock()
			leaves = append(leaves, ev.Text)
			leavesMu.Unlock()
		}
	}
	srv, err := newServer(serverConfig{Key: testRSAKey(t), Rate: defaultRate, Burst: defaultBurst, QueueLen: 4096,
		Record: rec, Keylog: kl, Log: logLeave})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	connect := func(name string) (*clientSession, error) {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		return clientHandshake(conn, clientConfig{Name: name, Addr: addr, Insecure: true})
	}

	// Join the stable clients, 16 at a time.
	clients := make([]*clientSession, stable)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var joinErr error
	var mu sync.Mutex
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cs, err := connect(fmt.Sprintf("u%03d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && joinErr == nil {
				joinErr = err
			}
			clients[i] = cs
		}()
	}
	wg.Wait()
	if joinErr != nil {
		t.Fatal(joinErr)
	}
	heapAfterJoin := heapInuse()
	t.Logf("%d clients joined in %v", stable, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	deadline := start.Add(phase)

	// Every stable client reads until it has every sender's last message.
	type result struct {
		got     map[string][]int // sender → sequence numbers in arrival order
		err     error
		dropped int
	}
	results := make([]result, stable)
	var readers sync.WaitGroup
	for i, cs := range clients {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r := result{got: make(map[string][]int)}
			done := 0
			cs.conn.SetReadDeadline(deadline)
			for done < senders {
				text, err := cs.Recv()
				if err != nil {
					r.err = err
					break
				}
				// "[HH:MM:SS] uNNN: soak uNNN SEQ"
				_, body, ok := strings.Cut(text, "] ")
				f := strings.Fields(body)
				if !ok || len(f) != 4 || f[1] != "soak" {
					continue
				}
				seq, _ := strconv.Atoi(f[3])
				r.got[f[2]] = append(r.got[f[2]], seq)
				if seq == messages-1 {
					done++
				}
			}
			r.dropped = cs.Dropped
			results[i] = r
		}()
	}

	// Churn: clients join, say something, leave, while the senders send.
	stopChurn := make(chan struct{})
	var churn, churned sync.WaitGroup // churned: each churner joined once
	churnJoins := make([]int, churners)
	churned.Add(churners)
	for c := 0; c < churners; c++ {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for round := 0; ; round++ {
				select {
				case <-stopChurn:
					return
				default:
				}
				cs, err := connect(fmt.Sprintf("churn%d", c))
				if err != nil {
					time.Sleep(10 * time.Millisecond) // the name may not be free yet
					continue
				}
				churnJoins[c]++
				if churnJoins[c] == 1 {
					churned.Done()
				}
				cs.Send(fmt.Sprintf("passing through %d", round))
				cs.Send("/quit")
				cs.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				for {
					if _, err := cs.Recv(); err != nil {
						break
					}
				}
				cs.Close()
			}
		}()
	}

	var sending sync.WaitGroup
	sent := make(map[string]bool)
	for s := 0; s < senders; s++ {
		cs := clients[s]
		name := fmt.Sprintf("u%03d", s)
		for i := 0; i < messages; i++ {
			sent[fmt.Sprintf("soak %s %d", name, i)] = true
		}
		sending.Add(1)
		go func() {
			defer sending.Done()
			for i := 0; i < messages; i++ {
				if err := cs.Send(fmt.Sprintf("soak %s %d", name, i)); err != nil {
					t.Errorf("%s: send %d: %v", name, i, err)
					return
				}
				time.Sleep(25 * time.Millisecond) // a second of traffic, so churn overlaps it
			}
		}()
	}
	sending.Wait()
	readers.Wait()
	churned.Wait() // with 500 members, a churner's round can outlast the traffic
	close(stopChurn)
	churn.Wait()
	t.Logf("traffic and churn in %v", time.Since(start).Round(time.Millisecond))

	leavesMu.Lock()
	for _, why := range leaves {
		t.Errorf("during the run: %s", why)
	}
	leavesMu.Unlock()
	for i, r := range results {
		if r.err != nil {
			t.Errorf("u%03d: %v", i, r.err)
			continue
		}
		if r.dropped != 0 {
			t.Errorf("u%03d: %d records did not decrypt", i, r.dropped)
		}
		for s := 0; s < senders; s++ {
			seqs := r.got[fmt.Sprintf("u%03d", s)]
			if len(seqs) != messages {
				t.Errorf("u%03d got %d of u%03d's %d messages", i, len(seqs), s, messages)
				continue
			}
			for k, seq := range seqs {
				if seq != k {
					t.Errorf("u%03d: u%03d's message %d arrived as number %d (order or duplicate)", i, s, seq, k)
					break
				}
			}
		}
	}
	total := 0
	for _, n := range churnJoins {
		total += n
	}
	if total < churners {
		t.Errorf("only %d churn joins", total)
	}
	t.Logf("%d stable clients, %d senders × %d messages, %d churn joins", stable, senders, messages, total)

	// Everyone leaves; the server stops; goroutines return to the baseline.
	for _, cs := range clients {
		cs.Send("/quit")
		cs.Close()
	}
	srv.Shutdown()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := kl.Close(); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(phase)
	for time.Now().Before(end) && runtime.NumGoroutine() > baseline+2 {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline+2 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after the soak, %d before:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
	// With everyone gone, the heap holds less than it did with everyone
	// connected: nothing per client or per message stays behind.
	if before, after := heapAfterJoin, heapInuse(); after > before {
		t.Errorf("heap in use grew from %d KiB with %d clients to %d KiB with none", before>>10, stable, after>>10)
	} else {
		t.Logf("heap in use %d KiB with %d clients, %d KiB after they left (RSS now %d KiB)", before>>10, stable, after>>10, rssKiB())
	}

	// The capture, replayed with the key log, holds exactly what was sent.
	var out, errOut bytes.Buffer
	if code := runReplay([]string{"-json", "-keylog", keyPath, capPath}, &out, &errOut); code != 0 {
		t.Fatalf("replay exit %d: %s", code, errOut.String())
	}
	replayed := make(map[string]int)
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var f struct {
			Dir       string `json:"dir"`
			Plaintext *string
		}
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("replay -json line %q: %v", sc.Text(), err)
		}
		if f.Dir == "c2s" && f.Plaintext != nil && strings.HasPrefix(*f.Plaintext, "soak ") {
			replayed[*f.Plaintext]++
		}
	}
	for m := range sent {
		if replayed[m] != 1 {
			t.Errorf("replay has %q %d times", m, replayed[m])
		}
	}
	if len(replayed) != len(sent) {
		t.Errorf("replay has %d distinct soak messages, %d were sent", len(replayed), len(sent))
	}
	data, _ := os.ReadFile(capPath)
	if bytes.Contains(data, []byte("soak u0")) || bytes.Contains(data, []byte("passing through")) {
		t.Error("the capture holds plaintext")
	}
}

// heapInuse is the live heap after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// rssKiB is this process's resident set size, or 0 where /proc is missing.
func rssKiB() int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}
