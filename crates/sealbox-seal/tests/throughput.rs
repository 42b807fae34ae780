//! In-process throughput of sealing and opening 256 MiB, for 1 and 2 layers. Ignored by default
//! (it measures, it does not assert): `cargo test -p sealbox-seal --test throughput -- --ignored --nocapture`.

use std::time::Instant;

use bytes::Bytes;
use futures::executor::block_on;
use futures::{stream, StreamExt};
use sealbox_seal::*;

const TOTAL: usize = 256 << 20;
/// The chunk size a file reader or an HTTP body typically delivers.
const CHUNK: usize = 256 << 10;

fn mb_per_s(bytes: usize, started: Instant) -> f64 {
    bytes as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64()
}

#[test]
#[ignore = "measurement, run with --ignored --nocapture"]
fn throughput_256_mib() {
    let chunk = Bytes::from(vec![0x5a; CHUNK]);
    for layers in [Layers::One, Layers::Two] {
        let keys: Vec<DataKey> = (0..layers.count()).map(|_| DataKey::generate().unwrap()).collect();

        let input = stream::iter(std::iter::repeat_n(chunk.clone(), TOTAL / CHUNK).map(Ok::<_, StdError>));
        let started = Instant::now();
        // Output is dropped as it comes, as a file writer would: keeping 256 MiB of fresh segments
        // alive would measure page faults, not sealing.
        let sealed_total = block_on(seal_stream(&keys, input).unwrap().fold(0usize, |n, item| {
            let n = n + item.unwrap().len();
            async move { n }
        }));
        let seal_rate = mb_per_s(TOTAL, started);
        assert_eq!(sealed_total as u64, sealed_len(TOTAL as u64, layers));

        // Re-chunk a sealed object as a file reader would (256 KiB reads, not segment-aligned).
        let input = stream::iter(std::iter::repeat_n(chunk.clone(), TOTAL / CHUNK).map(Ok::<_, StdError>));
        let blob: Vec<u8> =
            block_on(seal_stream(&keys, input).unwrap().map(Result::unwrap).collect::<Vec<_>>()).concat();
        let header = blob[..header_len(layers)].to_vec();
        let plan = plan_range(TOTAL as u64, layers, 0, TOTAL as u64).unwrap();
        let body = Bytes::from(blob).slice(plan.sealed_range().start as usize..);
        let reads: Vec<Result<Bytes, StdError>> =
            (0..body.len()).step_by(CHUNK).map(|at| Ok(body.slice(at..(at + CHUNK).min(body.len())))).collect();
        let started = Instant::now();
        let opened =
            block_on(open_stream(&keys, &header, stream::iter(reads), plan).unwrap().fold(0usize, |n, item| {
                let n = n + item.unwrap().len();
                async move { n }
            }));
        let open_rate = mb_per_s(TOTAL, started);
        assert_eq!(opened, TOTAL);

        // The sync core alone, for comparison (no stream plumbing).
        let started = Instant::now();
        let mut sealer = ObjectSealer::new(&keys).unwrap();
        let mut out = Vec::with_capacity(8);
        let mut sealed_bytes = 0usize;
        for _ in 0..TOTAL / CHUNK {
            sealer.push(&chunk, &mut out).unwrap();
            sealed_bytes += out.drain(..).map(|b| b.len()).sum::<usize>();
        }
        sealer.finish(&mut out).unwrap();
        sealed_bytes += out.drain(..).map(|b| b.len()).sum::<usize>();
        let sync_rate = mb_per_s(TOTAL, started);
        assert_eq!(sealed_bytes as u64, sealed_len(TOTAL as u64, layers));

        println!(
            "{} layer(s): seal_stream {seal_rate:.0} MB/s, open_stream {open_rate:.0} MB/s, ObjectSealer::push {sync_rate:.0} MB/s",
            layers.count()
        );
    }
}
