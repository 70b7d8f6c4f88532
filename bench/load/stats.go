package main

import (
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hist is a log-linear latency histogram in microseconds: exact below
// 64 µs, then 64 sub-buckets per power of two (under 1.6% error). It is
// not safe for concurrent use: give each goroutine its own and merge.
type hist struct {
	counts [64 * 64]uint64
	n      uint64
	max    time.Duration
}

const histSub = 64

// index maps a latency to its bucket: values below histSub µs exactly,
// above that 64 sub-buckets per power of two.
func index(us uint64) int {
	if us < histSub {
		return int(us)
	}
	exp := bits.Len64(us) - 7 // us >> exp is in [64, 128)
	i := (exp+1)*histSub + int(us>>uint(exp)) - histSub
	return min(i, len(hist{}.counts)-1)
}

// lower returns the smallest µs value of bucket i.
func lower(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	exp := i/histSub - 1
	return uint64(i%histSub+histSub) << uint(exp)
}

// add records one latency.
func (h *hist) add(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	h.counts[index(us)]++
	h.n++
	h.max = max(h.max, d)
}

// merge adds o's counts to h.
func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// pct returns the latency at quantile q (0..1), 0 when empty.
func (h *hist) pct(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(lower(i)) * time.Microsecond
		}
	}
	return h.max
}

// ms formats d in milliseconds with two decimals.
func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

// cpuTime is CPU used (user + system).
type cpuTime time.Duration

// selfCPU returns this process's CPU time so far (getrusage).
func selfCPU() cpuTime {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return cpuTime(time.Duration(ru.Utime.Nano() + ru.Stime.Nano()))
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the CPU time of process pid from /proc/<pid>/stat
// (utime + stime), or 0 when it cannot be read.
func procCPU(pid int) cpuTime {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields are counted after its ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 { // utime and stime are fields 14 and 15, here 11 and 12 (0-based, from state)
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return cpuTime(time.Duration(u+st) * time.Second / clockTicks)
}

// cpuShare formats CPU used over a wall time as a share of one core.
func cpuShare(c cpuTime, wall time.Duration) string {
	if wall <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(c)/float64(wall), 'f', 2, 64)
}

// loadAvg returns the 1, 5 and 15 minute load averages as /proc/loadavg
// prints them.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// perUnit formats CPU per unit of work (request, event, delivery) in µs.
func perUnit(c cpuTime, n float64) string {
	if c <= 0 || n <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(c)/1e3/n, 'f', 1, 64)
}
