// Output files in the browser: the client there writes none, and has no
// links to refuse.

//go:build js

package main

const openNoFollow = 0

func isSystemDevicePath(string) bool { return false }
