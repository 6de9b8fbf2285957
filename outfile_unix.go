// Output files on Unix: O_NOFOLLOW, and the system's own links under /dev.

//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"syscall"
)

// openNoFollow makes an open fail when the path's last element is a link.
const openNoFollow = syscall.O_NOFOLLOW

// isSystemDevicePath reports whether path is under /dev, whose links
// (/dev/stdout, /dev/fd/N) are the system's, naming the caller's own
// descriptors.
func isSystemDevicePath(path string) bool {
	abs, err := filepath.Abs(path)
	return err == nil && strings.HasPrefix(abs, "/dev/")
}
