package main

import (
	"fmt"
	"runtime"
	"time"

	"go.etcd.io/etcd/raft/raftpb"
)

// msgSnap is W2's k-th MsgSnap: Snapshot.Data inline, sent by the pipeline (POST /raft).
func msgSnap(k int, data []byte) raftpb.Message {
	return raftpb.Message{
		Type: raftpb.MsgSnap, To: uint64(idB), From: uint64(idA), Term: 1,
		Snapshot: raftpb.Snapshot{
			Data: data,
			Metadata: raftpb.SnapshotMetadata{Index: uint64(k + 1), Term: 1,
				ConfState: raftpb.ConfState{Voters: []uint64{uint64(idA), uint64(idB)}}},
		},
	}
}

// w2: -snap-count MsgSnaps of -snap-size bytes, all at once or -serial; MB/s (10^6) from
// the first send to the last ReportSnapshot(Finish), peak RSS of each side.
func (d *driver) w2() error {
	if err := d.warmUp(); err != nil {
		return err
	}
	data := make([]byte, *snapSize)
	for i := range data {
		data[i] = byte(i * 7)
	}
	runtime.GC()
	hwmBefore := statusKB("VmHWM")
	pre, err := d.c.stats()
	if err != nil {
		return err
	}
	m0 := markCPU(pre.CPUs)
	t0 := time.Now()
	var last time.Time
	for k := 0; k < *snapCount; k++ {
		d.a.tr.Send([]raftpb.Message{msgSnap(k, data)})
		if serial {
			if last, err = d.snapFinished(k); err != nil {
				return err
			}
		}
	}
	for k := 0; !serial && k < *snapCount; k++ {
		if last, err = d.snapFinished(k); err != nil {
			return err
		}
	}
	elapsed := last.Sub(t0).Seconds()
	cs, err := d.c.stats()
	if err != nil {
		return err
	}
	res := newResult("w2")
	noise(res, m0, markCPU(cs.CPUs), int64(*snapCount))
	total := int64(*snapCount) * int64(*snapSize)
	delivered := cs.Processed - pre.Processed
	mode := "burst"
	if serial {
		mode = "serial"
	}
	res.set("mode", mode)
	res.set("n", *snapCount)
	res.set("snap_bytes", *snapSize)
	res.set("snap_count", *snapCount)
	res.set("serial", serial)
	res.set("delivered", delivered)
	res.set("dropped", 0)
	res.set("elapsed_s", elapsed)
	res.set("mb_per_s", float64(total)/elapsed/1e6)
	res.set("sender_hwm_kb", statusKB("VmHWM"))
	res.set("sender_hwm_before_kb", hwmBefore)
	res.set("receiver_hwm_kb", cs.HwmKB)
	res.set("receiver_hwm_before_kb", pre.HwmKB)
	res.check(cs.PayloadBytes-pre.PayloadBytes == total, "receiver got %d payload bytes, want %d", cs.PayloadBytes-pre.PayloadBytes, total)
	res.check(d.a.r.snapFailure.Load() == 0, "%d snapshots failed", d.a.r.snapFailure.Load())
	checkPipelineOnly(res, pre, cs, int64(*snapCount))
	return res.emit()
}

// snapFinished waits for the next ReportSnapshot(Finish); its time.
func (d *driver) snapFinished(k int) (time.Time, error) {
	select {
	case t := <-d.a.r.snapFinishC:
		return t, nil
	case <-time.After(*timeout):
		return time.Time{}, fmt.Errorf("snapshot %d not acknowledged within %v (failed: %d)", k, *timeout, d.a.r.snapFailure.Load())
	}
}
