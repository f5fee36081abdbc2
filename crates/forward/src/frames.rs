//! Frames become messages: `mcas-syslog`'s framing codec, and the message and chunk types
//! the listeners hand to the workers.

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use mcas_syslog::codec::{Frame, Framing, Notice, OversizePolicy, SyslogCodec};

use crate::budget::Permit;
use crate::metrics::{DropReason, Metrics};

/// One message as read from a socket.
#[derive(Debug)]
pub(crate) struct Msg {
    pub(crate) data: Bytes,
    pub(crate) peer: IpAddr,
    pub(crate) truncated: bool,
}

/// Messages read together, with the listener they came from and when.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) listener: usize,
    pub(crate) received_at: jiff::Timestamp,
    pub(crate) msgs: Vec<Msg>,
    /// Room in the byte budget for `msgs`, given back when the worker drops the chunk.
    pub(crate) _budget: Permit,
    /// Set by a RELP session: the chunk's messages are answered only once every batch
    /// holding their rows is durable ([`crate::ack`]).
    pub(crate) ack: Option<crate::ack::Ack>,
    /// Set by a Kafka listener when the messages are rows a collector already mapped (of
    /// this route, as JSON objects): they skip parsing and mapping.
    pub(crate) rows: Option<crate::batch::Route>,
}

/// A decoder for one TCP/TLS connection.
pub(crate) fn codec(framing: Framing, max: usize, truncate: bool) -> SyslogCodec {
    SyslogCodec::new(framing)
        .with_max_frame(max)
        .with_oversize_policy(if truncate {
            OversizePolicy::Truncate
        } else {
            OversizePolicy::Discard
        })
}

/// Turn a frame into a message, counting what the decoder reported. `None` for a frame
/// that holds nothing (discarded oversize, empty line).
pub(crate) fn into_msg(frame: Frame, peer: IpAddr, metrics: &Metrics) -> Option<Msg> {
    // Framing repairs are counted before the empty-frame check: the notices that report
    // them often ride on empty frames.
    match frame.notice() {
        Some(Notice::Resync { skipped, .. }) => {
            metrics.framing_resyncs.fetch_add(1, Relaxed);
            metrics.skipped_bytes.fetch_add(skipped as u64, Relaxed);
            if skipped > 0 {
                metrics.skipped_frames.fetch_add(1, Relaxed);
            }
        }
        Some(Notice::Skipped { bytes }) => {
            metrics.skipped_bytes.fetch_add(bytes as u64, Relaxed);
            metrics.skipped_frames.fetch_add(1, Relaxed);
        }
        _ => {}
    }
    let truncated = frame.is_truncated();
    let discarded = matches!(
        frame.notice(),
        Some(Notice::Oversize {
            discarded: true,
            ..
        })
    );
    if discarded {
        metrics.count_drop(DropReason::Oversize, 1);
        return None;
    }
    let data = frame.into_data();
    // An octet-counted frame may carry the sender's trailing LF inside the count.
    let body = mcas_syslog::datagram(&data);
    if body.is_empty() {
        return None;
    }
    let data = data.slice_ref(body);
    Some(Msg {
        data,
        peer,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use tokio_util::codec::Decoder as _;

    /// Defect 9: a bogus octet count must not swallow the LF-framed events after it, and
    /// what the decoder skips or repairs is counted.
    #[test]
    fn a_bogus_count_swallows_nothing_and_the_repair_is_counted() {
        let m = Metrics::default();
        let mut c = codec(Framing::Auto, 64 * 1024, true);
        let mut buf = BytesMut::from(&b"999999999 <13>bogus count\n"[..]);
        for i in 0..1000 {
            buf.extend_from_slice(format!("<134>h CEF:0|V|P|1|1|n|3|externalId={i}\n").as_bytes());
        }
        let mut msgs = 0;
        while let Some(f) = c.decode_eof(&mut buf).unwrap() {
            if into_msg(f, "127.0.0.1".parse().unwrap(), &m).is_some() {
                msgs += 1;
            }
        }
        assert_eq!(msgs, 1001);
        assert_eq!(m.framing_resyncs.load(Relaxed), 1);
        assert!(
            m.render()
                .contains("mcas_forward_framing_resyncs_total 1\n")
        );
    }

    #[test]
    fn strict_octet_counting_counts_every_skipped_byte() {
        let m = Metrics::default();
        let mut c = codec(Framing::OctetCounting, 64, false);
        // A 100-byte frame over the 64-byte limit: discarded, every byte counted.
        let body = "x".repeat(100);
        let mut buf = BytesMut::from(format!("100 {body}5 <13>a").as_bytes());
        let mut msgs = Vec::new();
        while let Some(f) = c.decode_eof(&mut buf).unwrap() {
            if let Some(msg) = into_msg(f, "127.0.0.1".parse().unwrap(), &m) {
                msgs.push(msg.data);
            }
        }
        assert_eq!(msgs, vec![bytes::Bytes::from_static(b"<13>a")]);
        assert_eq!(m.dropped(DropReason::Oversize), 1);
        assert_eq!(m.skipped_bytes.load(Relaxed), 100);
        assert_eq!(m.skipped_frames.load(Relaxed), 1);
    }
}
