//! The link between `mcas-syslog`'s framing codec and the pipeline's [`Msg`].

use std::net::IpAddr;

use mcas_syslog::codec::{Frame, Framing, Notice, OversizePolicy, SyslogCodec};

use crate::listen::Msg;
use crate::metrics::{DropReason, Metrics};

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
