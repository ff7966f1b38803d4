//! The single-node cluster protocol, and the `redis` crate's sync, async and cluster clients.

use redis::cluster::ClusterClient;
use redis::{AsyncCommands, Commands};
use shoal_proto::Frame;
use shoal_tests::{bulk, err, int, Server};

#[test]
fn cluster_commands_describe_one_node_owning_all_slots() {
    let s = Server::start();
    let mut r = s.raw();
    let Frame::Bulk(info) = r.cmd(&["CLUSTER", "INFO"]) else { panic!("INFO") };
    assert!(String::from_utf8_lossy(&info).starts_with("cluster_state:ok\r\ncluster_slots_assigned:16384"));
    let Frame::Bulk(id) = r.cmd(&["CLUSTER", "MYID"]) else { panic!("MYID") };
    assert_eq!(id.len(), 40);
    let slots = r.cmd(&["CLUSTER", "SLOTS"]);
    let want = Frame::Array(vec![Frame::Array(vec![
        int(0),
        int(16383),
        Frame::Array(vec![bulk("127.0.0.1"), int(s.port as i64), Frame::Bulk(id.clone()), Frame::Array(vec![])]),
    ])]);
    assert_eq!(slots, want);
    let Frame::Bulk(nodes) = r.cmd(&["CLUSTER", "NODES"]) else { panic!("NODES") };
    let nodes = String::from_utf8_lossy(&nodes);
    assert!(nodes.contains("myself,master") && nodes.trim_end().ends_with("connected 0-16383"));
    assert!(matches!(r.cmd(&["CLUSTER", "SHARDS"]), Frame::Array(ref a) if a.len() == 1));
    assert_eq!(r.cmd(&["CLUSTER", "KEYSLOT", "foo"]), int(12182));
    assert_eq!(
        r.cmd(&["CLUSTER", "KEYSLOT", "{user1000}.following"]),
        r.cmd(&["CLUSTER", "KEYSLOT", "{user1000}.followers"])
    );
    assert_eq!(r.cmd(&["SET", "foo", "1"]), shoal_tests::ok());
    assert_eq!(r.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "12182"]), int(1));
    assert_eq!(r.cmd(&["CLUSTER", "GETKEYSINSLOT", "12182", "10"]), Frame::Array(vec![bulk("foo")]));
    assert_eq!(r.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "16384"]), err("ERR Invalid slot"));
    assert_eq!(r.cmd(&["CLUSTER", "GETKEYSINSLOT", "1", "-1"]), err("ERR Invalid slot or number of keys"));
    for c in ["READONLY", "READWRITE", "ASKING"] {
        assert_eq!(r.cmd(&[c]), shoal_tests::ok());
    }
}

#[test]
fn redis_crate_cluster_client_works_unchanged() {
    let s = Server::start();
    let client = ClusterClient::new(vec![s.url()]).unwrap();
    let mut c = client.get_connection().unwrap();
    for i in 0..100 {
        let _: () = c.set(format!("key{i}"), i).unwrap();
    }
    for i in 0..100 {
        let v: i64 = c.get(format!("key{i}")).unwrap();
        assert_eq!(v, i);
    }
    let v: Vec<i64> = c.mget(&["{t}a", "{t}b"]).unwrap_or_default();
    assert!(v.is_empty() || v.len() == 2);
}

#[tokio::test]
async fn redis_crate_async_and_async_cluster_clients() {
    let s = Server::start();
    let client = redis::Client::open(s.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut handles = Vec::new();
    for t in 0..8 {
        let mut c = c.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..200 {
                let _: () = c.set(format!("a{t}:{i}"), i).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(n, 1600);
    let cluster = ClusterClient::new(vec![s.url()]).unwrap();
    let mut cc = cluster.get_async_connection().await.unwrap();
    let _: () = cc.set("ck", "cv").await.unwrap();
    let v: String = cc.get("ck").await.unwrap();
    assert_eq!(v, "cv");
}

#[test]
fn redis_cli_cluster_mode_follows_the_protocol() {
    let s = Server::start();
    let port = s.port.to_string();
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port, "-c", "SET", "a", "1"])
        .output()
        .expect("redis-cli installed");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    let out = std::process::Command::new("redis-cli").args(["-p", &port, "-c", "GET", "a"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
}
