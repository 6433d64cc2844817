//! The raceresult session (to be built: handshake, rewind from the resume point, streaming, clock samples).

use super::{Io, LinkCtx, LinkError};

pub(super) async fn session(io: Io, ctx: &LinkCtx) -> Result<(), LinkError> {
    let _ = io;
    Err(LinkError::Protocol(format!("reader {}: the raceresult session is not built yet", ctx.id())))
}
