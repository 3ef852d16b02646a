// pipebench drives etcd 3.4.23's rafthttp pipeline (go.etcd.io/etcd/etcdserver/api/rafthttp,
// imported unmodified from Debian's golang-etcd-server-dev sources) between two OS
// processes on 127.0.0.1, with the workloads, flags and RESULT fields of our own bench
// (the rafthttp-bench crate), so that bench/compare.sh can run the two side by side:
//
//	sender   A (this process): rafthttp.Transport ID=1 with AddPeer(2, B's URL), or, with
//	         -peers=K, AddPeer(2..K+1) all at B's URL (etcd's pipeline handler, like ours,
//	         does not look at a message's To).
//	receiver B (this binary again, -role=recv, a child): rafthttp.Transport ID=2 serving
//	         Handler() with a counting fake raft. B never adds A as a peer, so B never dials
//	         A's stream endpoints, A's stream writers never attach, and A's peer.pick()
//	         always chooses the pipeline (4 goroutines, 64-message buffer).
//	-streams (w1, w3): B also adds A as a peer, both sides' streams come up, and the run
//	         checks the opposite: every measured message came from a stream (streams.go).
//
// That every measured message came by the pipeline is checked, not assumed: etcd's pipeline
// handler calls Process with context.TODO(), a stream with the peer's own context, and the
// run fails unless every message B processed came with context.TODO().
//
// Workloads: w1 (MsgApp with one entry of -entry-size bytes; retry or drop on a full
// buffer; -peers K and an -idle window), w2 (MsgSnap bursts or serial), w3 (round trip,
// B echoing a MsgAppResp through its own pipeline). Each run prints exactly one line
// "RESULT {json}" and exits 1 when a self-check failed (the line then has "error").
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"go.etcd.io/etcd/version"
)

var (
	role       = flag.String("role", "send", "send (driver, starts the receiver) | recv (internal)")
	workload   = flag.String("workload", "w1", "w1 (MsgApp throughput) | w2 (MsgSnap through the pipeline) | w3 (round trip)")
	mode       = flag.String("mode", "drop", "w1: drop (count a drop, go on) | retry (on a drop, sleep -retry-sleep and resend)")
	n          = flag.Int("n", 200000, "w1: measured MsgApps; w3: measured round trips")
	warmup     = flag.Int("warmup", 1000, "messages sent before the measured phase, to open the pipelines' connections")
	entrySize  = flag.Int("entry-size", 256, "bytes of Entry.Data in each MsgApp")
	retrySleep = flag.Duration("retry-sleep", 50*time.Microsecond, "w1 retry: sleep after a drop before resending (0 = runtime.Gosched)")
	snapSize   = flag.Int("snap-size", 1<<20, "w2: bytes of Snapshot.Data")
	snapCount  = flag.Int("snap-count", 4, "w2: number of MsgSnaps")
	serial     bool
	peers      = flag.Int("peers", 1, "w1: peers of A, messages dealt round-robin; all served by B")
	idle       = flag.Duration("idle", 0, "w1: after the warm-up, send nothing this long and measure each side's CPU and wake-ups")
	streamStub = flag.Bool("stream-stub", false, "B answers A's stream readers as an established stream would (200, a link heartbeat every ConnReadTimeout/3), so they stop redialing; A's stream writers still never attach")
	listener   = flag.String("listener", "etcd", "etcd: rafthttp.NewListener (5 s deadline per read/write, as etcd's peer port) | plain: net.Listen")
	timeout    = flag.Duration("timeout", 180*time.Second, "give up waiting for delivery after this long")
	echo       = flag.Bool("echo", false, "internal (recv): answer every MsgApp with a MsgAppResp through B's transport")
	streams    = flag.Bool("streams", false, "w1/w3: B also adds A as a peer, so etcd's streams come up both ways; the run waits (10 s at most) until messages take them and checks that every measured one did")
	window     = flag.Int("window", 0, "w1 with -streams: keep at most this many messages sent but not yet processed by B (when full, wait until B has processed half of them); 0 = no window")
	peerURL    = flag.String("peer-url", "", "internal (recv, -streams): A's URL, added as a full peer")
)

func init() {
	flag.BoolVar(&serial, "serial", false, "w2: wait for each MsgSnap's ReportSnapshot before sending the next")
	flag.BoolVar(&serial, "snap-serial", false, "same as -serial")
}

func main() {
	flag.Parse()
	var err error
	if *role == "recv" {
		err = runRecv()
	} else {
		err = runSend()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pipebench: %v\n", err)
		os.Exit(1)
	}
}

// result is one run's RESULT line and what its self-checks found wrong.
type result struct {
	fields   map[string]interface{}
	problems []string
}

func newResult(workload string) *result {
	return &result{fields: map[string]interface{}{"workload": workload}}
}

func (r *result) set(k string, v interface{}) { r.fields[k] = v }

// check records problem unless ok.
func (r *result) check(ok bool, format string, args ...interface{}) {
	if !ok {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

// emit prints the RESULT line; an error when a check failed.
func (r *result) emit() error {
	r.set("etcd_version", version.Version)
	r.set("go", runtime.Version())
	r.set("gomaxprocs", runtime.GOMAXPROCS(0))
	r.set("listener", *listener)
	r.set("stream_stub", *streamStub)
	if len(r.problems) > 0 {
		r.set("error", fmt.Sprint(r.problems))
	}
	b, _ := json.Marshal(r.fields)
	fmt.Printf("RESULT %s\n", b)
	if len(r.problems) > 0 {
		return fmt.Errorf("self-check failed: %v", r.problems)
	}
	return nil
}

func runSend() error {
	if *peers < 1 {
		return fmt.Errorf("-peers must be at least 1")
	}
	if (*peers > 1 || *idle > 0) && *workload != "w1" {
		return fmt.Errorf("-peers and -idle apply to w1 only")
	}
	if *streams && (*workload == "w2" || *peers > 1 || *streamStub) {
		return fmt.Errorf("-streams applies to w1 and w3 with one peer and no -stream-stub")
	}
	if *window > 0 && !(*streams && *workload == "w1") {
		return fmt.Errorf("-window applies to w1 with -streams")
	}
	a, err := startNode(idA)
	if err != nil {
		return err
	}
	defer a.stop()
	var extra []string
	if *workload == "w3" {
		extra = append(extra, "-echo")
	}
	if *streams {
		extra = append(extra, "-streams", "-peer-url=http://"+a.ln.Addr().String())
	}
	c, err := startChild(extra...)
	if err != nil {
		return err
	}
	defer c.quit()
	rssBase := statusKB("VmRSS")
	for p := 0; p < *peers; p++ {
		a.tr.AddPeer(peerID(p), []string{"http://127.0.0.1:" + c.port})
	}
	d := &driver{a: a, c: c, data: entryData(*entrySize), rssBase: rssBase}
	if *streams {
		if err := d.establishStreams(*workload == "w3"); err != nil {
			return err
		}
	}
	switch *workload {
	case "w1":
		return d.w1()
	case "w2":
		return d.w2()
	case "w3":
		return d.w3()
	}
	return fmt.Errorf("unknown -workload %q", *workload)
}
