//! Shoal's wire formats: RESP2/RESP3 requests and frames, reply encoding, hash slots.
//!
//! Nothing here touches a socket or a runtime: parsers take bytes and return values, encoders
//! append to a `BytesMut`. The node's gateway owns the I/O.

pub mod frame;
pub mod memcache;
pub mod reply;
pub mod request;
pub mod slot;

pub use frame::{Frame, FrameError, Token};
pub use reply::Protocol;
pub use request::{Limits, ProtocolError, Request, RequestParser};
pub use slot::{key_hash_slot, SLOT_COUNT};
