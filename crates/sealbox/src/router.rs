//! The front door: one listener, three APIs. Health checks and the KMS JSON API
//! (`X-Amz-Target: TrentService.*`) are answered here; everything else is S3, handled by s3s.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use s3s::service::S3Service;
use s3s::{Body, HttpError};

/// What the router knows about the connection a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub is_tls: bool,
}

#[derive(Clone)]
pub struct Router {
    pub s3: S3Service,
    pub state: Arc<RouterState>,
    pub peer: Option<Peer>,
}

/// Shared server state the router needs beyond S3.
pub struct RouterState {
    pub ready: std::sync::atomic::AtomicBool,
}

impl Router {
    pub fn for_connection(&self, peer: Peer) -> Self {
        Self {
            s3: self.s3.clone(),
            state: self.state.clone(),
            peer: Some(peer),
        }
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.to_owned()));
    *resp.status_mut() = status;
    resp
}

impl hyper::service::Service<Request<Incoming>> for Router {
    type Response = Response<Body>;
    type Error = HttpError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let path = req.uri().path();
        if req.method() == http::Method::GET && path.starts_with("/health/") {
            let resp = match path {
                "/health/live" => plain(StatusCode::OK, "ok\n"),
                "/health/ready" if self.state.ready.load(std::sync::atomic::Ordering::Acquire) => {
                    plain(StatusCode::OK, "ready\n")
                }
                "/health/ready" => plain(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
                _ => plain(StatusCode::NOT_FOUND, "not found\n"),
            };
            return Box::pin(async move { Ok::<_, HttpError>(resp) });
        }
        if let Some(peer) = self.peer {
            req.extensions_mut().insert(peer);
        }
        let s3 = self.s3.clone();
        Box::pin(async move { s3.call(req.map(Body::from)).await })
    }
}

#[allow(dead_code)]
fn _assert_send(r: Router) -> impl Send {
    let _: Option<Infallible> = None;
    r
}
