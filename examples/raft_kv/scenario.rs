//! The scenario: three nodes elect a leader, take 2 000 puts, replace a
//! follower with an empty member that catches up by streamed snapshot,
//! lose their leader and elect another, and end with equal maps. Each node
//! runs in its own thread with its own actix `System`; the driver speaks
//! to them only over their HTTP APIs, and starts and stops them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::channel::{mpsc as channel, oneshot};
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use crate::node::Dump;
use crate::{api, glue};

/// How many puts the cluster takes.
pub const PUTS: usize = 2_000;
/// How many clients put at once.
const CLIENTS: usize = 32;
/// How long any one step may take.
const WAIT: Duration = Duration::from_secs(20);

/// What the scenario measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub election: Duration,
    pub puts_per_s: f64,
    pub commit_p50: Duration,
    pub commit_p99: Duration,
    pub catch_up: Duration,
    pub snapshots_received: u64,
    pub reelection: Duration,
    pub keys: usize,
}

impl Outcome {
    /// The one line the example prints.
    pub fn result_line(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "RESULT raft_kv puts={PUTS} clients={CLIENTS} puts_per_s={:.0} commit_p50_ms={:.2} \
             commit_p99_ms={:.2} catch_up_ms={:.0} reelection_ms={:.0} election_ms={:.0} \
             snapshots_streamed={} keys={}",
            self.puts_per_s,
            ms(self.commit_p50),
            ms(self.commit_p99),
            ms(self.catch_up),
            ms(self.reelection),
            ms(self.election),
            self.snapshots_received,
            self.keys,
        )
    }
}

/// What the driver can tell a node's thread.
enum Control {
    Join(Vec<(u64, String)>),
    Stop(oneshot::Sender<BTreeMap<String, String>>),
}

/// A node running in its own thread.
struct NodeThread {
    id: u64,
    peer_url: String,
    api_url: String,
    control: channel::UnboundedSender<Control>,
    thread: JoinHandle<()>,
    dir: PathBuf,
}

type Started = Result<(String, String, channel::UnboundedSender<Control>), String>;

impl NodeThread {
    fn spawn(id: u64, voters: &[u64]) -> Result<NodeThread, String> {
        let dir = std::env::temp_dir().join(format!("raft_kv-{}-{id}", std::process::id()));
        let (started_tx, started) = mpsc::channel();
        let (voters, node_dir) = (voters.to_vec(), dir.clone());
        let thread = std::thread::Builder::new()
            .name(format!("node-{id}"))
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(node_main(id, voters, node_dir, started_tx));
            })
            .map_err(|e| e.to_string())?;
        let (peer_url, api_url, control) = started
            .recv_timeout(WAIT)
            .map_err(|e| format!("node {id} did not start: {e}"))??;
        Ok(NodeThread {
            id,
            peer_url,
            api_url,
            control,
            thread,
            dir,
        })
    }

    fn join(&self, peers: Vec<(u64, String)>) {
        let _ = self.control.unbounded_send(Control::Join(peers));
    }

    /// Stops the node and returns its final map.
    async fn stop(self) -> Result<BTreeMap<String, String>, String> {
        let (tx, rx) = oneshot::channel();
        let _ = self.control.unbounded_send(Control::Stop(tx));
        let map = bounded("node stop", rx).await?.map_err(|e| e.to_string())?;
        self.thread.join().map_err(|_| "node thread panicked")?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(map)
    }
}

/// A node's thread: its member and API until the driver stops it.
async fn node_main(id: u64, voters: Vec<u64>, dir: PathBuf, started: mpsc::Sender<Started>) {
    let member = match glue::start_member(id, &voters, &dir) {
        Ok(member) => member,
        Err(e) => return drop(started.send(Err(e.to_string()))),
    };
    let (api_url, api) = match api::serve(member.raft().clone()) {
        Ok(api) => api,
        Err(e) => return drop(started.send(Err(e.to_string()))),
    };
    let (tx, mut control) = channel::unbounded();
    let _ = started.send(Ok((member.urls()[0].clone(), api_url, tx)));
    while let Some(command) = control.next().await {
        match command {
            Control::Join(peers) => glue::join(&member, &peers),
            Control::Stop(reply) => {
                let map = member.raft().send(Dump).await.unwrap_or_default();
                member.stop().await;
                api.stop(true).await;
                let _ = reply.send(map);
                return;
            }
        }
    }
}

/// Runs `f` for at most [`WAIT`].
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> Result<T, String> {
    actix_web::rt::time::timeout(WAIT, f)
        .await
        .map_err(|_| format!("timed out: {what}"))
}

/// Asks `check` until it answers `Some`, for at most [`WAIT`].
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out: {what}"));
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The driver's view of the nodes, over HTTP.
struct Driver {
    client: awc::Client,
}

impl Driver {
    async fn json(&self, url: String) -> Option<Value> {
        let mut answer = self.client.get(url).send().await.ok()?;
        let body = answer.body().limit(64 * 1024 * 1024).await.ok()?;
        serde_json::from_slice(&body).ok()
    }

    async fn status(&self, node: &NodeThread) -> Option<Value> {
        self.json(format!("{}/status", node.api_url)).await
    }

    async fn map(&self, node: &NodeThread) -> Result<BTreeMap<String, String>, String> {
        let map = self.json(format!("{}/kv", node.api_url)).await;
        let map = map.ok_or(format!("node {} gave no map", node.id))?;
        serde_json::from_value(map).map_err(|e| e.to_string())
    }

    /// A PUT that must answer 204.
    async fn put(&self, url: String, body: String) -> Result<(), String> {
        let answer = self.client.put(&url).send_body(body).await;
        match answer.map_err(|e| e.to_string())?.status().as_u16() {
            204 => Ok(()),
            status => Err(format!("PUT {url}: {status}")),
        }
    }

    /// The leader all of `nodes` agree on.
    async fn agreed_leader(&self, nodes: &[&NodeThread]) -> Option<u64> {
        let mut leaders = Vec::new();
        for node in nodes {
            leaders.push(self.status(node).await?["leader"].as_u64()?);
        }
        let first = leaders[0];
        let known = nodes.iter().any(|n| n.id == first);
        (known && leaders.iter().all(|&l| l == first)).then_some(first)
    }

    async fn wait_keys(
        &self,
        nodes: &[&NodeThread],
        keys: usize,
        commit: u64,
    ) -> Result<(), String> {
        wait_for("every node applied every put", || async {
            for node in nodes {
                let s = self.status(node).await?;
                let done = s["keys"].as_u64()? as usize >= keys && s["applied"].as_u64()? >= commit;
                done.then_some(())?;
            }
            Some(())
        })
        .await
    }

    /// `PUTS` puts by `CLIENTS` concurrent clients; each put's latency.
    async fn put_all(&self, leader: &NodeThread) -> Result<(Duration, Vec<Duration>), String> {
        let started = Instant::now();
        let puts = futures::stream::iter(0..PUTS).map(|i| async move {
            let sent = Instant::now();
            let url = format!("{}/kv/key-{i:05}", leader.api_url);
            self.put(url, format!("value-{i}")).await?;
            Ok::<_, String>(sent.elapsed())
        });
        let latencies = puts.buffer_unordered(CLIENTS).try_collect().await?;
        Ok((started.elapsed(), latencies))
    }
}

fn others(nodes: &BTreeMap<u64, NodeThread>, id: u64) -> Vec<(u64, String)> {
    let others = nodes.values().filter(|n| n.id != id);
    others.map(|n| (n.id, n.peer_url.clone())).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

/// Runs the whole scenario in an actix `System` of its own.
pub fn run() -> Result<Outcome, String> {
    actix_web::rt::System::new().block_on(drive())
}

async fn drive() -> Result<Outcome, String> {
    let driver = Driver {
        client: awc::Client::builder().timeout(WAIT).finish(),
    };
    let started = Instant::now();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, NodeThread::spawn(id, &[1, 2, 3])?);
    }
    for node in nodes.values() {
        node.join(others(&nodes, node.id));
    }
    let all: Vec<&NodeThread> = nodes.values().collect();
    let leader = wait_for("a leader", || driver.agreed_leader(&all)).await?;
    let election = started.elapsed();

    // 2 000 puts, applied everywhere.
    let (took, mut latencies) = driver.put_all(&nodes[&leader]).await?;
    latencies.sort();
    let commit = driver.status(&nodes[&leader]).await.ok_or("no status")?["commit"]
        .as_u64()
        .unwrap_or(0);
    driver.wait_keys(&all, PUTS, commit).await?;

    // Replace a follower by an empty member: it catches up by snapshot.
    let follower = *nodes
        .keys()
        .find(|&&id| id != leader)
        .ok_or("no follower")?;
    let leader_api = nodes[&leader].api_url.clone();
    let remove = driver
        .client
        .delete(format!("{leader_api}/members/{follower}"));
    let removed = remove.send().await.map_err(|e| e.to_string())?.status();
    if removed.as_u16() != 204 {
        return Err(format!("removing {follower}: {removed}"));
    }
    nodes.remove(&follower).ok_or("no follower")?.stop().await?;
    let fresh = NodeThread::spawn(4, &[])?;
    fresh.join(others(&nodes, 4));
    let catching_up = Instant::now();
    let add_url = format!("{leader_api}/members/4");
    driver.put(add_url, fresh.peer_url.clone()).await?;
    let commit = driver.status(&nodes[&leader]).await.ok_or("no status")?["commit"]
        .as_u64()
        .unwrap_or(0);
    driver.wait_keys(&[&fresh], PUTS, commit).await?;
    let catch_up = catching_up.elapsed();
    let fresh_status = driver.status(&fresh).await.ok_or("no status")?;
    let snapshots_received = fresh_status["snapshots_received"].as_u64().unwrap_or(0);
    if snapshots_received == 0 {
        return Err("the new member caught up without a streamed snapshot".into());
    }
    nodes.insert(4, fresh);

    // Lose the leader; the two others elect a new one.
    let stopping = Instant::now();
    let leader_map = nodes.remove(&leader).ok_or("no leader")?.stop().await?;
    let survivors: Vec<&NodeThread> = nodes.values().collect();
    let new_leader = wait_for("a new leader", || driver.agreed_leader(&survivors)).await?;
    let reelection = stopping.elapsed();

    // The three maps are equal; then the new leader commits a put.
    for node in &survivors {
        let map = driver.map(node).await?;
        if map != leader_map {
            return Err(format!("node {} differs from the old leader", node.id));
        }
    }
    let after = format!("{}/kv/after-reelection", nodes[&new_leader].api_url);
    driver.put(after, "yes".into()).await?;
    let commit = driver
        .status(&nodes[&new_leader])
        .await
        .ok_or("no status")?["commit"]
        .as_u64()
        .unwrap_or(0);
    driver.wait_keys(&survivors, PUTS + 1, commit).await?;

    for (_, node) in std::mem::take(&mut nodes) {
        node.stop().await?;
    }
    Ok(Outcome {
        election,
        puts_per_s: PUTS as f64 / took.as_secs_f64(),
        commit_p50: percentile(&latencies, 0.50),
        commit_p99: percentile(&latencies, 0.99),
        catch_up,
        snapshots_received,
        reelection,
        keys: leader_map.len(),
    })
}
