//! [`Outgoing`]: a message ready to send, whole in memory or streamed.

use smtp_mailer_core::message::Content;
use smtp_mailer_core::smtp::{ContentInfo, Envelope};

use crate::content::{ContentSource, RawStream, StreamedMessage};
use crate::convert;
use crate::error;
use crate::smtp_mailer_mailer_types as wit;

/// A checked message and its envelope, prepared before any connection is
/// made, so that bad input is refused without sending anything.
pub enum Outgoing {
    /// The whole message in memory.
    Whole {
        /// The envelope.
        envelope: Envelope,
        /// The message.
        bytes: Vec<u8>,
        /// The Message-ID for the report, when the mailer built it.
        message_id: Option<String>,
    },
    /// A message with parts read from streams while it is sent.
    Streamed {
        /// The envelope.
        envelope: Envelope,
        /// What MAIL FROM declares.
        info: ContentInfo,
        /// The content's pieces.
        source: Box<dyn ContentSource>,
        /// The Message-ID for the report, when the mailer built it.
        message_id: Option<String>,
    },
}

impl Outgoing {
    /// Checks and builds `message`, for its own envelope or the one it
    /// names.
    pub fn message(mut message: wit::Message) -> Result<Outgoing, wit::Error> {
        let chosen = message.envelope.take();
        let (mut built, mut inputs) = convert::build(message)?;
        if let Some(envelope) = chosen {
            built.envelope = Envelope::new(&envelope.reverse_path, &envelope.forward_paths)
                .map_err(error::core_error)?;
        }
        let message_id = Some(built.message_id.clone());
        if built.streams.is_empty() {
            return Ok(Outgoing::Whole {
                envelope: built.envelope,
                bytes: built.bytes,
                message_id,
            });
        }
        let info = built.content_info();
        let envelope = built.envelope.clone();
        let source = StreamedMessage::new(built, &mut inputs)?;
        Ok(Outgoing::Streamed {
            envelope,
            info,
            source: Box::new(source),
            message_id,
        })
    }

    /// Checks `envelope`; a streamed `data` has its header section read
    /// ahead.
    pub fn raw(envelope: wit::Envelope, data: wit::Content) -> Result<Outgoing, wit::Error> {
        let envelope = Envelope::new(&envelope.reverse_path, &envelope.forward_paths)
            .map_err(error::core_error)?;
        match convert::content(data, "data".into()) {
            (Content::Bytes(bytes), _) => Ok(Outgoing::Whole {
                envelope,
                bytes,
                message_id: None,
            }),
            (Content::Streamed { .. }, input) => {
                let input = input.ok_or_else(|| error::invalid("data", "has no stream"))?;
                let (source, info) = RawStream::open(input)?;
                Ok(Outgoing::Streamed {
                    envelope,
                    info,
                    source: Box::new(source),
                    message_id: None,
                })
            }
        }
    }
}
