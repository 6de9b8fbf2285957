// "encchat bench -idle": idle clients held open while the server's memory
// is read from /proc, in a child server process or a -connect server whose
// pid is given.

//go:build !js

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// idleStats is what an idle-connection run measured.
type idleStats struct {
	Addr            string
	Clients         int
	Connected       int
	HandshakeErrors int
	FirstError      string
	HandshakeWall   time.Duration
	RSSBefore       int64 // server process, bytes
	RSSAfter        int64
	Notices         int64 // texts the idle clients received (join notices)
}

// PerConn is the server's RSS growth per idle connection, in bytes.
func (s idleStats) PerConn() float64 {
	if s.Connected == 0 {
		return 0
	}
	return float64(s.RSSAfter-s.RSSBefore) / float64(s.Connected)
}

// benchIdle connects n clients that only read, then reads the server's RSS
// through rss (called once before connecting and once after).
func benchIdle(ctx context.Context, addr, suite string, n, conc int, settle time.Duration,
	rss func() (int64, error), progress *benchProgress) (idleStats, error) {
	st := idleStats{Addr: addr, Clients: n}
	before, err := rss()
	if err != nil {
		return st, err
	}
	st.RSSBefore = before
	conns := &connSet{}
	stopWatch := context.AfterFunc(ctx, conns.closeAll)
	defer stopWatch()
	var readWG sync.WaitGroup
	defer readWG.Wait()
	defer conns.closeAll()
	var notices atomic.Int64
	progress.set("connect", int64(n))
	start := time.Now()
	lat, failures, firstErr := benchConnect(ctx, addr, suite, benchTag(), 0, n, conc, conns, progress,
		func(i int, cs *clientSession) {
			readWG.Add(1)
			go func() {
				defer readWG.Done()
				for {
					if _, err := cs.Recv(); err != nil {
						return
					}
					notices.Add(1)
				}
			}()
		})
	st.HandshakeWall = time.Since(start)
	st.Connected, st.HandshakeErrors = len(lat), failures
	if firstErr != nil {
		st.FirstError = firstErr.Error()
	}
	// Let the join notices drain and the server settle before measuring.
	progress.set("settle", 0)
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return st, ctx.Err()
	}
	after, err := rss()
	if err != nil {
		return st, err
	}
	st.RSSAfter = after
	st.Notices = notices.Load() // before closing: each close sends the others a leave notice
	conns.closeAll()
	readWG.Wait()
	return st, nil
}

// processRSS reads VmRSS of a process ("self" or a pid) from /proc.
func processRSS(pid string) (int64, error) {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading the server's RSS: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + pid + "/status")
}

// serverProcess is an "encchat server" child started for -idle, so its RSS
// is the server's alone.
type serverProcess struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

// startServerProcess starts command("server", flags...) on a free loopback
// port and waits until it accepts connections.
func startServerProcess(ctx context.Context, command func(args ...string) *exec.Cmd, suite string, maxClients int) (*serverProcess, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	if suite == "auto" {
		suite = suiteClassic
	}
	cmd := command("server", "-ephemeral", "-listen", addr, "-suite", suite,
		"-max-clients", strconv.Itoa(maxClients), "-max-per-addr", "0", "-no-color")
	cmd.Stdout = io.Discard // the server's log, one line per event
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sp := &serverProcess{cmd: cmd, addr: addr, done: make(chan error, 1)}
	go func() { sp.done <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return sp, nil
		}
		select {
		case err := <-sp.done:
			sp.done <- err
			return nil, fmt.Errorf("server process exited: %v: %s", err, strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			sp.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			sp.stop()
			return nil, fmt.Errorf("server process did not listen on %s", addr)
		}
	}
}

// stop interrupts the server (it says goodbye to its clients), then kills
// it if it is still there after a few seconds.
func (sp *serverProcess) stop() {
	sp.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-sp.done:
		sp.done <- err
	case <-time.After(5 * time.Second):
		sp.cmd.Process.Kill()
		sp.done <- <-sp.done
	}
}
