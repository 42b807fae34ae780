//! In-process throughput of the calls S3 makes per object (GenerateDataKey, Decrypt), one thread
//! and then one per core. Ignored by default: `cargo test -p sealbox-kms --test bench -- --ignored --nocapture`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealbox_kms::{Caller, Kms, KmsConfig, RootKey, SystemClock};

fn rate(threads: usize, per_thread: Duration, op: impl Fn() + Send + Sync + 'static) -> f64 {
    let op = Arc::new(op);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let op = op.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < per_thread {
                    op();
                    n += 1;
                }
                n as f64 / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

#[test]
#[ignore]
fn data_key_ops_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let root = RootKey::load_or_create_file(&dir.path().join("root.key")).unwrap();
    let kms = Arc::new(
        Kms::open(
            &dir.path().join("kms.db"),
            root,
            Arc::new(SystemClock),
            KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() },
        )
        .unwrap(),
    );
    let key = kms.create_key("bench", None, &[]).unwrap();
    let ctx: BTreeMap<String, String> =
        [("aws:s3:arn".to_owned(), "arn:aws:s3:::bucket/some/object/key".to_owned())].into();
    let blob = kms.generate_data_key(Some(&key.key_id), &ctx).unwrap().ciphertext_blob;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let d = Duration::from_secs(2);
    for threads in [1, cores] {
        let (k, c, id) = (kms.clone(), ctx.clone(), key.key_id.clone());
        let gdk = rate(threads, d, move || {
            k.generate_data_key(Some(&id), &c).unwrap();
        });
        let (k, c, b) = (kms.clone(), ctx.clone(), blob.clone());
        let dec = rate(threads, d, move || {
            k.decrypt_data_key(&b, &c).unwrap();
        });
        let (k, id) = (kms.clone(), key.key_id.clone());
        let body = format!(r#"{{"KeyId":"{id}","KeySpec":"AES_256","EncryptionContext":{{"aws:s3:arn":"x"}}}}"#);
        let api = rate(threads, d, move || {
            let allow = |_: &sealbox_kms::api::AuthzRequest<'_>| Ok(());
            let (r, _) = sealbox_kms::api::handle(&k, "GenerateDataKey", body.as_bytes(), &Caller::default(), &allow);
            assert_eq!(r.status, 200);
        });
        println!(
            "{threads} thread(s): GenerateDataKey {gdk:.0}/s, Decrypt {dec:.0}/s, api::handle(GenerateDataKey) {api:.0}/s"
        );
    }
}
