//! Round-trip, range and tamper tests through the public API only.

use bytes::Bytes;
use futures::executor::block_on;
use futures::{stream, StreamExt};
use proptest::prelude::*;
use sealbox_seal::*;

const S: usize = SEGMENT_SIZE;

fn keys(layers: Layers) -> Vec<DataKey> {
    (0..layers.count()).map(|_| DataKey::generate().unwrap()).collect()
}

/// Cheap deterministic bytes (proptest generating 100s of KiB element by element is slow).
fn object(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Splits `data` into chunks whose sizes cycle through `sizes` (each at least 1).
fn chunked(data: &[u8], sizes: &[usize]) -> Vec<Result<Bytes, StdError>> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(rest.len()).clamp(1, rest.len());
        out.push(Ok(Bytes::copy_from_slice(&rest[..n])));
        rest = &rest[n..];
        i += 1;
    }
    out
}

fn seal_with_stream(keys: &[DataKey], data: &[u8], chunk_sizes: &[usize]) -> Vec<u8> {
    let sealed = seal_stream(keys, stream::iter(chunked(data, chunk_sizes))).unwrap();
    let items: Vec<Bytes> = block_on(sealed.map(|item| item.unwrap()).collect());
    assert_eq!(items[0].len(), header_len(Layers::for_keys(keys).unwrap()), "header comes first");
    items.concat()
}

fn seal_with_sealer(keys: &[DataKey], data: &[u8], chunk_sizes: &[usize]) -> Vec<u8> {
    let mut sealer = ObjectSealer::new(keys).unwrap();
    let mut out = Vec::new();
    for chunk in chunked(data, chunk_sizes) {
        sealer.push(&chunk.unwrap(), &mut out).unwrap();
    }
    sealer.finish(&mut out).unwrap();
    out.concat()
}

/// Opens plaintext `[start, end)` of `sealed` the way the S3 layer does: header from offset 0,
/// then a stream from the planned offset to the end of the blob. Returns what was yielded and the
/// error that ended the stream, if any.
fn open_range(
    keys: &[DataKey],
    sealed: &[u8],
    object_len: u64,
    start: u64,
    end: u64,
    chunk_sizes: &[usize],
) -> (Vec<u8>, Option<SealError>) {
    let layers = Layers::for_keys(keys).unwrap();
    let plan = plan_range(object_len, layers, start, end).unwrap();
    let from = (plan.sealed_range().start as usize).min(sealed.len());
    let header = &sealed[..header_len(layers).min(sealed.len())];
    let mut opened = match open_stream(keys, header, stream::iter(chunked(&sealed[from..], chunk_sizes)), plan) {
        Ok(s) => s,
        Err(err) => return (Vec::new(), Some(err)),
    };
    let mut yielded = Vec::new();
    let err = block_on(async {
        while let Some(item) = opened.next().await {
            match item {
                Ok(bytes) => {
                    assert!(bytes.len() <= S, "yields at most one segment per item");
                    yielded.extend_from_slice(&bytes)
                }
                Err(err) => {
                    let err = *err.downcast::<SealError>().expect("a SealError");
                    assert!(opened.next().await.is_none(), "the stream ends after an error");
                    return Some(err);
                }
            }
        }
        None
    });
    (yielded, err)
}

/// Opens the whole object, trusting `object_len` from metadata. Anything yielded before an
/// error must be genuine plaintext.
fn open_all(keys: &[DataKey], sealed: &[u8], data: &[u8]) -> Result<Vec<u8>, SealError> {
    let (yielded, err) = open_range(keys, sealed, data.len() as u64, 0, data.len() as u64, &[S + 1000]);
    assert_eq!(yielded[..], data[..yielded.len()], "only authenticated plaintext is yielded");
    match err {
        Some(err) => Err(err),
        None => Ok(yielded),
    }
}

/// Opens the whole object with the length an attacker who also edited the metadata would record
/// (the length implied by the blob's size).
fn open_all_inferred_len(keys: &[DataKey], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    let layers = Layers::for_keys(keys).unwrap();
    let len = plain_len(sealed.len() as u64, layers)?;
    match open_range(keys, sealed, len, 0, len, &[4096]) {
        (_, Some(err)) => Err(err),
        (yielded, None) => Ok(yielded),
    }
}

fn layers_strategy() -> impl Strategy<Value = Layers> {
    prop_oneof![Just(Layers::One), Just(Layers::Two)]
}

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0), Just(1), Just(S - 1), Just(S), Just(S + 1), Just(2 * S), Just(3 * S + 7), 0..4 * S,]
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        prop::collection::vec(1usize..70_000, 1..6),
        prop::collection::vec(1usize..64, 1..6),
        Just(vec![3 * S]),
        Just(vec![1 << 20]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(len in size_strategy(), seed: u64, layers in layers_strategy(),
                  seal_chunks in chunk_sizes(), open_chunks in chunk_sizes(), use_stream: bool) {
        let keys = keys(layers);
        let data = object(len, seed);
        let sealed = if use_stream {
            seal_with_stream(&keys, &data, &seal_chunks)
        } else {
            seal_with_sealer(&keys, &data, &seal_chunks)
        };
        prop_assert_eq!(sealed.len() as u64, sealed_len(len as u64, layers));
        prop_assert_eq!(plain_len(sealed.len() as u64, layers), Ok(len as u64));
        let (opened, err) = open_range(&keys, &sealed, len as u64, 0, len as u64, &open_chunks);
        prop_assert_eq!(err, None);
        prop_assert!(opened == data);
    }

    #[test]
    fn any_range_opens_to_its_slice(len in size_strategy(), seed: u64, layers in layers_strategy(),
                                    a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>(),
                                    open_chunks in chunk_sizes()) {
        let keys = keys(layers);
        let data = object(len, seed);
        let sealed = seal_with_stream(&keys, &data, &[S / 3]);
        let (x, y) = (a.index(len + 1), b.index(len + 1));
        let (start, end) = (x.min(y), x.max(y));
        let (opened, err) = open_range(&keys, &sealed, len as u64, start as u64, end as u64, &open_chunks);
        prop_assert_eq!(err, None);
        prop_assert!(opened[..] == data[start..end]);
    }

    #[test]
    fn any_flipped_byte_fails(len in size_strategy(), seed: u64, layers in layers_strategy(),
                              at in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let keys = keys(layers);
        let data = object(len, seed);
        let mut sealed = seal_with_sealer(&keys, &data, &[S]);
        let at = at.index(sealed.len());
        sealed[at] ^= mask;
        prop_assert!(open_all(&keys, &sealed, &data).is_err(), "flip at {} accepted", at);
    }

    #[test]
    fn any_truncation_fails(len in size_strategy(), seed: u64, layers in layers_strategy(),
                            cut in any::<prop::sample::Index>()) {
        let keys = keys(layers);
        let data = object(len, seed);
        let sealed = seal_with_sealer(&keys, &data, &[S]);
        let cut = cut.index(sealed.len());
        prop_assert!(open_all(&keys, &sealed[..cut], &data).is_err(), "cut at {} accepted", cut);
        prop_assert!(open_all_inferred_len(&keys, &sealed[..cut]).is_err(), "cut at {} accepted", cut);
    }

    #[test]
    fn any_extension_fails(len in size_strategy(), seed: u64, layers in layers_strategy(),
                           extra in prop::collection::vec(any::<u8>(), 1..100)) {
        let keys = keys(layers);
        let data = object(len, seed);
        let mut sealed = seal_with_sealer(&keys, &data, &[S]);
        sealed.extend_from_slice(&extra);
        prop_assert_eq!(open_all(&keys, &sealed, &data), Err(SealError::TooLong));
        prop_assert!(open_all_inferred_len(&keys, &sealed).is_err());
    }

    #[test]
    fn swapping_segments_fails(full in 2usize..5, tail in 0usize..S, seed: u64, layers in layers_strategy(),
                               a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let keys = keys(layers);
        let data = object(full * S + tail, seed);
        let sealed = seal_with_sealer(&keys, &data, &[S]);
        let (i, j) = (a.index(full), b.index(full));
        prop_assume!(i != j);
        let seg = sealed_segment_len(layers);
        let at = |k: usize| header_len(layers) + k * seg;
        let mut swapped = sealed.clone();
        swapped[at(i)..at(i) + seg].copy_from_slice(&sealed[at(j)..at(j) + seg]);
        swapped[at(j)..at(j) + seg].copy_from_slice(&sealed[at(i)..at(i) + seg]);
        let opened = open_all(&keys, &swapped, &data);
        prop_assert!(matches!(opened, Err(SealError::Authentication { .. })), "{:?}", opened.map(|v| v.len()));
    }
}

#[test]
fn every_flipped_bit_of_small_objects_fails() {
    for layers in [Layers::One, Layers::Two] {
        let keys = keys(layers);
        for len in [0, 1, 17] {
            let data = object(len, 9);
            let sealed = seal_with_sealer(&keys, &data, &[1]);
            for at in 0..sealed.len() {
                for bit in [0, 7] {
                    let mut bad = sealed.clone();
                    bad[at] ^= 1 << bit;
                    assert!(open_all(&keys, &bad, &data).is_err(), "{layers:?} len {len}: flip at {at}");
                }
            }
        }
    }
}

#[test]
fn dropping_whole_trailing_segments_fails() {
    for layers in [Layers::One, Layers::Two] {
        let keys = keys(layers);
        let data = object(3 * S + 100, 1);
        let sealed = seal_with_sealer(&keys, &data, &[S]);
        for kept in 0..4 {
            let cut = &sealed[..header_len(layers) + kept * sealed_segment_len(layers)];
            assert_eq!(open_all(&keys, cut, &data), Err(SealError::Truncated { segment: kept as u64 }));
            // Even with metadata edited to match, the last kept segment was not sealed as final.
            let inferred = open_all_inferred_len(&keys, cut);
            assert!(matches!(inferred, Err(SealError::Authentication { .. } | SealError::Truncated { .. })));
        }
    }
}

#[test]
fn extension_arriving_as_its_own_chunk_fails() {
    for layers in [Layers::One, Layers::Two] {
        let keys = keys(layers);
        for len in [0, 5, S, 2 * S + 1] {
            let data = object(len, 2);
            let sealed = seal_with_sealer(&keys, &data, &[S]);
            let plan = plan_range(len as u64, layers, 0, len as u64).unwrap();
            let body = &sealed[plan.sealed_range().start as usize..];
            let input: Vec<Result<Bytes, StdError>> =
                vec![Ok(Bytes::copy_from_slice(body)), Ok(Bytes::new()), Ok(Bytes::from_static(b"!"))];
            let items: Vec<_> = block_on(open_stream(&keys, &sealed, stream::iter(input), plan).unwrap().collect());
            let last = items.last().unwrap().as_ref().unwrap_err();
            assert_eq!(last.downcast_ref::<SealError>(), Some(&SealError::TooLong), "{layers:?} {len}");
            let yielded: usize = items.iter().filter_map(|i| i.as_ref().ok()).map(Bytes::len).sum();
            assert!(yielded < len.max(1), "the final segment is held back until the input is known to end");
        }
    }
}

#[test]
fn header_only_empty_object_fails() {
    let keys = keys(Layers::One);
    let sealed = seal_with_sealer(&keys, &[], &[1]);
    assert_eq!(sealed.len(), 48 + 16);
    assert_eq!(open_all(&keys, &sealed, &[]), Ok(vec![]));
    assert_eq!(open_all(&keys, &sealed[..48], &[]), Err(SealError::Truncated { segment: 0 }));
}

#[test]
fn wrong_keys_fail() {
    let data = object(S + 5, 3);
    let keys2 = keys(Layers::Two);
    let sealed = seal_with_sealer(&keys2, &data, &[S]);
    let swapped = [keys2[1].clone(), keys2[0].clone()];
    assert_eq!(open_all(&swapped, &sealed, &data), Err(SealError::Authentication { segment: 0 }));
    let other = keys(Layers::Two);
    assert_eq!(open_all(&other, &sealed, &data), Err(SealError::Authentication { segment: 0 }));
    let one = [keys2[0].clone()];
    assert_eq!(SegmentOpener::new(&one, &sealed).err(), Some(SealError::KeyCount { layers: 2, keys: 1 }));
    assert_eq!(ObjectSealer::new(&[]).err(), Some(SealError::LayerCount { got: 0 }));
}

#[test]
fn reusing_a_data_key_still_gives_distinct_ciphertexts() {
    let keys = keys(Layers::One);
    let data = object(2 * S, 4);
    let a = seal_with_sealer(&keys, &data, &[S]);
    let b = seal_with_sealer(&keys, &data, &[S]);
    assert_ne!(a[..48], b[..48], "fresh salt");
    assert_ne!(a[48..], b[48..], "so a different derived key");
}

#[test]
fn parts_sealed_under_bound_keys_cannot_be_swapped() {
    let upload_key = DataKey::generate().unwrap();
    let part_key = |n: u32| [upload_key.bound_to(format!("upload-9 part {n}").as_bytes()).unwrap()];
    let (one, two) = (object(S, 1), object(S, 2));
    let sealed_one = seal_with_sealer(&part_key(1), &one, &[S]);
    let sealed_two = seal_with_sealer(&part_key(2), &two, &[S]);
    assert_eq!(open_all(&part_key(1), &sealed_one, &one), Ok(one.clone()));
    // Same data key, same size: only the binding tells the blobs apart.
    assert_eq!(open_all(&part_key(1), &sealed_two, &one), Err(SealError::Authentication { segment: 0 }));
}

#[test]
fn segment_opener_opens_segments_in_any_order() {
    for layers in [Layers::One, Layers::Two] {
        let keys = keys(layers);
        let data = object(3 * S + 10, 5);
        let sealed = seal_with_sealer(&keys, &data, &[777]);
        let opener = SegmentOpener::new(&keys, &sealed).unwrap();
        assert_eq!(opener.header().layers(), layers);
        let seg = sealed_segment_len(layers);
        let hl = header_len(layers);
        for index in [3usize, 1, 0, 2] {
            let start = hl + index * seg;
            let end = (start + seg).min(sealed.len());
            let mut buf = sealed[start..end].to_vec();
            let plain = opener.open_in_place(index as u64, index == 3, &mut buf).unwrap();
            assert_eq!(plain, &data[index * S..(index * S + S).min(data.len())]);
        }
        let mut last = sealed[hl + 3 * seg..].to_vec();
        let err = opener.open_in_place(3, false, &mut last).unwrap_err();
        assert_eq!(err, SealError::Truncated { segment: 3 });
        let mut full = sealed[hl..hl + seg].to_vec();
        assert_eq!(opener.open_in_place(0, true, &mut full).unwrap_err(), SealError::Authentication { segment: 0 });
    }
}

#[test]
fn input_errors_pass_through() {
    #[derive(Debug)]
    struct ClientWentAway;
    impl std::fmt::Display for ClientWentAway {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client went away")
        }
    }
    impl std::error::Error for ClientWentAway {}

    let keys = keys(Layers::One);
    let input: Vec<Result<Bytes, StdError>> = vec![Ok(Bytes::from_static(b"abc")), Err(Box::new(ClientWentAway))];
    let items: Vec<_> = block_on(seal_stream(&keys, stream::iter(input)).unwrap().collect());
    let err = items.into_iter().find_map(Result::err).expect("an error");
    assert!(err.downcast_ref::<ClientWentAway>().is_some());

    let sealed = seal_with_sealer(&keys, b"abc", &[3]);
    let plan = plan_range(3, Layers::One, 0, 3).unwrap();
    let input: Vec<Result<Bytes, StdError>> =
        vec![Ok(Bytes::copy_from_slice(&sealed[48..50])), Err(Box::new(ClientWentAway))];
    let items: Vec<_> = block_on(open_stream(&keys, &sealed, stream::iter(input), plan).unwrap().collect());
    assert_eq!(items.len(), 1);
    assert!(items[0].as_ref().unwrap_err().downcast_ref::<ClientWentAway>().is_some());
}

#[test]
fn large_chunks_are_sealed_one_segment_per_item() {
    let keys = keys(Layers::Two);
    let data = object(10 * S + 3, 6);
    let input: Vec<Result<Bytes, StdError>> = vec![Ok(Bytes::from(data.clone()))];
    let items: Vec<Bytes> = block_on(seal_stream(&keys, stream::iter(input)).unwrap().map(Result::unwrap).collect());
    assert_eq!(items.len(), 1 + 11);
    assert!(items[1..11].iter().all(|s| s.len() == sealed_segment_len(Layers::Two)));
    assert_eq!(items[11].len(), 3 + 32);
}

#[test]
fn plan_with_other_layer_count_is_refused() {
    let keys = keys(Layers::One);
    let sealed = seal_with_sealer(&keys, b"xyz", &[3]);
    let plan = plan_range(3, Layers::Two, 0, 3).unwrap();
    let empty: Vec<Result<Bytes, StdError>> = vec![];
    assert_eq!(open_stream(&keys, &sealed, stream::iter(empty), plan).err(), Some(SealError::BadHeader));
}

#[test]
fn streams_are_send_sync_unpin_for_send_inputs() {
    fn assert_body<T: futures::Stream<Item = Result<Bytes, StdError>> + Send + Sync + Unpin + 'static>(_: &T) {}
    // A boxed `dyn Stream + Send` input is not `Sync`; the adapters must still be.
    type SendOnly = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Bytes, StdError>> + Send>>;
    let keys = keys(Layers::One);
    let input: SendOnly = Box::pin(stream::iter(Vec::<Result<Bytes, StdError>>::new()));
    assert_body(&seal_stream(&keys, input).unwrap());
    let sealed = seal_with_sealer(&keys, b"abcdef", &[6]);
    let plan = plan_range(6, Layers::One, 1, 4).unwrap();
    let input: SendOnly = Box::pin(stream::iter(vec![Ok(Bytes::copy_from_slice(&sealed[48..]))]));
    let mut opened = open_stream(&keys, &sealed, input, plan).unwrap();
    assert_body(&opened);
    assert_eq!(opened.remaining(), 3);
    assert_eq!(block_on(opened.next()).unwrap().unwrap(), Bytes::from_static(b"bcd"));
    assert_eq!(opened.remaining(), 0);
    assert!(block_on(opened.next()).is_none());
}

/// Input that arrives slowly, one small chunk per wake-up, through a real runtime.
#[tokio::test]
async fn works_with_pending_input() {
    let keys = keys(Layers::Two);
    let data = object(2 * S + 123, 7);
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, StdError>>(1);
    let producer = {
        let data = data.clone();
        tokio::spawn(async move {
            let mut tx = tx;
            for chunk in data.chunks(10_000) {
                futures::SinkExt::send(&mut tx, Ok(Bytes::copy_from_slice(chunk))).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let sealed: Vec<Bytes> = seal_stream(&keys, rx).unwrap().map(Result::unwrap).collect().await;
    producer.await.unwrap();
    let sealed = sealed.concat();

    let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, StdError>>(1);
    let plan = plan_range(data.len() as u64, Layers::Two, 5, data.len() as u64 - 5).unwrap();
    let tail = sealed[plan.sealed_range().start as usize..].to_vec();
    tokio::spawn(async move {
        let mut tx = tx;
        for chunk in tail.chunks(999) {
            futures::SinkExt::send(&mut tx, Ok(Bytes::copy_from_slice(chunk))).await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    let opened: Vec<Bytes> = open_stream(&keys, &sealed, rx, plan).unwrap().map(Result::unwrap).collect().await;
    assert_eq!(opened.concat(), data[5..data.len() - 5]);
}
