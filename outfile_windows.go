// Output files on Windows: no O_NOFOLLOW (the Lstat check stands alone,
// and making a link there needs privileges) and no /dev.

package main

// openNoFollow is no flag on Windows.
const openNoFollow = 0

// isSystemDevicePath is false: Windows has no /dev.
func isSystemDevicePath(string) bool { return false }
