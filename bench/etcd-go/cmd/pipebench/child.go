package main

// The receiver child and the sender's end of it. The sender starts this binary again
// with -role=recv and speaks to it over its stdin and stdout:
//
//	child  -> READY <port>
//	parent -> WAIT <count> <timeout-ms>   child -> DONE <processed> <last-process-unix-ns>
//	parent -> STATS                       child -> STATS <json>
//	parent -> QUIT                        child exits 0 (also on stdin EOF)

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/raft/raftpb"
)

func runRecv() error {
	nd, err := startNode(idB)
	if err != nil {
		return err
	}
	defer nd.stop()
	if *streams {
		// B adds A as a full peer: B's stream readers dial A, A's readers find A known
		// at B, and both sides' stream writers attach.
		nd.tr.AddPeer(idA, []string{*peerURL})
	}
	if *echo {
		// W3: answer each MsgApp through B's own transport. Without -streams B knows A
		// only as a remote (added by the pipeline handler from X-PeerURLs), and a remote
		// has only a pipeline, so the answer also travels by pipeline; with -streams it
		// takes B's message stream to A.
		nd.r.onProcess = func(m raftpb.Message, nowNs int64) {
			if m.Type != raftpb.MsgApp {
				return
			}
			nd.tr.Send([]raftpb.Message{{
				Type: raftpb.MsgAppResp, To: m.From, From: uint64(idB), Term: m.Term,
				Index:  m.Index + uint64(len(m.Entries)),
				Commit: uint64(nowNs), // harness only: when B processed the MsgApp
			}})
		}
	}
	out := bufio.NewWriter(os.Stdout)
	_, port, _ := net.SplitHostPort(nd.ln.Addr().String())
	fmt.Fprintf(out, "READY %s\n", port)
	out.Flush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 3 && f[0] == "WAIT":
			target, _ := strconv.ParseInt(f[1], 10, 64)
			ms, _ := strconv.ParseInt(f[2], 10, 64)
			p := nd.r.waitProcessed(target, time.Duration(ms)*time.Millisecond)
			fmt.Fprintf(out, "DONE %d %d\n", p, nd.r.lastNs.Load())
		case len(f) == 1 && f[0] == "STATS":
			b, _ := json.Marshal(childStats{
				Processed: nd.r.processed.Load(), PayloadBytes: nd.r.bytes.Load(),
				ViaPipeline: nd.r.viaPipeline.Load(), ViaStream: nd.r.viaStream.Load(),
				HwmKB: statusKB("VmHWM"), RssKB: statusKB("VmRSS"), CPUs: selfCPU(),
				Wakeups: selfWakeups(), Requests: nd.reqs.snapshot(),
			})
			fmt.Fprintf(out, "STATS %s\n", b)
		case len(f) == 1 && f[0] == "QUIT":
			return nil
		default:
			fmt.Fprintf(out, "ERROR unknown command %q\n", in.Text())
		}
		out.Flush()
	}
	return nil
}

// waitProcessed polls until target messages were processed or to passed; the count.
func (r *fakeRaft) waitProcessed(target int64, to time.Duration) int64 {
	deadline := time.Now().Add(to)
	for r.processed.Load() < target && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return r.processed.Load()
}

// childStats is the receiver's STATS line.
type childStats struct {
	Processed    int64            `json:"processed"`
	PayloadBytes int64            `json:"payload_bytes"`
	ViaPipeline  int64            `json:"via_pipeline"`
	ViaStream    int64            `json:"via_stream"`
	HwmKB        int64            `json:"hwm_kb"`
	RssKB        int64            `json:"rss_kb"`
	CPUs         float64          `json:"cpu_s"`
	Wakeups      int64            `json:"wakeups"`
	Requests     map[string]int64 `json:"requests"`
}

// child is the sender's end of the receiver.
type child struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	port string
}

func startChild(extra ...string) (*child, error) {
	args := []string{"-role=recv", "-listener=" + *listener, fmt.Sprintf("-stream-stub=%v", *streamStub)}
	cmd := exec.Command(os.Args[0], append(args, extra...)...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(outp)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	c := &child{cmd: cmd, in: in, out: sc}
	line, err := c.readLine()
	if err != nil || !strings.HasPrefix(line, "READY ") {
		c.kill()
		return nil, fmt.Errorf("the receiver did not start: %q %v", line, err)
	}
	c.port = strings.TrimPrefix(line, "READY ")
	return c, nil
}

func (c *child) readLine() (string, error) {
	if c.out.Scan() {
		return c.out.Text(), nil
	}
	if err := c.out.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

func (c *child) ask(s string) (string, error) {
	if _, err := io.WriteString(c.in, s+"\n"); err != nil {
		return "", err
	}
	return c.readLine()
}

// wait blocks until B processed target messages in all, or to passed:
// (processed, B's last Process time in unix ns).
func (c *child) wait(target int64, to time.Duration) (int64, int64, error) {
	line, err := c.ask(fmt.Sprintf("WAIT %d %d", target, to.Milliseconds()))
	if err != nil {
		return 0, 0, err
	}
	var p, last int64
	if _, err := fmt.Sscanf(line, "DONE %d %d", &p, &last); err != nil {
		return 0, 0, fmt.Errorf("bad reply %q: %v", line, err)
	}
	return p, last, nil
}

func (c *child) stats() (*childStats, error) {
	line, err := c.ask("STATS")
	if err != nil {
		return nil, err
	}
	var st childStats
	if !strings.HasPrefix(line, "STATS ") {
		return nil, fmt.Errorf("bad reply %q", line)
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "STATS ")), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// quit asks the child to exit and reaps it; kills it (by PID) if it has not exited in 5 s.
func (c *child) quit() {
	io.WriteString(c.in, "QUIT\n")
	c.in.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.kill()
		<-done
	}
}

func (c *child) kill() {
	if c.cmd.Process != nil {
		c.cmd.Process.Kill()
	}
}
