// tcpref measures the loopback TCP limit: it streams -bytes over one TCP connection on
// 127.0.0.1, from a writer goroutine to a reader goroutine of this process, and prints
// one RESULT line with MB/s (10^6) from the dial to the reader's EOF. It is the "what
// the machine can move" line of bench/compare.sh's table and plot.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	total = flag.Int64("bytes", 2<<30, "bytes to stream")
	chunk = flag.Int("chunk", 128<<10, "bytes per write")
	rbuf  = flag.Int("rbuf", 256<<10, "bytes per read")
)

func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// machineBusy is the busy CPU seconds of the whole machine (not idle, iowait or steal).
func machineBusy() float64 {
	b, _ := os.ReadFile("/proc/stat")
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7} {
		if i < len(f) {
			x, _ := strconv.ParseFloat(f[i], 64)
			busy += x / 100
		}
	}
	return busy
}

// drain reads conn to EOF; the bytes read and when it ended.
func drain(ln net.Listener, got chan<- int64, done chan<- time.Time) {
	var n int64
	defer func() { done <- time.Now(); got <- n }()
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	buf := make([]byte, *rbuf)
	for {
		k, err := c.Read(buf)
		n += int64(k)
		if err != nil {
			return
		}
	}
}

func run() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	got, done := make(chan int64, 1), make(chan time.Time, 1)
	go drain(ln, got, done)
	cpu0, busy0, t0 := selfCPU(), machineBusy(), time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, *chunk)
	for i := range buf {
		buf[i] = byte(i)
	}
	for sent := int64(0); sent < *total; {
		w := buf
		if rem := *total - sent; rem < int64(len(w)) {
			w = w[:rem]
		}
		k, err := c.Write(w)
		sent += int64(k)
		if err != nil {
			return err
		}
	}
	c.(*net.TCPConn).CloseWrite()
	el := (<-done).Sub(t0).Seconds()
	n := <-got
	cpu := selfCPU() - cpu0
	foreign := machineBusy() - busy0 - cpu
	if foreign < 0 {
		foreign = 0
	}
	res := map[string]interface{}{
		"workload": "ref_tcp", "bytes": n, "chunk": *chunk, "elapsed_s": el,
		"mb_per_s": float64(n) / el / 1e6, "gbit_per_s": float64(n) * 8 / el / 1e9,
		"cpu_s": cpu, "foreign_cpu_frac": foreign / (el * float64(runtime.NumCPU())),
		"go": runtime.Version(), "gomaxprocs": runtime.GOMAXPROCS(0),
	}
	if n != *total {
		res["error"] = fmt.Sprintf("received %d of %d bytes", n, *total)
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	if n != *total {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tcpref:", err)
		os.Exit(1)
	}
}
