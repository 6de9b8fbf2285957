// The known-servers file's lock on Windows: the lock file beside it opened
// with no sharing, held while the file is read again and rewritten, so
// that two clients pinning at once take turns.

package main

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// errSharingViolation is ERROR_SHARING_VIOLATION: another process has the
// file open with no sharing.
const errSharingViolation = syscall.Errno(32)

// lockFile takes an exclusive lock on path (created when missing), waiting
// up to 10 s while another process holds it. unlock releases it; so does
// the process's end.
func lockFile(path string) (unlock func(), err error) {
	name, err := syscall.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := syscall.CreateFile(name, syscall.GENERIC_READ|syscall.GENERIC_WRITE, 0, nil,
			syscall.OPEN_ALWAYS, syscall.FILE_ATTRIBUTE_NORMAL, 0)
		if err == nil {
			return func() { syscall.CloseHandle(h) }, nil
		}
		if !errors.Is(err, errSharingViolation) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s is held by another process", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
