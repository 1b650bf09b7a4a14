//! The MLLP listener: HL7 v2 over TCP, framed `0x0B … 0x1C 0x0D`.
//!
//! Each connection is a task that reads frames, hands each message to the
//! ingest pipeline on the blocking pool and writes the ACK back before
//! reading the next, so one connection's messages apply in order. Many
//! connections run at once (up to `max_connections`). A connection is closed
//! when it stays silent past the idle timeout, when it sends bytes outside a
//! frame (it is not speaking MLLP), or when the node shuts down (after the
//! message in hand is answered). A frame larger than the maximum is answered
//! with AR and the connection goes on.

use crate::ingest::Channel;
use crate::settings::MllpSettings;
use crate::state::AppState;
use rhip_hl7::mllp::{frame, Deframer, FrameEvent};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// A bound MLLP listener, not yet serving.
pub struct MllpListener {
    listener: std::net::TcpListener,
    settings: MllpSettings,
}

impl MllpListener {
    /// Binds the configured address (so a busy port stops the node at start).
    pub fn bind(settings: &MllpSettings) -> std::io::Result<MllpListener> {
        let listener = std::net::TcpListener::bind(settings.listen)?;
        listener.set_nonblocking(true)?;
        Ok(MllpListener { listener, settings: settings.clone() })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` turns true, then waits for open connections to
    /// answer the message in hand and close.
    pub async fn serve(self, state: AppState, mut stop: watch::Receiver<bool>) -> std::io::Result<()> {
        let listener = TcpListener::from_std(self.listener)?;
        let settings = Arc::new(self.settings);
        let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let permit = tokio::select! {
                _ = stop.changed() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                _ = stop.changed() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let (state, settings, stop) = (state.clone(), settings.clone(), stop.clone());
                    connections.spawn(async move {
                        state.metrics.mllp_connections.inc();
                        if let Err(error) = connection(stream, peer, &state, &settings, stop).await {
                            tracing::info!(%peer, %error, "MLLP connection ended with an error");
                        }
                        state.metrics.mllp_connections.dec();
                        drop(permit);
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "MLLP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            // Reap finished connection tasks so the set does not grow.
            while connections.try_join_next().is_some() {}
        }
        drop(listener);
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(30), drain).await.is_err() {
            tracing::warn!("MLLP connections still open after 30 s; closing them");
        }
        Ok(())
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    state: &AppState,
    settings: &MllpSettings,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let idle = Duration::from_secs(settings.idle_timeout_secs.max(1));
    let mut deframer = Deframer::new(settings.max_message_bytes);
    let mut buffer = vec![0u8; 64 * 1024];
    let peer_name = peer.to_string();
    loop {
        let read = tokio::select! {
            _ = stop.changed() => return Ok(()),
            read = tokio::time::timeout(idle, stream.read(&mut buffer)) => read,
        };
        let count = match read {
            Err(_) => {
                tracing::info!(%peer, "MLLP connection idle too long; closing");
                return Ok(());
            }
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(count)) => count,
            Ok(Err(error)) => return Err(error),
        };
        for event in deframer.push(&buffer[..count]) {
            match event {
                FrameEvent::Message(payload) => {
                    let answer = state.ingest.submit(payload, Channel::Mllp(peer_name.clone())).await;
                    match answer {
                        Ok(answer) => {
                            state.metrics.hl7_messages.with_label_values(&["mllp", answer.code]).inc();
                            stream.write_all(&frame(&answer.ack)).await?;
                        }
                        Err(error) => {
                            // Nothing was committed; the sender must resend. Say so with an AR.
                            tracing::error!(%peer, error = %error, "HL7 message could not be stored");
                            let ack = reject(state, "the node could not store the message; resend it");
                            stream.write_all(&frame(&ack)).await?;
                        }
                    }
                }
                FrameEvent::TooLarge { size } => {
                    tracing::warn!(%peer, size, limit = settings.max_message_bytes, "MLLP frame too large; refused");
                    state.metrics.hl7_messages.with_label_values(&["mllp", "AR"]).inc();
                    let message =
                        format!("message of {size} bytes exceeds the limit of {} bytes", settings.max_message_bytes);
                    stream.write_all(&frame(&reject(state, &message))).await?;
                }
                FrameEvent::Unframed { bytes } => {
                    tracing::warn!(%peer, bytes, "bytes outside an MLLP frame; closing the connection");
                    return Ok(());
                }
            }
        }
        if *stop.borrow() {
            return Ok(());
        }
    }
}

/// An AR for a message that was never read (too large, or not stored).
fn reject(state: &AppState, message: &str) -> Vec<u8> {
    let problem = rhip_hl7::Problem {
        location: rhip_hl7::Location {
            segment: "MSH".into(),
            sequence: 1,
            field: None,
            repetition: None,
            component: None,
            subcomponent: None,
        },
        code: rhip_hl7::ErrorCode::ApplicationInternalError,
        message: message.to_string(),
    };
    let sender = rhip_hl7::AckSender { application: "RHIP".into(), facility: state.region.as_str().to_string() };
    let id = rhip_core::new_id().to_string();
    let text = rhip_hl7::ack(None, rhip_hl7::AckCode::Reject, &[problem], &sender, &id, chrono::Utc::now().naive_utc());
    rhip_hl7::encode(&text, rhip_hl7::Charset::Utf8)
}
