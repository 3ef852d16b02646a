package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/etcdserver/api/rafthttp"
	stats "go.etcd.io/etcd/etcdserver/api/v2stats"
	etcdtransport "go.etcd.io/etcd/pkg/transport"
	"go.etcd.io/etcd/pkg/types"
	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/version"
	"go.uber.org/zap"
)

const (
	idA       = types.ID(1)
	idB       = types.ID(2)
	clusterID = types.ID(0xc1a55)
)

// peerID is the id of A's p-th peer: B, B+1, ...
func peerID(p int) types.ID { return idB + types.ID(p) }

// fakeRaft counts what the transport hands it, as a raft node would receive it.
type fakeRaft struct {
	processed   atomic.Int64
	bytes       atomic.Int64
	lastNs      atomic.Int64
	viaPipeline atomic.Int64 // Process called with context.TODO(): etcd's pipeline handler
	viaStream   atomic.Int64 // any other context: a stream's peer goroutine
	unreachable atomic.Int64
	snapFinishC chan time.Time
	snapFailure atomic.Int64
	onProcess   func(m raftpb.Message, nowNs int64)
}

func newFakeRaft() *fakeRaft { return &fakeRaft{snapFinishC: make(chan time.Time, 1024)} }

func (r *fakeRaft) Process(ctx context.Context, m raftpb.Message) error {
	now := time.Now().UnixNano()
	if ctx == context.TODO() {
		r.viaPipeline.Add(1)
	} else {
		r.viaStream.Add(1)
	}
	size := len(m.Snapshot.Data)
	for i := range m.Entries {
		size += len(m.Entries[i].Data)
	}
	r.bytes.Add(int64(size))
	r.lastNs.Store(now)
	r.processed.Add(1)
	if r.onProcess != nil {
		r.onProcess(m, now)
	}
	return nil
}
func (r *fakeRaft) IsIDRemoved(id uint64) bool  { return false }
func (r *fakeRaft) ReportUnreachable(id uint64) { r.unreachable.Add(1) }
func (r *fakeRaft) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	if status != raft.SnapshotFinish {
		r.snapFailure.Add(1)
		return
	}
	select {
	case r.snapFinishC <- time.Now():
	default:
	}
}

// counter counts requests by "METHOD class STATUS" when they end, class being /raft,
// /raft/snapshot, /raft/stream or /raft/probing, and stream GETs ("GET /raft/stream
// dialed") when they arrive, since an accepted stream lasts as long as the run.
type counter struct {
	h  http.Handler
	mu sync.Mutex
	m  map[string]int64
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
	w.ResponseWriter.WriteHeader(c)
}

func (w *statusWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	class := r.URL.Path
	if strings.HasPrefix(class, rafthttp.RaftStreamPrefix+"/") {
		class = rafthttp.RaftStreamPrefix
		c.add(r.Method + " " + class + " dialed")
	}
	c.h.ServeHTTP(sw, r)
	if sw.code == 0 {
		sw.code = http.StatusOK
	}
	c.add(fmt.Sprintf("%s %s %d", r.Method, class, sw.code))
}

func (c *counter) add(key string) {
	c.mu.Lock()
	c.m[key]++
	c.mu.Unlock()
}

func (c *counter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// serveStreamStub answers a stream reader's GET as an established etcd stream does: 200 with
// X-Server-Version, then a link heartbeat every ConnReadTimeout/3 (stream.go's writer),
// which the reader skips. The reader then stops redialing (10 times a second per reader
// otherwise) and keeps its peer active. It carries no message, and A's stream writers
// still never attach, so every message still goes by the pipeline. It ends when a write
// fails: A closed the stream or B's server closed.
func serveStreamStub(w http.ResponseWriter, r *http.Request) {
	heartbeat := messageHeartbeat
	if strings.HasPrefix(r.URL.Path, rafthttp.RaftStreamPrefix+"/msgapp/") {
		heartbeat = []byte{0} // msgappv2's msgTypeLinkHeartbeat frame
	}
	w.Header().Set("X-Server-Version", version.Version)
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	tick := time.NewTicker(rafthttp.ConnReadTimeout / 3)
	defer tick.Stop()
	for range tick.C {
		if _, err := w.Write(heartbeat); err != nil {
			return
		}
		w.(http.Flusher).Flush()
	}
}

// messageHeartbeat is the message stream's link heartbeat frame: the 8-byte big-endian
// length, then Message{Type: MsgHeartbeat} (msg_codec.go's messageEncoder).
var messageHeartbeat = func() []byte {
	m := raftpb.Message{Type: raftpb.MsgHeartbeat}
	b, _ := m.Marshal()
	frame := make([]byte, 8+len(b))
	binary.BigEndian.PutUint64(frame, uint64(len(b)))
	copy(frame[8:], b)
	return frame
}()

// node is one member: its transport, its fake raft and its HTTP server.
type node struct {
	tr   *rafthttp.Transport
	r    *fakeRaft
	reqs *counter
	srv  *http.Server
	ln   net.Listener
}

func startNode(id types.ID) (*node, error) {
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	urls, err := types.NewURLs([]string{"http://" + ln.Addr().String()})
	if err != nil {
		return nil, err
	}
	r := newFakeRaft()
	tr := &rafthttp.Transport{
		Logger:      zap.NewNop(),
		DialTimeout: time.Second,
		ID:          id,
		URLs:        urls,
		ClusterID:   clusterID,
		Raft:        r,
		ServerStats: stats.NewServerStats("", id.String()),
		LeaderStats: stats.NewLeaderStats(id.String()),
		ErrorC:      make(chan error, 16),
	}
	if err := tr.Start(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", tr.Handler())
	if *streamStub {
		mux.HandleFunc(rafthttp.RaftStreamPrefix+"/", serveStreamStub)
	}
	reqs := &counter{h: mux, m: map[string]int64{}}
	srv := &http.Server{Handler: reqs}
	if *listener == "etcd" {
		srv.ReadTimeout = 5 * time.Minute // as etcd's servePeers
	}
	go srv.Serve(ln)
	return &node{tr: tr, r: r, reqs: reqs, srv: srv, ln: ln}, nil
}

func listen() (net.Listener, error) {
	switch *listener {
	case "etcd":
		u, _ := url.Parse("http://127.0.0.1:0")
		return rafthttp.NewListener(*u, &etcdtransport.TLSInfo{})
	case "plain":
		return net.Listen("tcp", "127.0.0.1:0")
	}
	return nil, fmt.Errorf("unknown -listener %q", *listener)
}

func (nd *node) stop() {
	nd.tr.Stop()
	nd.srv.Close()
}

// entryData is W1's and W3's entry: size bytes counting up.
func entryData(size int) []byte {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	return data
}

// msgApp is the i-th MsgApp to peer to: one entry at index i+1.
func msgApp(i int, to types.ID, data []byte) raftpb.Message {
	idx := uint64(i) + 1
	return raftpb.Message{
		Type: raftpb.MsgApp, To: uint64(to), From: uint64(idA),
		Term: 1, LogTerm: 1, Index: idx - 1, Commit: idx - 1,
		Entries: []raftpb.Entry{{Term: 1, Index: idx, Type: raftpb.EntryNormal, Data: data}},
	}
}
