package main

import (
	"fmt"
	"time"

	"go.etcd.io/etcd/raft/raftpb"
)

// With -streams, B adds A as a full peer (child.go), so etcd's stream readers on each side
// get 200 from the other and both sides' stream writers attach. Whether they did is judged
// as our own bench judges it: by where probes arrive. etcd calls Process with
// context.TODO() from its pipeline handler and with the peer's context from a stream.

const (
	establishTimeout = 10 * time.Second
	probeTimeout     = time.Second
	probePause       = 5 * time.Millisecond
)

// establishStreams sends probes until a MsgHeartbeat and then a MsgApp from A reach B by
// stream and, with echo (W3), until B's answer to a MsgApp reaches A by stream; then sets
// d.base to B's count.
func (d *driver) establishStreams(echo bool) error {
	deadline := time.Now().Add(establishTimeout)
	hb := raftpb.Message{Type: raftpb.MsgHeartbeat, To: uint64(idB), From: uint64(idA), Term: 1}
	app := msgApp(0, idB, entryData(8))
	for _, probe := range []raftpb.Message{hb, app} {
		for {
			ok, err := d.probeByStream(probe)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("etcd's streams were not established within %v", establishTimeout)
			}
			time.Sleep(probePause)
		}
	}
	for echo {
		before := d.a.r.viaStream.Load()
		d.a.tr.Send([]raftpb.Message{app})
		for t := time.Now(); time.Since(t) < probeTimeout && d.a.r.viaStream.Load() == before; {
			time.Sleep(probePause)
		}
		if d.a.r.viaStream.Load() > before {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("B's message stream to A was not established within %v", establishTimeout)
		}
	}
	cs, err := d.c.stats()
	if err != nil {
		return err
	}
	d.base = cs.Processed
	return nil
}

// probeByStream sends probe to B and says whether B processed it from a stream.
func (d *driver) probeByStream(probe raftpb.Message) (bool, error) {
	pre, err := d.c.stats()
	if err != nil {
		return false, err
	}
	d.a.tr.Send([]raftpb.Message{probe})
	if p, _, err := d.c.wait(pre.Processed+1, probeTimeout); err != nil || p <= pre.Processed {
		return false, fmt.Errorf("a probe did not arrive within %v (%v)", probeTimeout, err)
	}
	post, err := d.c.stats()
	if err != nil {
		return false, err
	}
	return post.ViaStream > pre.ViaStream, nil
}

// checkPath checks the measured messages' path: every one by pipeline, or with -streams,
// every one from a stream and no POST /raft at B.
func checkPath(res *result, pre, post *childStats, want int64) {
	if !*streams {
		res.set("path", "pipeline")
		checkPipelineOnly(res, pre, post, want)
		return
	}
	viaPipe, viaStream := post.ViaPipeline-pre.ViaPipeline, post.ViaStream-pre.ViaStream
	posts := post.Requests["POST /raft 204"] - pre.Requests["POST /raft 204"]
	res.set("path", "stream")
	res.set("b_via_pipeline", viaPipe)
	res.set("b_via_stream", viaStream)
	res.set("posts", posts)
	res.check(viaPipe == 0 && viaStream == want, "B processed %d from streams and %d by pipeline, want %d from streams", viaStream, viaPipe, want)
	res.check(posts == 0, "B answered %d POST /raft during the measured phase", posts)
}
