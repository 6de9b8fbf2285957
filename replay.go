// Capture and keylog files, the tap relay, replay views, key recovery and
// pcap export.

package main
