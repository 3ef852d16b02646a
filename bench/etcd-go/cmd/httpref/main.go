// httpref is Go's bare HTTP floor, next to our bench's --floor: a minimal net/http server
// (a child process on 127.0.0.1) drains each body and answers 204; the parent runs
// -clients keep-alive clients (one shared http.Transport) posting -body-byte bodies, -n
// requests in all after -warmup, and prints one RESULT line with requests/s over the
// clients' wall clock and each side's CPU per request.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	role     = flag.String("role", "client", "client (driver) | server (internal)")
	clients  = flag.Int("clients", 4, "concurrent keep-alive clients (the pipeline's 4 connections)")
	n        = flag.Int("n", 200000, "measured requests in all")
	warmup   = flag.Int("warmup", 2000, "unmeasured requests first")
	bodySize = flag.Int("body", 300, "bytes per POST body")
)

func server() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	fmt.Printf("READY %s\n", ln.Addr().String())
	io.Copy(io.Discard, os.Stdin) // until the parent closes our stdin
	return srv.Close()
}

func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// pidCPU is the CPU seconds of process pid (utime+stime of /proc/pid/stat).
func pidCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

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

// post runs total requests over -clients goroutines; the wall-clock time they took.
func post(hc *http.Client, target string, body []byte, total int, errs *atomic.Int64) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				req, _ := http.NewRequest("POST", target, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/protobuf")
				resp, err := hc.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(t0)
}

func client() error {
	cmd := exec.Command(os.Args[0], "-role=server")
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill() // this child only
			<-done
		}
	}()
	sc := bufio.NewScanner(out)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "READY ") {
		return fmt.Errorf("the server did not start")
	}
	target := "http://" + strings.TrimPrefix(sc.Text(), "READY ") + "/raft"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}}
	body := make([]byte, *bodySize)
	var errs atomic.Int64
	post(hc, target, body, *warmup, &errs)
	cpuC0, cpuS0, busy0 := selfCPU(), pidCPU(cmd.Process.Pid), machineBusy()
	el := post(hc, target, body, *n, &errs).Seconds()
	cpuC, cpuS := selfCPU()-cpuC0, pidCPU(cmd.Process.Pid)-cpuS0
	foreign := machineBusy() - busy0 - cpuC - cpuS
	if foreign < 0 {
		foreign = 0
	}
	res := map[string]interface{}{
		"workload": "ref_http", "clients": *clients, "n": *n, "body_bytes": *bodySize,
		"elapsed_s": el, "req_per_s": float64(*n) / el, "errors": errs.Load(),
		"client_cpu_us_per_req": cpuC / float64(*n) * 1e6, "server_cpu_us_per_req": cpuS / float64(*n) * 1e6,
		"foreign_cpu_frac": foreign / (el * float64(runtime.NumCPU())),
		"go":               runtime.Version(), "gomaxprocs": runtime.GOMAXPROCS(0),
	}
	if errs.Load() != 0 {
		res["error"] = fmt.Sprintf("%d requests failed", errs.Load())
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	if errs.Load() != 0 {
		return fmt.Errorf("%d requests failed", errs.Load())
	}
	return nil
}

func main() {
	flag.Parse()
	var err error
	if *role == "server" {
		err = server()
	} else {
		err = client()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpref:", err)
		os.Exit(1)
	}
}
