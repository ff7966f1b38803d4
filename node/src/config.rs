//! Start-up configuration: command-line flags, `SHOAL_*` environment variables and an optional
//! TOML file, in that order of precedence, over built-in defaults that need no configuration.

use crate::memory::Policy;
use clap::{Parser, ValueEnum};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Shoal: a Redis- and Memcached-compatible data store.
///
/// With no options it serves RESP2/RESP3 on 127.0.0.1:6379 and [::1]:6379. Every option can
/// also be given as a `SHOAL_<NAME>` environment variable (`SHOAL_PORT=7000`) or as a
/// `name = value` line in the TOML file named by --config (`port = 7000`,
/// `proto-max-bulk-len = "512mb"`). Flags override variables, which override the file.
#[derive(Parser, Debug, Default)]
#[command(name = "shoal", version, about, long_about)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "SHOAL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Addresses to listen on, separated by spaces or commas [default: "127.0.0.1 ::1"].
    /// An address that cannot be bound (e.g. ::1 without IPv6) is skipped with a warning,
    /// as long as at least one is bound.
    #[arg(long, env = "SHOAL_BIND", value_name = "ADDRS", num_args = 1..)]
    pub bind: Option<Vec<String>>,

    /// TCP port for RESP clients [default: 6379]. 0 picks a free port and logs it.
    #[arg(long, short = 'p', env = "SHOAL_PORT")]
    pub port: Option<u16>,

    /// Number of shard actors that own the keyspace [default: number of CPU cores].
    #[arg(long, env = "SHOAL_SHARDS")]
    pub shards: Option<usize>,

    /// Worker threads that run connections and shards [default: number of CPU cores].
    #[arg(long, env = "SHOAL_THREADS")]
    pub threads: Option<usize>,

    /// Number of logical databases for SELECT [default: 16].
    #[arg(long, env = "SHOAL_DATABASES")]
    pub databases: Option<usize>,

    /// Directory for the node id and, later, snapshots and logs [default: ./shoal-data].
    #[arg(long, env = "SHOAL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Port for the Prometheus /metrics and /healthz HTTP endpoint; 0 disables it [default: 0].
    #[arg(long, env = "SHOAL_METRICS_PORT")]
    pub metrics_port: Option<u16>,

    /// Address the metrics endpoint binds [default: 127.0.0.1].
    #[arg(long, env = "SHOAL_METRICS_BIND", value_name = "ADDR")]
    pub metrics_bind: Option<String>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive such as
    /// "shoal_node=debug" [default: info].
    #[arg(long, env = "SHOAL_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Log format [default: text].
    #[arg(long, env = "SHOAL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Most simultaneous client connections; the next one is refused with
    /// "-ERR max number of clients reached" [default: 10000, or 4 per MB of --maxmemory if
    /// that is more].
    #[arg(long, env = "SHOAL_MAXCLIENTS")]
    pub maxclients: Option<usize>,

    /// Close a client idle for this many seconds; 0 never [default: 0].
    #[arg(long, env = "SHOAL_TIMEOUT", value_name = "SECONDS")]
    pub timeout: Option<u64>,

    /// TCP keepalive interval for client sockets in seconds; 0 disables [default: 300].
    #[arg(long, env = "SHOAL_TCP_KEEPALIVE", value_name = "SECONDS")]
    pub tcp_keepalive: Option<u64>,

    /// Log commands that run for at least this many microseconds in SLOWLOG; 0 logs every
    /// command, a negative value none [default: 10000].
    #[arg(long, env = "SHOAL_SLOWLOG_LOG_SLOWER_THAN", value_name = "MICROSECONDS", allow_hyphen_values = true)]
    pub slowlog_log_slower_than: Option<i64>,

    /// Entries SLOWLOG keeps; older ones are dropped [default: 128].
    #[arg(long, env = "SHOAL_SLOWLOG_MAX_LEN", value_name = "N")]
    pub slowlog_max_len: Option<usize>,

    /// Milliseconds a script or function may run before other clients get -BUSY (and
    /// SCRIPT KILL / FUNCTION KILL are the way out) [default: 5000].
    #[arg(long, env = "SHOAL_BUSY_REPLY_THRESHOLD", value_name = "MILLISECONDS")]
    pub busy_reply_threshold: Option<u64>,

    /// Largest bulk string a client may send, e.g. "512mb" [default: 512mb].
    #[arg(long, env = "SHOAL_PROTO_MAX_BULK_LEN", value_name = "BYTES")]
    pub proto_max_bulk_len: Option<String>,

    /// Largest pending request a client may accumulate before it is disconnected [default: 1gb].
    #[arg(long, env = "SHOAL_CLIENT_QUERY_BUFFER_LIMIT", value_name = "BYTES")]
    pub client_query_buffer_limit: Option<String>,

    /// Memory limit, e.g. "4gb"; 0 means no limit [default: 0]. Counted as the allocator's
    /// allocated bytes (INFO's used_memory), so it covers data, buffers and tables alike.
    /// When a write would go above it, --maxmemory-policy decides what happens.
    #[arg(long, env = "SHOAL_MAXMEMORY", value_name = "BYTES")]
    pub maxmemory: Option<String>,

    /// What happens at maxmemory [default: noeviction]. noeviction: writes that add data fail
    /// with -OOM. cache: evict the keys least likely to be read again (a frequency sketch that
    /// remembers evicted keys, recency as tie-break; best hit ratio). Redis's policies are
    /// accepted with their meaning: allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru,
    /// volatile-lfu, volatile-random, volatile-ttl (volatile-*: only keys with a TTL).
    #[arg(long, env = "SHOAL_MAXMEMORY_POLICY", value_name = "POLICY")]
    pub maxmemory_policy: Option<String>,

    /// Seconds to wait for in-flight commands at shutdown before exiting anyway [default: 10].
    #[arg(long, env = "SHOAL_SHUTDOWN_TIMEOUT", value_name = "SECONDS")]
    pub shutdown_timeout: Option<u64>,

    /// Load this RDB file written by Redis (dump.rdb, any version up to 7.2) at start-up,
    /// before accepting clients: the way to move a dataset from Redis. Keys already expired
    /// are skipped. A corrupt file stops the start with the offset of the damage.
    #[arg(long, env = "SHOAL_IMPORT_RDB", value_name = "FILE")]
    pub import_rdb: Option<PathBuf>,

    /// Snapshot points, Redis's `save` setting: "<seconds> <changes>" pairs, or "" for none
    /// [default: "3600 1 300 100 60 10000"]. A background save of dump.rdb in the data
    /// directory starts once a point is reached (that many seconds and writes since the last
    /// save); with points set, a shutdown saves too (SHUTDOWN NOSAVE skips it). A start loads
    /// dump.rdb.
    #[arg(long, env = "SHOAL_SAVE", value_name = "RULES")]
    pub save: Option<String>,

    /// Keep a write-ahead log of every write in <data-dir>/wal (Redis's append-only file):
    /// yes or no [default: no]. On start the node recovers from it (its base snapshot plus the
    /// writes after it) instead of dump.rdb. CONFIG SET appendonly turns it on or off live.
    #[arg(long, env = "SHOAL_APPENDONLY", value_name = "YES|NO")]
    pub appendonly: Option<String>,

    /// When the log is synced to disk [default: everysec]. always: before any reply that
    /// follows a write, so no acknowledged write is ever lost (one sync serves every client
    /// waiting at that moment). everysec: once a second; a crash loses at most about a second
    /// of writes. no: when the operating system decides.
    #[arg(long, env = "SHOAL_APPENDFSYNC", value_name = "POLICY")]
    pub appendfsync: Option<String>,

    /// Rewrite the log in the background (a new base snapshot; older segments deleted) when it
    /// has grown by this percentage over its base; 0 disables [default: 100].
    #[arg(long, env = "SHOAL_AUTO_AOF_REWRITE_PERCENTAGE", value_name = "PERCENT")]
    pub auto_aof_rewrite_percentage: Option<u64>,

    /// ...and is at least this large, e.g. "64mb" [default: 64mb].
    #[arg(long, env = "SHOAL_AUTO_AOF_REWRITE_MIN_SIZE", value_name = "BYTES")]
    pub auto_aof_rewrite_min_size: Option<String>,

    /// Size at which the log moves on to a new segment file, e.g. "64mb" (at least 1mb)
    /// [default: 64mb].
    #[arg(long, env = "SHOAL_WAL_SEGMENT_SIZE", value_name = "BYTES")]
    pub wal_segment_size: Option<String>,

    /// Where backups go: "s3://bucket/prefix" (credentials from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY, as the AWS tools read them) or a local directory. Without it,
    /// BACKUP answers with an error [default: none].
    #[arg(long, env = "SHOAL_BACKUP_URL", value_name = "URL")]
    pub backup_url: Option<String>,

    /// An S3-compatible endpoint to use instead of AWS, e.g. "http://minio:9000".
    #[arg(long, env = "SHOAL_BACKUP_S3_ENDPOINT", value_name = "URL")]
    pub backup_s3_endpoint: Option<String>,

    /// The S3 region [default: us-east-1, or AWS_REGION].
    #[arg(long, env = "SHOAL_BACKUP_S3_REGION", value_name = "REGION")]
    pub backup_s3_region: Option<String>,

    /// File holding the backup encryption key: 64 hex digits (AES-256-GCM). The key itself
    /// may instead be given in SHOAL_BACKUP_KEY. Without a key, backups are stored
    /// unencrypted (a warning says so).
    #[arg(long, env = "SHOAL_BACKUP_KEY_FILE", value_name = "FILE")]
    pub backup_key_file: Option<PathBuf>,

    /// When backups run by themselves, in UTC: "every <N>h", "<days>@<hour>" with days
    /// "daily" or a list like "mon,thu" (e.g. "daily@03"), or "off" [default: off].
    #[arg(long, env = "SHOAL_BACKUP_SCHEDULE", value_name = "SPEC")]
    pub backup_schedule: Option<String>,

    /// Delete backups older than this many days after each backup; 0 keeps them
    /// [default: 7].
    #[arg(long, env = "SHOAL_BACKUP_RETENTION_DAYS", value_name = "DAYS")]
    pub backup_retention_days: Option<u64>,

    /// Keep at most this many backups (the newest); 0 for no limit [default: 0].
    #[arg(long, env = "SHOAL_BACKUP_RETENTION_COUNT", value_name = "N")]
    pub backup_retention_count: Option<u64>,

    /// At start-up, when the data directory holds no snapshot and no log, load this backup
    /// ("latest", or a backup id from BACKUP LIST) first. "latest" with no backups yet starts
    /// empty.
    #[arg(long, env = "SHOAL_RESTORE_FROM", value_name = "ID")]
    pub restore_from: Option<String>,

    /// Password of the `default` user (Redis's requirepass): clients must AUTH with it. The
    /// value may also come from SHOAL_REQUIREPASS, which keeps it out of `ps` [default: none].
    #[arg(long, env = "SHOAL_REQUIREPASS", value_name = "PASSWORD", hide_env_values = true)]
    pub requirepass: Option<String>,

    /// File of ACL users (`user <name> <rules>` lines, as ACL LIST prints them), loaded at
    /// start; ACL SAVE and ACL LOAD write and read it [default: none].
    #[arg(long, env = "SHOAL_ACLFILE", value_name = "FILE")]
    pub aclfile: Option<PathBuf>,

    /// Accept clients only from these networks, e.g. "10.0.0.0/8" or "fd00::/8"; repeat the
    /// flag or separate with commas. Others are closed before anything is read and counted in
    /// shoal_connections_disallowed_total [default: every address].
    #[arg(long, env = "SHOAL_ALLOW_CIDR", value_name = "CIDR", num_args = 1.., value_delimiter = ',')]
    pub allow_cidr: Option<Vec<String>>,

    /// Port for TLS clients (`rediss://`, `redis-cli --tls`), on the same addresses as
    /// --port; 0 disables it [default: 0].
    #[arg(long, env = "SHOAL_TLS_PORT")]
    pub tls_port: Option<u16>,

    /// The server's certificate chain (PEM). CONFIG SET tls-cert-file reloads it live.
    #[arg(long, env = "SHOAL_TLS_CERT_FILE", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// The certificate's private key (PEM).
    #[arg(long, env = "SHOAL_TLS_KEY_FILE", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates must be signed by: mutual TLS.
    #[arg(long, env = "SHOAL_TLS_CA_CERT_FILE", value_name = "FILE")]
    pub tls_ca_cert_file: Option<PathBuf>,

    /// With --tls-ca-cert-file: yes (a client certificate is required), optional (checked if
    /// given), no [default: yes].
    #[arg(long, env = "SHOAL_TLS_AUTH_CLIENTS", value_name = "YES|NO|OPTIONAL")]
    pub tls_auth_clients: Option<String>,

    /// Without --tls-cert-file: generate a self-signed certificate for localhost (kept in
    /// <data-dir>/tls/) — for trials, not for production.
    #[arg(long, env = "SHOAL_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,

    /// Serve Memcached clients (text, meta and binary protocols, on the same data as RESP) on
    /// --memcached-port, 6371 unless that says otherwise.
    #[arg(long, env = "SHOAL_MEMCACHED")]
    pub memcached: bool,

    /// Port for Memcached clients, on the same addresses as --port; giving it turns the
    /// Memcached gateway on, 0 turns it off [default: off; 6371 with --memcached]. Without
    /// --memcached-auth it may bind only private addresses.
    #[arg(long, env = "SHOAL_MEMCACHED_PORT")]
    pub memcached_port: Option<u16>,

    /// Largest value a Memcached client may store, like memcached's -I [default: 1mb].
    #[arg(long, env = "SHOAL_MEMCACHED_MAX_ITEM_SIZE", value_name = "SIZE")]
    pub memcached_max_item_size: Option<String>,

    /// Memcached clients must authenticate as an ACL user: binary SASL PLAIN, or the text
    /// protocol's `set <any> 0 0 <n>` with "user password" as the data (memcached's -Y style).
    #[arg(long, env = "SHOAL_MEMCACHED_AUTH")]
    pub memcached_auth: bool,

    /// The Memcached port speaks TLS, with the RESP port's certificate (--tls-cert-file or
    /// --tls-self-signed). Required, with --memcached-auth, on a public address.
    #[arg(long, env = "SHOAL_MEMCACHED_TLS")]
    pub memcached_tls: bool,

    /// "auto": give the default user a generated passkey (kept in <data-dir>/passkey, the same
    /// across restarts; its connection URI is printed once, when it is made). A node bound to
    /// a public address does this whenever the default user has no password.
    #[arg(long, env = "SHOAL_PASSKEY", value_name = "auto")]
    pub passkey: Option<String>,

    /// Serve a public address (anything but loopback and private networks) without TLS: the
    /// plain port stays open and TLS is not required. For networks you trust anyway.
    #[arg(long, env = "SHOAL_INSECURE_PUBLIC")]
    pub insecure_public: bool,

    /// Commands no client may run, whatever its ACL rules (comma-separated or repeated);
    /// they answer as unknown commands.
    #[arg(long, env = "SHOAL_DENY_COMMANDS", value_name = "CMDS", num_args = 1.., value_delimiter = ',')]
    pub deny_commands: Option<Vec<String>>,

    /// "managed": withhold from every user but --admin-user what managed stores withhold from
    /// tenants: BGREWRITEAOF BGSAVE CONFIG DEBUG SAVE SHUTDOWN LASTSAVE ACL BACKUP (and
    /// FAILOVER MIGRATE REPLICAOF SLAVEOF ROLE MONITOR when they exist).
    #[arg(long, env = "SHOAL_PROFILE", value_name = "managed")]
    pub profile: Option<String>,

    /// The user the managed profile exempts [default: admin].
    #[arg(long, env = "SHOAL_ADMIN_USER", value_name = "NAME")]
    pub admin_user: Option<String>,

    /// With --profile managed: withhold EVAL, FUNCTION and the other scripting commands too.
    #[arg(long, env = "SHOAL_MANAGED_DENY_SCRIPTS")]
    pub managed_deny_scripts: bool,

    /// Redis's rename-command, as OLD=NEW (repeatable): the command answers only to its new
    /// name; OLD= (empty NEW) disables it.
    #[arg(long, env = "SHOAL_RENAME_COMMAND", value_name = "OLD=NEW")]
    pub rename_command: Option<Vec<String>>,
}

/// The same options as read from a TOML file (Redis-style dashed names).
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    bind: Option<BindValue>,
    port: Option<u16>,
    shards: Option<usize>,
    threads: Option<usize>,
    databases: Option<usize>,
    data_dir: Option<PathBuf>,
    metrics_port: Option<u16>,
    metrics_bind: Option<String>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    maxclients: Option<usize>,
    timeout: Option<u64>,
    tcp_keepalive: Option<u64>,
    slowlog_log_slower_than: Option<i64>,
    slowlog_max_len: Option<usize>,
    busy_reply_threshold: Option<u64>,
    proto_max_bulk_len: Option<SizeValue>,
    client_query_buffer_limit: Option<SizeValue>,
    maxmemory: Option<SizeValue>,
    maxmemory_policy: Option<String>,
    shutdown_timeout: Option<u64>,
    import_rdb: Option<PathBuf>,
    save: Option<String>,
    appendonly: Option<YesNo>,
    appendfsync: Option<String>,
    auto_aof_rewrite_percentage: Option<u64>,
    auto_aof_rewrite_min_size: Option<SizeValue>,
    wal_segment_size: Option<SizeValue>,
    backup_url: Option<String>,
    backup_s3_endpoint: Option<String>,
    backup_s3_region: Option<String>,
    backup_key_file: Option<PathBuf>,
    backup_schedule: Option<String>,
    backup_retention_days: Option<u64>,
    backup_retention_count: Option<u64>,
    restore_from: Option<String>,
    requirepass: Option<String>,
    aclfile: Option<PathBuf>,
    allow_cidr: Option<Vec<String>>,
    tls_port: Option<u16>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    tls_ca_cert_file: Option<PathBuf>,
    tls_auth_clients: Option<String>,
    tls_self_signed: Option<bool>,
    memcached: Option<bool>,
    memcached_port: Option<u16>,
    memcached_max_item_size: Option<SizeValue>,
    memcached_auth: Option<bool>,
    memcached_tls: Option<bool>,
    passkey: Option<String>,
    insecure_public: Option<bool>,
    deny_commands: Option<Vec<String>>,
    profile: Option<String>,
    admin_user: Option<String>,
    managed_deny_scripts: Option<bool>,
    rename_command: Option<Vec<String>>,
}

/// A yes/no setting as TOML writes it: `true` or `"yes"`.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum YesNo {
    Bool(bool),
    Text(String),
}

impl YesNo {
    fn text(self) -> String {
        match self {
            YesNo::Bool(b) => if b { "yes" } else { "no" }.into(),
            YesNo::Text(s) => s,
        }
    }
}

/// Redis's yes/no values.
pub fn parse_yes_no(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum BindValue {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum SizeValue {
    Number(u64),
    Text(String),
}

impl SizeValue {
    fn text(self) -> String {
        match self {
            SizeValue::Number(n) => n.to_string(),
            SizeValue::Text(s) => s,
        }
    }
}

/// The effective configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: Vec<String>,
    pub port: u16,
    pub shards: usize,
    pub threads: usize,
    pub databases: usize,
    pub data_dir: PathBuf,
    pub metrics_port: u16,
    pub metrics_bind: String,
    pub log_level: String,
    pub log_format: LogFormat,
    pub maxclients: usize,
    pub timeout: u64,
    pub tcp_keepalive: u64,
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: usize,
    pub busy_reply_threshold: u64,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    pub maxmemory: u64,
    pub maxmemory_policy: Policy,
    pub shutdown_timeout: u64,
    pub import_rdb: Option<PathBuf>,
    pub save: String,
    pub appendonly: bool,
    pub appendfsync: crate::persist::wal::Fsync,
    pub auto_aof_rewrite_percentage: u64,
    pub auto_aof_rewrite_min_size: u64,
    pub wal_segment_size: u64,
    pub backup: crate::persist::backup::BackupSettings,
    pub restore_from: Option<String>,
    pub requirepass: Option<String>,
    pub aclfile: Option<PathBuf>,
    pub allow_cidr: Vec<ipnet::IpNet>,
    pub tls_port: u16,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub tls_ca_cert_file: Option<PathBuf>,
    pub tls_auth_clients: crate::gateway::tls::AuthClients,
    pub tls_self_signed: bool,
    pub memcache: MemcacheConfig,
    /// `--passkey auto`.
    pub passkey_auto: bool,
    pub insecure_public: bool,
    pub deny_commands: Vec<String>,
    /// `--profile managed`: (admin user, withhold scripting too).
    pub managed: Option<(String, bool)>,
    pub rename_command: Vec<String>,
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

/// Redis's memory values: plain bytes or a unit (k=1000, kb=1024, m, mb, g, gb), any case.
pub fn parse_memory(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let n: u64 = num.parse().ok()?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

fn split_bind(values: Vec<String>) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Connections allowed when --maxclients is not given: 10,000, or 4 per MB of maxmemory on a
/// node large enough to serve more.
pub fn default_maxclients(maxmemory: u64) -> usize {
    10_000.max((maxmemory / (1 << 20) * 4) as usize)
}

fn size(name: &'static str, v: Option<String>, default: u64) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => {
            parse_memory(&s).ok_or(ConfigError::Invalid { name, message: format!("'{s}' is not a size (e.g. 512mb)") })
        }
    }
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            None => FileConfig::default(),
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.clone(), message: e.to_string() })?
            }
        };
        let backup = backup_settings(&cli, &file)?;
        let bind = match (cli.bind, file.bind) {
            (Some(b), _) => split_bind(b),
            (None, Some(BindValue::One(s))) => split_bind(vec![s]),
            (None, Some(BindValue::Many(v))) => split_bind(v),
            (None, None) => vec!["127.0.0.1".into(), "::1".into()],
        };
        if bind.is_empty() {
            return Err(ConfigError::Invalid { name: "bind", message: "no address given".into() });
        }
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let shards = cli.shards.or(file.shards).unwrap_or(cores);
        if !(1..=1024).contains(&shards) {
            return Err(ConfigError::Invalid { name: "shards", message: "must be between 1 and 1024".into() });
        }
        let threads = cli.threads.or(file.threads).unwrap_or(cores);
        if !(1..=1024).contains(&threads) {
            return Err(ConfigError::Invalid { name: "threads", message: "must be between 1 and 1024".into() });
        }
        let databases = cli.databases.or(file.databases).unwrap_or(16);
        if !(1..=65536).contains(&databases) {
            return Err(ConfigError::Invalid { name: "databases", message: "must be between 1 and 65536".into() });
        }
        let policy = cli.maxmemory_policy.or(file.maxmemory_policy).unwrap_or_else(|| "noeviction".into());
        let policy = Policy::parse(&policy).ok_or_else(|| ConfigError::Invalid {
            name: "maxmemory-policy",
            message: format!("unknown policy '{policy}' (one of {})", Policy::names()),
        })?;
        let proto_max_bulk_len = size(
            "proto-max-bulk-len",
            cli.proto_max_bulk_len.or(file.proto_max_bulk_len.map(SizeValue::text)),
            512 * 1024 * 1024,
        )?;
        if !(1024 * 1024..=u32::MAX as u64 / 2).contains(&proto_max_bulk_len) {
            return Err(ConfigError::Invalid {
                name: "proto-max-bulk-len",
                message: "must be between 1mb and 2gb".into(),
            });
        }
        let client_query_buffer_limit = size(
            "client-query-buffer-limit",
            cli.client_query_buffer_limit.or(file.client_query_buffer_limit.map(SizeValue::text)),
            1024 * 1024 * 1024,
        )?;
        if !(1024 * 1024..=crate::cmd::config::MAX_QUERY_BUFFER).contains(&client_query_buffer_limit) {
            return Err(ConfigError::Invalid {
                name: "client-query-buffer-limit",
                message: "must be between 1mb and 2gb".into(),
            });
        }
        let appendonly = cli.appendonly.or(file.appendonly.map(YesNo::text)).unwrap_or_else(|| "no".into());
        let appendonly = parse_yes_no(&appendonly)
            .ok_or(ConfigError::Invalid { name: "appendonly", message: format!("'{appendonly}' is not yes or no") })?;
        let fsync = cli.appendfsync.or(file.appendfsync).unwrap_or_else(|| "everysec".into());
        let appendfsync = crate::persist::wal::Fsync::parse(&fsync).ok_or(ConfigError::Invalid {
            name: "appendfsync",
            message: format!("'{fsync}' is not one of always, everysec, no"),
        })?;
        let wal_segment_size =
            size("wal-segment-size", cli.wal_segment_size.or(file.wal_segment_size.map(SizeValue::text)), 64 << 20)?;
        if wal_segment_size < 1 << 20 {
            return Err(ConfigError::Invalid { name: "wal-segment-size", message: "must be at least 1mb".into() });
        }
        let allow_cidr = cli
            .allow_cidr
            .or(file.allow_cidr)
            .unwrap_or_default()
            .iter()
            .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|s| !s.is_empty())
            .map(|s| {
                // A bare address is a network of one.
                s.parse::<ipnet::IpNet>().or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map_err(
                    |_| ConfigError::Invalid { name: "allow-cidr", message: format!("'{s}' is not a network") },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let auth = cli.tls_auth_clients.or(file.tls_auth_clients).unwrap_or_else(|| "yes".into());
        let tls_auth_clients = crate::gateway::tls::AuthClients::parse(&auth).ok_or(ConfigError::Invalid {
            name: "tls-auth-clients",
            message: format!("'{auth}' is not yes, no or optional"),
        })?;
        let maxmemory = size("maxmemory", cli.maxmemory.or(file.maxmemory.map(SizeValue::text)), 0)?;
        let passkey_auto = match cli.passkey.or(file.passkey).as_deref() {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("auto") => true,
            Some(v) => {
                return Err(ConfigError::Invalid {
                    name: "passkey",
                    message: format!("'{v}' is not 'auto' (set a password with --requirepass)"),
                })
            }
        };
        let managed = match cli.profile.or(file.profile).as_deref() {
            None => None,
            Some(p) if p.eq_ignore_ascii_case("managed") => Some((
                cli.admin_user.or(file.admin_user).unwrap_or_else(|| "admin".into()),
                cli.managed_deny_scripts || file.managed_deny_scripts.unwrap_or(false),
            )),
            Some(p) => {
                return Err(ConfigError::Invalid { name: "profile", message: format!("'{p}' is not 'managed'") })
            }
        };
        let memcache = MemcacheConfig {
            port: match cli.memcached_port.or(file.memcached_port) {
                Some(p) => p,
                None if cli.memcached || file.memcached.unwrap_or(false) => MEMCACHED_DEFAULT_PORT,
                None => 0,
            },
            max_item_size: size(
                "memcached-max-item-size",
                cli.memcached_max_item_size.or(file.memcached_max_item_size.map(SizeValue::text)),
                1 << 20,
            )?,
            auth: cli.memcached_auth || file.memcached_auth.unwrap_or(false),
            tls: cli.memcached_tls || file.memcached_tls.unwrap_or(false),
        };
        if memcache.max_item_size == 0 || memcache.max_item_size > 1 << 30 {
            return Err(ConfigError::Invalid {
                name: "memcached-max-item-size",
                message: "must be between 1 byte and 1gb".into(),
            });
        }
        Ok(Config {
            bind,
            port: cli.port.or(file.port).unwrap_or(6379),
            shards,
            threads,
            databases,
            data_dir: cli.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("shoal-data")),
            metrics_port: cli.metrics_port.or(file.metrics_port).unwrap_or(0),
            metrics_bind: cli.metrics_bind.or(file.metrics_bind).unwrap_or_else(|| "127.0.0.1".into()),
            log_level: cli.log_level.or(file.log_level).unwrap_or_else(|| "info".into()),
            log_format: cli.log_format.or(file.log_format).unwrap_or_default(),
            maxclients: cli.maxclients.or(file.maxclients).unwrap_or_else(|| default_maxclients(maxmemory)),
            timeout: cli.timeout.or(file.timeout).unwrap_or(0),
            tcp_keepalive: cli.tcp_keepalive.or(file.tcp_keepalive).unwrap_or(300),
            slowlog_log_slower_than: cli.slowlog_log_slower_than.or(file.slowlog_log_slower_than).unwrap_or(10_000),
            slowlog_max_len: cli.slowlog_max_len.or(file.slowlog_max_len).unwrap_or(128),
            busy_reply_threshold: cli.busy_reply_threshold.or(file.busy_reply_threshold).unwrap_or(5000),
            proto_max_bulk_len,
            client_query_buffer_limit,
            maxmemory,
            maxmemory_policy: policy,
            shutdown_timeout: cli.shutdown_timeout.or(file.shutdown_timeout).unwrap_or(10),
            import_rdb: cli.import_rdb.or(file.import_rdb),
            save: cli.save.or(file.save).unwrap_or_else(|| "3600 1 300 100 60 10000".into()),
            appendonly,
            appendfsync,
            auto_aof_rewrite_percentage: cli
                .auto_aof_rewrite_percentage
                .or(file.auto_aof_rewrite_percentage)
                .unwrap_or(100),
            auto_aof_rewrite_min_size: size(
                "auto-aof-rewrite-min-size",
                cli.auto_aof_rewrite_min_size.or(file.auto_aof_rewrite_min_size.map(SizeValue::text)),
                64 << 20,
            )?,
            wal_segment_size,
            backup,
            restore_from: cli.restore_from.or(file.restore_from),
            requirepass: cli.requirepass.or(file.requirepass),
            aclfile: cli.aclfile.or(file.aclfile),
            allow_cidr,
            tls_port: cli.tls_port.or(file.tls_port).unwrap_or(0),
            tls_cert_file: cli.tls_cert_file.or(file.tls_cert_file),
            tls_key_file: cli.tls_key_file.or(file.tls_key_file),
            tls_ca_cert_file: cli.tls_ca_cert_file.or(file.tls_ca_cert_file),
            tls_auth_clients,
            tls_self_signed: cli.tls_self_signed || file.tls_self_signed.unwrap_or(false),
            memcache,
            passkey_auto,
            insecure_public: cli.insecure_public || file.insecure_public.unwrap_or(false),
            deny_commands: cli.deny_commands.or(file.deny_commands).unwrap_or_default(),
            managed,
            rename_command: cli.rename_command.or(file.rename_command).unwrap_or_default(),
            config_file: cli.config,
        })
    }
}

/// The port the Memcached gateway takes when turned on without one.
pub const MEMCACHED_DEFAULT_PORT: u16 = 6371;

/// The Memcached gateway's settings.
#[derive(Clone, Debug)]
pub struct MemcacheConfig {
    /// 0: the gateway is off.
    pub port: u16,
    pub max_item_size: u64,
    pub auth: bool,
    pub tls: bool,
}

/// The backup options; the key from its file or SHOAL_BACKUP_KEY.
fn backup_settings(cli: &Cli, file: &FileConfig) -> Result<crate::persist::backup::BackupSettings, ConfigError> {
    use crate::persist::backup::{crypt, schedule::Schedule};
    let key_text = match cli.backup_key_file.clone().or(file.backup_key_file.clone()) {
        Some(path) => Some(std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path, source })?),
        None => std::env::var("SHOAL_BACKUP_KEY").ok(),
    };
    let key = key_text
        .map(|t| crypt::parse_key(&t))
        .transpose()
        .map_err(|e| ConfigError::Invalid { name: "backup-key", message: e.to_string() })?;
    let spec = cli.backup_schedule.clone().or(file.backup_schedule.clone()).unwrap_or_default();
    let schedule =
        Schedule::parse(&spec).map_err(|message| ConfigError::Invalid { name: "backup-schedule", message })?;
    let region = cli.backup_s3_region.clone().or(file.backup_s3_region.clone());
    Ok(crate::persist::backup::BackupSettings {
        url: cli.backup_url.clone().or(file.backup_url.clone()),
        s3_endpoint: cli.backup_s3_endpoint.clone().or(file.backup_s3_endpoint.clone()),
        s3_region: region.or_else(|| std::env::var("AWS_REGION").ok()).unwrap_or_else(|| "us-east-1".into()),
        key,
        schedule,
        retention_days: cli.backup_retention_days.or(file.backup_retention_days).unwrap_or(7),
        retention_count: cli.backup_retention_count.or(file.backup_retention_count).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxclients_grows_with_maxmemory() {
        assert_eq!(default_maxclients(0), 10_000);
        assert_eq!(default_maxclients(1 << 30), 10_000);
        assert_eq!(default_maxclients(4 << 30), 16_384);
        let c = Config::from_cli(Cli { maxmemory: Some("8gb".into()), ..Cli::default() }).unwrap();
        assert_eq!(c.maxclients, 32_768);
    }

    #[test]
    fn memory_units_follow_redis() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("4gb"), Some(4 << 30));
        assert_eq!(parse_memory("4x"), None);
    }

    #[test]
    fn file_values_apply_under_flags() {
        let dir = std::env::temp_dir().join(format!("shoal-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shoal.toml");
        std::fs::write(&path, "port = 7001\nbind = \"0.0.0.0\"\nproto-max-bulk-len = \"64mb\"\ndatabases = 4\n")
            .unwrap();
        let cli = Cli { config: Some(path), port: Some(7002), ..Cli::default() };
        let c = Config::from_cli(cli).unwrap();
        assert_eq!(c.port, 7002);
        assert_eq!(c.bind, vec!["0.0.0.0"]);
        assert_eq!(c.proto_max_bulk_len, 64 << 20);
        assert_eq!(c.databases, 4);
    }
}
