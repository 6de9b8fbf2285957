// The known-servers file's lock in the browser build: a page has no files;
// its pins live in the browser's storage (browser_pins.go), never in a
// known-servers file.

package main

import "errors"

// lockFile always fails in the browser: there is no file to lock.
func lockFile(string) (unlock func(), err error) {
	return nil, errors.New("the browser has no known-servers file")
}
