//go:build js

// The browser client's pins: each server's key kept in the browser's
// localStorage, keyed by the page's host, as the terminal client keeps
// them in known_servers. They are weaker than the terminal's: the server
// that serves this page serves its code too (the page says so).

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

func (browserPins) lookup(addr string) (knownServer, bool, error) {
	var v js.Value
	if err := jsTry(func() { v = js.Global().Get("localStorage").Call("getItem", browserPinPrefix+addr) }); err != nil {
		return knownServer{}, false, fmt.Errorf("reading the pin from this browser's storage: %v", err)
	}
	if v.IsNull() || v.IsUndefined() {
		return knownServer{}, false, nil
	}
	f := strings.Fields(v.String())
	if len(f) != 2 || (f[0] != suiteClassic && f[0] != suiteModern) {
		return knownServer{}, false, fmt.Errorf("the pin for %s in this browser's storage is damaged (%q): forget it", addr, v.String())
	}
	return knownServer{addr: addr, suite: f[0], fingerprint: f[1]}, true, nil
}

func (p browserPins) update(addr string, decide func(have knownServer, ok bool) (*knownServer, error)) error {
	have, ok, err := p.lookup(addr)
	if err != nil {
		return err
	}
	k, err := decide(have, ok)
	if err != nil || k == nil {
		return err
	}
	return jsTry(func() {
		js.Global().Get("localStorage").Call("setItem", browserPinPrefix+addr, k.suite+" "+k.fingerprint)
	})
}

// forget removes addr's pin.
func (browserPins) forget(addr string) error {
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
