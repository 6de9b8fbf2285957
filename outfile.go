// Output files: every file encchat writes for the user (-record, -keylog,
// -html, -pcap) is opened here, never through a symbolic link, so that a
// link planted where an output goes cannot make encchat truncate or chmod
// the file it names; and a capture is never written over.

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// outputMode says what creating an output does with a file already there.
type outputMode int

const (
	outputNew      outputMode = iota // refuse it (-record: a capture is never lost)
	outputTruncate                   // replace its contents (-html, -pcap)
	outputAppend                     // add to it (-keylog)
)

// linkError is an output path that is a symbolic link.
type linkError struct{ Path, Target string }

func (e *linkError) Error() string {
	return fmt.Sprintf("%s is a symbolic link (to %s): encchat does not write through links", e.Path, e.Target)
}

// Hint says what to do instead.
func (e *linkError) Hint() string {
	return "give the path of the file itself, or remove the link"
}

// existsError is a file already where a new capture was to go.
type existsError struct{ Path, Free string }

func (e *existsError) Error() string {
	return fmt.Sprintf("%s already exists: a capture is never written over", e.Path)
}

// Hint names a free name beside it.
func (e *existsError) Hint() string {
	if e.Free == "" {
		return "give another name, or move " + e.Path + " away first"
	}
	return "give another name (" + e.Free + " is free), or move " + e.Path + " away first"
}

// createOutput opens path for writing as mode says. The path must not be
// a symbolic link: it is checked with Lstat, and opened with O_NOFOLLOW
// where the system has it, so a link made in between fails too. A device
// or FIFO already there (/dev/stdout, a named pipe) is written as it is,
// and paths under /dev, whose links are the system's (/dev/stdout,
// /dev/fd/N), are followed. A private file (it holds keys or what they
// decrypt) is created 0600, and an existing one that group or others
// could read is made 0600.
func createOutput(path string, mode outputMode, private bool) (*os.File, error) {
	flags := os.O_WRONLY | os.O_CREATE
	switch mode {
	case outputNew:
		flags |= os.O_EXCL
	case outputTruncate:
		flags |= os.O_TRUNC
	case outputAppend:
		flags |= os.O_APPEND
	}
	perm := os.FileMode(0o666)
	if private {
		perm = 0o600
	}
	if isSystemDevicePath(path) {
		return os.OpenFile(path, flags&^(os.O_EXCL|os.O_TRUNC), perm)
	}
	st, err := os.Lstat(path)
	switch {
	case err == nil && st.Mode()&os.ModeSymlink != 0:
		return nil, newLinkError(path)
	case err == nil && !st.Mode().IsRegular() && !st.IsDir():
		flags &^= os.O_EXCL | os.O_TRUNC
	case err == nil && mode == outputNew && st.Mode().IsRegular():
		return nil, &existsError{Path: path, Free: freeName(path)}
	}
	f, err := os.OpenFile(path, flags|openNoFollow, perm)
	if err != nil {
		if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&os.ModeSymlink != 0 {
			return nil, newLinkError(path) // made since the check
		}
		if mode == outputNew && errors.Is(err, os.ErrExist) {
			return nil, &existsError{Path: path, Free: freeName(path)}
		}
		return nil, err
	}
	if private {
		if err := keepPrivate(f, path); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// keepPrivate makes a regular file that group or others could read 0600.
func keepPrivate(f *os.File, path string) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("%s is mode %04o, open to group or others, and cannot be made 0600: %v", path, uint32(st.Mode().Perm()), err)
		}
	}
	return nil
}

func newLinkError(path string) *linkError {
	target, err := os.Readlink(path)
	if err != nil {
		target = "?"
	}
	return &linkError{Path: path, Target: target}
}

// freeName returns the first of NAME-2.EXT, NAME-3.EXT, ... beside path
// that does not exist, or "" after 999 of them.
func freeName(path string) string {
	ext := filepath.Ext(path)
	base := strings.TrimSuffix(path, ext)
	for i := 2; i < 1000; i++ {
		name := fmt.Sprintf("%s-%d%s", base, i, ext)
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name
		}
	}
	return ""
}
