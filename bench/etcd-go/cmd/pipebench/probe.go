package main

// What a process costs, read as our bench reads it: CPU time and voluntary context
// switches from getrusage (all threads), RSS from /proc/self/status, the machine's busy
// time from /proc/stat.

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// statusKB is a kB line of /proc/self/status (VmHWM: peak RSS, VmRSS); -1 if unreadable.
func statusKB(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key+":") {
			if f := strings.Fields(line[len(key)+1:]); len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return -1
}

func rusage() syscall.Rusage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru
}

// selfCPU is the user+system CPU seconds this process used so far.
func selfCPU() float64 {
	ru := rusage()
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// selfWakeups is this process's voluntary context switches: a thread went to sleep and
// had to be woken again.
func selfWakeups() int64 { return rusage().Nvcsw }

// machineBusy is the busy CPU seconds of the whole machine (user, nice, system, irq,
// softirq; not idle, iowait or steal).
func machineBusy() float64 {
	b, _ := os.ReadFile("/proc/stat")
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7} {
		if i < len(f) {
			x, _ := strconv.ParseFloat(f[i], 64)
			busy += x / 100 // USER_HZ
		}
	}
	return busy
}

// mark is the CPU counters at one moment, for both processes and the machine.
type mark struct {
	t                  time.Time
	sender, recv, busy float64
}

func markCPU(recvCPU float64) mark {
	return mark{t: time.Now(), sender: selfCPU(), recv: recvCPU, busy: machineBusy()}
}

// noise sets the CPU spent between two marks: each side's per unit, and the share of
// all CPUs other processes used (foreign_cpu_frac).
func noise(res *result, a, b mark, units int64) {
	wall := b.t.Sub(a.t).Seconds()
	sender, recv := b.sender-a.sender, b.recv-a.recv
	foreign := b.busy - a.busy - sender - recv
	if foreign < 0 {
		foreign = 0
	}
	res.set("sender_cpu_s", sender)
	res.set("receiver_cpu_s", recv)
	res.set("foreign_cpu_frac", foreign/(wall*float64(runtime.NumCPU())))
	if units > 0 {
		res.set("sender_cpu_us_per_unit", sender/float64(units)*1e6)
		res.set("receiver_cpu_us_per_unit", recv/float64(units)*1e6)
	}
}

// pctl is the element at round(p*len)-1 of sorted, clamped; 0 when empty.
func pctl(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}
