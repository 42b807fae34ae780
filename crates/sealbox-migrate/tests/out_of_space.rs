//! A destination answering 507 InsufficientStorage (what sealbox says when its disk is full):
//! the run stops writing, reports why, counts nothing done. A tiny fake S3 endpoint on 127.0.0.1
//! plays the full disk, since filling a real one is slow and machine-dependent.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

async fn serve_full_disk(listener: tokio::net::TcpListener, puts: Arc<AtomicUsize>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else { return };
        let puts = Arc::clone(&puts);
        tokio::spawn(async move {
            let mut reader = BufReader::new(sock);
            loop {
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                    return;
                }
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).await.is_err() {
                    return;
                }
                let response = if request_line.starts_with("PUT ") {
                    puts.fetch_add(1, Ordering::SeqCst);
                    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InsufficientStorage</Code>\
                               <Message>Insufficient storage</Message></Error>";
                    format!(
                        "HTTP/1.1 507 Insufficient Storage\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                        xml.len()
                    )
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_owned()
                };
                if reader.get_mut().write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_storage_stops_the_run_with_a_clear_reason() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let puts = Arc::new(AtomicUsize::new(0));
    tokio::spawn(serve_full_disk(listener, Arc::clone(&puts)));
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..5 {
        std::fs::write(src.join(format!("f{i}")), bytes(i, 100)).unwrap();
    }
    let creds = work.path().join("credentials");
    std::fs::write(&creds, "[full]\naws_access_key_id = AK\naws_secret_access_key = SK\n").unwrap();
    let cp = work.path().join("cp.sqlite");
    let report = work.path().join("r.json");
    let code = migrate(&[
        "copy",
        src.to_str().unwrap(),
        "s3://dest",
        "--dst-endpoint",
        &endpoint,
        "--dst-profile",
        "full",
        "--credentials-file",
        creds.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--parallel",
        "1",
    ])
    .await
    .unwrap();
    assert_eq!(code, 1);
    let r = read_json(&report);
    assert_eq!(r["summary"]["failed"], 5);
    assert_eq!(r["summary"]["copied"], 0);
    let errors: Vec<&str> = r["objects"].as_array().unwrap().iter().map(|o| o["error"].as_str().unwrap()).collect();
    assert!(errors.iter().all(|e| e.contains("out of space")), "{errors:?}");
    assert_eq!(errors.iter().filter(|e| e.contains("not attempted")).count(), 4, "{errors:?}");
    assert!(puts.load(Ordering::SeqCst) <= 3, "writing stops after the first 507 (retries aside)");
}
