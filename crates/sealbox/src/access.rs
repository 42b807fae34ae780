//! The S3 access hook (s3s `S3Access`): runs after authentication, before every S3 operation.
//! Today it requires a signature and names the operation for metrics; bucket and identity policies
//! plug in here.

use s3s::access::{S3Access, S3AccessContext};
use s3s::{s3_error, S3Result};

use crate::metrics::OperationSlot;

pub struct SealboxAccess;

#[async_trait::async_trait]
impl S3Access for SealboxAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let name = cx.s3_op().name().to_owned();
        if let Some(slot) = cx.extensions_mut().get::<OperationSlot>() {
            let _ = slot.0.set(name);
        }
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(s3_error!(AccessDenied, "Access Denied")),
        }
    }
}
