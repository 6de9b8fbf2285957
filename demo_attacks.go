// The demo's act of the attacks with no key, in both suites: a rewriting tap
// (tap -rewrite) changes what bob reads, and alice's recorded session is sent
// again (replay -send). The classic suite is fooled by both; the modern one
// refuses both. Each suite gets a server of its own for the act, stopped
// before the act ends.

//go:build !js

package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The act's script: alice means 10, the tap makes it 90.
const (
	demoPay     = "pay bob 10 coins"
	demoRewrite = "pay bob 10=pay bob 90"
)

// attacks is the act: the same two attacks on a classic and a modern server.
// The servers record into one capture, with its key log, for the lesson page.
func (d *demo) attacks(ctx context.Context, title string) (err error) {
	d.section(title)
	d.logMu.Lock()
	d.attackLog = true
	d.logMu.Unlock()
	d.printf("An attacker on the path holds no key at all. Alice types %q.\n", demoPay)
	rec, kl, closeBoth, err := openRecordFiles(filepath.Join(d.dir, demoAttackCapture), filepath.Join(d.dir, demoAttackKeylog), "server", "")
	if err != nil {
		return err
	}
	closeFiles := sync.OnceFunc(closeBoth)
	defer closeFiles()
	for _, suite := range []string{suiteClassic, suiteModern} {
		if err := d.attackSuite(ctx, suite, rec, kl); err != nil {
			return err
		}
	}
	closeFiles()
	if err := rec.Err(); err != nil {
		return err
	}
	d.printf("\n  Classic: CBC without a MAC let a blind bit flip change the amount, and a server key that never\n")
	d.printf("  changes, with no randomness of the server's own, let a recording log alice in again.\n")
	d.printf("  Modern: the GCM tag refused the flipped record, and the server's fresh hello made the recorded\n")
	d.printf("  handshake worthless. Try them: encchat tap -rewrite 'OLD=NEW' ..., encchat replay -send ADDR CAPTURE\n")
	return nil
}

// attackSuite runs both attacks against a fresh server of one suite.
func (d *demo) attackSuite(ctx context.Context, suite string, srvRec *capture, srvKeys *keylog) (err error) {
	d.printf("\n%s\n\n", d.pal.system.Sprint("  · the "+suite+" suite"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv, err := newServer(serverConfig{Key: d.key, Suite: suite, Record: srvRec, Keylog: srvKeys, Log: d.logEvent})
	if err != nil {
		ln.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Shutdown()
		if serr := <-served; err == nil {
			err = serr
		}
		d.dropLog() // the shutdown's leave notices are not part of the act
	}()
	addr := ln.Addr().String()

	tapLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	spec, _ := parseRewrite(demoRewrite)
	tapCtx, stopTap := context.WithCancel(ctx)
	tapDone := make(chan error, 1)
	tapOut := d.term.speaker("tap", d.pal.warn)
	go func() {
		tapDone <- rewriteTap(tapCtx, tapLn, addr, spec, nil, func(s string) {
			if !strings.HasPrefix(s, "REWRITE:") {
				d.tapReport(tapOut, s)
			}
		})
	}()
	defer func() {
		stopTap()
		if terr := <-tapDone; err == nil {
			err = terr
		}
	}()
	d.printf("(encchat tap -listen %s -upstream %s -rewrite '%s')\n", tapLn.Addr(), addr, demoRewrite)

	bob, err := d.quietPeer(ctx, "bob", addr, suite, nil)
	if err != nil {
		return err
	}
	defer bob.close()
	capturePath := filepath.Join(d.dir, "attack-"+suite+".jsonl")
	rec, err := openCapture(capturePath, "client", addr)
	if err != nil {
		return err
	}
	alice, err := d.quietPeer(ctx, "alice", tapLn.Addr().String(), suite, rec)
	if err != nil {
		rec.Close()
		return err
	}
	if err := bob.expect(ctx, "alice joined"); err != nil {
		return err
	}
	if err := alice.say(demoPay); err != nil {
		return err
	}
	if suite == suiteClassic {
		if err := bob.expect(ctx, "alice: pay bob"); err != nil {
			return err
		}
		d.showLog()
		// Not /quit: the tap would flip it too, into a record that does not decrypt.
		alice.close()
	} else {
		if err := alice.waitClosed(ctx); err != nil {
			return err
		}
		d.showLog()
	}
	if err := bob.expect(ctx, "alice left"); err != nil {
		return err
	}
	alice.close()
	if err := rec.Close(); err != nil {
		return err
	}
	d.showLog()

	d.printf("\nThe attacker recorded alice's session (no key in it) and sends it again:\n")
	d.printf("(encchat replay -send %s %s)\n", addr, filepath.Base(capturePath))
	sc, err := readSentConnsFile(capturePath, 0)
	if err != nil {
		return err
	}
	out := d.term.speaker("replay", d.pal.warn)
	for _, c := range sc.conns {
		res, err := replaySend(ctx, addr, c, func(s string) {
			bob.showArrived()
			d.showLog()
			fmt.Fprintln(out, printable(s))
		})
		if err != nil {
			return err
		}
		verdict := "REFUSED: "
		if res.Accepted() {
			verdict = "ACCEPTED: "
		}
		bob.showArrived()
		d.showLog()
		fmt.Fprintln(out, verdict+printable(res.Why))
	}
	if suite == suiteClassic {
		if err := bob.expect(ctx, "alice: "+demoPay); err != nil {
			return err
		}
	}
	bob.drain(300 * time.Millisecond)
	d.showLog()
	return nil
}

// quietPeer is a scripted client with no walk-through: the act is about
// what the attacker does, not the handshake.
func (d *demo) quietPeer(ctx context.Context, name, addr, suite string, rec *capture) (*demoPeer, error) {
	dialer := net.Dialer{Timeout: demoWait}
	nc, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cs, err := clientHandshake(nc, clientConfig{Name: name, Suite: suite, Addr: addr, Fingerprint: d.fp, Record: rec, Timeout: demoWait})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	c := d.pal.private
	if name == "alice" {
		c = d.pal.own
	}
	w := d.term.speaker(name, c)
	cc := &chatClient{out: w, errw: w, pal: d.pal, scr: &screen{out: w}, list: &roster{self: name}, cs: cs}
	return d.newDemoPeer(cc), nil
}

// drain prints what arrives within d.
func (p *demoPeer) drain(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case text := <-p.texts:
			p.show(text)
		case <-p.done:
			return
		case <-t.C:
			return
		}
	}
}
