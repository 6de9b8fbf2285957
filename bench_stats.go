// The bench's figures: what a run measured (benchStats), and the latency
// summaries behind it, a concurrent histogram for deliveries and an exact
// sort for handshakes.

//go:build !js

package main

import (
	"math"
	"math/bits"
	"slices"
	"sync/atomic"
	"time"
)

// latencyStats summarises a latency distribution.
type latencyStats struct {
	N             int64
	P50, P99, Max time.Duration
}

// benchStats is what a run measured.
type benchStats struct {
	Addr, Suite string
	Transport   string // tcp or websocket
	InProcess   bool

	Clients, Concurrency int
	Warmup               int     // clients connected and closed before the measured ones
	WarmupRate           float64 // their handshakes/s: a fresh process's
	Connected            int
	HandshakeErrors      int
	FirstError           string        // the first handshake or send error
	HandshakeWall        time.Duration // first dial to last welcome
	Handshake            latencyStats  // dial to welcome, per client

	Senders, Messages, Size int
	Expected                int64         // deliveries, counted per reading client
	Delivered               int64         // distinct messages received
	Lost                    int64         // expected but never received
	Duplicated              int64         // received more than once
	OutOfOrder              int64         // received after a later one from the same sender
	Corrupt                 int64         // bench messages whose text did not parse
	SendErrors              int64         // Send calls that failed
	Disconnected            int           // reading clients whose connection ended early
	Dropped                 int           // classic records that did not decrypt
	DeliveryWall            time.Duration // first send to last delivery
	Delivery                latencyStats  // send to receipt, per delivery

	Stalled, StalledClosed int     // never-reading clients, and how many the server closed
	SlowDown               int64   // slowDownText notices: the server delayed a sender's lines
	ServerRate             float64 // the in-process server's line rate, 0 for none or with -connect
	ServerBurst            int
	ServerDrops            map[string]int // in-process server only: why it dropped clients during the run

	RSADecrypts float64 // RSA-2048 OAEP decrypts/s on all cores; 0 when not measured
	RSACores    int

	TimedOut bool // the overall deadline cut the run short
}

// HandshakeRate is completed handshakes per second of the connect phase.
func (s benchStats) HandshakeRate() float64 {
	return perSecond(int64(s.Connected), s.HandshakeWall)
}

// DeliveryRate is deliveries per second from the first send to the last delivery.
func (s benchStats) DeliveryRate() float64 {
	return perSecond(s.Delivered, s.DeliveryWall)
}

// OK reports whether every message arrived exactly once and in order.
func (s benchStats) OK() bool {
	return !s.TimedOut && s.Connected == s.Clients && s.Lost == 0 && s.Duplicated == 0 &&
		s.OutOfOrder == 0 && s.Corrupt == 0 && s.SendErrors == 0
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// latencyHist is a log-linear histogram safe for concurrent use: exact below
// 128 ns, then 64 buckets per octave (at most 1.6% error), exact maximum.
type latencyHist struct {
	counts [128 + 57*64]atomic.Int64
	n, max atomic.Int64
}

func histIndex(v int64) int {
	if v < 128 {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - 7
	return 128 + (shift-1)*64 + int(v>>shift) - 64
}

// histValue is the upper bound of bucket i.
func histValue(i int) int64 {
	if i < 128 {
		return int64(i)
	}
	shift := (i-128)/64 + 1
	mant := int64((i-128)%64 + 64)
	return (mant+1)<<shift - 1
}

// recordAll records ds, touching each bucket once per run of equal buckets.
func (h *latencyHist) recordAll(ds []time.Duration) {
	var top int64
	for i := 0; i < len(ds); {
		b := histIndex(int64(ds[i]))
		j := i + 1
		for j < len(ds) && histIndex(int64(ds[j])) == b {
			j++
		}
		h.counts[b].Add(int64(j - i))
		for _, d := range ds[i:j] {
			top = max(top, int64(d))
		}
		i = j
	}
	h.n.Add(int64(len(ds)))
	for {
		m := h.max.Load()
		if top <= m || h.max.CompareAndSwap(m, top) {
			return
		}
	}
}

func (h *latencyHist) stats() latencyStats {
	st := latencyStats{N: h.n.Load(), Max: time.Duration(h.max.Load())}
	if st.N == 0 {
		return st
	}
	quantile := func(q float64) time.Duration {
		rank := int64(math.Ceil(q * float64(st.N)))
		var seen int64
		for i := range h.counts {
			if seen += h.counts[i].Load(); seen >= rank {
				return min(time.Duration(histValue(i)), st.Max)
			}
		}
		return st.Max
	}
	st.P50, st.P99 = quantile(0.50), quantile(0.99)
	return st
}

// exactLatencies summarises a small set of durations exactly.
func exactLatencies(ds []time.Duration) latencyStats {
	if len(ds) == 0 {
		return latencyStats{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		return ds[max(int(math.Ceil(q*float64(len(ds))))-1, 0)]
	}
	return latencyStats{N: int64(len(ds)), P50: at(0.50), P99: at(0.99), Max: ds[len(ds)-1]}
}
