//! Fixes from an MQTT broker (`--mqtt-url mqtt://host:1883 --mqtt-topic 'fleet/+/position'`),
//! for fleets that publish there. A message is a batch, one fix, or an OwnTracks location
//! ([`super::batch::decode_message`]).
//!
//! Durable end to end: the subscription is QoS 1 in a persistent session, and a message is
//! acknowledged to the broker (PUBACK) only once its fixes are committed. Should safegrid die
//! first, the broker delivers the message again after the restart; a re-delivered fix is stored
//! once (the history is keyed by unit and time). Under overload the message waits unacknowledged
//! and is retried, and the broker stops sending once its in-flight window is full: back pressure
//! reaches the publishers instead of memory growing here. A message that cannot be decoded is
//! counted, logged and acknowledged, so that it does not come back forever.

use super::batch::decode_message;
use super::ingest::{Ingest, IngestError};
use std::future::Future;
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Publish, QoS};
use std::sync::Arc;
use std::time::Duration;

/// Where to subscribe.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Topic filter (`+` and `#` wildcards).
    pub topic: String,
    /// Client id: the broker keeps the session (and unacknowledged messages) under it.
    pub client_id: String,
}

impl MqttConfig {
    /// Parses `mqtt://host[:port]` (port 1883 by default).
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn from_url(url: &str, topic: &str, client_id: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("mqtt://").ok_or_else(|| format!("{url:?}: expected mqtt://host[:port]"))?;
        let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| format!("{url:?}: the port is not a number"))?),
            None => (rest.trim_end_matches('/'), 1883),
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        if topic.is_empty() {
            return Err("the MQTT topic filter is empty".into());
        }
        Ok(Self { host: host.to_owned(), port, topic: topic.to_owned(), client_id: client_id.to_owned() })
    }
}

/// Subscribes and feeds every message to `ingest`, reconnecting for ever.
pub fn spawn(ingest: Arc<Ingest>, config: MqttConfig) {
    let mut opts = MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
    opts.set_keep_alive(Duration::from_secs(15)).set_manual_acks(true).set_clean_session(false);
    let (client, eventloop) = AsyncClient::new(opts, 256);
    tokio::spawn(run(client, eventloop, ingest, config));
}

async fn run(client: AsyncClient, mut eventloop: EventLoop, ingest: Arc<Ingest>, config: MqttConfig) {
    let mut connected = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                connected = true;
                tracing::info!(broker = %format!("{}:{}", config.host, config.port), topic = %config.topic, session_present = ack.session_present, "MQTT connected");
                // Subscribing again on every connection is harmless and covers a broker that
                // lost the session.
                let c = client.clone();
                let topic = config.topic.clone();
                tokio::spawn(async move {
                    if let Err(e) = c.subscribe(topic, QoS::AtLeastOnce).await {
                        tracing::warn!(error = %e, "MQTT subscribe failed");
                    }
                });
            }
            Ok(Event::Incoming(Incoming::SubAck(_))) => tracing::info!(topic = %config.topic, "MQTT subscribed"),
            Ok(Event::Incoming(Incoming::Publish(p))) => {
                // Queued here, in arrival order (a device's fixes must not overtake each other);
                // the commit is awaited and the message acknowledged in a task of its own.
                if let Some(pending) = enqueue(&ingest, &p).await {
                    tokio::spawn(finish(client.clone(), Arc::clone(&ingest), p, pending));
                } else {
                    ack(&client, &p).await;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if connected {
                    tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                } else {
                    tracing::warn!(error = %e, broker = %format!("{}:{}", config.host, config.port), "MQTT broker unreachable; retrying");
                }
                connected = false;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

type Pending = std::pin::Pin<Box<dyn Future<Output = Result<super::ingest::Receipt, IngestError>> + Send>>;

/// Decodes and queues a message's fixes, waiting while the queue is full (the broker meanwhile
/// holds further messages: back pressure). `None`: nothing to store (refused, counted).
async fn enqueue(ingest: &Ingest, p: &Publish) -> Option<Pending> {
    let fixes = match decode_message(&p.topic, &p.payload) {
        Ok(f) => f,
        Err(e) => {
            ingest.counters().count_malformed();
            tracing::warn!(topic = %p.topic, field = %e.field, reason = %e.reason, "MQTT message refused");
            return None;
        }
    };
    loop {
        match ingest.enqueue(fixes.clone()) {
            Ok(pending) => return Some(Box::pin(pending)),
            Err(IngestError::Overloaded { retry_after_s }) => {
                tokio::time::sleep(Duration::from_secs(u64::from(retry_after_s))).await;
            }
            Err(e) => {
                ingest.counters().count_malformed();
                tracing::warn!(topic = %p.topic, error = %e, "MQTT message refused");
                return None;
            }
        }
    }
}

/// Waits for the commit, then acknowledges the message to the broker.
async fn finish(client: AsyncClient, ingest: Arc<Ingest>, p: Publish, mut pending: Pending) {
    loop {
        match pending.await {
            Ok(_) => break,
            Err(IngestError::Stopped) => return, // shutting down; the broker keeps the message
            Err(e) => {
                // Held unacknowledged and retried: the store may come back, and should
                // safegrid stop meanwhile, the broker delivers the message again.
                tracing::warn!(topic = %p.topic, error = %e, "fixes from MQTT not stored; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                match enqueue(&ingest, &p).await {
                    Some(again) => pending = again,
                    None => break,
                }
            }
        }
    }
    ack(&client, &p).await;
}

async fn ack(client: &AsyncClient, p: &Publish) {
    if let Err(e) = client.ack(p).await {
        tracing::warn!(error = %e, "MQTT acknowledgement not sent; the broker will deliver the message again");
    }
}
