//! Fixes from an MQTT broker (`--mqtt-url mqtt://host:1883 --mqtt-topic 'fleet/+/position'`),
//! for fleets that publish there. A message is a batch, one fix, or an OwnTracks location
//! ([`crate::positions::batch::decode_message`]).
//!
//! Durable end to end: the subscription is QoS 1 in a persistent session, and a message is
//! acknowledged to the broker (PUBACK) only once its fixes are committed. Should safegrid die
//! first, the broker delivers the message again after the restart; a re-delivered fix is stored
//! once (the history is keyed by unit and time). Under overload the message waits unacknowledged
//! and is retried, and the broker stops sending once its in-flight window is full: back pressure
//! reaches the publishers instead of memory growing here. A message that cannot be decoded is
//! counted, logged and acknowledged, so that it does not come back forever.

use super::{Ingest, IngestError};
use crate::positions::batch::decode_message;
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Publish, QoS};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

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
    // Three stages, each in arrival order: the event loop only reads (so keep-alives flow even
    // under overload); a queuer decodes and queues fixes (waiting while the ingest queue is
    // full); an acker waits for each commit in turn and acknowledges, so PUBACKs go out in the
    // order the messages came (MQTT 3.1.1 §4.6). The broker's in-flight window bounds both
    // channels: it sends no more until earlier messages are acknowledged.
    let (to_queue, queued) = mpsc::unbounded_channel();
    let (to_ack, acks) = mpsc::unbounded_channel();
    tokio::spawn(run(eventloop, client.clone(), to_queue, config));
    tokio::spawn(queue(Arc::clone(&ingest), queued, to_ack));
    tokio::spawn(acknowledge(client, ingest, acks));
}

async fn run(
    mut eventloop: EventLoop,
    client: AsyncClient,
    to_queue: mpsc::UnboundedSender<Publish>,
    config: MqttConfig,
) {
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
                if to_queue.send(p).is_err() {
                    return; // shutting down
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

type Pending = std::pin::Pin<Box<dyn Future<Output = Result<super::Receipt, IngestError>> + Send>>;

/// What the acker does with a message.
enum Next {
    /// Wait for this commit, then acknowledge.
    Commit(Pending),
    /// Acknowledge at once: nothing to store (refused and counted).
    Drop,
}

/// Decodes and queues each message's fixes in arrival order.
async fn queue(
    ingest: Arc<Ingest>,
    mut queued: mpsc::UnboundedReceiver<Publish>,
    to_ack: mpsc::UnboundedSender<(Publish, Next)>,
) {
    while let Some(p) = queued.recv().await {
        let Some(next) = enqueue(&ingest, &p).await else { return };
        if to_ack.send((p, next)).is_err() {
            return;
        }
    }
}

/// Queues a message's fixes, waiting while the ingest queue is full. `None`: the ingest has
/// stopped (shutting down): nothing is acknowledged, and the broker keeps the message.
async fn enqueue(ingest: &Ingest, p: &Publish) -> Option<Next> {
    let fixes = match decode_message(&p.topic, &p.payload) {
        Ok(f) => f,
        Err(e) => {
            ingest.counters().count_malformed();
            tracing::warn!(topic = %redacted(&p.topic), field = %e.field, reason = %e.reason, "MQTT message refused");
            return Some(Next::Drop);
        }
    };
    loop {
        match ingest.enqueue(fixes.clone()) {
            Ok(pending) => return Some(Next::Commit(Box::pin(pending))),
            Err(IngestError::Overloaded { retry_after_s }) => {
                tokio::time::sleep(Duration::from_secs(u64::from(retry_after_s))).await;
            }
            Err(IngestError::Stopped) => return None,
            Err(e) => {
                ingest.counters().count_malformed();
                tracing::warn!(topic = %redacted(&p.topic), error = %e, "MQTT message refused");
                return Some(Next::Drop);
            }
        }
    }
}

/// Waits for each message's commit in arrival order, then acknowledges it.
async fn acknowledge(client: AsyncClient, ingest: Arc<Ingest>, mut acks: mpsc::UnboundedReceiver<(Publish, Next)>) {
    while let Some((p, mut next)) = acks.recv().await {
        loop {
            match next {
                Next::Drop => break,
                Next::Commit(pending) => match pending.await {
                    Ok(_) => break,
                    Err(IngestError::Stopped) => return, // the broker keeps the message
                    Err(e) => {
                        // Held unacknowledged (and everything after it) and queued again: the
                        // store may come back; should safegrid stop meanwhile, the broker
                        // delivers the message again. Fixes later messages stored meanwhile
                        // outdate are kept as history (late).
                        tracing::warn!(topic = %redacted(&p.topic), error = %e, "fixes from MQTT not stored; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        match enqueue(&ingest, &p).await {
                            Some(again) => next = again,
                            None => return,
                        }
                    }
                },
            }
        }
        if let Err(e) = client.ack(&p).await {
            tracing::warn!(error = %e, "MQTT acknowledgement not sent; the broker will deliver the message again");
        }
    }
}

/// A topic fit for the log: a last level of the form `ID:SECRET` loses its secret.
fn redacted(topic: &str) -> String {
    match topic.rsplit_once('/') {
        Some((head, last)) => format!("{head}/{}", last.split_once(':').map_or(last, |(id, _)| id)),
        None => topic.split_once(':').map_or(topic, |(id, _)| id).to_owned(),
    }
}

#[cfg(test)]
mod redaction_tests {
    #[test]
    fn a_secret_in_the_topic_never_reaches_the_log() {
        assert_eq!(super::redacted("fleet/car-1:s3cr3t"), "fleet/car-1");
        assert_eq!(super::redacted("car-1:s3cr3t"), "car-1");
        assert_eq!(super::redacted("fleet/car-1"), "fleet/car-1");
    }
}
