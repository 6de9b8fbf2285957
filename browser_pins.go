// The browser client's pins: each server's key kept in the browser's
// localStorage, keyed by the page's host, as the terminal client keeps
// them in known_servers. They are weaker than the terminal's: the server
// that serves this page serves its code too (the page says so).

//go:build js

package main

import (
	"fmt"
	"strings"
	"syscall/js"
)

// browserPinPrefix starts each pin's localStorage key; the host follows.
const browserPinPrefix = "encchat.pin "

// browserPins is the browser's storage as a pinStore.
type browserPins struct{}

func (browserPins) where() string { return "this browser's storage" }

func (browserPins) lookup(addrs []string) ([]knownServerLine, error) {
	var have []knownServerLine
	for _, addr := range addrs {
		var v js.Value
		if err := jsTry(func() { v = js.Global().Get("localStorage").Call("getItem", browserPinPrefix+addr) }); err != nil {
			return nil, fmt.Errorf("reading the pin from this browser's storage: %v", err)
		}
		if v.IsNull() || v.IsUndefined() {
			continue
		}
		f := strings.Fields(v.String())
		if len(f) != 2 || (f[0] != suiteClassic && f[0] != suiteModern) {
			return nil, fmt.Errorf("the pin for %s in this browser's storage is damaged (%q): forget it", addr, v.String())
		}
		have = append(have, knownServerLine{knownServer: knownServer{addr: addr, suite: f[0], fingerprint: f[1]}, as: addr})
	}
	return have, nil
}

func (p browserPins) update(addrs []string, decide func(have []knownServerLine) (*knownServer, error)) error {
	have, err := p.lookup(addrs)
	if err != nil {
		return err
	}
	k, err := decide(have)
	if err != nil || k == nil {
		return err
	}
	return jsTry(func() {
		for _, addr := range k.addrs() {
			js.Global().Get("localStorage").Call("setItem", browserPinPrefix+addr, k.suite+" "+k.fingerprint)
		}
	})
}

// forget removes addr's pin, in whatever spelling addr comes.
func (browserPins) forget(addr string) error {
	if canonical, err := canonicalAddr(addr); err == nil {
		addr = canonical
	}
	return jsTry(func() { js.Global().Get("localStorage").Call("removeItem", browserPinPrefix+addr) })
}

// jsTry runs f, turning a JavaScript exception (storage disabled or full)
// into an error.
func jsTry(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}
