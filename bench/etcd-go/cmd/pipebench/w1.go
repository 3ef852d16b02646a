package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"go.etcd.io/etcd/raft/raftpb"
)

// driver is the sender's side of a run: node A, the receiver child, W1's entry data,
// and A's VmRSS before its peers were added; with -streams, B's count once the streams
// were up (base), and -window's state.
type driver struct {
	a           *node
	c           *child
	data        []byte
	rssBase     int64
	base        int64
	acked       int64
	windowWaits int64
}

// dealt is message i and its peer: i mod -peers.
func (d *driver) dealt(i int) raftpb.Message { return msgApp(i, peerID(i%*peers), d.data) }

// offer hands m to the transport; false when the peer's pipeline buffer was full, which
// etcd's peer.send reports at once with ReportUnreachable.
func (d *driver) offer(m raftpb.Message) bool {
	before := d.a.r.unreachable.Load()
	d.a.tr.Send([]raftpb.Message{m})
	return d.a.r.unreachable.Load() == before
}

// sendRetry offers m until it is taken, sleeping -retry-sleep after each drop; the drops.
func (d *driver) sendRetry(m raftpb.Message) int64 {
	var drops int64
	for !d.offer(m) {
		drops++
		if *retrySleep > 0 {
			time.Sleep(*retrySleep)
		} else {
			runtime.Gosched()
		}
	}
	return drops
}

// warmUp sends -warmup messages (retrying drops) and waits until B has them all, so the
// measured phase starts on open connections.
func (d *driver) warmUp() error {
	for i := 0; i < *warmup; i++ {
		if err := d.windowWait(i); err != nil {
			return err
		}
		d.sendRetry(d.dealt(i))
	}
	if p, _, err := d.c.wait(d.base+int64(*warmup), *timeout); err != nil || p < d.base+int64(*warmup) {
		return fmt.Errorf("warm-up not delivered: %d/%d (%v)", p, *warmup, err)
	}
	return nil
}

// w1: MsgApps as fast as the pipelines take them; delivered msg/s from the first send to
// B's last Process, entry MB/s, CPU per message on each side, peak RSS of each side.
func (d *driver) w1() error {
	if *mode != "retry" && *mode != "drop" {
		return fmt.Errorf("unknown -mode %q", *mode)
	}
	if err := d.warmUp(); err != nil {
		return err
	}
	res := newResult("w1")
	if *idle > 0 {
		if err := d.idleWindow(res); err != nil {
			return err
		}
	}
	rss := statusKB("VmRSS")
	pre, err := d.c.stats()
	if err != nil {
		return err
	}
	unreach0 := d.a.r.unreachable.Load()
	m0 := markCPU(pre.CPUs)
	t0 := time.Now()
	var drops, retries int64
	d.windowWaits = 0
	for i := *warmup; i < *warmup+*n; i++ {
		if err := d.windowWait(i); err != nil {
			return err
		}
		if *mode == "retry" {
			retries += d.sendRetry(d.dealt(i))
		} else if !d.offer(d.dealt(i)) {
			drops++
		}
	}
	p, lastNs, err := d.c.wait(d.base+int64(*warmup+*n)-drops, *timeout)
	if err != nil {
		return err
	}
	cs, err := d.c.stats()
	if err != nil {
		return err
	}
	delivered := p - d.base - int64(*warmup)
	noise(res, m0, markCPU(cs.CPUs), delivered)
	elapsed := float64(lastNs-t0.UnixNano()) / 1e9
	perS := float64(delivered) / elapsed
	wire := msgApp(1, idB, d.data)
	res.set("mode", *mode)
	res.set("n", *n)
	res.set("entry_bytes", *entrySize)
	res.set("wire_bytes_per_msg", wire.Size())
	res.set("delivered", delivered)
	res.set("dropped", drops)
	res.set("retries", retries)
	res.set("elapsed_s", elapsed)
	res.set("delivered_per_s", perS)
	res.set("mb_per_s", perS*float64(*entrySize)/1e6)
	res.set("sender_hwm_kb", statusKB("VmHWM"))
	res.set("receiver_hwm_kb", cs.HwmKB)
	res.set("peers", *peers)
	res.set("sender_rss_base_kb", d.rssBase)
	res.set("sender_rss_kb", rss)
	res.set("rss_per_peer_kb", float64(rss-d.rssBase)/float64(*peers))
	res.set("receiver_rss_kb", cs.RssKB)
	res.set("b_stream_dials", cs.Requests["GET /raft/stream dialed"]) // A's stream readers' GETs, warm-up included
	unreach := d.a.r.unreachable.Load() - unreach0
	res.set("unreachable_reports", unreach)
	res.check(delivered == int64(*n)-drops, "delivered %d != sent %d - dropped %d", delivered, *n, drops)
	res.check(unreach == drops+retries, "unreachable reports %d != drops %d (a POST failed?)", unreach, drops+retries)
	if *window > 0 {
		res.set("window", *window)
		res.set("window_waits", d.windowWaits)
	}
	checkPath(res, pre, cs, delivered)
	return res.emit()
}

// windowWait, with -window, waits before message i (i sent so far) until fewer than
// -window are unprocessed by B: when full, until B has processed all but half a window.
func (d *driver) windowWait(i int) error {
	if *window == 0 || int64(i)-d.acked < int64(*window) {
		return nil
	}
	d.windowWaits++
	target := d.base + int64(i) - int64(*window)/2
	p, _, err := d.c.wait(target, *timeout)
	if err != nil {
		return err
	}
	if p < target {
		return fmt.Errorf("window full for %v: B processed %d of %d sent", *timeout, p-d.base, i)
	}
	d.acked = p - d.base
	return nil
}

// idleWindow sends nothing for -idle and sets each side's CPU (ms per second of the
// window) and wake-ups per second.
func (d *driver) idleWindow(res *result) error {
	pre, err := d.c.stats()
	if err != nil {
		return err
	}
	t0, cpu0, wake0 := time.Now(), selfCPU(), selfWakeups()
	time.Sleep(*idle)
	cpu1, wake1, secs := selfCPU(), selfWakeups(), time.Since(t0).Seconds()
	post, err := d.c.stats()
	if err != nil {
		return err
	}
	senderWakeups := float64(wake1-wake0) / secs
	res.set("idle_s", secs)
	res.set("idle_sender_cpu_ms_per_s", (cpu1-cpu0)/secs*1e3)
	res.set("idle_receiver_cpu_ms_per_s", (post.CPUs-pre.CPUs)/secs*1e3)
	res.set("idle_sender_wakeups_per_s", senderWakeups)
	res.set("idle_receiver_wakeups_per_s", float64(post.Wakeups-pre.Wakeups)/secs)
	res.set("idle_sender_wakeups_per_s_per_peer", senderWakeups/float64(*peers))
	return nil
}

// checkPipelineOnly checks that the messages B processed between pre and post, want of
// them, all came through etcd's pipeline handler, each answered 204.
func checkPipelineOnly(res *result, pre, post *childStats, want int64) {
	viaPipe, viaStream := post.ViaPipeline-pre.ViaPipeline, post.ViaStream-pre.ViaStream
	res.set("b_via_pipeline", viaPipe)
	res.set("b_via_stream", viaStream)
	res.set("b_posts_raft_204", post.Requests["POST /raft 204"])
	res.check(viaStream == 0 && viaPipe == want, "B processed %d by pipeline and %d from streams, want %d by pipeline", viaPipe, viaStream, want)
	for k, v := range post.Requests {
		if strings.HasPrefix(k, "POST /raft ") && k != "POST /raft 204" {
			res.check(false, "B answered %q %d times", k, v)
		}
	}
}
