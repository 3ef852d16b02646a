package main

import (
	"fmt"
	"sort"
	"time"

	"go.etcd.io/etcd/raft/raftpb"
)

// echoed is B's MsgAppResp as A processed it.
type echoed struct {
	index uint64
	at    time.Time
	procB int64 // when B processed the MsgApp, carried in Commit
}

// w3: one MsgApp at a time, B answering each with a MsgAppResp through its own pipeline;
// round trip, A's send to B's Process (one way) and back, p50/p99 in µs.
func (d *driver) w3() error {
	echoC := make(chan echoed, 16)
	d.a.r.onProcess = func(m raftpb.Message, nowNs int64) {
		if m.Type == raftpb.MsgAppResp {
			echoC <- echoed{index: m.Index, at: time.Now(), procB: int64(m.Commit)}
		}
	}
	pre, err := d.c.stats()
	if err != nil {
		return err
	}
	m0 := markCPU(pre.CPUs)
	aPipe0 := d.a.r.viaPipeline.Load()
	total := *warmup + *n
	var rtt, oneway, back []float64
	for i := 0; i < total; i++ {
		m := msgApp(i, idB, d.data)
		t0 := time.Now()
		d.a.tr.Send([]raftpb.Message{m})
		select {
		case e := <-echoC:
			for e.index < m.Entries[0].Index && *streams {
				e = <-echoC // an echo of a probe that brought the streams up
			}
			if e.index != m.Entries[0].Index {
				return fmt.Errorf("echo for %d, want %d", e.index, m.Entries[0].Index)
			}
			if i >= *warmup {
				rtt = append(rtt, float64(e.at.Sub(t0).Nanoseconds())/1e3)
				oneway = append(oneway, float64(e.procB-t0.UnixNano())/1e3)
				back = append(back, float64(e.at.UnixNano()-e.procB)/1e3)
			}
		case <-time.After(5 * time.Second):
			return fmt.Errorf("no echo for message %d (unreachable reports: %d)", i, d.a.r.unreachable.Load())
		}
	}
	cs, err := d.c.stats()
	if err != nil {
		return err
	}
	res := newResult("w3")
	noise(res, m0, markCPU(cs.CPUs), int64(total))
	for _, v := range [][]float64{rtt, oneway, back} {
		sort.Float64s(v)
	}
	res.set("mode", "echo")
	res.set("n", *n)
	res.set("warmup", *warmup)
	res.set("delivered", total)
	res.set("dropped", 0)
	res.set("rtt_us_p50", pctl(rtt, 0.50))
	res.set("rtt_us_p90", pctl(rtt, 0.90))
	res.set("rtt_us_p99", pctl(rtt, 0.99))
	res.set("rtt_us_max", pctl(rtt, 1))
	res.set("oneway_us_p50", pctl(oneway, 0.50))
	res.set("oneway_us_p99", pctl(oneway, 0.99))
	res.set("back_us_p50", pctl(back, 0.50))
	res.set("back_us_p99", pctl(back, 0.99))
	res.set("sender_hwm_kb", statusKB("VmHWM"))
	res.set("receiver_hwm_kb", cs.HwmKB)
	res.set("a_posts_raft_204", d.a.reqs.snapshot()["POST /raft 204"])
	if *streams {
		viaPipe := d.a.r.viaPipeline.Load() - aPipe0
		res.set("echoes_by_post", viaPipe)
		res.check(viaPipe == 0, "%d answers reached A by the pipeline", viaPipe)
	} else {
		res.check(d.a.r.viaStream.Load() == 0, "%d answers reached A from a stream", d.a.r.viaStream.Load())
	}
	res.check(d.a.r.unreachable.Load() == 0, "%d unreachable reports", d.a.r.unreachable.Load())
	checkPath(res, pre, cs, int64(total))
	return res.emit()
}
