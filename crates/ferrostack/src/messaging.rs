//! The bus a process uses, from its config: `[DEFAULT] transport_url` and
//! oslo.messaging's RabbitMQ options, under their own names.

use std::time::Duration;

use anyhow::Context;
use common::config::Opt;
use common::Config;

pub const TRANSPORT_URL: Opt = Opt {
    section: "DEFAULT",
    name: "transport_url",
    default: "",
    help: "The bus between a service's parts: empty (or in-process://) for this process only; rabbit://user:password@host:5672/vhost for RabbitMQ (several brokers comma-separated: rabbit://u:p@h1:5672,u:p@h2:5672/vhost).",
};

pub const CONTROL_EXCHANGE: Opt = Opt {
    section: "DEFAULT",
    name: "control_exchange",
    default: "",
    help: "The AMQP exchange the service's topics live in; empty for the service's own (nova for compute, neutron for networking).",
};

pub const DURABLE_QUEUES: Opt = Opt {
    section: "oslo_messaging_rabbit",
    name: "amqp_durable_queues",
    default: "true",
    help: "Durable topic queues and persistent messages, so queued work outlives a broker restart (oslo.messaging defaults to false).",
};

pub const HEARTBEAT_TIMEOUT_THRESHOLD: Opt = Opt {
    section: "oslo_messaging_rabbit",
    name: "heartbeat_timeout_threshold",
    default: "60",
    help: "Seconds without a heartbeat after which the connection to the broker counts as dead; 0 disables heartbeats.",
};

pub const RABBIT_RETRY_INTERVAL: Opt = Opt {
    section: "oslo_messaging_rabbit",
    name: "rabbit_retry_interval",
    default: "1",
    help: "Seconds before the first attempt to reconnect to the broker.",
};

pub const RABBIT_RETRY_BACKOFF: Opt = Opt {
    section: "oslo_messaging_rabbit",
    name: "rabbit_retry_backoff",
    default: "2",
    help: "Seconds added to the wait after each failed round of reconnecting.",
};

pub const RABBIT_INTERVAL_MAX: Opt = Opt {
    section: "oslo_messaging_rabbit",
    name: "rabbit_interval_max",
    default: "5",
    help: "Longest wait between reconnection rounds, in seconds (oslo.messaging defaults to 30; a shorter wait resumes RPC sooner after a broker restart).",
};

pub const OPTS: &[Opt] = &[
    TRANSPORT_URL,
    CONTROL_EXCHANGE,
    DURABLE_QUEUES,
    HEARTBEAT_TIMEOUT_THRESHOLD,
    RABBIT_RETRY_INTERVAL,
    RABBIT_RETRY_BACKOFF,
    RABBIT_INTERVAL_MAX,
];

fn seconds(opt: &Opt, config: &Config) -> anyhow::Result<Duration> {
    let s: f64 = opt.get(config)?;
    Duration::try_from_secs_f64(s).with_context(|| format!("[{}] {}", opt.section, opt.name))
}

/// The bus `[DEFAULT] transport_url` names, for `service` (which names the
/// control exchange and the connection), answering calls within
/// `[DEFAULT] rpc_response_timeout`.
pub fn bus(config: &Config, service: &str, exchange: &str) -> anyhow::Result<bus::Bus> {
    let url = TRANSPORT_URL.get_str(config).unwrap_or_default();
    let timeout: u64 = compute::config::RPC_RESPONSE_TIMEOUT.get(config)?;
    let timeout = Duration::from_secs(timeout.max(1));
    let host = network::config::host(config);
    let options = bus::amqp::AmqpOptions {
        control_exchange: CONTROL_EXCHANGE.get_str(config).unwrap_or(exchange).to_string(),
        durable_queues: DURABLE_QUEUES.get_bool(config)?,
        heartbeat: HEARTBEAT_TIMEOUT_THRESHOLD.get(config)?,
        send_timeout: timeout,
        retry_interval: seconds(&RABBIT_RETRY_INTERVAL, config)?,
        retry_backoff: seconds(&RABBIT_RETRY_BACKOFF, config)?,
        interval_max: seconds(&RABBIT_INTERVAL_MAX, config)?,
        connection_name: format!("ferrostack-{service}:{host}:{}", std::process::id()),
    };
    let bus = bus::Bus::from_url(url, options).with_context(|| format!("transport_url {url:?}"))?;
    Ok(bus.with_default_timeout(timeout))
}
