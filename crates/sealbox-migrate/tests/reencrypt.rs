//! `migrate reencrypt`: SSE-S3 objects rewritten in place under SSE-KMS.

mod common;

use aws_sdk_s3::types::ServerSideEncryption;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reencrypt_moves_sse_s3_objects_to_sse_kms() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let c = server.client();
    create_bucket(&c, "vault").await;
    if let Err(why) = server.supports_sse_kms("vault").await {
        eprintln!("SKIP reencrypt test: this sealbox does not store SSE-KMS objects yet: {why}");
        return;
    }
    for i in 0..6u64 {
        c.put_object()
            .bucket("vault")
            .key(format!("k/{i}"))
            .body(bytes(i, 4000).into())
            .server_side_encryption(ServerSideEncryption::Aes256)
            .metadata("n", i.to_string())
            .send()
            .await
            .unwrap();
    }
    let creds = credentials_file(work.path(), &[("sb", &server)]);
    let cp = work.path().join("re.sqlite");
    let args = [
        "reencrypt",
        "s3://vault/k",
        "--sse",
        "aws:kms",
        "--rate",
        "50",
        "--endpoint",
        &server.endpoint,
        "--profile",
        "sb",
        "--credentials-file",
        creds.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
    ];
    assert_eq!(migrate(&args).await.unwrap(), 0);
    for i in 0..6u64 {
        let key = format!("k/{i}");
        let h = c.head_object().bucket("vault").key(&key).send().await.unwrap();
        assert_eq!(h.server_side_encryption(), Some(&ServerSideEncryption::AwsKms), "{key}");
        assert_eq!(h.metadata().and_then(|m| m.get("n")).cloned(), Some(i.to_string()), "metadata kept");
        assert_eq!(get(&c, "vault", &key).await, bytes(i, 4000));
    }
    // Resumable: a second run finds everything done and rewrites nothing.
    let before = c.head_object().bucket("vault").key("k/0").send().await.unwrap().e_tag().map(str::to_owned);
    assert_eq!(migrate(&args).await.unwrap(), 0);
    let after = c.head_object().bucket("vault").key("k/0").send().await.unwrap().e_tag().map(str::to_owned);
    assert_eq!(before, after);
}
