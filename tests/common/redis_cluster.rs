//! A real Redis Cluster on loopback: 3 masters and 3 replicas, each a
//! `redis-server --cluster-enabled yes` in its own directory, joined with
//! `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`.
//!
//! [`RedisCluster::shared`] starts one per test binary (tests give their
//! stores distinct key prefixes); a test that kills nodes starts its own with
//! [`RedisCluster::start`]. Node ports stay below 55535 (a node's cluster bus
//! listens on port + 10000). The nodes keep no data on disk (replication is
//! what a failover relies on) and use a short node timeout, so a killed
//! master's replica takes over within a few seconds.
//!
//! A test binary never runs destructors of statics, so a watchdog shell
//! (started with the cluster) kills the nodes and removes their directory
//! once the test process is gone.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Milliseconds without an answer after which a master counts as failed.
pub const NODE_TIMEOUT_MS: u64 = 2_000;

/// One node of the cluster.
struct Node {
    port: u16,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

/// A running cluster owned by a test (or by a test binary).
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
    watchdog: Mutex<Child>,
}

fn binary(name: &str) -> PathBuf {
    for dir in std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
    {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{name} not found: install it with `sudo apt-get install -y redis-server` (or run ./scripts/test, which does it)"
    );
}

/// `n` ports below 55535 whose cluster bus ports (+10000) are free too.
/// A port whose cluster bus port (+10,000) is free too, clashing with none
/// of `taken` (nor their bus ports).
fn free_port_pair(taken: &[u16]) -> u16 {
    for _ in 0..10_000 {
        let port = 20_000 + fastrand::u16(..25_000);
        if taken.contains(&port) || taken.iter().any(|p: &u16| p.abs_diff(port) == 10_000) {
            continue;
        }
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
    panic!("no free port pairs below 55535");
}

/// Starts a node in a directory under `dir` on a free port pair and waits
/// until it answers. A port found free can be taken before redis binds it
/// (the bus port lies in the kernel's range for outgoing connections, which
/// the other tests use): the node then exits at once, and is started again
/// on another pair.
fn start_node(dir: &Path, taken: &[u16]) -> Node {
    for _ in 0..5 {
        let port = free_port_pair(taken);
        let node_dir = dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir).unwrap();
        let mut child = spawn(port, &node_dir);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if cli(port, &["PING"]).trim() == "PONG" {
                return Node {
                    port,
                    dir: node_dir,
                    child: Mutex::new(Some(child)),
                };
            }
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "redis cluster: node {port} did not answer within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("redis cluster: no node started on 5 port pairs");
}

fn spawn(port: u16, dir: &Path) -> Child {
    Command::new(binary("redis-server"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", "nodes.conf"])
        .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
        // A replica may take over however stale it is (tests kill masters
        // under load).
        .args(["--cluster-replica-validity-factor", "0"])
        .args(["--appendonly", "no", "--save", ""])
        .args([
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting redis-server on {port}: {e}"))
}

/// Runs `redis-cli -p PORT ARGS…` and returns its output (empty when the
/// node does not answer).
pub fn cli(port: u16, args: &[&str]) -> String {
    Command::new(binary("redis-cli"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The value of `field:` in an `INFO`/`CLUSTER INFO` answer.
fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

impl RedisCluster {
    /// The test binary's cluster, started on first use.
    pub fn shared() -> Arc<RedisCluster> {
        static SHARED: OnceLock<Arc<RedisCluster>> = OnceLock::new();
        Arc::clone(SHARED.get_or_init(|| Arc::new(RedisCluster::start())))
    }

    /// Starts six nodes, joins them as 3 masters with 1 replica each, and
    /// waits until every slot is served and every replica is in sync.
    pub fn start() -> RedisCluster {
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        let mut nodes: Vec<Node> = Vec::new();
        let mut ports: Vec<u16> = Vec::new();
        for _ in 0..6 {
            let node = start_node(dir.path(), &ports);
            ports.push(node.port);
            nodes.push(node);
        }
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill -9 $(cat {dir}/pids) 2>/dev/null; rm -rf {dir}",
                pid = std::process::id(),
                dir = dir.path().display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the cluster watchdog");
        let cluster = RedisCluster {
            nodes,
            dir,
            watchdog: Mutex::new(watchdog),
        };
        cluster.write_pids();
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new(binary("redis-cli"))
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_healthy();
        cluster
    }

    fn write_pids(&self) {
        let pids: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| n.child.lock().unwrap().as_ref().map(|c| c.id().to_string()))
            .collect();
        std::fs::write(self.dir.path().join("pids"), pids.join(" ")).unwrap();
    }

    fn wait_until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis cluster: timed out waiting until {what}");
    }

    /// Waits until every running node sees all slots served, and every
    /// running replica is linked to its master and in sync.
    pub fn wait_healthy(&self) {
        for port in self.running_ports() {
            self.wait_until(&format!("node {port} sees cluster_state:ok"), || {
                field(&cli(port, &["CLUSTER", "INFO"]), "cluster_state") == Some("ok")
            });
        }
        for port in self.running_ports() {
            self.wait_until(
                &format!("node {port} is a synced master or replica"),
                || {
                    let info = cli(port, &["INFO", "replication"]);
                    match field(&info, "role") {
                        Some("master") => true,
                        Some("slave") => {
                            field(&info, "master_link_status") == Some("up")
                                && field(&info, "master_sync_in_progress") == Some("0")
                        }
                        _ => false,
                    }
                },
            );
        }
    }

    fn running_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.lock().unwrap().is_some())
            .map(|n| n.port)
            .collect()
    }

    /// Seed URLs for `store.redis_cluster_nodes` (two nodes, as a deployment
    /// would list a few).
    pub fn urls(&self) -> Vec<String> {
        self.nodes[..2]
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}/", n.port))
            .collect()
    }

    /// Every node's port.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// Ports of the nodes that are masters now.
    pub fn masters(&self) -> Vec<u16> {
        self.running_ports()
            .into_iter()
            .filter(|&p| field(&cli(p, &["INFO", "replication"]), "role") == Some("master"))
            .collect()
    }

    /// The port of the master serving `key` now, as the first running node
    /// sees it (`CLUSTER NODES`: masters list their slot ranges).
    pub fn master_of(&self, key: &str) -> u16 {
        self.try_master_of(key)
            .unwrap_or_else(|| panic!("no healthy master serves {key:?}"))
    }

    /// [`RedisCluster::master_of`], `None` while no healthy master serves it.
    pub fn try_master_of(&self, key: &str) -> Option<u16> {
        let asker = self.running_ports()[0];
        let slot: u16 = cli(asker, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("CLUSTER KEYSLOT answers a number");
        for line in cli(asker, &["CLUSTER", "NODES"]).lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() < 9 || !parts[2].contains("master") || parts[2].contains("fail") {
                continue;
            }
            let serves = parts[8..].iter().any(|range| {
                let (start, end) = range.split_once('-').unwrap_or((range, range));
                match (start.parse::<u16>(), end.parse::<u16>()) {
                    (Ok(start), Ok(end)) => (start..=end).contains(&slot),
                    _ => false,
                }
            });
            if serves {
                let addr = parts[1].split('@').next().unwrap_or_default();
                return addr.rsplit(':').next().unwrap_or_default().parse().ok();
            }
        }
        None
    }

    /// Kills a node with SIGKILL (a machine lost).
    pub fn kill(&self, port: u16) {
        let node = self.node(port);
        if let Some(mut child) = node.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again with its cluster config: it rejoins (as a
    /// replica once its slots were failed over) and resyncs.
    pub fn start_again(&self, port: u16) {
        let node = self.node(port);
        {
            let mut child = node.child.lock().unwrap();
            if child.is_none() {
                *child = Some(spawn(port, &node.dir));
            }
        }
        self.write_pids();
        self.wait_until(&format!("node {port} answers again"), || {
            cli(port, &["PING"]).trim() == "PONG"
        });
    }

    /// Waits until `port` is no longer a master anyone follows and another
    /// master serves `key` (its replica was promoted).
    pub fn wait_failover(&self, key: &str, old_master: u16) -> u16 {
        let mut new_master = old_master;
        self.wait_until("a replica is promoted", || {
            new_master = self.try_master_of(key).unwrap_or(old_master);
            new_master != old_master
        });
        for port in self.running_ports() {
            self.wait_until(&format!("node {port} sees cluster_state:ok"), || {
                field(&cli(port, &["CLUSTER", "INFO"]), "cluster_state") == Some("ok")
            });
        }
        new_master
    }

    /// Moves every slot of master `from` to master `to` with `redis-cli
    /// --cluster reshard` (slot by slot: `SETSLOT IMPORTING`/`MIGRATING`,
    /// `MIGRATE` of its keys, `SETSLOT NODE`), as an operator would; returns
    /// once done. Clients see `ASK`, `TRYAGAIN` and `MOVED` meanwhile.
    pub fn reshard_all(&self, from: u16, to: u16) {
        let id = |port| cli(port, &["CLUSTER", "MYID"]).trim().to_owned();
        let slots: usize = cli(from, &["CLUSTER", "NODES"])
            .lines()
            .find(|l| l.contains("myself"))
            .map(|l| {
                l.split_whitespace()
                    .skip(8)
                    .filter_map(|range| {
                        let (start, end) = range.split_once('-').unwrap_or((range, range));
                        Some(end.parse::<usize>().ok()? - start.parse::<usize>().ok()? + 1)
                    })
                    .sum()
            })
            .unwrap_or(0);
        assert!(slots > 0, "node {from} serves no slots");
        let out = Command::new(binary("redis-cli"))
            .args(["--cluster", "reshard", &format!("127.0.0.1:{from}")])
            .args(["--cluster-from", &id(from), "--cluster-to", &id(to)])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster reshard");
        assert!(
            out.status.success(),
            "redis-cli --cluster reshard failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// Commands each master ran, from `INFO commandstats` (calls summed over
    /// every command).
    pub fn calls_per_master(&self) -> Vec<(u16, u64)> {
        self.masters()
            .into_iter()
            .map(|port| (port, total_calls(&cli(port, &["INFO", "commandstats"]))))
            .collect()
    }

    fn node(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }
}

/// Sum of `calls=` over `INFO commandstats` lines.
pub fn total_calls(commandstats: &str) -> u64 {
    commandstats
        .lines()
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.get_mut().unwrap().take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let watchdog = self.watchdog.get_mut().unwrap();
        let _ = watchdog.kill();
        let _ = watchdog.wait();
    }
}
